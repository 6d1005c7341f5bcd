//! The request-scoped ("FPM-like") mode: a blocking HTTP/1.1 request → response server whose
//! handlers reach the push servers of the process, or, under the server's own name, the push
//! facade on the Fpm backend.
//!
//! Under PHP-FPM, imi handles each request and forgets it; no connection outlives the request,
//! so there is nothing to push to. This module runs the same application code the same way:
//! inside a [`RequestHandler`], [`get_server`](crate::get_server) with the HTTP server's own
//! name (or none) and [`RequestContext::server`] hand out a [`Server`](crate::Server) on the
//! Fpm backend, whose sends answer 0, whose `exists` answers false and whose lists are empty —
//! never an error, never a panic. A push server running in the same process comes first,
//! though: by its name (even the HTTP server's own) a request pushes to its clients for real,
//! and a name that runs nowhere is `None`.
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

mod config;
mod conn;
mod message;
pub(crate) mod parse;
mod pool;
mod scope;
mod server;
pub(crate) mod write;

pub use config::HttpConfig;
pub use message::{Request, RequestContext, RequestHandler, Response};
pub(crate) use scope::request_scope_server;
pub use server::{HttpServer, HttpShutdownHandle};
