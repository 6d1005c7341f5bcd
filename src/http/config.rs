//! The HTTP server's settings.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of an [`HttpServer`](crate::HttpServer): plain data with defaults, validated by
/// [`HttpServer::start`](crate::HttpServer::start).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The server's name: the one [`get_server`](crate::get_server) with no name, and
    /// [`RequestContext::server`](crate::RequestContext::server), look up inside a request (a
    /// push server of that name if one runs in the process, else this server's own handle on
    /// the Fpm backend). Must not be empty.
    pub name: String,
    /// The address to listen on. Port 0 picks a free port; read it back with
    /// [`HttpServer::local_addr`](crate::HttpServer::local_addr).
    pub addr: SocketAddr,
    /// How many pool threads always run. Each serves one connection at a time, so handlers
    /// may block. Defaults to four per available core (at least 4).
    pub threads: usize,
    /// How many pool threads may run when connections outnumber [`threads`](Self::threads)
    /// (never fewer than `threads`): a connection that finds no thread free starts one, as
    /// PHP-FPM's dynamic pool starts children up to `pm.max_children`, and such a thread ends
    /// after a minute without work. At the limit, an idle keep-alive connection gives its thread
    /// to the waiting one. Defaults to 128.
    pub max_threads: usize,
    /// The largest request head (request line and headers), and the largest trailer section
    /// of a chunked body, in bytes; larger ones are answered 431. Defaults to 16 KiB.
    pub max_header_bytes: usize,
    /// The largest request body, in bytes; a larger one is answered 413. Defaults to 1 MiB.
    pub max_body_bytes: usize,
    /// How long an idle keep-alive connection may wait for its next request before it is
    /// closed. Defaults to 5 s.
    pub keep_alive_timeout: Duration,
    /// How long a client may take to send one whole request once its first bytes have
    /// arrived; a slower one is answered 408. Defaults to 10 s.
    pub request_timeout: Duration,
    /// How long a write of a response may block on a client that does not read; past it the
    /// connection is dropped. Defaults to 10 s.
    pub write_timeout: Duration,
    /// How many accepted connections may wait for a free thread; past it a new connection is
    /// answered 503 and closed. Defaults to 1024.
    pub max_pending: usize,
}

impl HttpConfig {
    /// A server with this name and address, and defaults for everything else.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        HttpConfig {
            name: name.into(),
            addr,
            threads: (cores * 4).max(4),
            max_threads: 128,
            max_header_bytes: 16 << 10,
            max_body_bytes: 1 << 20,
            keep_alive_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            max_pending: 1024,
        }
    }

    /// Sets [`name`](HttpConfig::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets [`addr`](HttpConfig::addr).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets [`threads`](HttpConfig::threads).
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }

    /// Sets [`max_threads`](HttpConfig::max_threads).
    pub fn max_threads(mut self, threads: usize) -> Self {
        self.max_threads = threads;
        self
    }

    /// Sets [`max_header_bytes`](HttpConfig::max_header_bytes).
    pub fn max_header_bytes(mut self, bytes: usize) -> Self {
        self.max_header_bytes = bytes;
        self
    }

    /// Sets [`max_body_bytes`](HttpConfig::max_body_bytes).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Sets [`keep_alive_timeout`](HttpConfig::keep_alive_timeout).
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Sets [`request_timeout`](HttpConfig::request_timeout).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`write_timeout`](HttpConfig::write_timeout).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// Sets [`max_pending`](HttpConfig::max_pending).
    pub fn max_pending(mut self, connections: usize) -> Self {
        self.max_pending = connections;
        self
    }
}

impl Default for HttpConfig {
    /// A server named `"http"` on `127.0.0.1:8080`.
    fn default() -> Self {
        HttpConfig::new("http", SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}
