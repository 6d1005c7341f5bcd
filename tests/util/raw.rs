//! Raw-socket clients for tests about what a well-behaved client never sends: a handshake
//! made by hand, hand-built client frames, the server's frames parsed from the bytes, plus
//! the process's resident memory for tests that bound it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use super::{WAIT, tcp};

/// The `Sec-WebSocket-Key` of RFC 6455's example (16 bytes, base64).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The mask of every hand-built client frame (any value will do; a fixed one keeps the
/// bytes reproducible).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A complete upgrade request for `path`, with the usual headers and then `extra` header
/// lines (each without its CRLF).
pub fn upgrade_request(addr: SocketAddr, path: &str, extra: &[&str]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {KEY}\r\n"
    );
    for line in extra {
        req.push_str(line);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req
}

/// Reads an HTTP response head (up to and including the blank line), byte by byte so that
/// nothing after it is consumed. Panics if the stream ends first.
pub fn read_head(s: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16 * 1024, "response head too long");
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            other => panic!(
                "the response head ended early ({other:?}) after {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    String::from_utf8(head).expect("an ASCII response head")
}

/// The status code of a response head.
pub fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"))
}

/// Connects and upgrades by hand; the socket is left right after the `101` response.
pub fn raw_ws(addr: SocketAddr) -> TcpStream {
    let mut s = tcp(addr);
    s.set_nodelay(true).unwrap();
    s.write_all(upgrade_request(addr, "/", &[]).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert_eq!(status_of(&head), 101, "{head}");
    s
}

/// Everything the server sends until it closes the connection (a reset after the data
/// counts as a close too). Panics if the connection is still open after `WAIT`.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!(
            "the server did not close within the read timeout ({e}); got {:?}",
            String::from_utf8_lossy(&out)
        ),
    }
    out
}

/// Waits for the end of the stream: a clean EOF or a reset. Panics on data or on a timeout.
pub fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(n) => panic!(
            "expected the server to close, got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(e) => panic!("expected the server to close, got {e}"),
    }
}

/// A masked client frame: `b0` is FIN, RSV and opcode as they go on the wire; the length
/// takes the shortest encoding.
pub fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// A masked text frame (FIN set).
pub fn text_frame(text: &str) -> Vec<u8> {
    client_frame(0x81, text.as_bytes())
}

/// A frame from the server (unmasked).
#[derive(Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    /// RSV1: a compressed message (permessage-deflate).
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl ServerFrame {
    /// The code of a close frame, if it carries one.
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, 0x8, "not a close frame: {self:?}");
        self.payload
            .first_chunk::<2>()
            .map(|code| u16::from_be_bytes(*code))
    }

    /// The reason of a close frame.
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }

    /// The payload as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// The next frame from the server; `None` if the stream ends (or is reset) before it.
pub fn read_server_frame(s: &mut impl Read) -> Option<ServerFrame> {
    let mut head = [0u8; 2];
    if let Err(e) = s.read_exact(&mut head) {
        return match e.kind() {
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => None,
            _ => panic!("reading a frame from the server: {e}"),
        };
    }
    assert_eq!(head[1] & 0x80, 0, "a server frame must not be masked");
    let len = match head[1] & 0x7F {
        126 => {
            let mut ext = [0u8; 2];
            s.read_exact(&mut ext).expect("length");
            u64::from(u16::from_be_bytes(ext))
        }
        127 => {
            let mut ext = [0u8; 8];
            s.read_exact(&mut ext).expect("length");
            u64::from_be_bytes(ext)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0; usize::try_from(len).expect("a sane length")];
    s.read_exact(&mut payload).expect("payload");
    Some(ServerFrame {
        fin: head[0] & 0x80 != 0,
        rsv1: head[0] & 0x40 != 0,
        opcode: head[0] & 0x0F,
        payload,
    })
}

/// Reads frames until the server's close frame, then until the end of the stream; returns
/// the close frame. Panics if the stream ends without one.
pub fn read_close_frame(s: &mut TcpStream) -> ServerFrame {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no close frame within {WAIT:?}");
        match read_server_frame(s) {
            Some(f) if f.opcode == 0x8 => {
                assert_closed(s);
                return f;
            }
            Some(_) => {}
            None => panic!("the server closed without a close frame"),
        }
    }
}

/// Sends `bytes` and asserts that the server answers with a close frame of `code` and then
/// closes the connection.
pub fn assert_refused_with(s: &mut TcpStream, bytes: &[u8], code: u16) {
    s.write_all(bytes).unwrap();
    let close = read_close_frame(s);
    assert_eq!(
        close.close_code(),
        Some(code),
        "close reason {:?}",
        close.close_reason()
    );
}

/// Writes up to `total` bytes of `fill` in chunks, stopping early if the server closes
/// or stops taking them within `WAIT`; returns how many were written.
pub fn write_until_refused(s: &mut TcpStream, fill: u8, total: usize) -> usize {
    s.set_write_timeout(Some(WAIT)).unwrap();
    let chunk = vec![fill; 64 * 1024];
    let mut written = 0;
    while written < total {
        match s.write(&chunk[..chunk.len().min(total - written)]) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n,
        }
    }
    written
}

/// The resident set size of this process, in bytes (VmRSS from /proc/self/status).
pub fn vm_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kib * 1024
}
