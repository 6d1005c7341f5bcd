//! The limits of `ServerConfig`: connections per server and per address, groups per
//! connection, message size (WebSocket and TCP), the handshake timeout against slow-loris
//! clients, and the idle timeout with its keepalive pings. Each is shown acting, counted in
//! `Stats`, and leaving the other clients served.
mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use corepush::ServerConfig;
use socket2::{Domain, Socket, Type};
use tungstenite::Message as WsMessage;
use util::*;

fn ws(name: &str) -> ServerConfig {
    ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
}

/// Connects a new client until one is admitted; returns it with the number of refusals
/// before it. Needed right after a connection closed: the registry forgets a connection a
/// moment before its place under the limits is given back.
fn admitted_eventually(connect: impl Fn() -> Option<Ws>) -> (Ws, u64) {
    let mut refused = 0;
    let mut ws = None;
    wait_until("a new client is admitted", || {
        ws = connect();
        refused += u64::from(ws.is_none());
        ws.is_some()
    });
    (ws.expect("admitted"), refused)
}

/// Asks a tungstenite client (of a [`Cmd`] server) to echo.
fn echo(ws: &mut Ws, text: &str) -> String {
    ws.send(WsMessage::text(format!("echo:{text}"))).unwrap();
    recv_text(ws)
}

#[test]
fn clients_past_max_connections_are_refused() {
    let (rt, addr, server) = start_config(ws("limits-max").max_connections(3));
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    for i in 1..=5 {
        let refused = try_connect(addr, "/");
        assert!(refused.is_err(), "client {i} past the limit was admitted");
        // Counted before the socket is dropped, so before the client saw its error.
        assert_eq!(server.stats().rejected, i);
        assert_eq!(server.connection_count(), 3);
    }
    for c in &mut clients {
        assert_eq!(c.ask("echo:admitted"), "admitted");
    }
    // Once one leaves, a new client takes its place, and the limit still holds.
    let leaving = clients.pop().expect("a client");
    let gone = leaving.id;
    leaving.hang_up();
    assert!(!server.exists(gone));
    let (mut fresh, refused) = admitted_eventually(|| try_connect(addr, "/").ok());
    assert_eq!(echo(&mut fresh, "fresh"), "fresh");
    assert_eq!(server.connection_count(), 3);
    assert!(try_connect(addr, "/").is_err());
    let stats = server.stats();
    assert_eq!(stats.rejected, 5 + refused + 1);
    assert_eq!((stats.accepted, stats.connections), (4, 3));
    drop((clients, fresh));
    rt.shutdown().unwrap();
}

/// A WebSocket client whose socket is bound to `source` before it connects.
fn connect_from(source: IpAddr, addr: SocketAddr) -> Option<Ws> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    tungstenite::client(format!("ws://{addr}/"), stream)
        .ok()
        .map(|(ws, _)| ws)
}

#[test]
fn clients_past_max_connections_per_ip_are_refused() {
    let (rt, addr, server) = start_config(ws("limits-per-ip").max_connections_per_ip(2));
    let home: IpAddr = "127.0.0.1".parse().unwrap();
    // Another address of the loopback network (127.0.0.0/8 is all local on Linux).
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let mut first = connect_from(home, addr).expect("first from 127.0.0.1");
    let mut second = connect_from(home, addr).expect("second from 127.0.0.1");
    // A reply proves the connection is registered: the 101 goes out a moment before.
    assert_eq!(echo(&mut first, "first"), "first");
    assert_eq!(echo(&mut second, "second"), "second");
    for i in 1..=3 {
        assert!(connect_from(home, addr).is_none(), "third from 127.0.0.1");
        assert_eq!(server.stats().rejected, i);
    }
    assert_eq!(server.connection_count(), 2);
    // The limit is per address: another one still gets in, up to its own limit.
    let mut elsewhere = connect_from(other, addr).expect("first from 127.0.0.2");
    assert_eq!(echo(&mut elsewhere, "elsewhere"), "elsewhere");
    assert_eq!(server.connection_count(), 3);
    assert_eq!(echo(&mut first, "first"), "first");

    // A place freed on 127.0.0.1 goes to the next client from there.
    drop(second);
    wait_until("the second client is gone", || {
        server.connection_count() == 2
    });
    let (mut third, refused) = admitted_eventually(|| connect_from(home, addr));
    assert_eq!(echo(&mut third, "third"), "third");
    assert!(connect_from(home, addr).is_none());
    assert_eq!(server.stats().rejected, 3 + refused + 1);
    drop((first, third, elsewhere));
    rt.shutdown().unwrap();
}

#[test]
fn a_join_past_max_groups_per_connection_is_refused() {
    let (rt, addr, server) = start_config(ws("limits-groups").max_groups_per_connection(3));
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    for g in ["g1", "g2", "g3"] {
        assert_eq!(a.ask(&format!("tryjoin:{g}")), "true", "{g}");
    }
    assert_eq!(a.ask("tryjoin:g4"), "false");
    assert_eq!(a.ask("groups"), "g1,g2,g3");
    assert!(server.group_members("g4").is_empty());
    // Joining a group it is in is no new group; leaving one makes room.
    assert_eq!(a.ask("tryjoin:g2"), "true");
    assert_eq!(a.ask("leave:g2"), "true");
    assert_eq!(a.ask("tryjoin:g4"), "true");
    assert_eq!(a.ask("tryjoin:g5"), "false");
    // The limit is per connection.
    for g in ["g1", "g4", "g5"] {
        assert_eq!(b.ask(&format!("tryjoin:{g}")), "true", "{g}");
    }
    assert_eq!(server.group_members("g4"), {
        let mut both = vec![a.id, b.id];
        both.sort();
        both
    });
    assert_eq!(server.group_members("g5"), vec![b.id]);
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn a_websocket_message_over_max_message_size_closes_with_1009() {
    let (rt, addr, server) = start_config(ws("limits-ws-size").max_message_size(1024));
    let mut bystander = Client::connect(addr);
    let mut a = Client::connect(addr);
    // Exactly at the limit: served.
    let at_limit = format!("echo:{}", "x".repeat(1024 - 5));
    assert_eq!(a.ask(&at_limit), "x".repeat(1019));
    a.say(&format!("echo:{}", "x".repeat(1024 - 4)));
    assert_eq!(read_until_close(&mut a.ws), Some(1009));
    assert!(!server.exists(a.id));
    // After a protocol error the server reads nothing more, not even a close reply: it lets
    // go of the socket at the client's end of stream.
    drop(a);

    // A fragmented message: each fragment fits, the whole does not.
    let mut s = raw_ws(addr);
    let mut fragments = client_frame(0x01, &[b'x'; 600]);
    fragments.extend(client_frame(0x80, &[b'x'; 600]));
    assert_refused_with(&mut s, &fragments, 1009);

    assert_eq!(server.stats().protocol_errors, 2);
    assert_eq!(bystander.ask("echo:served"), "served");
    drop((bystander, s));
    rt.shutdown().unwrap();
}

/// Asserts that the server closed the connection: the next read is the end of the stream.
fn assert_eof(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        other => panic!("expected the server to close, got {other:?}"),
    }
}

#[test]
fn a_tcp_message_over_max_message_size_closes_the_connection() {
    let local = "127.0.0.1:0".parse().unwrap();
    let (rt, addr, server) =
        start_config(ServerConfig::tcp_lines("limits-lines-size", local).max_message_size(64));
    let mut ok = tcp(addr);
    let mut big = tcp(addr);
    big.write_all(format!("echo:{}\n", "x".repeat(59)).as_bytes())
        .unwrap();
    assert_eq!(read_line(&mut big), "x".repeat(59));
    big.write_all(format!("echo:{}\n", "x".repeat(60)).as_bytes())
        .unwrap();
    assert_eof(&mut big);
    ok.write_all(b"echo:served\n").unwrap();
    assert_eq!(read_line(&mut ok), "served");
    assert_eq!(server.stats().protocol_errors, 1);
    drop((ok, big));
    rt.shutdown().unwrap();

    let (rt, addr, server) =
        start_config(ServerConfig::tcp_length("limits-length-size", local).max_message_size(64));
    let mut big = tcp(addr);
    let at_limit = format!("echo:{}", "x".repeat(59));
    write_length_frame(&mut big, at_limit.as_bytes());
    assert_eq!(read_length_frame(&mut big), "x".repeat(59).as_bytes());
    // Refused on the prefix alone.
    big.write_all(&65u32.to_be_bytes()).unwrap();
    assert_eof(&mut big);
    assert_eq!(server.stats().protocol_errors, 1);
    drop(big);
    rt.shutdown().unwrap();
}

/// How long a raw socket waits for the server to drop it over a timeout of a few hundred
/// milliseconds: far above it (and the 250 ms sweep) even on a loaded machine, far below the
/// 10 s default that would apply were the setting ignored.
const DROP_WAIT: Duration = Duration::from_secs(4);

const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(300);

fn stalling(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = tcp(addr);
    s.set_read_timeout(Some(DROP_WAIT)).unwrap();
    s.write_all(bytes).unwrap();
    s
}

#[test]
fn a_handshake_that_stalls_is_dropped_after_the_timeout() {
    let (rt, addr, server) =
        start_config(ws("limits-handshake").handshake_timeout(HANDSHAKE_TIMEOUT));
    let mut bystander = Client::connect(addr);
    let started = Instant::now();
    let mut half = stalling(addr, b"GET / HTTP/1.1\r\nHost: x\r\nUpgr");
    let mut mute = stalling(addr, b"");
    // While they stall, the others are served and new clients get in.
    assert_eq!(bystander.ask("echo:served"), "served");
    let mut fresh = Client::connect(addr);
    assert_eq!(fresh.ask("echo:fresh"), "fresh");
    assert_closed(&mut half);
    assert_closed(&mut mute);
    let elapsed = started.elapsed();
    assert!(elapsed >= HANDSHAKE_TIMEOUT, "dropped after {elapsed:?}");
    let stats = server.stats();
    assert_eq!(stats.handshake_failures, 2);
    assert_eq!((stats.connections, stats.accepted), (2, 4));
    assert_eq!(bystander.ask("echo:still served"), "still served");
    drop((bystander, fresh));
    rt.shutdown().unwrap();
}

/// A slow-loris client that keeps sending a byte of its headers every 50 ms: the deadline
/// counts from the connection, not from the last byte.
#[test]
fn a_handshake_that_dribbles_is_dropped_after_the_timeout() {
    let (rt, addr, server) =
        start_config(ws("limits-dribble").handshake_timeout(HANDSHAKE_TIMEOUT));
    let started = Instant::now();
    let mut s = stalling(addr, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ");
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut sent = 0;
    let closed = loop {
        assert!(
            started.elapsed() < DROP_WAIT,
            "still open after {sent} bytes"
        );
        if s.write_all(b"a").is_err() {
            break started.elapsed();
        }
        sent += 1;
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break started.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("unexpected answer to a dribbled handshake: {other:?}"),
        }
    };
    assert!(closed >= HANDSHAKE_TIMEOUT, "dropped after {closed:?}");
    assert_eq!(server.stats().handshake_failures, 1);
    let mut fresh = Client::connect(addr);
    assert_eq!(fresh.ask("echo:served"), "served");
    drop((s, fresh));
    rt.shutdown().unwrap();
}

/// Reads from a client for `duration` without sending anything of its own; tungstenite
/// answers the server's pings on the next read. Returns how many pings came.
fn read_for(ws: &mut Ws, duration: Duration) -> usize {
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let end = Instant::now() + duration;
    let mut pings = 0;
    while Instant::now() < end {
        match ws.read() {
            Ok(WsMessage::Ping(_)) => pings += 1,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected only pings, got {other:?}"),
        }
    }
    ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
    pings
}

#[test]
fn a_client_that_answers_pings_outlives_the_idle_timeout() {
    let timeout = Duration::from_secs(1);
    let (rt, addr, server) = start_config(ws("limits-keepalive").idle_timeout(Some(timeout)));
    let mut a = Client::connect(addr);
    // Only pongs go out for 2.5 timeouts.
    let pings = read_for(&mut a.ws, timeout * 5 / 2);
    assert!(pings >= 2, "{pings} ping(s)");
    assert!(server.exists(a.id));
    assert_eq!(server.stats().idle_closes, 0);
    assert_eq!(a.ask("echo:alive"), "alive");
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn a_client_that_never_answers_is_closed_after_the_idle_timeout() {
    let timeout = Duration::from_millis(600);
    let (rt, addr, server) = start_config(ws("limits-idle").idle_timeout(Some(timeout)));
    let mut silent = raw_ws(addr);
    let opened = Instant::now();
    wait_until("the silent client is closed", || {
        server.stats().idle_closes == 1
    });
    let elapsed = opened.elapsed();
    assert!(elapsed >= timeout, "closed after {elapsed:?}");
    assert_eq!(server.connection_count(), 0);
    // What it would have read: a ping at half the timeout, then the close.
    let ping = read_server_frame(&mut silent).expect("a ping");
    assert_eq!(ping.opcode, 0x9);
    let close = read_close_frame(&mut silent);
    assert_eq!(close.close_code(), Some(1001));
    assert_eq!(close.close_reason(), "idle timeout");
    drop(silent);
    rt.shutdown().unwrap();
}

#[test]
fn without_an_idle_timeout_silent_clients_stay() {
    let (rt, addr, server) = start_config(ws("limits-no-idle").idle_timeout(None));
    let mut silent = raw_ws(addr);
    // Bounded silence, twice the timeout of the test above: no ping, no close.
    silent
        .set_read_timeout(Some(Duration::from_millis(1200)))
        .unwrap();
    let mut buf = [0u8; 16];
    match silent.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    assert_eq!(server.connection_count(), 1);
    assert_eq!(server.stats().idle_closes, 0);
    silent.set_read_timeout(Some(WAIT)).unwrap();
    silent.write_all(&text_frame("echo:still here")).unwrap();
    let reply = read_server_frame(&mut silent).expect("a reply");
    assert_eq!(reply.text(), "still here");
    drop(silent);
    rt.shutdown().unwrap();
}

/// Sends a message of 1,000 bytes from `on_open`.
struct Greeter;

impl corepush::Handler for Greeter {
    fn on_open(&mut self, ctx: &mut corepush::Context<'_>) {
        ctx.send_raw(vec![b'x'; 1000]).unwrap();
    }
    fn on_message(&mut self, _: &mut corepush::Context<'_>, _: corepush::Message<'_>) {}
}

/// The handshake's answer, queued ahead of `on_open`'s messages, is not a message: it does not
/// count against `max_outbound_bytes`, so a first message that fits the limit goes out.
#[test]
fn the_handshake_answer_does_not_count_against_the_outbound_limit() {
    let rt = corepush::Runtime::builder()
        .workers(1)
        .server(
            ws("limit-open")
                .max_outbound_bytes(1024)
                .handler(|_| Greeter),
        )
        .start()
        .unwrap();
    let server = rt.server("limit-open").unwrap();
    let mut c = connect(rt.local_addr("limit-open").unwrap());
    match c.read().unwrap() {
        WsMessage::Binary(b) => assert_eq!(b.len(), 1000),
        other => panic!("expected the greeting, got {other:?}"),
    }
    let s = server.stats();
    assert_eq!((s.slow_consumer_closes, s.dropped), (0, 0));
    drop(c);
    rt.shutdown().unwrap();
}
