//! Configuration: plain data with defaults, validated when the runtime starts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::history::config::HistoryConfig;
use crate::parser::{DataParser, JsonParser};

mod backend;
mod runtime;

pub(crate) use backend::GatewayRole;
#[cfg(feature = "redis")]
pub use backend::RedisConfig;
pub use backend::{BackendConfig, ChannelBackendConfig};
pub(crate) use runtime::MAX_FANOUT_COALESCE;
pub use runtime::{FanoutWindow, RuntimeConfig};

/// The wire protocol a server speaks to its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// WebSocket (RFC 6455): HTTP/1.1 upgrade, then text and binary messages.
    WebSocket,
    /// TCP, each message ended by `\n` (a trailing `\r` is stripped on input).
    ///
    /// So a payload cannot contain `\n` nor end in `\r` (it would arrive without it): raw sends
    /// of such a payload return [`Error::Frame`](crate::Error::Frame) and queue nothing (the
    /// JSON parser escapes both inside strings).
    TcpLines,
    /// TCP, each message preceded by its length as a big-endian `u32`.
    TcpLength,
}

/// What a connection whose outbound queue is full gets (see
/// [`ServerConfig::max_outbound_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlowConsumer {
    /// Close it (WebSocket close code 1008) after what is already queued. Defaults to this:
    /// a client that cannot keep up would otherwise miss messages without knowing.
    #[default]
    Close,
    /// Drop the new message for that connection and keep it open.
    Drop,
}

/// One named server of a runtime: where it listens, what it speaks, how it encodes, and the
/// limits that protect it. Every limit is counted in [`Stats`](crate::Stats) when it acts.
/// Made by [`ServerConfig::websocket`] (or `tcp_lines`, `tcp_length`, `new`), then the
/// setters, named after the fields.
///
/// ```
/// use std::time::Duration;
/// use corepush::{ServerConfig, SlowConsumer};
///
/// let config = ServerConfig::websocket("ws", "0.0.0.0:8080".parse().unwrap())
///     .max_message_size(64 * 1024)
///     .max_connections(50_000)
///     .max_connections_per_ip(20)
///     .slow_consumer(SlowConsumer::Drop)
///     .idle_timeout(Some(Duration::from_secs(30)));
/// assert_eq!(config.max_message_size, 64 * 1024);
/// // Then `.handler(|_worker| MyHandler)` makes it a server of a `Runtime`.
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The server's name, for [`get_server`](crate::get_server). Must be unique in the runtime.
    pub name: String,
    /// The address to listen on. Port 0 picks a free port; read it back with
    /// [`Runtime::local_addr`](crate::Runtime::local_addr).
    pub addr: SocketAddr,
    /// Whether the server listens for clients at all. Defaults to `true`; a business process
    /// behind gateways ([`BackendConfig::Gateway`]) has no clients of its own and sets it to
    /// `false` (`addr` is then unused).
    pub listen: bool,
    /// The wire protocol.
    pub protocol: Protocol,
    /// The parser of encoded sends. Defaults to [`JsonParser`].
    pub parser: Arc<dyn DataParser>,
    /// The backend. Defaults to [`BackendConfig::Local`].
    pub backend: BackendConfig,
    /// The largest message a client may send, in bytes; a larger one closes the connection
    /// (WebSocket close code 1009). Defaults to 1 MiB.
    pub max_message_size: usize,
    /// How long a client may take to complete its handshakes: the TLS handshake (where the
    /// server has TLS, on every protocol) and the WebSocket upgrade. A client that has not
    /// finished by then is dropped and counted in `handshake_failures`. Defaults to 10 s.
    pub handshake_timeout: Duration,
    /// Whether the WebSocket upgrade request stays readable through
    /// [`Context::request`](crate::Context::request) after `on_open`. Defaults to `false`: it
    /// is there in `on_open` (keep what you need with [`Context::set`](crate::Context::set)),
    /// and its few hundred bytes of headers are freed right after, which keeps idle
    /// connections small.
    pub keep_request: bool,
    /// The most connections (including those still in their handshake) the server holds at
    /// once; further clients are refused. Defaults to 100,000.
    pub max_connections: usize,
    /// The most connections from one IP address; 0 means no limit. Defaults to 0: behind a
    /// proxy every client shares the proxy's address. Set it when clients connect directly.
    pub max_connections_per_ip: usize,
    /// The most bytes queued to one connection and not yet written; past it
    /// [`slow_consumer`](ServerConfig::slow_consumer) applies. Defaults to 4 MiB.
    pub max_outbound_bytes: usize,
    /// What happens to a connection whose outbound queue is full. Defaults to
    /// [`SlowConsumer::Close`].
    pub slow_consumer: SlowConsumer,
    /// How long a connection may stay silent before it is closed. WebSocket clients are
    /// pinged after half of it, and their pongs count as activity. `None` disables it.
    /// Defaults to 60 s for WebSocket and `None` for TCP (which has no ping).
    pub idle_timeout: Option<Duration>,
    /// The most groups one connection may be in; a further join is refused. Defaults to 1024.
    pub max_groups_per_connection: usize,
    /// How long the context of a closed connection that held a flag (its data and groups)
    /// is kept for a new connection to take over with
    /// [`Context::restore`](crate::Context::restore) (imi's `keepTime`). On the Redis backend
    /// it is kept in Redis, restorable on any instance. Defaults to `None`: nothing is kept.
    pub keep_context: Option<Duration>,
    /// The WebSocket subprotocols the server speaks, in its order of preference: a client
    /// that offers some of them (`Sec-WebSocket-Protocol`) gets the first of these it offered
    /// back (browsers fail a connection that offered subprotocols and got none). A handshake
    /// hook's [`Accept::subprotocol`](crate::Accept::subprotocol) wins. Read it with
    /// [`Context::subprotocol`](crate::Context::subprotocol). Defaults to none: the
    /// header is never answered unless a hook chooses.
    pub subprotocols: Vec<String>,
    /// The proxies whose forwarding headers are believed, as IP addresses or CIDR ranges
    /// (`"10.0.0.0/8"`, `"::1"`): for a client connected through one of them,
    /// [`Context::client_addr`](crate::Context::client_addr) is the address it forwarded
    /// for (`Forwarded: for=`, else `X-Forwarded-For`). Checked when the runtime starts.
    /// Defaults to none: the client's address is the socket's peer.
    pub trusted_proxies: Vec<String>,
    /// permessage-deflate (RFC 7692) for the WebSocket clients that offer it. Defaults to
    /// `None`: no client's offer is accepted and every message goes out as it is.
    pub permessage_deflate: Option<crate::compression::DeflateConfig>,
    /// The history kept per group and per flag, for recovery after a reconnect (see
    /// [`crate::history`]). Defaults to none.
    pub history: HistoryConfig,
    /// TLS (feature `tls`): with it, a WebSocket server serves `wss://` and a TCP server
    /// speaks its framing inside TLS. Defaults to `None` (plain TCP).
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::TlsConfig>,
    /// Set by [`ServerConfig::gateway`].
    pub(crate) role: Option<GatewayRole>,
}

impl ServerConfig {
    /// A server with the given name, address and protocol, and defaults for everything else.
    pub fn new(name: impl Into<String>, addr: SocketAddr, protocol: Protocol) -> Self {
        ServerConfig {
            name: name.into(),
            addr,
            protocol,
            parser: Arc::new(JsonParser),
            backend: BackendConfig::Local,
            max_message_size: 1 << 20,
            handshake_timeout: Duration::from_secs(10),
            keep_request: false,
            max_connections: 100_000,
            max_connections_per_ip: 0,
            max_outbound_bytes: 4 << 20,
            slow_consumer: SlowConsumer::Close,
            idle_timeout: match protocol {
                Protocol::WebSocket => Some(Duration::from_secs(60)),
                Protocol::TcpLines | Protocol::TcpLength => None,
            },
            max_groups_per_connection: 1024,
            keep_context: None,
            subprotocols: Vec::new(),
            trusted_proxies: Vec::new(),
            permessage_deflate: None,
            history: HistoryConfig::default(),
            listen: true,
            #[cfg(feature = "tls")]
            tls: None,
            role: None,
        }
    }

    /// A WebSocket server.
    pub fn websocket(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(name, addr, Protocol::WebSocket)
    }

    /// A newline-framed TCP server.
    pub fn tcp_lines(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(name, addr, Protocol::TcpLines)
    }

    /// A length-prefixed TCP server.
    pub fn tcp_length(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self::new(name, addr, Protocol::TcpLength)
    }

    /// Sets [`parser`](ServerConfig::parser).
    pub fn parser(mut self, parser: impl DataParser) -> Self {
        self.parser = Arc::new(parser);
        self
    }

    /// Sets [`tls`](ServerConfig::tls) (feature `tls`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets [`permessage_deflate`](ServerConfig::permessage_deflate): compression for the
    /// clients that offer it.
    pub fn permessage_deflate(mut self, deflate: crate::compression::DeflateConfig) -> Self {
        self.permessage_deflate = Some(deflate);
        self
    }

    /// Sets [`listen`](ServerConfig::listen).
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }

    /// Sets [`backend`](ServerConfig::backend).
    pub fn backend(mut self, backend: BackendConfig) -> Self {
        self.backend = backend;
        self
    }

    /// Sets [`max_message_size`](ServerConfig::max_message_size).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`subprotocols`](ServerConfig::subprotocols), e.g. `["chat.v2", "chat.v1"]`.
    pub fn subprotocols<S: Into<String>>(mut self, protocols: impl IntoIterator<Item = S>) -> Self {
        self.subprotocols = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`trusted_proxies`](ServerConfig::trusted_proxies), e.g.
    /// `["127.0.0.1", "10.0.0.0/8"]`.
    pub fn trusted_proxies<S: Into<String>>(
        mut self,
        proxies: impl IntoIterator<Item = S>,
    ) -> Self {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`history`](ServerConfig::history).
    pub fn history(mut self, history: HistoryConfig) -> Self {
        self.history = history;
        self
    }

    /// Sets [`keep_request`](ServerConfig::keep_request).
    pub fn keep_request(mut self, keep: bool) -> Self {
        self.keep_request = keep;
        self
    }

    /// Sets [`max_connections`](ServerConfig::max_connections).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets [`max_connections_per_ip`](ServerConfig::max_connections_per_ip).
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.max_connections_per_ip = max;
        self
    }

    /// Sets [`max_outbound_bytes`](ServerConfig::max_outbound_bytes).
    pub fn max_outbound_bytes(mut self, bytes: usize) -> Self {
        self.max_outbound_bytes = bytes;
        self
    }

    /// Sets [`slow_consumer`](ServerConfig::slow_consumer).
    pub fn slow_consumer(mut self, policy: SlowConsumer) -> Self {
        self.slow_consumer = policy;
        self
    }

    /// Sets [`idle_timeout`](ServerConfig::idle_timeout).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Sets [`max_groups_per_connection`](ServerConfig::max_groups_per_connection).
    pub fn max_groups_per_connection(mut self, max: usize) -> Self {
        self.max_groups_per_connection = max;
        self
    }

    /// Sets [`keep_context`](ServerConfig::keep_context); zero turns keeping off.
    pub fn keep_context(mut self, keep: Duration) -> Self {
        self.keep_context = (!keep.is_zero()).then_some(keep);
        self
    }

    /// Sets [`handshake_timeout`](ServerConfig::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
}
