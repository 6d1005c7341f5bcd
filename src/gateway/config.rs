//! The settings of both sides of a gateway deployment: the gateway role of a server
//! ([`GatewayConfig`]) and the Gateway backend of a business process
//! ([`GatewayBackendConfig`]).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The gateway role of a server: it holds the client connections and relays them to business
/// processes, which connect to [`internal_addr`](GatewayConfig::internal_addr). Made by
/// [`GatewayConfig::new`], then the setters, named after the fields; used by
/// [`ServerConfig::gateway`](crate::ServerConfig::gateway).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// Where business processes connect. Port 0 picks a free port; read it back with
    /// [`Runtime::gateway`](crate::Runtime::gateway).
    pub internal_addr: SocketAddr,
    /// The secret a business process must present; a wrong one is refused.
    pub secret: String,
    /// Client events (open, message, close) kept while no business process is connected, in
    /// order; past it, further events are dropped, counted and logged. Defaults to 10,000.
    pub max_pending_events: usize,
    /// Frames queued to one business process and not yet written; past it, an event for it is
    /// dropped (counted and logged) and a reply to it is lost. Defaults to 65,536.
    pub link_queue: usize,
    /// The largest frame taken from a business process, in bytes; a larger one ends its link.
    /// Defaults to 64 MiB.
    pub max_frame: usize,
}

impl GatewayConfig {
    /// A gateway listening for business processes on `internal_addr`, which must present
    /// `secret`.
    pub fn new(internal_addr: SocketAddr, secret: impl Into<String>) -> Self {
        GatewayConfig {
            internal_addr,
            secret: secret.into(),
            max_pending_events: 10_000,
            link_queue: 64 * 1024,
            max_frame: 64 << 20,
        }
    }

    /// Sets [`max_pending_events`](GatewayConfig::max_pending_events).
    pub fn max_pending_events(mut self, events: usize) -> Self {
        self.max_pending_events = events;
        self
    }

    /// Sets [`link_queue`](GatewayConfig::link_queue).
    pub fn link_queue(mut self, frames: usize) -> Self {
        self.link_queue = frames;
        self
    }

    /// Sets [`max_frame`](GatewayConfig::max_frame).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }
}

impl fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("internal_addr", &self.internal_addr)
            .field("secret", &"<hidden>")
            .field("max_pending_events", &self.max_pending_events)
            .field("link_queue", &self.link_queue)
            .field("max_frame", &self.max_frame)
            .finish()
    }
}

/// Settings of the Gateway backend, for a business process: the gateways it connects to and
/// the secret they share. `GatewayBackendConfig::new` and the setters, named after the fields.
///
/// The server of a business process holds no client port (give it
/// [`listen(false)`](crate::ServerConfig::listen)); its handler serves the clients of the
/// gateways. At start the process connects to every gateway; one that cannot be reached is
/// tried again in the background, and the start fails with
/// [`Error::Backend`](crate::Error::Backend) only when none can.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayBackendConfig {
    /// The gateways' internal addresses, as `host:port`.
    pub gateways: Vec<String>,
    /// The secret the gateways were started with.
    pub secret: String,
    /// This business process's name, for the gateways' logs. Defaults to `None`.
    pub name: Option<String>,
    /// How long an answer from the gateways is waited for; then it is given as it stands,
    /// marked incomplete. Defaults to 500 ms.
    pub query_timeout: Duration,
    /// How long connecting to a gateway and its handshake may take. Defaults to 2 s.
    pub connect_timeout: Duration,
}

impl GatewayBackendConfig {
    /// A business process of these gateways, with their secret.
    pub fn new<S: Into<String>>(
        gateways: impl IntoIterator<Item = S>,
        secret: impl Into<String>,
    ) -> Self {
        GatewayBackendConfig {
            gateways: gateways.into_iter().map(Into::into).collect(),
            secret: secret.into(),
            name: None,
            query_timeout: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
        }
    }

    /// Sets [`name`](GatewayBackendConfig::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets [`query_timeout`](GatewayBackendConfig::query_timeout).
    pub fn query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    /// Sets [`connect_timeout`](GatewayBackendConfig::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }
}

impl fmt::Debug for GatewayBackendConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayBackendConfig")
            .field("gateways", &self.gateways)
            .field("secret", &"<hidden>")
            .field("name", &self.name)
            .field("query_timeout", &self.query_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}
