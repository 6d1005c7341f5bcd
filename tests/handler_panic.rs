//! A panicking handler closes only the connection it was handling (close code 1011); the core
//! loop and every other client keep being served. Panics in `on_open`, `on_close` and worker
//! message callbacks are contained too.
mod util;

use corepush::{Context, Handler, Message, Runtime, Server, ServerConfig, Workers};
use util::*;

/// The command handler, plus panics in `on_open` (path `/boom`) and in `on_close` (when the
/// connection stored `boom` = `close`).
struct Fragile(Cmd);

impl Handler for Fragile {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        if ctx.request().is_some_and(|r| r.path() == "/boom") {
            panic!("on_open was asked to panic");
        }
        self.0.on_open(ctx);
    }
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        self.0.on_message(ctx, message);
    }
    fn on_close(&mut self, ctx: &mut Context<'_>) {
        if ctx.get::<String>("boom").as_deref() == Some("close") {
            panic!("on_close was asked to panic");
        }
    }
}

fn start(name: &str) -> (Runtime, std::net::SocketAddr, Server) {
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .handler(|_| Fragile(Cmd))
                .action("panic", |_, _, _| {
                    panic!("a worker-message callback panicked")
                }),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr(name).unwrap();
    let server = rt.server(name).unwrap();
    (rt, addr, server)
}

/// Every client answers an echo and takes a push.
fn assert_all_served(server: &Server, clients: &mut [&mut Client]) {
    assert_eq!(server.send_raw_to_all("push").unwrap(), clients.len());
    for c in clients.iter_mut() {
        assert_eq!(c.recv(), "push");
        assert_eq!(c.ask("echo:alive"), "alive");
    }
}

#[test]
fn a_panic_on_a_message_closes_only_that_connection_with_1011() {
    let (rt, addr, server) = start("panic-message");
    let mut by_worker = clients_by_worker(addr, 2, 2);
    let (mut d, mut c) = (by_worker[1].pop().unwrap(), by_worker[1].pop().unwrap());
    let (mut b, mut a) = (by_worker[0].pop().unwrap(), by_worker[0].pop().unwrap());
    assert_eq!(a.ask("bind:victim"), "ok");
    assert_eq!(a.ask("join:room"), "ok");
    a.say("panic");
    assert_eq!(read_until_close(&mut a.ws), Some(1011));
    assert!(!server.exists(a.id));
    assert!(!server.flag_exists("victim"));
    assert!(server.group_members("room").is_empty());
    assert_eq!(server.connection_count(), 3);
    // Its neighbour on the same core loop and the clients of the other one carry on.
    assert_all_served(&server, &mut [&mut b, &mut c, &mut d]);

    // A panic on the other core loop, then on the first one again.
    c.say("panic");
    assert_eq!(read_until_close(&mut c.ws), Some(1011));
    b.say("panic");
    assert_eq!(read_until_close(&mut b.ws), Some(1011));
    assert_all_served(&server, &mut [&mut d]);
    let mut e = Client::connect(addr);
    assert_all_served(&server, &mut [&mut d, &mut e]);
    drop((d, e));
    rt.shutdown().unwrap();
}

#[test]
fn many_panics_leave_the_core_loops_serving() {
    let (rt, addr, server) = start("panic-many");
    let (mut a, mut b) = pair_across_workers(addr);
    for _ in 0..20 {
        let mut p = Client::connect(addr);
        p.say("panic");
        assert_eq!(read_until_close(&mut p.ws), Some(1011));
    }
    assert_eq!(server.connection_count(), 2);
    assert_all_served(&server, &mut [&mut a, &mut b]);
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn panics_in_on_open_on_close_and_worker_callbacks_are_contained() {
    let (rt, addr, server) = start("panic-hooks");
    let (mut a, mut b) = pair_across_workers(addr);

    // on_open: the handshake completes, then the connection is closed with 1011.
    let mut boom = connect_path(addr, "/boom");
    assert_eq!(read_until_close(&mut boom), Some(1011));
    assert_eq!(server.connection_count(), 2);

    // on_close: the connection is still released.
    let mut c = Client::connect(addr);
    assert_eq!(c.ask("set:boom:close"), "ok");
    assert_eq!(c.ask("bind:c"), "ok");
    let idc = c.id;
    c.hang_up();
    assert!(!server.exists(idc));
    assert!(!server.flag_exists("c"));

    // A worker-message callback: both core loops go on with their mailboxes.
    assert_eq!(server.send_message("panic", &0, Workers::All).unwrap(), 2);
    assert_all_served(&server, &mut [&mut a, &mut b]);
    assert_eq!(b.ask(&format!("to:{}:after", a.id)), "sent:1");
    assert_eq!(a.recv(), "after");
    drop((a, b));
    rt.shutdown().unwrap();
}
