//! Backends: what carries a call from the facade to the connections it is for. Every backend
//! reaches this instance's connections through the one delivery door
//! ([`Delivery`]); [`build`] makes the configured one, and is the
//! only place that names them.
//!
//! | backend | scope |
//! |---------|-------|
//! | [`local`] | all core loops of this process |
//! | [`fpm`]   | nothing: the request-scoped no-op |
//! | [`cluster`] | a cluster of instances, over a transport (Redis, the channel broker, gateways) |

pub(crate) mod cluster;
pub(crate) mod fpm;
pub(crate) mod history;
mod local;

use std::fmt;
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::cluster::Node;
use crate::cluster::ask::{Gathered, Request};
use crate::config::BackendConfig;
use crate::delivery::Delivery;
use cluster::ClusterBackend;

use crate::error::Result;
use crate::history::{Kind, Recovery, StreamPosition};
use crate::id::ClientId;
use crate::registry::DataValue;
use crate::restore::Restored;
use crate::target::{Payload, Scope, Target, Workers};

/// One implementation of the facade's operations. The facade only encodes, converts targets
/// and forwards; every method answers what this backend can know.
///
/// # Contract
///
/// * **Threads.** Every method may be called from any thread, core loops included, at any
///   time, concurrently. On a core loop no method may block on anything but a short lock:
///   what would wait (a full mailbox, the network) fails with an [`Error`](crate::Error)
///   instead.
/// * **Scope.** `scope` is the handle's: a client outside `scope.worker`, or in
///   `scope.except`, does not exist for the call — sends skip it, queries leave it out, and
///   calls by id answer as for a client that is not connected. Worker messages go only to the
///   core loops inside `scope.worker`.
/// * **Counts.** A send returns the number of connections the message was queued to:
///   connected (live) when counted, in scope, each once. A connection counted receives the
///   message unless it is closed by the peer or its slow-consumer policy drops it first.
///   `close` counts the connections it unregistered; `send_message` the core loops reached.
/// * **Visibility.** Once `close` returns, every query on every thread sees the clients gone
///   and no later send counts them; a client whose handshake answer has been sent is already
///   visible.
/// * **Order.** Calls made by one thread reach each connection in the order they were made.
/// * **Errors.** After shutdown began, sends, closes and worker messages fail with
///   [`Error::Shutdown`](crate::Error::Shutdown); queries answer as for an empty server.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    fn push(&self, target: Target, payload: Payload<'_>, scope: Scope<'_>) -> Result<usize>;
    fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize>;
    fn send_message(
        &self,
        action: Option<&str>,
        data: &[u8],
        workers: &Workers,
        scope: Scope<'_>,
    ) -> Result<usize>;
    fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool;
    fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId>;
    fn flag_of(&self, id: ClientId, scope: Scope<'_>) -> Option<String>;
    fn connections(&self, scope: Scope<'_>) -> Vec<ClientId>;
    fn connection_count(&self, scope: Scope<'_>) -> usize;
    fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId>;
    /// The groups with at least one member in scope, sorted.
    fn group_names(&self, scope: Scope<'_>) -> Vec<String>;
    /// As [`Context::bind`](crate::Context::bind) / `bind_nx`; false if not connected.
    fn bind(&self, id: ClientId, flag: &str, exclusive: bool, scope: Scope<'_>) -> bool;
    fn unbind(&self, id: ClientId, scope: Scope<'_>) -> Option<String>;
    fn join(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool;
    fn leave(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool;
    /// A client's groups, sorted.
    fn groups_of(&self, id: ClientId, scope: Scope<'_>) -> Vec<String>;
    fn set_data(&self, id: ClientId, key: &str, value: DataValue, scope: Scope<'_>) -> bool;
    fn data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> Option<DataValue>;
    fn remove_data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> bool;
    /// A cluster-wide request (see [`Server::cluster`](crate::Server::cluster)): every
    /// instance that can know answers, within the backend's deadline. Waits for other
    /// instances only off core loops; on a core loop it fails with
    /// [`Error::WouldBlock`](crate::Error::WouldBlock) when it would have to.
    fn gather(&self, request: &Request<'_>, scope: Scope<'_>) -> Result<Gathered>;
    /// The instances of the deployment that are live, this one included, sorted; empty for
    /// a backend that reaches no connections.
    fn instances(&self) -> Vec<u16>;
    /// As [`Server::restore`](crate::Server::restore): gives client `id` the context kept
    /// under `flag`, at most once per kept context across the deployment; `Nothing` when
    /// nothing is kept, another live connection holds the flag, or `id` is not connected.
    /// The client's core loop is told (`on_restore`) in the same step. A backend that keeps
    /// no contexts answers [`Error::Unsupported`](crate::Error::Unsupported).
    fn restore(&self, id: ClientId, flag: &str, scope: Scope<'_>) -> Result<Restored>;
    /// Joins the group (binds the flag) and queues what the client missed since `since`
    /// (see [`crate::history`]). Without a history (the default): joins or binds, and
    /// answers not recovered, at an empty epoch and offset 0 — never a wrong "recovered".
    fn recover(
        &self,
        id: ClientId,
        kind: Kind,
        name: &str,
        since: Option<&StreamPosition>,
        scope: Scope<'_>,
    ) -> Result<Recovery> {
        let _ = since;
        let is_member = match kind {
            Kind::Group => self.join(id, name, scope),
            Kind::Flag => self.bind(id, name, false, scope),
        };
        Ok(Recovery {
            recovered: false,
            missed: 0,
            position: self.position(kind, name)?,
            is_member,
        })
    }
    /// A stream's position now; without a history, an empty epoch and offset 0.
    fn position(&self, kind: Kind, name: &str) -> Result<StreamPosition> {
        let _ = (kind, name);
        Ok(StreamPosition {
            epoch: String::new(),
            offset: 0,
        })
    }
}

/// A backend as built, with the door whose runtime facts (core loops, counters) the facade
/// reports — `None` for a backend that reaches no connections.
pub(crate) struct Built {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) local: Option<Arc<Delivery>>,
    /// The backend's own threads; they end once the runtime stops, and the runtime joins
    /// them after its core loops.
    pub(crate) threads: Vec<JoinHandle<()>>,
}

/// Builds the backend a server's configuration asks for, on top of its delivery door.
pub(crate) fn build(config: &BackendConfig, delivery: Arc<Delivery>) -> Result<Built> {
    Ok(match config {
        BackendConfig::Local => Built {
            backend: delivery.clone(),
            local: Some(delivery),
            threads: Vec::new(),
        },
        BackendConfig::Fpm => Built {
            backend: Arc::new(fpm::FpmBackend),
            local: None,
            threads: Vec::new(),
        },
        #[cfg(feature = "redis")]
        BackendConfig::Redis(redis) => {
            let node = Arc::new(Node::new(delivery.clone(), delivery.instance()));
            let (transport, mut threads) =
                crate::cluster::redis::start(redis, delivery.server_name(), node.clone())?;
            let mut backend = ClusterBackend::new(node, transport, redis.query_timeout);
            if let Some(keep) = delivery.keep_context() {
                let (store, writer) = crate::cluster::redis_kept::start(
                    redis,
                    delivery.server_name(),
                    keep,
                    delivery.clone(),
                )?;
                threads.push(writer);
                backend = backend.keeping(store, &delivery);
            }
            Built {
                backend: Arc::new(backend),
                local: Some(delivery),
                threads,
            }
        }
        BackendConfig::Gateway(gateway) => {
            let node = Arc::new(Node::new(delivery.clone(), delivery.instance()));
            let (transport, threads) = crate::gateway::business::start(gateway, node.clone())?;
            Built {
                // A business process's core loops hold no connections: they may wait for the
                // gateways' answers.
                backend: Arc::new(
                    ClusterBackend::new(node, transport, gateway.query_timeout)
                        .waiting_on_core_loops(),
                ),
                local: Some(delivery),
                threads,
            }
        }
        BackendConfig::Channel(channel) => {
            let node = Arc::new(Node::new(delivery.clone(), delivery.instance()));
            let (transport, threads) =
                crate::cluster::channel::start(channel, delivery.server_name(), node.clone())?;
            Built {
                backend: Arc::new(ClusterBackend::new(node, transport, channel.query_timeout)),
                local: Some(delivery),
                threads,
            }
        }
    })
}

/// The instance number a runtime runs as: `wanted`, or where it is 0 and a server is on a
/// cluster backend, the lowest number free in that cluster, claimed there.
pub(crate) fn instance<'a>(
    backends: impl IntoIterator<Item = &'a BackendConfig>,
    wanted: u16,
    runtime: u64,
) -> Result<u16> {
    if wanted != 0 {
        return Ok(wanted);
    }
    for config in backends {
        #[cfg(feature = "redis")]
        if let BackendConfig::Redis(redis) = config {
            return crate::cluster::redis::claim_free(redis, runtime);
        }
        if let BackendConfig::Channel(channel) = config {
            return crate::cluster::channel::claim_free(channel, runtime);
        }
    }
    Ok(0)
}
