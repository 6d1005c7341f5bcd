//! Configuration: plain data with defaults, validated when the runtime starts.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::config::GatewayBackendConfig;
use crate::history::config::HistoryConfig;
use crate::parser::{DataParser, JsonParser};

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

/// Which backend carries the pushes of a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BackendConfig {
    /// All core loops of this process. Defaults to this.
    #[default]
    Local,
    /// The request-scoped no-op backend: every push returns 0, `exists` is false, counts are 0.
    Fpm,
    /// A cluster of instances over Redis pub/sub (feature `redis`, on by default).
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
    /// A cluster of instances through a channel broker
    /// ([`ChannelServer`](crate::ChannelServer)), with nothing else installed.
    Channel(ChannelBackendConfig),
    /// A business process behind gateways (see [`ServerConfig::gateway`]): the gateways hold
    /// the clients, this process runs the handler and pushes through them. Give the server
    /// no listener ([`ServerConfig::listen`]).
    Gateway(GatewayBackendConfig),
}

/// The gateway a server is (see [`ServerConfig::gateway`]), kept type-erased here so that
/// the configuration does not depend on the gateway's workings.
#[derive(Clone)]
pub(crate) struct GatewayRole(pub(crate) Arc<dyn Any + Send + Sync>);

impl std::fmt::Debug for GatewayRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayRole")
    }
}

/// Settings of the Channel backend: `ChannelBackendConfig::default()` and the setters, named
/// after the fields.
///
/// At start the instance connects to the broker and claims its number there
/// ([`RuntimeConfig::instance`], or the lowest free one where that is 0). A broker that
/// cannot be reached fails the start with [`Error::Backend`](crate::Error::Backend) (it may
/// be back later); a refusal that retrying cannot cure — a wrong token, a number held by
/// another live instance — fails it with [`Error::Config`](crate::Error::Config): the
/// configuration must change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelBackendConfig {
    /// The broker, as `host:port`. Defaults to `127.0.0.1:13005`.
    pub addr: String,
    /// The cluster on the broker: instances with another prefix never see these, and hold
    /// numbers of their own. Defaults to `corepush`.
    pub prefix: String,
    /// The broker's token, where it has one. Defaults to `None`.
    pub token: Option<String>,
    /// How long a cluster-wide answer waits for the other instances; then it is given as it
    /// stands, marked incomplete. Defaults to 500 ms.
    pub query_timeout: Duration,
    /// This instance's name, for people (logs). Defaults to `None`.
    pub name: Option<String>,
}

impl Default for ChannelBackendConfig {
    fn default() -> Self {
        ChannelBackendConfig {
            addr: "127.0.0.1:13005".into(),
            prefix: "corepush".into(),
            token: None,
            query_timeout: Duration::from_millis(500),
            name: None,
        }
    }
}

impl ChannelBackendConfig {
    /// Sets [`addr`](ChannelBackendConfig::addr).
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// Sets [`prefix`](ChannelBackendConfig::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`token`](ChannelBackendConfig::token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets [`query_timeout`](ChannelBackendConfig::query_timeout).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Sets [`name`](ChannelBackendConfig::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Settings of the Redis backend: `RedisConfig::default()` and the setters, named after the
/// fields.
#[cfg(feature = "redis")]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The Redis server, as a URL; a password and a database number in it work
    /// (`redis://:secret@host:6379/2`). Defaults to `redis://127.0.0.1:6379/`.
    pub url: String,
    /// Prepended to every channel and key: two services with two prefixes on one Redis never
    /// see each other. Defaults to `corepush`.
    pub prefix: String,
    /// How long a cluster-wide answer waits for the other instances; then it is given as it
    /// stands, marked incomplete. Defaults to 500 ms.
    pub query_timeout: Duration,
    /// This instance's name, for people (logs, the lease in Redis). Defaults to `None`.
    pub name: Option<String>,
}

#[cfg(feature = "redis")]
impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/".into(),
            prefix: "corepush".into(),
            query_timeout: Duration::from_millis(500),
            name: None,
        }
    }
}

#[cfg(feature = "redis")]
impl RedisConfig {
    /// Sets [`url`](RedisConfig::url).
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Sets [`prefix`](RedisConfig::prefix).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets [`query_timeout`](RedisConfig::query_timeout).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Sets [`name`](RedisConfig::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
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

/// The longest fan-out window (fixed, or an adaptive one's ceiling) a runtime accepts.
pub(crate) const MAX_FANOUT_COALESCE: Duration = Duration::from_secs(60);

/// How long the frames of a message to many clients may wait on a core loop so that the
/// frames that follow share their write ([`RuntimeConfig::fanout_window`]).
///
/// The cost of pushing is per write system call far more than per byte, so under heavy
/// fan-out holding frames turns many small writes into a few large ones; under light fan-out
/// holding them only adds latency. A core loop writes the frames it holds in a *fan-out
/// round*: every connection that holds such frames, 64 per loop turn so that reading and
/// replying go on meanwhile. Either way, a message to one client, a handler's
/// reply, a ping or a close writes the connection's whole queue (held frames first, order
/// kept) in the loop turn that queued it, and so does a queue of 64 frames or more; in a
/// shutdown, rounds start at once.
///
/// Both durations are at most 60 s (a longer one is refused by
/// [`RuntimeBuilder::start`](crate::RuntimeBuilder::start)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FanoutWindow {
    /// A window each core loop sizes from the fan-out it sees, between zero and `max`:
    ///
    /// * **Light load, at once.** A fan-out message that finds the loop quiet — nothing held,
    ///   no round under way, the window since the last round began passed — starts a round
    ///   at once, unless the last such quiet spell ended in a *burst* (two or more fan-out
    ///   messages before the next quiet spell): then the round waits twice that burst's
    ///   spread — at most the longer of that spread and the time the last round took to
    ///   write, and at most `max` — or until as many messages as that burst had have come,
    ///   whichever is first, so that a burst that recurs (senders that answer a delivery
    ///   together) shares one round.
    ///   A lone message, or a stream of messages further apart than a round takes to write,
    ///   goes out at once.
    /// * **Heavy load, opening.** A round that begins with `k` ≥ 2 fan-out messages counted
    ///   since the previous round began — more than one round carries, so writing at once
    ///   does not keep up — opens the window to `k − 1` times the time the last round took
    ///   to write (the time spent in its writes, not counting the loop's other work between
    ///   its chunks), at most `max`. Under a load that waits for its deliveries (a closed loop),
    ///   a longer window gathers more messages, so the window grows round after round up to
    ///   `max`; under a steady stream slower than rounds it stays shut.
    /// * **Closing when the load drops.** A round that finishes with nothing held for the
    ///   next one closes the window at once; so does a round that begins with one message,
    ///   and a message that finds the loop quiet.
    ///
    /// Under a saturating load the window reaches `max` within a few rounds and frames go
    /// tens to a write; under a light one it stays shut. The loop's timer has millisecond
    /// resolution, so a wait of less than a millisecond lasts up to one unless other work
    /// wakes the loop first. See the README's Performance section for measurements.
    Adaptive {
        /// The longest the window opens. 10 ms by default: invisible next to network round
        /// trips, and enough for several times the deliveries per second of a server that
        /// writes every broadcast on its own.
        max: Duration,
    },
    /// A round starts at most once per this window, and at once when the last round began
    /// longer than a window ago (a lone message is not delayed, only the messages behind it
    /// in a burst). Zero writes every frame in the loop turn that queued it. Where the latency
    /// of every message in a burst counts (tick-driven games), a small fixed window bounds it.
    Fixed(Duration),
}

impl Default for FanoutWindow {
    /// [`FanoutWindow::Adaptive`] with a 10 ms ceiling.
    fn default() -> Self {
        FanoutWindow::Adaptive {
            max: Duration::from_millis(10),
        }
    }
}

impl FanoutWindow {
    /// The longest frames may wait: the fixed window, or the adaptive one's ceiling.
    pub fn longest(&self) -> Duration {
        match *self {
            FanoutWindow::Adaptive { max } => max,
            FanoutWindow::Fixed(window) => window,
        }
    }
}

/// Settings of the whole runtime: `RuntimeConfig::default()` and the setters, named after
/// the fields.
///
/// ```
/// use std::time::Duration;
/// let config = corepush::RuntimeConfig::default()
///     .workers(2)
///     .fanout_window(corepush::FanoutWindow::Adaptive {
///         max: Duration::from_millis(20),
///     });
/// assert_eq!(config.workers, 2);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// How many core loops (threads) to run. Defaults to the number of available cores.
    pub workers: usize,
    /// This process's instance number in a cluster (part of every [`ClientId`](crate::ClientId)),
    /// below [`MAX_INSTANCES`](crate::MAX_INSTANCES) (4096). Defaults to 0.
    pub instance: u16,
    /// How long a graceful shutdown waits for clients to take their last messages and close
    /// frames before the sockets are dropped. Defaults to 5 s.
    pub shutdown_timeout: Duration,
    /// How many commands a core loop takes from its mailbox before it looks at its sockets
    /// again, so that one busy sender cannot starve I/O. Defaults to 1024.
    pub mailbox_batch: usize,
    /// How many commands (sends, closes, worker messages from other threads) may wait in one
    /// core loop's mailbox: one per call and core loop, so a push to everyone is one command
    /// whatever the number of clients. A thread that finds it full waits for room (see
    /// [`mailbox_timeout`](RuntimeConfig::mailbox_timeout)), so a thread that pushes faster
    /// than the core loops can write cannot grow memory without bound. Defaults to 16,384.
    pub mailbox_capacity: usize,
    /// How long a thread that is not a core loop waits for room in a full mailbox before the
    /// call fails with [`Error::MailboxFull`](crate::Error::MailboxFull). A core loop never
    /// waits: there the call fails at once. The time counts once per call, however many core
    /// loops it waits for. Defaults to 1 s.
    pub mailbox_timeout: Duration,
    /// How often each server's [`Stats`](crate::Stats) are logged (at info level); `None`
    /// disables it. Defaults to `None`.
    pub stats_interval: Option<Duration>,
    /// How long the frames of a message to many clients (everyone, a group, several ids or a
    /// flag's connections) may wait on a core loop so that the frames that follow share their
    /// write: see [`FanoutWindow`]. Defaults to [`FanoutWindow::Adaptive`] with a 10 ms
    /// ceiling; [`fanout_coalesce`](RuntimeConfig::fanout_coalesce) sets a fixed window.
    pub fanout_window: FanoutWindow,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            instance: 0,
            shutdown_timeout: Duration::from_secs(5),
            mailbox_batch: 1024,
            mailbox_capacity: 16 * 1024,
            mailbox_timeout: Duration::from_secs(1),
            stats_interval: None,
            fanout_window: FanoutWindow::default(),
        }
    }
}

impl RuntimeConfig {
    /// Sets [`workers`](RuntimeConfig::workers).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets [`instance`](RuntimeConfig::instance).
    pub fn instance(mut self, instance: u16) -> Self {
        self.instance = instance;
        self
    }

    /// Sets [`shutdown_timeout`](RuntimeConfig::shutdown_timeout).
    pub fn shutdown_timeout(mut self, shutdown_timeout: Duration) -> Self {
        self.shutdown_timeout = shutdown_timeout;
        self
    }

    /// Sets [`mailbox_batch`](RuntimeConfig::mailbox_batch).
    pub fn mailbox_batch(mut self, mailbox_batch: usize) -> Self {
        self.mailbox_batch = mailbox_batch;
        self
    }

    /// Sets [`mailbox_capacity`](RuntimeConfig::mailbox_capacity).
    pub fn mailbox_capacity(mut self, mailbox_capacity: usize) -> Self {
        self.mailbox_capacity = mailbox_capacity;
        self
    }

    /// Sets [`mailbox_timeout`](RuntimeConfig::mailbox_timeout).
    pub fn mailbox_timeout(mut self, mailbox_timeout: Duration) -> Self {
        self.mailbox_timeout = mailbox_timeout;
        self
    }

    /// Sets [`stats_interval`](RuntimeConfig::stats_interval).
    pub fn stats_interval(mut self, stats_interval: Option<Duration>) -> Self {
        self.stats_interval = stats_interval;
        self
    }

    /// Sets [`fanout_window`](RuntimeConfig::fanout_window).
    pub fn fanout_window(mut self, fanout_window: FanoutWindow) -> Self {
        self.fanout_window = fanout_window;
        self
    }

    /// Sets a fixed fan-out window: [`fanout_window`](RuntimeConfig::fanout_window) becomes
    /// [`FanoutWindow::Fixed`]`(window)`. Zero writes every frame in the loop turn that queued
    /// it.
    pub fn fanout_coalesce(mut self, window: Duration) -> Self {
        self.fanout_window = FanoutWindow::Fixed(window);
        self
    }
}
