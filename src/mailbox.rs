//! The door into a core loop: commands, the bounded channel that carries them from other
//! threads, and the local queue that carries them from the core loop's own thread.
//!
//! # Positions
//!
//! Every command has a place in its core loop's order, a [`Stamp`]: the `k`-th command taken
//! from the channel stands at `(k, 0)`; an event of the core loop's own thread — a command its
//! handler made, a connection opening or closing — stands at `(k, s)` when the channel held
//! `k` commands (taken or waiting) at that moment, `s` counting such events from 1 upwards.
//! The core loop carries out both in stamp order, so:
//!
//! * one thread's commands to one core loop are carried out in the order they were made,
//!   whichever way they travel;
//! * a connection that opens or closes at stamp `t` receives exactly the commands to many
//!   clients stamped after `t` (opening) or before it (closing). Stamps of opens and closes are
//!   taken under the registry's table lock, which a push holds while it counts its targets and
//!   hands its command over, so a count is exactly the number of connections a message is
//!   queued to (see [`crate::registry`]).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use mio::Waker;
use parking_lot::{Condvar, Mutex};

use crate::codec::SharedFrame;
use crate::conn::accept::Accept;
use crate::conn::handshake::{HandshakeRequest, Rejection};
use crate::id::{ClientId, WorkerId};

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
    /// Close these clients, already unregistered by the sender.
    Close { server: u16, ids: Vec<ClientId> },
    Message {
        server: u16,
        action: Option<Arc<str>>,
        data: Arc<[u8]>,
    },
    /// A client event from a gateway, for the handler of a business process.
    Remote { server: u16, event: RemoteEvent },
    /// Answered once every command before it was carried out (see
    /// [`Delivery::barrier`](crate::delivery::Delivery::barrier)).
    Barrier(crossbeam_channel::Sender<()>),
    /// The link to a gateway broke: forget the clients of that gateway this core loop served
    /// (they may come back, through this process or another).
    Unlinked { server: u16, gateway: u16 },
    /// A deferred handshake hook's answer for a client in its handshake.
    Handshake {
        id: ClientId,
        answer: std::result::Result<Box<Accept>, Rejection>,
    },
    /// A restore gave client `id` the context of closed client `from`: tell the handler.
    Restored {
        server: u16,
        id: ClientId,
        from: ClientId,
    },
    /// Write the close frame of a connection the core loop itself unregistered.
    Seal {
        id: ClientId,
        code: u16,
        reason: String,
    },
}

/// A client event from a gateway (see [`crate::gateway`]): all of one client's go to one core
/// loop, in the order the gateway sent them.
#[derive(Debug)]
pub(crate) enum RemoteEvent {
    /// With the WebSocket upgrade request (`None` for a TCP client).
    Open {
        id: ClientId,
        request: Option<Box<HandshakeRequest>>,
    },
    Message {
        id: ClientId,
        is_text: bool,
        payload: Vec<u8>,
    },
    /// The client is gone; the flag and groups it had then.
    Closed {
        id: ClientId,
        flag: Option<String>,
        groups: Vec<String>,
    },
}

impl RemoteEvent {
    pub(crate) fn id(&self) -> ClientId {
        match *self {
            RemoteEvent::Open { id, .. }
            | RemoteEvent::Message { id, .. }
            | RemoteEvent::Closed { id, .. } => id,
        }
    }
}

/// A command's place in its core loop's order (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp {
    k: u64,
    s: u64,
}

impl Stamp {
    /// The place of the `k`-th command taken from the channel.
    pub(crate) fn channel(k: u64) -> Self {
        Stamp { k, s: 0 }
    }

    /// Whether it is the place of an event of the core loop's own thread.
    pub(crate) fn is_local(self) -> bool {
        self.s != 0
    }
}

/// What became of a command handed to a mailbox.
#[derive(Debug)]
pub(crate) enum Offer {
    Queued,
    /// The channel is full.
    Full,
    /// The core loop has stopped.
    Stopped,
}

/// The core loop running on this thread, with its local queue.
struct Local {
    /// Commands taken from the channel so far.
    taken: u64,
    /// Events of this thread so far.
    seq: u64,
    items: VecDeque<(Stamp, Command)>,
}

thread_local! {
    /// The (runtime, worker) whose core loop runs on this thread, if any: a `Cell` read on
    /// every push, apart from the queue behind it.
    static CURRENT: Cell<Option<(u64, WorkerId)>> = const { Cell::new(None) };
    static LOCAL: RefCell<Local> = const {
        RefCell::new(Local { taken: 0, seq: 0, items: VecDeque::new() })
    };
}

/// The core loop running on this thread, if it belongs to runtime `runtime`.
pub(crate) fn current_worker(runtime: u64) -> Option<WorkerId> {
    CURRENT
        .with(Cell::get)
        .and_then(|(r, w)| (r == runtime).then_some(w))
}

/// The runtime whose core loop runs on this thread, if any.
pub(crate) fn current_worker_runtime() -> Option<u64> {
    CURRENT.with(Cell::get).map(|(r, _)| r)
}

/// Marks this thread as running a core loop (or no longer), with an empty local queue.
pub(crate) fn set_current_worker(value: Option<(u64, WorkerId)>) {
    CURRENT.with(|c| c.set(value));
    LOCAL.with(|l| {
        *l.borrow_mut() = Local {
            taken: 0,
            seq: 0,
            items: VecDeque::new(),
        }
    });
}

/// On a core loop: the stamp of an event happening now, with `waiting` commands in the
/// channel.
pub(crate) fn stamp_now(waiting: usize) -> Stamp {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.seq += 1;
        Stamp {
            k: l.taken + waiting as u64,
            s: l.seq,
        }
    })
}

/// On a core loop: queues a command of its own thread at `at`.
pub(crate) fn push_local(at: Stamp, cmd: Command) {
    LOCAL.with(|l| l.borrow_mut().items.push_back((at, cmd)));
}

/// Whether commands of this thread wait in its local queue (then a reply to a connection
/// must queue behind them to keep the order of the calls).
pub(crate) fn local_pending() -> bool {
    LOCAL.with(|l| !l.borrow().items.is_empty())
}

/// On a core loop: queues a command right behind the last one in the local queue.
pub(crate) fn push_behind_local(cmd: Command) {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.seq += 1;
        let at = Stamp {
            k: l.items.back().map_or(l.taken, |&(last, _)| last.k),
            s: l.seq,
        };
        l.items.push_back((at, cmd));
    })
}

/// On a core loop: counts a command taken from the channel; returns its stamp.
pub(crate) fn take_one() -> Stamp {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        l.taken += 1;
        Stamp::channel(l.taken)
    })
}

/// On a core loop: the next local command whose turn has come (every channel command before
/// it has been carried out).
pub(crate) fn pop_local() -> Option<(Stamp, Command)> {
    LOCAL.with(|l| {
        let mut l = l.borrow_mut();
        match l.items.front() {
            Some(&(at, _)) if at.k <= l.taken => l.items.pop_front(),
            _ => None,
        }
    })
}

/// The door into one core loop: a bounded channel plus the loop's waker.
#[derive(Debug)]
pub(crate) struct Mailbox {
    tx: Sender<Command>,
    waker: Arc<Waker>,
    /// Set by the first sender after the loop last looked, so a burst of sends costs one
    /// wake-up system call instead of one per message.
    wake_pending: AtomicBool,
    /// Threads waiting for room in a full channel, and what they wait on.
    waiters: AtomicUsize,
    room_lock: Mutex<()>,
    room: Condvar,
    runtime: u64,
    worker: WorkerId,
}

impl Mailbox {
    /// Commands waiting in the channel now.
    pub(crate) fn len(&self) -> usize {
        self.tx.len()
    }

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
            waiters: AtomicUsize::new(0),
            room_lock: Mutex::new(()),
            room: Condvar::new(),
            runtime,
            worker,
        }
    }

    /// Hands a command to the core loop without waiting: from the loop's own thread into its
    /// local queue (never full), from any other thread into the channel.
    pub(crate) fn offer(&self, cmd: Command) -> Offer {
        if current_worker(self.runtime) == Some(self.worker) {
            push_local(stamp_now(self.tx.len()), cmd);
            return Offer::Queued;
        }
        match self.tx.try_send(cmd) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Offer::Full,
            Err(TrySendError::Disconnected(_)) => return Offer::Stopped,
        }
        self.wake();
        Offer::Queued
    }

    /// Hands a command over from a thread that is not a core loop, waiting up to `timeout`
    /// for room in a full channel.
    pub(crate) fn send_within(&self, cmd: Command, timeout: Duration) -> Offer {
        match self.tx.send_timeout(cmd, timeout) {
            Ok(()) => {}
            Err(crossbeam_channel::SendTimeoutError::Timeout(_)) => return Offer::Full,
            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => return Offer::Stopped,
        }
        self.wake();
        Offer::Queued
    }

    /// Wakes the core loop (once per burst).
    pub(crate) fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::error!("waking core loop {} failed: {e}", self.worker);
            }
        }
    }

    /// Waits until the channel has room, `deadline` passes or `stop` says so; true if it has
    /// room.
    pub(crate) fn wait_for_room(&self, deadline: Instant, stop: impl Fn() -> bool) -> bool {
        let mut guard = self.room_lock.lock();
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut room = !self.tx.is_full();
        while !room && !stop() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            // Capped, so that a disconnected channel or a missed notice costs at most this.
            let until = deadline.min(now + Duration::from_millis(10));
            self.room.wait_until(&mut guard, until);
            room = !self.tx.is_full();
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        room
    }

    /// Called by the loop after it took commands, and at shutdown: wakes the threads waiting
    /// for room.
    pub(crate) fn made_room(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = self.room_lock.lock();
            self.room.notify_all();
        }
    }

    /// Called by the loop before it drains, so that later sends wake it again.
    pub(crate) fn rearm(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }
}
