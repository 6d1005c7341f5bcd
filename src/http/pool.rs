//! What the HTTP server's threads share: the configuration and handler, the queue of accepted
//! connections with its counters, and one slot per pool thread through which an idle
//! connection can be closed from outside.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use mio::Waker;
use parking_lot::Mutex;

use super::config::HttpConfig;
use super::message::RequestHandler;
use crate::facade::Server;

/// A connection the acceptor hands to the pool, with its peer's address.
pub(crate) type Accepted = (TcpStream, SocketAddr);

/// What the acceptor, the pool threads and the shutdown handles share.
pub(crate) struct Shared {
    pub(crate) config: HttpConfig,
    pub(crate) server: Server,
    pub(crate) handler: Box<dyn RequestHandler>,
    /// One per possible pool thread: the connection it serves, for closing it when idle.
    pub(crate) slots: Vec<Slot>,
    /// The slots no thread holds: a thread started beyond `threads` takes one.
    pub(crate) free_slots: Mutex<Vec<usize>>,
    /// The threads started beyond `threads`, for joining at shutdown.
    pub(crate) spares: Mutex<Vec<JoinHandle<()>>>,
    /// Accepted connections on their way to a pool thread.
    pub(crate) queue: Receiver<Accepted>,
    pub(crate) stopping: AtomicBool,
    /// Pool threads waiting for a connection (or starting).
    pub(crate) waiting: AtomicUsize,
    /// Accepted connections waiting for a pool thread.
    pub(crate) queued: AtomicUsize,
    pub(crate) waker: Waker,
}

impl Shared {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Whether accepted connections outnumber the threads about to take them: then an idle
    /// keep-alive connection should give its thread up, rather than a newcomer waiting out a
    /// keep-alive timeout (HTTP lets a server close an idle connection at any time). Counters
    /// read without a lock: an error costs one early close or one late start, not a hang —
    /// both the acceptor (after queueing) and a thread (after going idle) look.
    pub(crate) fn is_short_of_threads(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > self.waiting.load(Ordering::SeqCst)
    }
}

/// A slot's connection is reading, handling or answering a request (or there is none).
pub(crate) const BUSY: u8 = 0;
/// A slot's connection is between requests, waiting for the next one: shutdown closes it, and
/// so does a newcomer finding every thread taken.
pub(crate) const IDLE: u8 = 1;
/// A slot's connection is new and waiting for its first request: shutdown closes it, but a
/// newcomer does not, as this one has waited its turn already.
pub(crate) const FRESH: u8 = 3;
/// A slot's waiting connection was closed from outside.
const CLOSED: u8 = 2;

/// The connection a pool thread serves, as other threads may see it.
#[derive(Default)]
pub(crate) struct Slot {
    pub(crate) state: AtomicU8,
    /// Changed only under the lock, and only while the state is `BUSY`: so whoever moves `IDLE`
    /// or `FRESH` to `CLOSED` under the lock closes the very connection that was waiting.
    pub(crate) stream: Mutex<Option<Arc<TcpStream>>>,
}

impl Slot {
    /// Closes the connection if its state is `state` (`IDLE` or `FRESH`); returns whether it
    /// was.
    pub(crate) fn close_if(&self, state: u8) -> bool {
        let stream = self.stream.lock();
        if self
            .state
            .compare_exchange(state, CLOSED, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return false;
        }
        if let Some(s) = stream.as_ref() {
            // Wakes the pool thread out of its read; it sees CLOSED and lets go.
            let _ = s.shutdown(Shutdown::Both);
        }
        true
    }
}
