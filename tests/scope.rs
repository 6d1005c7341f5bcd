//! Core loop scopes: `this_worker()` needs a core loop of the server's own runtime and confines
//! sends, counts and listings to that loop; `worker(n)` does the same from any thread.
mod util;

use corepush::{Context, Error, Handler, Message, Runtime, Server, ServerConfig, WorkerId};
use util::*;

/// Answers `probe` with what `this_worker()` says on its core loop, for its own server and
/// for a server of another runtime.
struct Probe {
    other: Server,
}

fn describe(scope: corepush::Result<Server>) -> String {
    match scope {
        Ok(s) => format!("scope:{:?}", s.scope().map(WorkerId::index)),
        Err(Error::NotOnWorker) => "not-on-worker".to_owned(),
        Err(e) => format!("error:{e}"),
    }
}

impl Handler for Probe {
    fn on_message(&mut self, ctx: &mut Context<'_>, _: Message<'_>) {
        let own = describe(ctx.server().this_worker());
        let other = describe(self.other.this_worker());
        ctx.send_raw(format!("{own} {other}")).unwrap();
    }
}

#[test]
fn this_worker_fails_off_the_servers_core_loops() {
    let (rt, _addr, server) = start_cmd("scope-off");
    assert!(matches!(server.this_worker(), Err(Error::NotOnWorker)));
    let from_thread = std::thread::scope(|s| {
        s.spawn(|| matches!(server.this_worker(), Err(Error::NotOnWorker)))
            .join()
            .unwrap()
    });
    assert!(from_thread);

    // On a core loop of another runtime: still not one of this server's core loops.
    let probe = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket("scope-probe", "127.0.0.1:0".parse().unwrap()).handler({
                let other = server.clone();
                move |_| Probe {
                    other: other.clone(),
                }
            }),
        )
        .start()
        .unwrap();
    let (mut p0, mut p1) = pair_across_workers_with(probe.local_addr("scope-probe").unwrap());
    assert_eq!(ask(&mut p0, "probe"), "scope:Some(0) not-on-worker");
    assert_eq!(ask(&mut p1, "probe"), "scope:Some(1) not-on-worker");
    drop((p0, p1));
    probe.shutdown().unwrap();
    rt.shutdown().unwrap();
}

/// A `Probe` server has no `id` command: learn the core loop from the probe's answer.
fn pair_across_workers_with(addr: std::net::SocketAddr) -> (Ws, Ws) {
    let mut slots: [Option<Ws>; 2] = [None, None];
    for _ in 0..200 {
        if slots.iter().all(Option::is_some) {
            break;
        }
        let mut ws = connect(addr);
        let answer = ask(&mut ws, "probe");
        let w = if answer.starts_with("scope:Some(0)") {
            0
        } else {
            1
        };
        if slots[w].is_none() {
            slots[w] = Some(ws);
        }
    }
    let [a, b] = slots;
    (
        a.expect("a client on core loop 0"),
        b.expect("a client on core loop 1"),
    )
}

fn ask(ws: &mut Ws, text: &str) -> String {
    ws.send(tungstenite::Message::text(text)).unwrap();
    recv_text(ws)
}

#[test]
fn this_worker_in_a_handler_confines_sends_counts_and_listings() {
    let (rt, addr, server) = start_cmd("scope-handler");
    let mut by_worker = clients_by_worker(addr, 2, 2);
    let mut ids: Vec<Vec<String>> = by_worker
        .iter()
        .map(|v| v.iter().map(|c| c.id.to_string()).collect())
        .collect();
    for v in &mut ids {
        v.sort_by_key(|s| s.parse::<u64>().unwrap());
    }
    let [w0, w1] = &mut by_worker[..] else {
        unreachable!()
    };

    assert_eq!(w0[0].ask("local-count"), "2");
    assert_eq!(w1[1].ask("local-count"), "2");
    assert_eq!(w0[1].ask("local-conns"), ids[0].join(","));
    assert_eq!(w1[0].ask("local-conns"), ids[1].join(","));

    // To every connection of the sender's core loop, the sender included: the push, made
    // first, reaches the sender before the reply.
    w0[0].say("local-all:loop 0 only");
    assert_eq!(w0[0].recv(), "loop 0 only");
    assert_eq!(w0[0].recv(), "sent:2");
    assert_eq!(w0[1].recv(), "loop 0 only");
    w1[0].say("local-all:loop 1 only");
    assert_eq!(w1[0].recv(), "loop 1 only");
    assert_eq!(w1[0].recv(), "sent:2");
    assert_eq!(w1[1].recv(), "loop 1 only");
    // A client of the other core loop is out of scope.
    let other = w1[1].id;
    assert_eq!(w0[0].ask(&format!("local-to:{other}:no")), "sent:0");
    let same = w0[1].id;
    assert_eq!(w0[0].ask(&format!("local-to:{same}:yes")), "sent:1");
    assert_eq!(w0[1].recv(), "yes");
    for c in w0.iter_mut().chain(w1.iter_mut()) {
        c.assert_nothing_before_marker(&server, "marker");
    }

    let leaving = w0.pop().unwrap();
    leaving.hang_up();
    assert_eq!(w0[0].ask("local-count"), "1");
    assert_eq!(w1[0].ask("local-count"), "2");
    drop(by_worker);
    rt.shutdown().unwrap();
}

#[test]
fn a_worker_handle_from_a_foreign_thread_confines_to_that_core_loop() {
    let (rt, addr, server) = start_cmd("scope-foreign");
    let mut by_worker = clients_by_worker(addr, 2, 2);
    for c in by_worker.iter_mut().flatten() {
        assert_eq!(c.ask("join:room"), "ok");
        assert_eq!(c.ask("bind:user"), "ok");
    }
    let (a0, b0) = (by_worker[0][0].id, by_worker[1][0].id);
    let results = std::thread::scope(|s| {
        s.spawn(|| {
            let one = server.worker(WorkerId(1));
            assert_eq!(one.scope(), Some(WorkerId(1)));
            assert_eq!(server.scope(), None);
            [
                one.send_raw_to_all("all").unwrap(),
                one.send_raw_to_group("room", "room").unwrap(),
                one.send_raw_by_flag("flag", "user").unwrap(),
                one.send_raw("ids", [a0, b0]).unwrap(),
                one.send_raw("a0", a0).unwrap(),
                one.connection_count(),
                one.group_count("room"),
                one.flag_clients("user").len(),
                usize::from(one.exists(a0)),
                usize::from(one.exists(b0)),
            ]
        })
        .join()
        .unwrap()
    });
    assert_eq!(results, [2, 2, 2, 1, 0, 2, 2, 2, 0, 1]);
    for c in &mut by_worker[1] {
        assert_eq!(c.recv(), "all");
        assert_eq!(c.recv(), "room");
        assert_eq!(c.recv(), "flag");
    }
    assert_eq!(by_worker[1][0].recv(), "ids");
    for c in by_worker.iter_mut().flatten() {
        c.assert_nothing_before_marker(&server, "marker");
    }
    let mut on_one: Vec<_> = by_worker[1].iter().map(|c| c.id).collect();
    on_one.sort();
    assert_eq!(server.worker(WorkerId(1)).connections(), on_one);

    // A core loop the runtime does not have: nothing in scope.
    let none = server.worker(WorkerId(7));
    assert_eq!(none.send_raw_to_all("lost").unwrap(), 0);
    assert_eq!(none.send_raw_to_group("room", "lost").unwrap(), 0);
    assert_eq!(none.send_raw("lost", [a0, b0]).unwrap(), 0);
    assert_eq!(none.connection_count(), 0);
    assert!(none.connections().is_empty());
    drop(by_worker);
    rt.shutdown().unwrap();
}
