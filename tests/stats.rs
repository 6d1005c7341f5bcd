//! `Server::stats` after a known sequence — clients in and out, messages both ways, pushes,
//! a protocol error, a handler panic, closes from either side — matches exactly, bytes
//! included; the Fpm backend's stats are all zero.
mod util;

use std::io::Write;

use corepush::{BackendConfig, Runtime, Server, ServerConfig, Stats};
use util::*;

/// Waits until the counters read `expected` (they are written a moment around the events a
/// client sees), then asserts it, so that a mismatch shows both snapshots.
/// How many writes carry the frames depends on timing; it is checked for sense instead.
fn assert_stats(server: &Server, expected: Stats) {
    let without_writes = |mut s: Stats| {
        s.writes = 0;
        s
    };
    settle("the expected stats", expected, || {
        without_writes(server.stats())
    });
    let s = server.stats();
    assert!(
        (s.messages_out == 0) == (s.writes == 0) && s.writes <= s.messages_out,
        "{} writes for {} frames",
        s.writes,
        s.messages_out
    );
}

/// A server frame of a payload of at most 125 bytes: 2 header bytes.
fn out_frame(payload: usize) -> u64 {
    assert!(payload <= 125);
    2 + payload as u64
}

/// A client frame of at most 125 bytes: 2 header bytes and the mask.
fn in_frame(payload: usize) -> u64 {
    assert!(payload <= 125);
    6 + payload as u64
}

#[test]
fn stats_count_a_known_sequence_exactly() {
    const ECHOES: usize = 3;
    const PUSHES: usize = 4;
    let (rt, addr, server) = start_config(
        ServerConfig::websocket("stats-exact", "127.0.0.1:0".parse().unwrap())
            // No keepalive pings: every frame is one the test knows of.
            .idle_timeout(None),
    );
    assert_eq!(server.stats(), Stats::default());
    let mut expected = Stats::default();

    // Four clients, each asking its id (one message in, one reply out).
    let mut clients: Vec<Client> = (0..4).map(|_| Client::connect(addr)).collect();
    expected.accepted = 4;
    expected.connections = 4;
    expected.messages_in = 4;
    expected.messages_out = 4;
    expected.bytes_in = 4 * in_frame("id".len());
    expected.bytes_out = clients
        .iter()
        .map(|c| out_frame(c.id.to_string().len()))
        .sum();
    assert_stats(&server, expected);

    // Echoes from every client.
    for c in &mut clients {
        for _ in 0..ECHOES {
            assert_eq!(c.ask("echo:hello"), "hello");
        }
    }
    let echoes = (4 * ECHOES) as u64;
    expected.messages_in += echoes;
    expected.messages_out += echoes;
    expected.bytes_in += echoes * in_frame("echo:hello".len());
    expected.bytes_out += echoes * out_frame("hello".len());
    assert_stats(&server, expected);

    // Pushes from this thread to everyone.
    for _ in 0..PUSHES {
        assert_eq!(server.send_raw_to_all("push").unwrap(), 4);
    }
    for c in &mut clients {
        for _ in 0..PUSHES {
            assert_eq!(c.recv(), "push");
        }
    }
    let pushes = (4 * PUSHES) as u64;
    expected.messages_out += pushes;
    expected.bytes_out += pushes * out_frame("push".len());
    assert_stats(&server, expected);

    // A protocol error: an unmasked frame, answered by a close frame (1002 and its reason).
    let mut raw = raw_ws(addr);
    let unmasked = [&[0x81, 0x05][..], b"hello"].concat();
    assert_refused_with(&mut raw, &unmasked, 1002);
    drop(raw);
    expected.accepted += 1;
    expected.closed += 1;
    expected.protocol_errors = 1;
    expected.messages_out += 1;
    expected.bytes_in += unmasked.len() as u64;
    expected.bytes_out += out_frame(2 + "unmasked client frame".len());
    assert_stats(&server, expected);

    // A handler panic: the message counts, the close frame goes out (1011 and its reason),
    // and tungstenite echoes it back.
    let [mut a, b, mut c, mut d] = <[Client; 4]>::try_from(clients).unwrap();
    c.say("panic");
    assert_eq!(read_until_close(&mut c.ws), Some(1011));
    drop(c);
    let reason = "internal error".len();
    expected.connections -= 1;
    expected.closed += 1;
    expected.handler_panics = 1;
    expected.messages_in += 1;
    expected.messages_out += 1;
    expected.bytes_in += in_frame("panic".len()) + in_frame(2 + reason);
    expected.bytes_out += out_frame(2 + reason);
    assert_stats(&server, expected);

    // The client closes (no code; the server answers 1000), and the server closes one (1000;
    // tungstenite echoes it).
    b.hang_up();
    assert_eq!(server.close(d.id).unwrap(), 1);
    assert_eq!(read_until_close(&mut d.ws), Some(1000));
    drop(d);
    expected.connections -= 2;
    expected.closed += 2;
    expected.messages_out += 2;
    expected.bytes_in += in_frame(0) + in_frame(2);
    expected.bytes_out += 2 * out_frame(2);
    assert_stats(&server, expected);

    // The one left still counts.
    assert_eq!(a.ask("echo:last"), "last");
    expected.messages_in += 1;
    expected.messages_out += 1;
    expected.bytes_in += in_frame("echo:last".len());
    expected.bytes_out += out_frame("last".len());
    assert_stats(&server, expected);
    assert_eq!(server.connection_count(), 1);

    // What was never exercised stays zero.
    let s = server.stats();
    assert_eq!(
        (
            s.rejected,
            s.handshake_failures,
            s.dropped,
            s.slow_consumer_closes,
            s.idle_closes,
            s.mailbox_full
        ),
        (0, 0, 0, 0, 0, 0)
    );
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn stats_are_per_server() {
    let local = "127.0.0.1:0".parse().unwrap();
    let rt = Runtime::builder()
        .workers(2)
        .server(ServerConfig::websocket("stats-one", local).handler(|_| Cmd))
        .server(ServerConfig::tcp_lines("stats-two", local).handler(|_| Cmd))
        .start()
        .unwrap();
    let one = rt.server("stats-one").unwrap();
    let two = rt.server("stats-two").unwrap();
    let mut ws = Client::connect(rt.local_addr("stats-one").unwrap());
    let mut line = tcp(rt.local_addr("stats-two").unwrap());
    line.write_all(b"echo:hi\n").unwrap();
    assert_eq!(read_line(&mut line), "hi");
    assert_eq!(ws.ask("echo:hi"), "hi");
    let mut expected = Stats::default();
    expected.accepted = 1;
    expected.connections = 1;
    expected.messages_in = 1;
    expected.messages_out = 1;
    expected.bytes_in = "echo:hi\n".len() as u64;
    expected.bytes_out = "hi\n".len() as u64;
    assert_stats(&two, expected);
    let a = one.stats();
    assert_eq!((a.accepted, a.messages_in, a.messages_out), (1, 2, 2));
    drop((ws, line));
    rt.shutdown().unwrap();
}

#[test]
fn the_fpm_backend_reports_zero() {
    assert_eq!(Server::fpm("stats-fpm-handle").stats(), Stats::default());

    // A server on the Fpm backend serves its clients, but its handle sees nothing.
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket("stats-fpm", "127.0.0.1:0".parse().unwrap())
                .backend(BackendConfig::Fpm)
                .handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let server = rt.server("stats-fpm").unwrap();
    let mut c = Client::connect(rt.local_addr("stats-fpm").unwrap());
    assert_eq!(c.ask("echo:served"), "served");
    assert_eq!(server.stats(), Stats::default());
    assert_eq!(server.connection_count(), 0);
    drop(c);
    rt.shutdown().unwrap();
}

/// A reply written as the client hangs up (its message and its end of stream in one read)
/// counts like any other.
#[test]
fn a_reply_to_a_client_that_hangs_up_counts() {
    let (rt, addr, server) = start_config(ServerConfig::tcp_lines(
        "stats-hang-up",
        "127.0.0.1:0".parse().unwrap(),
    ));
    let mut s = tcp(addr);
    s.write_all(b"echo:bye\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_line(&mut s), "bye");
    assert_closed(&mut s);
    let mut expected = Stats::default();
    expected.accepted = 1;
    expected.closed = 1;
    expected.messages_in = 1;
    expected.messages_out = 1;
    expected.bytes_in = "echo:bye\n".len() as u64;
    expected.bytes_out = "bye\n".len() as u64;
    assert_stats(&server, expected);
    drop(s);
    rt.shutdown().unwrap();
}
