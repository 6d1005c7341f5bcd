//! What the core loops share with each other and with the facade: mailboxes and per-server
//! state. Everything here is `Send + Sync`; everything a core loop owns alone lives in
//! [`super::Worker`].

use std::cell::Cell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_channel::Sender;
use mio::Waker;

use parking_lot::Mutex;

use crate::config::ServerConfig;
use crate::handler::HandshakeHook;
use crate::id::{ClientId, WorkerId};
use crate::registry::Registry;
use crate::stats::{Counters, Stats, snapshot};

/// A frame already encoded for the wire, shared by every connection that receives it.
pub(crate) type SharedFrame = Arc<Vec<u8>>;

/// Which of a core loop's connections a command is for.
#[derive(Debug)]
pub(crate) enum LocalTarget {
    Ids(Vec<ClientId>),
    All { except: Arc<[ClientId]> },
}

/// A command for one core loop.
#[derive(Debug)]
pub(crate) enum Command {
    Push {
        server: u16,
        frame: SharedFrame,
        target: LocalTarget,
    },
    Close {
        server: u16,
        target: LocalTarget,
    },
    Message {
        server: u16,
        action: Option<Arc<str>>,
        data: Arc<[u8]>,
    },
    Shutdown,
}

thread_local! {
    /// The (runtime, worker) whose core loop runs on this thread, if any.
    static CURRENT: Cell<Option<(u64, WorkerId)>> = const { Cell::new(None) };
}

/// The core loop running on this thread, if it belongs to runtime `runtime`.
pub(crate) fn current_worker(runtime: u64) -> Option<WorkerId> {
    CURRENT
        .with(Cell::get)
        .and_then(|(r, w)| (r == runtime).then_some(w))
}

pub(crate) fn set_current_worker(value: Option<(u64, WorkerId)>) {
    CURRENT.with(|c| c.set(value));
}

/// The door into one core loop: a channel plus the loop's waker.
#[derive(Debug)]
pub(crate) struct Mailbox {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    /// Set by the first sender after the loop last looked, so a burst of sends costs one
    /// wake-up system call instead of one per message.
    wake_pending: AtomicBool,
    runtime: u64,
    worker: WorkerId,
}

impl Mailbox {
    pub(crate) fn new(
        tx: Sender<Command>,
        waker: Arc<Waker>,
        runtime: u64,
        worker: WorkerId,
    ) -> Self {
        Mailbox {
            tx,
            waker,
            wake_pending: AtomicBool::new(false),
            runtime,
            worker,
        }
    }

    /// Queues a command. False if the loop has stopped.
    pub(crate) fn send(&self, cmd: Command) -> bool {
        if self.tx.send(cmd).is_err() {
            return false;
        }
        // The loop drains its own mailbox at the end of every turn: no wake-up needed from it.
        if current_worker(self.runtime) == Some(self.worker) {
            return true;
        }
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("waking core loop {} failed: {e}", self.worker);
            }
        }
        true
    }

    /// Called by the loop before it drains, so that later sends wake it again.
    pub(crate) fn rearm(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }
}

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
            config,
            registry: Registry::new(workers),
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

/// The state of a runtime that every thread may read.
#[derive(Debug)]
pub(crate) struct RuntimeShared {
    pub(crate) id: u64,
    pub(crate) instance: u16,
    pub(crate) mailboxes: Vec<Mailbox>,
    pub(crate) servers: Vec<Arc<ServerShared>>,
    pub(crate) stopping: AtomicBool,
}

impl RuntimeShared {
    pub(crate) fn workers(&self) -> usize {
        self.mailboxes.len()
    }

    /// Starts a graceful shutdown of every core loop; idempotent.
    pub(crate) fn begin_shutdown(&self) {
        if !self.stopping.swap(true, Ordering::AcqRel) {
            for m in &self.mailboxes {
                m.send(Command::Shutdown);
            }
        }
    }
}

/// The runtime whose core loop runs on this thread, if any.
pub(crate) fn current_worker_runtime() -> Option<u64> {
    CURRENT.with(Cell::get).map(|(r, _)| r)
}
