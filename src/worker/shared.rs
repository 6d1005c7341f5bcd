//! What the core loops share with each other and with the facade: mailboxes and per-server
//! state. Everything here is `Send + Sync`; everything a core loop owns alone lives in
//! [`super::Worker`].

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::Sender;
use mio::Waker;

use crate::config::Protocol;
use crate::id::{ClientId, WorkerId};
use crate::parser::DataParser;
use crate::registry::Registry;

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
#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) index: u16,
    pub(crate) name: String,
    pub(crate) protocol: Protocol,
    pub(crate) parser: Arc<dyn DataParser>,
    pub(crate) registry: Registry,
    pub(crate) max_message_size: usize,
    pub(crate) handshake_timeout: Duration,
    pub(crate) keep_request: bool,
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
}

/// The runtime whose core loop runs on this thread, if any.
pub(crate) fn current_worker_runtime() -> Option<u64> {
    CURRENT.with(Cell::get).map(|(r, _)| r)
}
