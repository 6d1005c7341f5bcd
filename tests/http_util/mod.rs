//! A hand-written HTTP/1.1 client for the request-scoped server's tests: raw bytes out,
//! responses parsed with `httparse`, every read bounded by a timeout.
#![allow(dead_code)] // each test file uses a different subset of the helpers
#![allow(unreachable_pub)] // a test crate module: `pub` is for the test files

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use corepush::{HttpConfig, HttpServer, RequestHandler};

// The shared waits: a test file that uses this module declares `mod util;` too.
#[allow(unused_imports)] // not every test file waits
pub use super::util::{WAIT, wait_until};

/// A configuration on a free port of 127.0.0.1, with a few threads.
pub fn config(name: &str) -> HttpConfig {
    HttpConfig::new(name, "127.0.0.1:0".parse().unwrap()).threads(4)
}

/// Starts a server; panics if it cannot.
pub fn start(config: HttpConfig, handler: impl RequestHandler) -> HttpServer {
    HttpServer::start(config, handler).expect("start the http server")
}

/// A parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// Whether the server said it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// One client connection, with a buffer so pipelined responses are split correctly.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }

    pub fn send(&mut self, raw: impl AsRef<[u8]>) {
        self.stream.write_all(raw.as_ref()).expect("send");
    }

    /// Sends a request and reads its response.
    pub fn roundtrip(&mut self, raw: impl AsRef<[u8]>) -> Resp {
        self.send(raw);
        self.response()
    }

    /// Reads one response with its body (by `Content-Length`).
    pub fn response(&mut self) -> Resp {
        self.read_response(true)
    }

    /// Reads one response to a `HEAD`: the head only, whatever it announces.
    pub fn head_response(&mut self) -> Resp {
        self.read_response(false)
    }

    fn read_response(&mut self, with_body: bool) -> Resp {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&self.buf).expect("a well-formed response") {
                httparse::Status::Complete(len) => {
                    let status = parsed.code.unwrap();
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8(h.value.to_vec()).unwrap();
                            (h.name.to_owned(), value)
                        })
                        .collect();
                    let length = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
                    let length = if with_body { length } else { 0 };
                    while self.buf.len() < len + length {
                        assert!(Instant::now() < deadline, "no whole body within {WAIT:?}");
                        self.fill();
                    }
                    let body = self.buf[len..len + length].to_vec();
                    self.buf.drain(..len + length);
                    return Resp {
                        status,
                        headers,
                        body,
                    };
                }
                httparse::Status::Partial => {
                    assert!(Instant::now() < deadline, "no response within {WAIT:?}");
                    self.fill();
                }
            }
        }
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).expect("read a response");
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// Whether the server closed the connection: end of stream (or a reset) within `WAIT`,
    /// with nothing more sent. Panics if bytes arrive or nothing happens.
    pub fn is_closed(&mut self) -> bool {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", self.buf);
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => panic!("expected the connection to close, got a byte {byte:?}"),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) => panic!("expected the connection to close, got {e}"),
        }
    }

    /// The exact bytes that arrive next (for interim `100 Continue` answers).
    pub fn expect_bytes(&mut self, expected: &[u8]) {
        while self.buf.len() < expected.len() {
            self.fill();
        }
        assert_eq!(
            String::from_utf8_lossy(&self.buf[..expected.len()]),
            String::from_utf8_lossy(expected)
        );
        self.buf.drain(..expected.len());
    }
}

/// A `GET` request for `path`.
pub fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

/// A `POST` request with a `Content-Length` body.
pub fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Whether a connection to `addr` is refused right now.
pub fn refused(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, WAIT) {
        Err(e) => e.kind() == ErrorKind::ConnectionRefused,
        Ok(_) => false,
    }
}

/// Runs `f` on another thread and waits at most `WAIT` for it (for calls that block, like
/// joining a server, which must not hang a test).
pub fn within_wait<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(WAIT)
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
}
