//! Hostile input over raw sockets: garbage and malformed handshakes, frames that break RFC
//! 6455, TCP frames that claim 4 GiB or never end, and a connection flood. Each gets its
//! refusal (an HTTP 400, the right close code, or a closed socket), is counted and logged,
//! and the server goes on serving its other clients.
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use corepush::{PlainHttp, Runtime, Server, ServerConfig};
use log::Level;
use tungstenite::handshake::derive_accept_key;
use util::*;

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A WebSocket [`Cmd`] server that answers no plain HTTP (that has tests of its own, in
/// `plain_http_hostile.rs`), with the log captured.
fn start_ws(name: &str) -> (Runtime, SocketAddr, Server) {
    capture_logs();
    start_spec(
        name,
        ServerConfig::websocket(name, local())
            .handler(|_| Cmd)
            .plain_http(PlainHttp::off()),
    )
}

/// The server keeps serving: a client connected before the hostile input still answers,
/// and a new one connects and answers.
fn assert_serving(addr: SocketAddr, bystander: &mut Client) {
    assert_eq!(bystander.ask("echo:still here"), "still here");
    let mut fresh = Client::connect(addr);
    assert_eq!(fresh.ask("echo:fresh"), "fresh");
    fresh.hang_up();
}

/// Sends `request` on a fresh connection; returns all the server answered before closing.
fn answer_to(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = tcp(addr);
    s.write_all(request).unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

/// The usual upgrade request without the header `name`.
fn request_without(addr: SocketAddr, name: &str) -> String {
    let prefix = format!("{name}:");
    upgrade_request(addr, "/", &[])
        .split_inclusive("\r\n")
        .filter(|line| !line.starts_with(&prefix))
        .collect()
}

#[test]
fn garbage_instead_of_a_handshake_gets_400() {
    let (rt, addr, server) = start_ws("hostile-garbage");
    let mut bystander = Client::connect(addr);
    // The start of a TLS ClientHello: what a client that expected wss:// sends.
    let tls_hello: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
    let cases: [&[u8]; 5] = [
        b"hello there\r\n\r\n",
        tls_hello,
        b"\0\0\0\0\xff\xff\xff\xff\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.0\r\nHost: x\r\n\r\n",
    ];
    for (i, request) in cases.iter().enumerate() {
        let answer = answer_to(addr, request);
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "case {i} got {answer:?}"
        );
        assert_eq!(server.stats().handshake_failures, i as u64 + 1, "case {i}");
    }
    assert_logged(Level::Debug, &["handshake failed"]);
    let stats = server.stats();
    assert_eq!((stats.connections, stats.rejected), (1, 0));
    assert_eq!(server.connections(), vec![bystander.id]);
    assert_serving(addr, &mut bystander);
    drop(bystander);
    rt.shutdown().unwrap();
}

#[test]
fn a_handshake_missing_a_header_gets_400() {
    let (rt, addr, server) = start_ws("hostile-missing");
    let mut bystander = Client::connect(addr);
    let key = format!("Sec-WebSocket-Key: {KEY}");
    let cases = [
        request_without(addr, "Sec-WebSocket-Key"),
        request_without(addr, "Upgrade"),
        request_without(addr, "Connection"),
        request_without(addr, "Sec-WebSocket-Version"),
        request_without(addr, "Sec-WebSocket-Version")
            .replace(&key, &format!("{key}\r\nSec-WebSocket-Version: 8")),
        upgrade_request(addr, "/", &[]).replace(KEY, "not a key"),
    ];
    for (i, request) in cases.iter().enumerate() {
        let answer = answer_to(addr, request.as_bytes());
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "case {i} ({request:?}) got {answer:?}"
        );
        assert_eq!(server.stats().handshake_failures, i as u64 + 1, "case {i}");
    }
    assert_eq!(server.connections(), vec![bystander.id]);
    assert_serving(addr, &mut bystander);
    drop(bystander);
    rt.shutdown().unwrap();
}

/// RFC 6455 §11.3.1 says the key must not appear twice; tungstenite reads the first one and
/// the server upgrades with it. This pins that down: a valid handshake for the first key,
/// and a connection that works.
#[test]
fn a_duplicate_key_upgrades_with_the_first_one() {
    let (rt, addr, server) = start_ws("hostile-duplicate");
    let other = "AQIDBAUGBwgJCgsMDQ4PEA==";
    let mut s = tcp(addr);
    let request = upgrade_request(addr, "/", &[&format!("Sec-WebSocket-Key: {other}")]);
    s.write_all(request.as_bytes()).unwrap();
    let head = read_head(&mut s);
    assert_eq!(status_of(&head), 101, "{head}");
    let accept = format!(
        "Sec-WebSocket-Accept: {}",
        derive_accept_key(KEY.as_bytes())
    );
    assert!(
        head.lines().any(|l| l.eq_ignore_ascii_case(&accept)),
        "{head}"
    );
    s.write_all(&text_frame("echo:dup")).unwrap();
    let reply = read_server_frame(&mut s).expect("a reply");
    assert_eq!((reply.opcode, reply.text()), (0x1, "dup".to_owned()));
    assert_eq!(server.stats().handshake_failures, 0);
    drop(s);
    rt.shutdown().unwrap();
}

/// tungstenite refuses a request head over 64 KiB; the server answers 431.
#[test]
fn a_handshake_over_64_kib_gets_431() {
    let (rt, addr, server) = start_ws("hostile-long-head");
    let mut bystander = Client::connect(addr);
    let mut request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nX-Pad: ").into_bytes();
    // One byte past the limit, and no more: bytes the server never reads would turn its
    // close into a reset, which may discard the answer before the test reads it.
    request.resize(64 * 1024 + 1, b'a');
    let answer = answer_to(addr, &request);
    assert!(answer.starts_with("HTTP/1.1 431 "), "got {answer:?}");
    assert_eq!(server.stats().handshake_failures, 1);
    assert_serving(addr, &mut bystander);
    drop(bystander);
    rt.shutdown().unwrap();
}

/// A frame with a 64-bit length: `b0`, the length, then the mask (no payload follows).
fn frame_claiming(b0: u8, len: u64) -> Vec<u8> {
    let mut out = vec![b0, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&MASK);
    out
}

#[test]
fn frames_that_break_the_protocol_get_their_close_code() {
    let (rt, addr, server) = start_ws("hostile-frames");
    let mut bystander = Client::connect(addr);
    let mut unmasked = vec![0x81, 0x05];
    unmasked.extend_from_slice(b"hello");
    let mut fragmented_then_new = client_frame(0x01, b"a");
    fragmented_then_new.extend(client_frame(0x81, b"b"));
    // (what, bytes, close code, reason in the close frame and the log)
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("unmasked", unmasked, 1002, "unmasked client frame"),
        (
            "invalid UTF-8 text",
            client_frame(0x81, &[b'o', b'k', 0xC3, 0x28]),
            1007,
            "invalid UTF-8",
        ),
        (
            "reserved data opcode 0x3",
            client_frame(0x83, b""),
            1002,
            "reserved opcode",
        ),
        (
            "reserved control opcode 0xB",
            client_frame(0x8B, b""),
            1002,
            "reserved opcode",
        ),
        (
            "fragmented ping (FIN=0)",
            client_frame(0x09, b"p"),
            1002,
            "invalid control frame",
        ),
        (
            "ping over 125 bytes",
            client_frame(0x89, &[0; 126]),
            1002,
            "invalid control frame",
        ),
        ("RSV1", client_frame(0xC1, b"x"), 1002, "reserved bits set"),
        ("RSV2", client_frame(0xA1, b"x"), 1002, "reserved bits set"),
        ("RSV3", client_frame(0x91, b"x"), 1002, "reserved bits set"),
        (
            "length 2^63",
            frame_claiming(0x82, 1 << 63),
            1002,
            "frame length has the top bit set",
        ),
        (
            "length 2^64 - 1",
            frame_claiming(0x82, u64::MAX),
            1002,
            "frame length has the top bit set",
        ),
        (
            "length 2^63 - 1",
            frame_claiming(0x82, (1 << 63) - 1),
            1009,
            "message too big",
        ),
        (
            "continuation first",
            client_frame(0x80, b"x"),
            1002,
            "continuation without a message",
        ),
        (
            "new message inside a fragmented one",
            fragmented_then_new,
            1002,
            "new message inside a fragmented one",
        ),
        (
            "close with a one-byte payload",
            client_frame(0x88, &[3]),
            1002,
            "close payload of one byte",
        ),
        (
            "close with code 1005",
            client_frame(0x88, &1005u16.to_be_bytes()),
            1002,
            "close code not allowed",
        ),
    ];
    for (i, (what, bytes, code, reason)) in cases.iter().enumerate() {
        let mut s = raw_ws(addr);
        s.write_all(bytes).unwrap();
        let close = read_close_frame(&mut s);
        assert_eq!(close.close_code(), Some(*code), "{what}");
        assert_eq!(close.close_reason(), *reason, "{what}");
        assert_eq!(server.stats().protocol_errors, i as u64 + 1, "{what}");
        assert_logged(Level::Debug, &["broke the protocol", reason]);
    }
    assert_eq!(server.connections(), vec![bystander.id]);
    assert_serving(addr, &mut bystander);
    drop(bystander);
    rt.shutdown().unwrap();
}

/// Bytes that keep coming after a protocol error are not decoded (RFC 6455 §7.1.7): the
/// connection is counted once, and its buffers are not refilled.
#[test]
fn input_after_a_protocol_error_is_not_decoded() {
    capture_logs();
    // One connection at most: a new client is admitted only once the server let go of the
    // failed one, which it does on reading its end of stream, after all bytes before it.
    let (rt, addr, server) =
        start_config(ServerConfig::websocket("hostile-after-error", local()).max_connections(1));
    let mut s = raw_ws(addr);
    assert_refused_with(&mut s, &client_frame(0x83, b""), 1002);
    // More violations once the server has answered, then a valid frame and a close frame.
    for _ in 0..8 {
        s.write_all(&client_frame(0xC1, &[0; 1000])).unwrap();
    }
    s.write_all(&text_frame("echo:ignored")).unwrap();
    s.write_all(&client_frame(0x88, &1000u16.to_be_bytes()))
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut next = None;
    wait_until("the failed connection's place is given back", || {
        next = try_connect(addr, "/").ok();
        next.is_some()
    });
    let stats = server.stats();
    assert_eq!(stats.protocol_errors, 1);
    assert_eq!(
        stats.messages_in, 0,
        "nothing after the error reached the handler"
    );
    drop((s, next));
    rt.shutdown().unwrap();
}

#[test]
fn a_length_prefix_claiming_4_gib_closes_without_allocating() {
    capture_logs();
    let (rt, addr, server) =
        start_config(ServerConfig::tcp_length("hostile-4gib", local()).max_message_size(64 << 10));
    let mut bystander = tcp(addr);
    write_length_frame(&mut bystander, b"echo:before");
    assert_eq!(read_length_frame(&mut bystander), b"echo:before"[5..]);
    let before = vm_rss();
    let mut s = tcp(addr);
    s.write_all(&u32::MAX.to_be_bytes()).unwrap();
    // Then the "payload": a server that believed the prefix would buffer all of it. 0xFF
    // bytes read as further 4 GiB prefixes should the stream ever be decoded again.
    let written = write_until_refused(&mut s, 0xFF, 32 << 20);
    assert_closed(&mut s);
    let growth = vm_rss().saturating_sub(before);
    // 32 MiB streamed: buffering them would take at least that. Everything else the process
    // does meanwhile (the other tests of this file) stays far below 16 MiB.
    assert!(
        growth < 16 << 20,
        "resident memory grew by {growth} bytes ({written} bytes streamed)"
    );
    assert_eq!(server.stats().protocol_errors, 1);
    assert_logged(Level::Debug, &["broke the protocol", "message too big"]);
    write_length_frame(&mut bystander, b"echo:after");
    assert_eq!(read_length_frame(&mut bystander), b"after");
    drop((s, bystander));
    rt.shutdown().unwrap();
}

#[test]
fn a_line_that_never_ends_is_closed() {
    capture_logs();
    let (rt, addr, server) = start_config(
        ServerConfig::tcp_lines("hostile-endless", local()).max_message_size(64 << 10),
    );
    let mut bystander = tcp(addr);
    bystander.write_all(b"echo:before\n").unwrap();
    assert_eq!(read_line(&mut bystander), "before");
    let mut s = tcp(addr);
    // 4 MiB without a newline (64 times the limit), or until the server stops taking them.
    write_until_refused(&mut s, b'a', 4 << 20);
    assert_closed(&mut s);
    assert_eq!(server.stats().protocol_errors, 1);
    assert_eq!(server.connection_count(), 1);
    assert_logged(Level::Debug, &["broke the protocol", "message too big"]);
    bystander.write_all(b"echo:after\n").unwrap();
    assert_eq!(read_line(&mut bystander), "after");
    drop((s, bystander));
    rt.shutdown().unwrap();
}

/// What a flooding socket got: refused (closed unanswered) or upgraded.
fn upgraded(addr: SocketAddr, s: &mut TcpStream) -> bool {
    if s.write_all(upgrade_request(addr, "/", &[]).as_bytes())
        .is_err()
    {
        return false;
    }
    let mut first = [0u8; 1];
    match s.read(&mut first) {
        Ok(0) => false,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
        Ok(_) => {
            let head = read_head(s);
            assert_eq!(status_of(&format!("H{head}")), 101, "H{head}");
            true
        }
        Err(e) => panic!("neither refused nor upgraded: {e}"),
    }
}

#[test]
fn a_connection_flood_past_the_limit_is_refused() {
    capture_logs();
    let (rt, addr, server) = start_config(
        ServerConfig::websocket("hostile-flood", local())
            .max_connections(8)
            .handshake_timeout(std::time::Duration::from_secs(60)),
    );
    let mut bystander = Client::connect(addr);
    // 40 sockets at once, none of which has sent anything yet: 7 fit beside the bystander.
    let mut flood: Vec<TcpStream> = (0..40).map(|_| tcp(addr)).collect();
    wait_until("33 refusals", || server.stats().rejected == 33);
    let admitted = flood
        .iter_mut()
        .map(|s| upgraded(addr, s))
        .filter(|&up| up)
        .count();
    assert_eq!(admitted, 7);
    wait_until("8 open connections", || server.connection_count() == 8);
    assert_eq!(server.stats().rejected, 33);
    // Logged in batches, once per sweep and core loop. The lines do not name the server, and
    // another test of this file has a few refusals of its own: hence at least, not exactly.
    wait_until("the refusals are logged", || {
        log_lines(Level::Warn, &["over the connection limits"])
            .iter()
            .filter_map(|l| l.split_whitespace().nth(4)?.parse::<u64>().ok())
            .sum::<u64>()
            >= 33
    });
    assert_eq!(bystander.ask("echo:still here"), "still here");
    drop(flood);
    wait_until("the flood is gone", || server.connection_count() == 1);
    assert_serving_eventually(addr, &mut bystander);
    drop(bystander);
    rt.shutdown().unwrap();
}

/// Like [`assert_serving`], for just after connections were dropped: the registry forgets a
/// connection a moment before its place under `max_connections` is given back, so a new
/// client may be refused a few times first.
fn assert_serving_eventually(addr: SocketAddr, bystander: &mut Client) {
    assert_eq!(bystander.ask("echo:still here"), "still here");
    let mut fresh = None;
    wait_until("a new client is admitted", || {
        fresh = try_connect(addr, "/").ok();
        fresh.is_some()
    });
    let mut fresh = fresh.expect("admitted");
    fresh
        .send(tungstenite::Message::text("echo:fresh"))
        .unwrap();
    assert_eq!(recv_text(&mut fresh), "fresh");
}
