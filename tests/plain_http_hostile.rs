//! Hostile plain requests on a WebSocket port — smuggling pairs, a GET with a body, huge
//! heads, heads one byte at a time, garbage — are refused (400, 431, or dropped at the
//! handshake timeout) and counted, while a connected WebSocket client keeps getting pushes.
mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use corepush::{Server, ServerConfig};
use util::*;

/// Pushes the next numbered message to every client (the one bystander).
fn push(server: &Server, n: &mut usize) {
    assert_eq!(server.send_raw_to_all(format!("p{n}")).unwrap(), 1);
    *n += 1;
}

/// Sends `raw` on a fresh connection; returns all the server answered before closing.
fn answer_to(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = tcp(addr);
    s.write_all(raw).unwrap();
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

/// Sends `raw` one byte per write, with a push to the bystander between bytes.
fn trickle(addr: SocketAddr, raw: &[u8], server: &Server, n: &mut usize) -> String {
    let mut s = tcp(addr);
    s.set_nodelay(true).unwrap();
    for byte in raw {
        s.write_all(std::slice::from_ref(byte)).unwrap();
        push(server, n);
    }
    String::from_utf8_lossy(&read_to_close(&mut s)).into_owned()
}

#[test]
fn hostile_plain_requests_are_refused_and_counted_while_pushes_flow() {
    let name = "plain-hostile";
    let (rt, addr, server) = start_config(
        ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
            .handshake_timeout(Duration::from_millis(500)),
    );
    let bystander = Client::connect(addr);
    let reader = thread::spawn(move || {
        let mut c = bystander;
        let mut got = Vec::new();
        loop {
            let m = c.recv();
            if m == "end" {
                return (c, got);
            }
            got.push(m);
        }
    });
    let mut n = 0;

    let refused: [(&[u8], u16); 6] = [
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\
              Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nContent-Length: 4\r\n\r\nGET ",
            400,
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
            400,
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            400,
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
        ),
        (
            &many_headers(),
            431,
        ),
    ];
    for (i, (raw, status)) in refused.iter().enumerate() {
        let answer = answer_to(addr, raw);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "case {i}: {answer:?}"
        );
        assert_eq!(server.stats().http_refused, i as u64 + 1, "case {i}");
        push(&server, &mut n);
    }

    // Not HTTP at all, or over the head limit: failed handshakes.
    let mut huge = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Pad: ".to_vec();
    // One byte past the limit, and no more (bytes never read would turn the close into a
    // reset that may discard the answer).
    huge.resize(64 * 1024 + 1, b'a');
    let failed: [(&[u8], u16); 3] = [
        (&huge, 431),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\r\n\r\n", 400),
        (b"GET /he\0lth HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    ];
    for (i, (raw, status)) in failed.iter().enumerate() {
        let answer = answer_to(addr, raw);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "case {i}: {answer:?}"
        );
        assert_eq!(server.stats().handshake_failures, i as u64 + 1, "case {i}");
        push(&server, &mut n);
    }

    // A head one byte at a time is answered once it is whole, within the handshake timeout…
    let slow = trickle(
        addr,
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        &server,
        &mut n,
    );
    assert!(slow.starts_with("HTTP/1.1 200 "), "{slow:?}");
    // … and one that never ends is dropped at it, unanswered.
    let stalled = trickle(addr, b"GET /health HTTP/1.1\r\nHo", &server, &mut n);
    assert_eq!(stalled, "", "a stalled head gets no answer");
    assert_eq!(server.stats().handshake_failures, 4);

    // Two requests in one go: the first is answered, and the connection closes.
    let two = answer_to(
        addr,
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(two.matches("HTTP/1.1 ").count(), 1, "{two:?}");
    assert!(two.ends_with("ok\n"), "{two:?}");
    push(&server, &mut n);

    assert_eq!(server.send_raw_to_all("end").unwrap(), 1);
    let (mut bystander, got) = reader.join().expect("the bystander's reader");
    let expected: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    assert_eq!(got, expected, "every push arrived, in order");
    assert_eq!(bystander.ask("echo:still here"), "still here");
    let s = server.stats();
    assert_eq!(
        (s.http_refused, s.handshake_failures, s.http_requests),
        (6, 4, 2)
    );
    assert_eq!((s.connections, s.closed, s.protocol_errors), (1, 0, 0));
    drop(bystander);
    rt.shutdown().unwrap();
}

/// A head with more header lines than the parser takes (431).
fn many_headers() -> Vec<u8> {
    let mut raw = b"GET /health HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..200 {
        raw.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw
}
