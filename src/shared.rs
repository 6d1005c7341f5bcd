//! What the core loops share with each other and with the facade: mailboxes and per-server
//! state. Everything here is `Send + Sync`; everything a core loop owns alone lives in the
//! core loop (`worker`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::mailbox::Mailbox;

use crate::config::ServerConfig;
use crate::conn::accept::HandshakeHook;
use crate::conn::forwarded::IpRange;
use crate::id::WorkerId;
use crate::registry::Registry;
use crate::stats::{Counters, Stats, snapshot};

/// The state of one named server that every thread may read.
pub(crate) struct ServerShared {
    pub(crate) index: u16,
    pub(crate) config: ServerConfig,
    pub(crate) registry: Registry,
    /// One set per core loop, written only by that core loop.
    pub(crate) counters: Box<[Counters]>,
    /// Counters any thread may add to (with atomic read-modify-write).
    pub(crate) shared_counters: Counters,
    /// Sockets held (open or in their handshake), for `max_connections`.
    pub(crate) sockets: AtomicUsize,
    /// Sockets per peer address, for `max_connections_per_ip` (only used when it is set).
    pub(crate) per_ip: Mutex<HashMap<IpAddr, u32>>,
    pub(crate) handshake_hook: Option<Arc<HandshakeHook>>,
    /// `config.subprotocols`, shared with every handshake.
    pub(crate) subprotocols: Arc<[String]>,
    /// `config.trusted_proxies`, parsed (the runtime checked them at start).
    pub(crate) trusted_proxies: Vec<IpRange>,
}

impl std::fmt::Debug for ServerShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerShared")
            .field("index", &self.index)
            .field("config", &self.config)
            .field("registry", &self.registry)
            .field("has_handshake_hook", &self.handshake_hook.is_some())
            .finish()
    }
}

impl ServerShared {
    pub(crate) fn new(
        index: u16,
        config: ServerConfig,
        workers: usize,
        handshake_hook: Option<Arc<HandshakeHook>>,
    ) -> Self {
        ServerShared {
            index,
            subprotocols: config.subprotocols.clone().into(),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
            registry: Registry::new(workers).keeping(config.keep_context),
            config,
            counters: (0..workers).map(|_| Counters::default()).collect(),
            shared_counters: Counters::default(),
            sockets: AtomicUsize::new(0),
            per_ip: Mutex::default(),
            handshake_hook,
        }
    }

    /// The counters of one core loop.
    pub(crate) fn counters(&self, worker: WorkerId) -> &Counters {
        &self.counters[worker.index()]
    }

    /// The server's counters, summed.
    pub(crate) fn stats(&self) -> Stats {
        snapshot(self.counters.iter().chain([&self.shared_counters]))
    }
}

/// Work a runtime finishes before its core loops stop, such as a business process handling
/// the events its gateways already sent it.
///
/// # Contract
///
/// [`drain`](Drain::drain) is called once, when shutdown is asked for, on a thread of its
/// own, while the core loops still serve; it returns when its work is done or its own
/// deadline passed (it must bound its wait). Shutdown proper begins after every drain
/// returned.
pub(crate) trait Drain: Send + Sync + std::fmt::Debug {
    fn drain(&self);
}

/// The state of a runtime that every thread may read.
#[derive(Debug)]
pub(crate) struct RuntimeShared {
    pub(crate) id: u64,
    pub(crate) instance: u16,
    pub(crate) mailboxes: Vec<Mailbox>,
    pub(crate) servers: Vec<Arc<ServerShared>>,
    /// Shutdown proper: the core loops close their connections and end.
    pub(crate) stopping: AtomicBool,
    /// Shutdown was asked for: the drains run, then shutdown proper begins.
    pub(crate) leaving: AtomicBool,
    pub(crate) drains: Mutex<Vec<Arc<dyn Drain>>>,
    /// How long a thread that is not a core loop waits for room in a full mailbox.
    pub(crate) mailbox_timeout: Duration,
}

impl RuntimeShared {
    pub(crate) fn workers(&self) -> usize {
        self.mailboxes.len()
    }

    /// Asks for a graceful shutdown and returns at once: the drains run on a thread of their
    /// own, then shutdown proper begins. Idempotent.
    pub(crate) fn request_shutdown(self: &Arc<Self>) {
        if self.leaving.swap(true, Ordering::AcqRel) {
            return;
        }
        let drains = self.drains.lock().clone();
        if drains.is_empty() {
            return self.begin_shutdown();
        }
        let shared = self.clone();
        let spawned = std::thread::Builder::new()
            .name("corepush-drain".into())
            .spawn(move || {
                for d in drains {
                    d.drain();
                }
                shared.begin_shutdown();
            });
        if spawned.is_err() {
            self.begin_shutdown();
        }
    }

    /// Whether shutdown was asked for (its drains may still run).
    pub(crate) fn is_leaving(&self) -> bool {
        self.leaving.load(Ordering::Acquire) || self.is_stopping()
    }

    /// Starts shutdown proper: every core loop closes its connections and ends; idempotent.
    pub(crate) fn begin_shutdown(&self) {
        self.leaving.store(true, Ordering::Release);
        if !self.stopping.swap(true, Ordering::AcqRel) {
            for m in &self.mailboxes {
                m.wake();
                m.made_room();
            }
        }
    }

    /// Whether shutdown has started.
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }
}
