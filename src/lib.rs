//! # corepush
//!
//! A thread-per-core push server for ordinary, synchronous Rust programs. WebSocket and
//! framed-TCP clients stay connected, and any thread of the program can push to one client,
//! to a user (a bound *flag*), to a *group*, or to everyone — through one facade, [`Server`],
//! modelled on the server utility of the PHP framework imi (`send`, `sendByFlag`,
//! `sendToGroup`, `sendToAll`, `close`, `exists`, `sendMessage` between workers …).
//!
//! No async runtime anywhere: your handler is plain `&mut self` code.
//!
//! ## Architecture
//!
//! ```text
//!  process
//!  ├─ core loop 0 ── mio::Poll ── listener (SO_REUSEPORT) ── its connections
//!  ├─ core loop 1 ── mio::Poll ── listener (SO_REUSEPORT) ── its connections
//!  │      ▲ commands: crossbeam channel + mio::Waker, drained in batches
//!  └─ any thread: holds a `Server` handle and pushes from there
//! ```
//!
//! * **One thread per core, each with its own `mio::Poll`.** The kernel spreads new
//!   connections over the core loops' listeners. A core loop owns its connections outright:
//!   no lock is taken to read from or write to a client.
//! * **The mailbox is the only door between threads.** A push from any thread becomes one
//!   command per core loop that owns a receiver, carried by a crossbeam channel; a burst of
//!   commands costs one wake-up. The core loop drains a bounded batch per turn so that no
//!   sender can starve its sockets.
//! * **Frame once, write many.** A broadcast is encoded and framed once; every connection
//!   queues a reference to the same bytes, and each connection's queue is flushed with one
//!   vectored write. Frames of a message to many clients wait for the core loop's next
//!   fan-out round ([`RuntimeConfig::fanout_window`]: a window that opens with the load, up
//!   to 10 ms, and stays shut while it is light), so that under load one write carries many
//!   of them; a message to one client goes out in the loop turn that queued it.
//! * **Identities route themselves.** A [`ClientId`] encodes the core loop (and, in a
//!   cluster, the instance) that owns the connection, so a push to one client needs no lookup.
//!   Ids are never reused in the life of a process, and a restarted process does not repeat
//!   those of its previous run (its serials count from the wall clock; see [`ClientId`]).
//! * **Shared state is small.** Only the registries of flags, groups and connection data are
//!   shared, behind `parking_lot` locks, and they are touched on open, close, bind and join —
//!   never per frame.
//!
//! ## Quick start
//!
//! ```no_run
//! use corepush::{Context, Handler, Message, Runtime, ServerConfig};
//!
//! struct Chat;
//!
//! impl Handler for Chat {
//!     fn on_open(&mut self, ctx: &mut Context<'_>) {
//!         ctx.join("lobby");
//!     }
//!     fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
//!         if let Some(text) = message.as_text() {
//!             // To everyone in the lobby but the sender.
//!             let me = ctx.client_id();
//!             let _ = ctx.server().except(me).send_raw_to_group("lobby", text);
//!         }
//!     }
//! }
//!
//! fn main() -> corepush::Result<()> {
//!     let runtime = Runtime::builder()
//!         .server(ServerConfig::websocket("ws", "127.0.0.1:8080".parse().unwrap()).handler(|_| Chat))
//!         .start()?;
//!     // Any thread may push.
//!     let server = runtime.server("ws").unwrap();
//!     std::thread::spawn(move || {
//!         let _ = server.send_to_all(&serde_json::json!({"hello": "everyone"}));
//!     });
//!     runtime.run() // until Ctrl-C
//! }
//! ```
//!
//! The settings can come from a TOML or JSON file instead, with `COREPUSH_*` environment
//! variables over it; the handler stays in code: [`ConfigFile`].
//!
//! ## Who may connect
//!
//! A WebSocket upgrade passes the server's handshake hook before the connection counts as
//! open. [`ServerSpec::on_handshake`] answers yes or no at once;
//! [`ServerSpec::on_handshake_accept`] also settles what the client opens with — a flag,
//! data, a subprotocol, headers for the 101 ([`Accept`]); [`ServerSpec::on_handshake_deferred`]
//! gets a [`HandshakeReply`] to complete later from any thread (an authentication service's
//! answer), while the core loop goes on serving its other clients. Whatever the hook settled
//! on is in place in `on_open` and visible to every thread before the 101 leaves, and
//! [`ServerConfig::handshake_timeout`] bounds the wait. [`ServerConfig::subprotocols`]
//! answers a browser's `Sec-WebSocket-Protocol` offer; [`Context::peer_addr`] and
//! [`Context::client_addr`] (behind [`ServerConfig::trusted_proxies`]) say where the client
//! is.
//!
//! ## Restoring a connection's context
//!
//! With [`ServerConfig::keep_context`] (imi's `keepTime`), a connection that holds a flag
//! and closes leaves its groups and data kept under the flag for that time; a new connection
//! takes them over, with the flag, through [`Context::restore`] (imi's
//! `ConnectionContext::restore`) or [`Server::restore`], once, in one step relative to every
//! other thread, and the handler's [`Handler::on_restore`] is told. Nothing to restore is
//! [`Restored::Nothing`], not an error. On the Redis backend the contexts live in Redis and
//! a client may restore on another instance (its data crossing as JSON); the Channel and
//! Gateway backends keep none ([`Error::Unsupported`]).
//!
//! ## History and recovery
//!
//! With [`ServerConfig::history`], chosen groups and flags keep their last N messages and/or
//! the last T, each under an offset within an epoch ([`history`]). A client that reconnects
//! with the position it had ([`StreamPosition`]) calls [`Server::join_recovering`] /
//! [`Server::bind_recovering`] (or the [`Context`] forms) instead of `join` / `bind`: it
//! becomes a member and receives what it missed, then live messages, each exactly once and
//! in order — or learns from [`Recovery::recovered`] that the history no longer covers it.
//! On the Redis backend the history lives in Redis, so it may recover on any instance.
//!
//! ## Choosing a backend
//!
//! | backend | scope |
//! |---------|-------|
//! | [`BackendConfig::Local`] (default) | every core loop of this process |
//! | [`BackendConfig::Fpm`] | request-scoped code: every push is a no-op returning 0 |
//! | [`BackendConfig::Redis`] (feature `redis`, on by default) | a cluster of instances over Redis pub/sub ([`RedisConfig`]) |
//! | [`BackendConfig::Channel`] | a cluster of instances through corepush's own broker, [`ChannelServer`] ([`ChannelBackendConfig`]) |
//! | [`BackendConfig::Gateway`] | a business process behind gateways ([`ServerConfig::gateway`]) that hold the clients ([`GatewayBackendConfig`]) |
//!
//! Application code does not change between backends. On a cluster the plain methods of
//! [`Server`] answer for this instance and never wait — its sends reach every instance and
//! count this instance's part — while [`Server::cluster`] answers for the whole cluster,
//! each [`Answer`] saying whether every live instance answered in time.
//!
//! ## Gateways and business processes
//!
//! With the Gateway backend, the clients connect to gateway processes, which only relay;
//! business processes run the application's [`Handler`] and push through the gateways, so
//! that the application can be restarted or redeployed without dropping a client.
//!
//! ```no_run
//! use corepush::{BackendConfig, GatewayBackendConfig, GatewayConfig, Runtime, ServerConfig};
//! # #[derive(Default)] struct Chat;
//! # impl corepush::Handler for Chat {
//! #     fn on_message(&mut self, _: &mut corepush::Context<'_>, _: corepush::Message<'_>) {}
//! # }
//! # fn main() -> corepush::Result<()> {
//! // A gateway: clients on :8080, business processes on :9100. Its instance number (1 up,
//! // one per gateway) is part of its clients' ids.
//! let gateway = Runtime::builder()
//!     .instance(1)
//!     .server(
//!         ServerConfig::websocket("ws", "0.0.0.0:8080".parse().unwrap())
//!             .gateway(GatewayConfig::new("127.0.0.1:9100".parse().unwrap(), "secret")),
//!     )
//!     .start()?;
//!
//! // A business process (usually another process): no client port, the same handler.
//! let business = Runtime::builder()
//!     .server(
//!         ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
//!             .listen(false)
//!             .backend(BackendConfig::Gateway(GatewayBackendConfig::new(
//!                 ["127.0.0.1:9100"],
//!                 "secret",
//!             )))
//!             .handler(|_| Chat),
//!     )
//!     .start()?;
//! business.run()
//! # }
//! ```
//!
//! A business process's facade acts as a cluster's does, the gateways being the instances
//! that hold clients: a plain send reaches the clients of every gateway and counts 0 (the
//! business process holds none), [`Server::cluster`] counts and queries across the gateways
//! (and may wait on a business process's core loops, which hold no connections). Each
//! client's events go to one business process, which serves it while it lives; while none
//! is connected, they wait at the gateway up to a bound.
//!
//! ## Request-scoped mode
//!
//! imi runs the same application under long-lived servers and under PHP-FPM, where each
//! request is handled and forgotten. corepush's counterpart is [`HttpServer`]: a blocking
//! HTTP/1.1 server (a pool of threads, keep-alive, chunked bodies, size limits) whose
//! [`RequestHandler`] runs ordinary blocking code. Inside it, [`get_server`] with the HTTP
//! server's own name (or none) and [`RequestContext::server`] answer with a [`Server`] on the
//! Fpm backend, so the push code shared with the push server runs unchanged and reaches
//! nobody: sends answer 0, never an error.
//!
//! A push server running in the same process comes first: inside a request, [`get_server`]
//! finds it by its name — the HTTP server's own name included — so an HTTP endpoint beside a
//! [`Runtime`] pushes to its clients for real. Any other name is `None` there, as it is
//! everywhere ([`require_server`] turns that into [`Error::UnknownServer`]).
//!
//! ```no_run
//! use corepush::{HttpConfig, HttpServer, Request, RequestContext, Response};
//!
//! fn main() -> corepush::Result<()> {
//!     let config = HttpConfig::new("hello", "127.0.0.1:8081".parse().unwrap());
//!     let server = HttpServer::start(config, |request: &Request, _ctx: &mut RequestContext| {
//!         // The same call as under the push server; here it pushes to nobody.
//!         let pushed = corepush::get_server("hello")
//!             .map_or(0, |s| s.send_to_group("room", &"hi").unwrap_or(0));
//!         Response::json(&serde_json::json!({"path": request.path(), "pushed": pushed}))
//!     })?;
//!     server.run() // until Ctrl-C; requests in flight are finished
//! }
//! ```
//!
//! ## Metrics and health
//!
//! A WebSocket server's port answers plain HTTP requests too: `GET /metrics` (every server's
//! [`Stats`], registry counts and mailbox depths, in the Prometheus text format) and
//! `GET /health` (503 once shutdown has begun), and, where set, a route and a directory of
//! static files — see [`PlainHttp`], set with [`ServerSpec::plain_http`].
//! ## TLS
//!
//! With the feature `tls`, `ServerConfig::tls(TlsConfig::from_pem_files(chain, key)?)` puts a
//! server of any protocol inside TLS (`wss://` for WebSocket), through rustls, and
//! `Runtime::reload_tls(name)` swaps the certificate for new handshakes while connected
//! clients stay. The core loop drives each connection's rustls session itself — it decrypts
//! what it reads and encrypts at flush — so a broadcast is still framed once and shared by
//! every queue in clear, and each connection encrypts its own copy as it is written.
//!
//! ## Compression
//!
//! [`ServerConfig::permessage_deflate`] turns on permessage-deflate (RFC 7692) for the
//! WebSocket clients that offer it, browsers among them; the others are served as before. A
//! message to many clients is compressed once, by the first core loop that needs it, and the
//! compressed frame is shared by every client that negotiated the extension, as the plain
//! frame is by the others (the server keeps no compression context between messages unless
//! [`DeflateConfig::server_context_takeover`] asks for one per connection). What clients send
//! compressed is inflated under `max_message_size`: a message that would inflate past it is
//! refused (close 1009) before it is, whatever its compressed size.
//!
//! ## Shutdown
//!
//! [`Runtime::run`] blocks until Ctrl-C or SIGTERM; a [`ShutdownHandle`] stops the runtime
//! from any thread. Shutdown is graceful: the listeners close, every client gets what was
//! queued for it and then a close frame (1001, "going away"), and the core loops are joined.
//! A connection still sending its request head may finish it: an upgrade is then refused
//! (503), `/health` answers 503.

#![forbid(unsafe_code)]

mod backend;
mod channel;
mod cluster;
mod codec;
mod compression;
mod config;
mod config_file;
mod conn;
mod delivery;
mod edge;
mod error;
mod facade;
/// Fuzz target drivers over the crate-private codecs; see `fuzz/`.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod handler;
pub mod history;
mod http;
mod id;
mod inbox;
mod mailbox;
mod parser;
mod registry;
mod restore;
mod running;
mod runtime;
mod shared;
mod signal;
mod spec;
mod stats;
mod target;
#[cfg(feature = "tls")]
mod tls;
mod worker;

pub use channel::{ChannelConfig, ChannelServer};
pub use codec::Message;
pub use compression::DeflateConfig;
#[cfg(feature = "redis")]
pub use config::RedisConfig;
pub use config::{
    BackendConfig, ChannelBackendConfig, FanoutWindow, Protocol, RuntimeConfig, ServerConfig,
    SlowConsumer,
};
pub use config_file::{ConfigFile, ConfigFormat};
pub use conn::accept::{Accept, HandshakeReply};
pub use conn::request::{HandshakeRequest, Rejection};
pub use edge::PlainHttp;
pub use error::{Error, Result};
pub use facade::{Answer, Cluster, Server};
pub use gateway::{GatewayBackendConfig, GatewayConfig, GatewayHandle, GatewayHandler};
pub use handler::{Context, Handler, WorkerContext, WorkerMessage};
pub use history::{HistoryConfig, HistoryRule, Recovery, StreamPosition};
pub use http::{
    HttpConfig, HttpServer, HttpShutdownHandle, Request, RequestContext, RequestHandler, Response,
};
pub use id::{ClientId, MAX_INSTANCES, MAX_WORKERS, ParseClientIdError, WorkerId};
pub use parser::{DataParser, JsonParser};
pub use restore::Restored;
pub use runtime::{Runtime, RuntimeBuilder, ShutdownHandle, get_server, require_server};
pub use spec::ServerSpec;
pub use stats::Stats;
pub use target::{IntoIds, IntoNames, Raw, Workers};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
