//! Shared test helpers: start a runtime on 127.0.0.1:0, connect real clients, wait with
//! deadlines.
#![allow(dead_code)] // each test file uses a different subset of the helpers
#![allow(unreachable_pub)] // a test crate module: `pub` is for the test files, not a public API

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, client};

mod cmd;
mod logs;
mod raw;
mod redis;
mod restart;
#[cfg(feature = "tls")]
mod tls;
#[allow(unused_imports)] // not every test file drives the command handler
pub use cmd::*;
#[allow(unused_imports)] // nor reads the log
pub use logs::*;
#[allow(unused_imports)] // nor speaks raw bytes
pub use raw::*;
#[allow(unused_imports)] // nor starts a Redis
pub use redis::*;
#[allow(unused_imports)] // nor restarts a cluster's engine
pub use restart::*;
#[cfg(feature = "tls")]
#[allow(unused_imports)] // nor speaks TLS
pub use tls::*;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocket<TcpStream>;

/// Connects a WebSocket client, with a read timeout so a missing message fails the test.
pub fn connect(addr: SocketAddr) -> Ws {
    connect_path(addr, "/")
}

pub fn connect_path(addr: SocketAddr, path: &str) -> Ws {
    try_connect(addr, path).expect("websocket handshake")
}

/// Connects a WebSocket client; the handshake's error if the server refuses it.
pub fn try_connect(addr: SocketAddr, path: &str) -> Result<Ws, tungstenite::Error> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    match client(format!("ws://{addr}{path}"), stream) {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => {
            panic!("a blocking handshake cannot be interrupted")
        }
    }
}

/// The next text message (pings and pongs skipped); panics after `WAIT`.
pub fn recv_text(ws: &mut Ws) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no message within {WAIT:?}");
        match ws.read() {
            Ok(Message::Text(t)) => return t.to_string(),
            Ok(Message::Binary(b)) => return String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => {}
            Ok(other) => panic!("expected a text message, got {other:?}"),
            Err(e) => panic!("expected a text message, got error {e}"),
        }
    }
}

/// The next message parsed as JSON.
pub fn recv_json(ws: &mut Ws) -> Value {
    let text = recv_text(ws);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts that nothing arrives within `within` (used after a marker that proves ordering, so
/// this is a bound on silence, not a synchronisation).
pub fn assert_silent(ws: &mut Ws, within: Duration) {
    ws.get_ref().set_read_timeout(Some(within)).unwrap();
    match ws.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    ws.get_ref().set_read_timeout(Some(WAIT)).unwrap();
}

/// Waits until `f` is true, polling; panics with `what` after `WAIT`.
pub fn wait_until(what: &str, f: impl FnMut() -> bool) {
    settle(what, true, f);
}

/// Polls `f` until it returns `expected`, for state no event announces (say, counters written
/// just after the bytes a client has read); after `WAIT`, fails showing both values.
pub fn settle<T: PartialEq + std::fmt::Debug>(what: &str, expected: T, mut f: impl FnMut() -> T) {
    let deadline = Instant::now() + WAIT;
    let mut seen = f();
    while seen != expected && Instant::now() < deadline {
        std::thread::yield_now();
        std::thread::sleep(Duration::from_millis(2));
        seen = f();
    }
    assert_eq!(seen, expected, "timed out waiting for: {what}");
}

/// Waits until `server` has counted `frames` frames out in `writes` writes (the counters are
/// written just after the bytes, so they may trail what a client has read).
pub fn assert_writes(server: &corepush::Server, frames: u64, writes: u64) {
    settle("(frames out, writes)", (frames, writes), || {
        let s = server.stats();
        (s.messages_out, s.writes)
    });
}

/// Reads until the peer closes; returns the close code it sent, if any.
pub fn read_until_close(ws: &mut Ws) -> Option<u16> {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no close within {WAIT:?}");
        match ws.read() {
            Ok(Message::Close(frame)) => {
                // Send the close reply tungstenite queued, completing the close handshake.
                let _ = ws.flush();
                return frame.map(|f| u16::from(f.code));
            }
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                return None;
            }
            Err(e) => panic!("error while waiting for close: {e}"),
        }
    }
}

/// A raw TCP client with a read timeout.
pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Reads one `\n`-terminated line.
pub fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = s.read(&mut byte).expect("read line");
        assert!(
            n == 1,
            "connection closed before end of line: {:?}",
            String::from_utf8_lossy(&out)
        );
        if byte[0] == b'\n' {
            return String::from_utf8(out).unwrap();
        }
        out.push(byte[0]);
    }
}

/// Reads one u32-length-prefixed frame.
pub fn read_length_frame(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("read length");
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("read body");
    body
}

pub fn write_length_frame(s: &mut TcpStream, body: &[u8]) {
    s.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
    s.write_all(body).unwrap();
}
