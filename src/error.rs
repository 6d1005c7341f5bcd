//! The crate's error type.

use std::fmt;
use std::io;

/// What can go wrong in corepush. Expected outcomes (a client that is gone, a flag nobody
/// holds) are not errors: they are counts of 0 or `false`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A socket or thread operation failed. Check the address, permissions and limits.
    Io(io::Error),
    /// The configuration is invalid; the message says which setting. Fix it and build again.
    Config(String),
    /// A value could not be encoded or decoded by the server's data parser.
    Encode(String),
    /// The payload cannot be framed by this server's protocol (for example a raw payload with a
    /// newline, or ending in a carriage return, on a line-framed TCP server, or one larger than
    /// the frame format allows). Nothing was queued.
    Frame(String),
    /// No server by that name is running (from [`require_server`](crate::require_server)).
    /// Check the name, and that its runtime has started and not yet shut down.
    UnknownServer(String),
    /// The call needs a core loop thread (for example `this_worker`), but the calling thread is
    /// not one.
    NotOnWorker,
    /// The cluster's engine (Redis, the broker, the gateway) could not carry the call: it is
    /// unreachable, or refused it. Nothing was sent. The cause is the error's
    /// [`source`](std::error::Error::source); the backend reconnects by itself, so try again
    /// later.
    Backend(Box<dyn std::error::Error + Send + Sync>),
    /// The call would wait for other instances of the cluster, which a core loop must never
    /// do. Nothing was sent and nothing changed: make the same call from another thread (a
    /// handler can hand it to a thread of its own).
    WouldBlock,
    /// The runtime is shutting down or has shut down: the handle can no longer send, close or
    /// message. Nothing was sent.
    Shutdown,
    /// A core loop's mailbox was full: the core loops are not keeping up with the calls. Off
    /// core loops a call first waits up to
    /// [`RuntimeConfig::mailbox_timeout`](crate::RuntimeConfig::mailbox_timeout) for room; on
    /// a core loop it fails at once, never waiting. A call deals with the core loops it needs
    /// one after another: `queued` is what it had done on the others before this one stopped
    /// it (the connections a push was queued to or a close closed, the core loops a worker
    /// message reached), and nothing was done on the rest. A call to one client, or through
    /// a handle scoped to one core loop, fails with `queued: 0`. Slow down; retrying repeats
    /// the call for those `queued`.
    MailboxFull {
        /// What the call had done on other core loops before the full mailbox stopped it.
        queued: usize,
    },
    /// A core loop failed or panicked; the message says which and why. The runtime stopped.
    Worker(String),
    /// The backend does not offer this call (the message says which and where). Nothing
    /// changed; choose a backend that does (see the README's backend table).
    Unsupported(String),
}

/// `Result` with corepush's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Encode(m) => write!(f, "encoding failed: {m}"),
            Error::Frame(m) => write!(f, "cannot frame payload: {m}"),
            Error::UnknownServer(n) => write!(f, "no server named {n:?} is running"),
            Error::NotOnWorker => f.write_str("this call needs to run on a core loop thread"),
            Error::Backend(e) => write!(f, "backend error: {e}"),
            Error::WouldBlock => {
                f.write_str("this call waits for other instances and cannot run on a core loop")
            }
            Error::Shutdown => f.write_str("the runtime has shut down"),
            Error::MailboxFull { queued } => write!(
                f,
                "a core loop's mailbox is full (queued to {queued} before it stopped the call)"
            ),
            Error::Worker(m) => write!(f, "core loop failed: {m}"),
            Error::Unsupported(m) => write!(f, "not supported: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Backend(e) => Some(&**e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Encode(e.to_string())
    }
}

impl Error {
    /// What a sender is told when a backend thread's queue (`writer` names that thread: "the
    /// Redis publisher") refused an item without waiting: a full queue is
    /// [`Error::Backend`] — the thread is behind, and the queue does not grow past its bound —
    /// and a thread that has ended is [`Error::Shutdown`].
    pub(crate) fn queue_refused<T>(e: crossbeam_channel::TrySendError<T>, writer: &str) -> Self {
        match e {
            crossbeam_channel::TrySendError::Full(_) => {
                Error::Backend(format!("{writer} is behind: its queue is full").into())
            }
            crossbeam_channel::TrySendError::Disconnected(_) => Error::Shutdown,
        }
    }
}
