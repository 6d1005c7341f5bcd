//! Which backend carries a server's pushes, and the settings of the Channel and Redis
//! backends.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::gateway::config::GatewayBackendConfig;

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
    /// A business process behind gateways (see
    /// [`ServerConfig::gateway`](crate::ServerConfig::gateway)): the gateways hold the
    /// clients, this process runs the handler and pushes through them. Give the server no
    /// listener ([`ServerConfig::listen`](crate::ServerConfig::listen)).
    Gateway(GatewayBackendConfig),
}

/// The gateway a server is (see [`ServerConfig::gateway`](crate::ServerConfig::gateway)),
/// kept type-erased here so that the configuration does not depend on the gateway's workings.
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
/// ([`RuntimeConfig::instance`](crate::RuntimeConfig::instance), or the lowest free one
/// where that is 0). A broker that cannot be reached fails the start with
/// [`Error::Backend`](crate::Error::Backend) (it may be back later); a refusal that retrying
/// cannot cure — a wrong token, a number held by another live instance — fails it with
/// [`Error::Config`](crate::Error::Config): the configuration must change.
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
