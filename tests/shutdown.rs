//! Shutdown: everything queued reaches every client, in order, before a 1001 close frame;
//! handles outlive the runtime and every send through them fails with `Error::Shutdown`;
//! dropping a runtime stops it; invalid builders fail.
mod util;

use std::thread::{self, JoinHandle};
use std::time::Duration;

use corepush::{
    ClientId, Context, Error, Handler, MAX_INSTANCES, MAX_WORKERS, Message, Runtime, ServerConfig,
    WorkerId, Workers, get_server,
};
use util::*;

const SIZE: usize = 1024;

/// Message `i`: its index, then padding up to 1 KiB.
fn payload(i: usize) -> String {
    let mut s = format!("{i:06}:");
    s.extend(std::iter::repeat_n('x', SIZE - s.len()));
    s
}

/// Reads `n` messages that must be `payload(0..n)` in order, then the close frame; returns
/// the close code. Runs on its own thread so that the client keeps reading while the test
/// thread shuts the runtime down.
fn reader(mut client: Client, n: usize) -> JoinHandle<Option<u16>> {
    thread::spawn(move || {
        for i in 0..n {
            let got = client.recv();
            assert!(
                got == payload(i),
                "client {}: message {i} is {:?}…",
                client.id,
                &got[..got.len().min(12)]
            );
        }
        read_until_close(&mut client.ws)
    })
}

#[test]
fn graceful_shutdown_delivers_every_queued_message_in_order_then_1001() {
    const N: usize = 2000;
    let rt = Runtime::builder()
        .workers(2)
        // A bound, not a pause: ample for 8 MB over loopback on a loaded machine.
        .shutdown_timeout(Duration::from_secs(60))
        .server(
            // Everything is queued before the clients read: room for all of it, so the test
            // is about shutdown, not the outbound limit.
            ServerConfig::websocket("shut-flush", "127.0.0.1:0".parse().unwrap())
                .max_outbound_bytes(64 << 20)
                .handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr("shut-flush").unwrap();
    let server = rt.server("shut-flush").unwrap();
    let clients: Vec<Client> = clients_by_worker(addr, 2, 2)
        .into_iter()
        .flatten()
        .collect();
    let ids: Vec<ClientId> = clients.iter().map(|c| c.id).collect();
    let readers: Vec<_> = clients.into_iter().map(|c| reader(c, N)).collect();

    let stop = rt.shutdown_handle();
    let queued = thread::spawn(move || {
        let mut queued = 0;
        for i in 0..N {
            // Alternate one push to all four with one push per client.
            if i % 2 == 0 {
                queued += server.send_raw(payload(i), &ids).unwrap();
            } else {
                for id in &ids {
                    queued += server.send_raw(payload(i), *id).unwrap();
                }
            }
        }
        // Queued behind every push in each core loop's mailbox.
        stop.shutdown();
        queued
    })
    .join()
    .unwrap();
    assert_eq!(queued, 4 * N);
    for r in readers {
        assert_eq!(r.join().expect("a reader failed"), Some(1001));
    }
    rt.join().unwrap();
}

#[test]
fn a_client_that_reads_late_still_gets_everything_within_the_shutdown_timeout() {
    let rt = Runtime::builder()
        .workers(2)
        .shutdown_timeout(Duration::from_secs(60))
        .server(
            // Everything is queued before the clients read: room for all of it, so the test
            // is about shutdown, not the outbound limit.
            ServerConfig::websocket("shut-late", "127.0.0.1:0".parse().unwrap())
                .max_outbound_bytes(64 << 20)
                .handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr("shut-late").unwrap();
    let server = rt.server("shut-late").unwrap();
    let client = Client::connect(addr);
    // More than the socket buffers hold, so the server still has output queued when it is
    // asked to stop.
    const N: usize = 8000;
    for i in 0..N {
        assert_eq!(server.send_raw(payload(i), client.id).unwrap(), 1);
    }
    rt.shutdown_handle().shutdown();
    // Not a synchronisation: the stimulus is a client that stays away for longer than the
    // five seconds a single connection's close may take outside a shutdown.
    thread::sleep(Duration::from_secs(6));
    assert_eq!(
        reader(client, N).join().expect("the reader failed"),
        Some(1001)
    );
    rt.join().unwrap();
}

#[test]
fn handles_outlive_the_runtime_and_push_to_nobody() {
    let (rt, addr, server) = start_cmd("shut-after");
    let mut c = Client::connect(addr);
    assert_eq!(c.ask("bind:f"), "ok");
    assert_eq!(c.ask("join:g"), "ok");
    let id = c.id;
    let stop = rt.shutdown_handle();
    assert!(!stop.is_shutting_down());
    stop.shutdown();
    stop.shutdown(); // idempotent
    assert!(stop.is_shutting_down());
    assert_eq!(read_until_close(&mut c.ws), Some(1001));
    rt.join().unwrap();

    assert!(get_server("shut-after").is_none());
    // Every call that would send answers that the runtime is gone; nothing reads as sent.
    let shut = |r: corepush::Result<usize>| matches!(r, Err(Error::Shutdown));
    assert!(shut(server.send(&1, id)));
    assert!(shut(server.send_raw("x", [id])));
    assert!(shut(server.send_to_all(&1)));
    assert!(shut(server.send_raw_to_all("x")));
    assert!(shut(server.send_by_flag(&1, "f")));
    assert!(shut(server.send_to_group("g", &1)));
    assert!(shut(server.close(id)));
    assert!(shut(server.close_by_flag("f")));
    assert!(shut(server.send_message("a", &1, Workers::All)));
    assert!(shut(server.send_message_raw("a", WorkerId(0))));
    assert!(shut(server.worker(WorkerId(0)).send_raw_to_all("x")));
    assert!(!server.bind(id, "f"));
    assert!(!server.join(id, "g"));
    assert!(!server.exists(id));
    assert!(!server.flag_exists("f"));
    assert_eq!(server.connection_count(), 0);
    assert!(server.groups().is_empty());
}

#[test]
fn dropping_a_runtime_shuts_it_down() {
    let (rt, addr, server) = start_cmd("shut-drop");
    let stop = rt.shutdown_handle();
    let c = Client::connect(addr);
    let id = c.id;
    let r = reader(c, 0);
    drop(rt);
    assert!(stop.is_shutting_down());
    assert_eq!(r.join().unwrap(), Some(1001));
    assert!(get_server("shut-drop").is_none());
    assert!(matches!(server.send_raw("x", id), Err(Error::Shutdown)));
    assert_eq!(server.connection_count(), 0);
}

#[test]
fn run_returns_once_the_runtime_is_stopped() {
    let (rt, _addr, _server) = start_cmd("shut-run");
    rt.shutdown_handle().shutdown();
    rt.run().unwrap();
    assert!(get_server("shut-run").is_none());
}

struct Nop;
impl Handler for Nop {
    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

fn ws(name: &str) -> ServerConfig {
    ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
}

fn config_error(result: corepush::Result<Runtime>) -> String {
    match result {
        Err(Error::Config(message)) => message,
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(rt) => panic!("expected a configuration error, got a runtime {rt:?}"),
    }
}

#[test]
fn the_builder_refuses_invalid_configurations() {
    let zero = config_error(
        Runtime::builder()
            .workers(0)
            .server(ws("cfg-a").handler(|_| Nop))
            .start(),
    );
    assert!(zero.contains("workers"), "{zero}");
    let many = config_error(
        Runtime::builder()
            .workers(MAX_WORKERS + 1)
            .server(ws("cfg-a").handler(|_| Nop))
            .start(),
    );
    assert!(many.contains("workers"), "{many}");
    let instance = config_error(
        Runtime::builder()
            .workers(1)
            .instance(MAX_INSTANCES)
            .server(ws("cfg-a").handler(|_| Nop))
            .start(),
    );
    assert!(instance.contains("instance"), "{instance}");
    let no_room = config_error(
        Runtime::builder()
            .config(corepush::RuntimeConfig::default().mailbox_capacity(0))
            .workers(1)
            .server(ws("cfg-a").handler(|_| Nop))
            .start(),
    );
    assert!(no_room.contains("mailbox_capacity"), "{no_room}");
    let none = config_error(Runtime::builder().workers(2).start());
    assert!(none.contains("server"), "{none}");
    let dup = config_error(
        Runtime::builder()
            .workers(2)
            .server(ws("cfg-same").handler(|_| Nop))
            .server(
                ServerConfig::tcp_lines("cfg-same", "127.0.0.1:0".parse().unwrap())
                    .handler(|_| Cmd),
            )
            .start(),
    );
    assert!(dup.contains("cfg-same"), "{dup}");
    let empty = config_error(
        Runtime::builder()
            .workers(2)
            .server(ws("").handler(|_| Nop))
            .start(),
    );
    assert!(empty.contains("name"), "{empty}");
    let tiny = config_error(
        Runtime::builder()
            .workers(2)
            .server(ws("cfg-tiny").max_message_size(0).handler(|_| Nop))
            .start(),
    );
    assert!(tiny.contains("max_message_size"), "{tiny}");
    // An address that cannot be bound is an I/O error, and nothing is left running.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = ServerConfig::websocket("cfg-busy", taken.local_addr().unwrap());
    match Runtime::builder()
        .workers(2)
        .server(busy.handler(|_| Nop))
        .start()
    {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse),
        other => panic!("expected AddrInUse, got {other:?}"),
    }
    // None of them left a server behind.
    for name in ["cfg-a", "cfg-same", "", "cfg-tiny", "cfg-busy"] {
        assert!(get_server(name).is_none(), "{name:?}");
    }
}
