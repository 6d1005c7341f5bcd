//! The request-scoped ("FPM-like") mode: a blocking HTTP/1.1 request → response server whose
//! handlers see the push facade on the Fpm backend.
//!
//! Under PHP-FPM, imi handles each request and forgets it; no connection outlives the request,
//! so there is nothing to push to. This module runs the same application code the same way:
//! inside a [`RequestHandler`], [`get_server`](crate::get_server) and
//! [`RequestContext::server`] hand out a [`Server`] on the Fpm backend, whose sends answer 0,
//! whose `exists` answers false and whose lists are empty — never an error, never a panic.
//!
//! ```text
//!  acceptor thread ── mio::Poll ── listener ──▶ queue of accepted connections (crossbeam)
//!  pool thread 0 ── one connection at a time: read request → handler → write response, keep-alive
//!  pool thread 1 ── …
//! ```
//!
//! * **A pool of blocking threads.** Request handlers are ordinary blocking code (a database
//!   call, a file read), so each pool thread serves one connection at a time and may block; a
//!   core loop must never block. One acceptor thread owns the listener and hands connections to
//!   the pool; a [`mio::Waker`] stops it at once on shutdown, and the listener closes then.
//! * **A pool that grows, within a bound.** [`HttpConfig::threads`] always run; a connection
//!   that finds none free starts another, up to [`HttpConfig::max_threads`] (PHP-FPM's dynamic
//!   pool does the same with its children), and threads beyond `threads` end after a minute
//!   without work. So keep-alive clients up to that bound each keep a thread, with no
//!   reconnecting.
//! * **Keep-alive without hogging.** An idle keep-alive connection holds its thread only until
//!   [`HttpConfig::keep_alive_timeout`], or, at the thread limit, until another connection
//!   waits for a thread: then the idle one is closed (as HTTP allows at any time between
//!   requests) and its thread goes to the waiting one.
//! * **Limits, not panics.** A malformed request is answered 400, a head over
//!   [`HttpConfig::max_header_bytes`] 431, a body over [`HttpConfig::max_body_bytes`] 413, a
//!   request not complete within [`HttpConfig::request_timeout`] 408; each closes its
//!   connection. A handler that panics costs its request a 500; the thread serves on.

mod conn;
mod message;
mod parse;
mod pool;
mod server;
mod write;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

pub use message::{Request, RequestContext, RequestHandler, Response};
pub use server::{HttpServer, HttpShutdownHandle};

use crate::facade::Server;

/// Settings of an [`HttpServer`]: plain data with defaults, validated by
/// [`HttpServer::start`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The server's name: what [`get_server`](crate::get_server) with no name, and
    /// [`RequestContext::server`], answer with inside a request. Must not be empty.
    pub name: String,
    /// The address to listen on. Port 0 picks a free port; read it back with
    /// [`HttpServer::local_addr`].
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

thread_local! {
    /// On a pool thread of an HTTP server: that server's Fpm handle.
    static REQUEST_SCOPE: RefCell<Option<Server>> = const { RefCell::new(None) };
}

/// Marks this thread as a pool thread of the HTTP server whose Fpm handle is `server`.
pub(crate) fn enter_request_scope(server: Server) {
    REQUEST_SCOPE.with(|s| *s.borrow_mut() = Some(server));
}

/// What [`get_server`](crate::get_server) answers on a pool thread of an HTTP server: an Fpm
/// handle for any name (that server's own for `None`), as imi under FPM has no push server at
/// all. `None` off such threads.
pub(crate) fn request_scope_server(name: Option<&str>) -> Option<Server> {
    REQUEST_SCOPE.with(|s| {
        let scope = s.borrow();
        let own = scope.as_ref()?;
        match name {
            Some(n) if n != own.name() => Some(Server::fpm(n)),
            _ => Some(own.clone()),
        }
    })
}
