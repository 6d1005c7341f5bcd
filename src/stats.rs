//! Counters: what each server has done, readable from any thread through
//! [`Server::stats`](crate::Server::stats).
//!
//! Each core loop writes only its own counters (on a cache line of their own), so counting
//! costs no contention; a read sums them.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of one server's counters, summed over its core loops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open now (past their handshake).
    pub connections: u64,
    /// Connections taken in under the connection limits since start. Each then opens, fails
    /// its handshake (`handshake_failures`), is turned away by the handshake hook or by a
    /// shutdown under way (counted in `rejected` too), or turns out to be a plain HTTP request
    /// (`http_requests` or `http_refused`).
    pub accepted: u64,
    /// Connections refused: over `max_connections` or `max_connections_per_ip` (never
    /// `accepted`), or rejected by the handshake hook or because the runtime is shutting down
    /// (503; after being `accepted`).
    pub rejected: u64,
    /// WebSocket handshakes that failed (garbage, missing headers, a head over 64 KiB,
    /// timeout), plain HTTP requests on a port that answers none included.
    pub handshake_failures: u64,
    /// Plain HTTP requests (not upgrades) answered on a WebSocket server's port — `/metrics`,
    /// `/health`, routes, files, and their 404 and 405 (see
    /// [`PlainHttp`](crate::PlainHttp)).
    pub http_requests: u64,
    /// Plain HTTP requests refused for how they are framed (400): a body, or the lengths that
    /// smuggle one (`Content-Length` with `Transfer-Encoding`, two different
    /// `Content-Length`s).
    pub http_refused: u64,
    /// Connections that were open and have closed since start.
    pub closed: u64,
    /// Messages received from clients.
    pub messages_in: u64,
    /// Bytes received from clients (after the handshake).
    pub bytes_in: u64,
    /// Frames queued to clients (pushes, replies, control frames).
    pub messages_out: u64,
    /// Bytes written to clients (not counting HTTP answers: the 101 of an upgrade, the answers
    /// to plain requests and refusals).
    pub bytes_out: u64,
    /// Messages compressed for permessage-deflate clients: once per message for all the
    /// clients that share its compressed form (the default), once per client where the server
    /// keeps a context per connection
    /// ([`DeflateConfig::server_context_takeover`](crate::DeflateConfig::server_context_takeover)).
    pub frames_compressed: u64,
    /// Write system calls that carried them: `messages_out / writes` is how many frames a
    /// write carries on average (see `RuntimeConfig::fanout_window`).
    pub writes: u64,
    /// Messages dropped for slow consumers: queued to a connection (and counted by the send)
    /// but refused by its full outbound queue — with [`SlowConsumer::Drop`](crate::SlowConsumer)
    /// every such message, with `Close` the one that found the queue full and any counted to
    /// the connection before its close frame.
    pub dropped: u64,
    /// Connections closed because their outbound queue was full.
    pub slow_consumer_closes: u64,
    /// Connections closed for breaking the protocol (bad frames, oversized messages).
    pub protocol_errors: u64,
    /// Connections closed for being silent past the idle timeout.
    pub idle_closes: u64,
    /// Handler calls that panicked.
    pub handler_panics: u64,
    /// Sends, closes and worker messages that found a core loop's mailbox full, counted once
    /// per call and core loop, in the stats of the server whose handle made the call. Each
    /// then waited for room, or failed at once on a core loop thread.
    pub mailbox_full: u64,
    /// Of those, the ones that failed with [`Error::MailboxFull`](crate::Error::MailboxFull):
    /// no room within
    /// [`RuntimeConfig::mailbox_timeout`](crate::RuntimeConfig::mailbox_timeout), or at once
    /// on a core loop thread.
    pub mailbox_timeouts: u64,
}

macro_rules! counters {
    ($($field:ident),* $(,)?) => {
        /// The counters of one server on one core loop.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub(crate) struct Counters {
            $(pub(crate) $field: AtomicU64,)*
        }

        impl Counters {
            /// Adds these counters into a snapshot.
            pub(crate) fn add_to(&self, s: &mut Stats) {
                $(s.$field += self.$field.load(Ordering::Relaxed);)*
            }
        }
    };
}

counters!(
    connections,
    accepted,
    rejected,
    handshake_failures,
    http_requests,
    http_refused,
    closed,
    messages_in,
    bytes_in,
    messages_out,
    bytes_out,
    frames_compressed,
    writes,
    dropped,
    slow_consumer_closes,
    protocol_errors,
    idle_closes,
    handler_panics,
    mailbox_full,
    mailbox_timeouts,
);

/// Adds `n` to a counter. Each core loop is the only writer of its counters, so a load and a
/// store suffice (no locked read-modify-write); other threads only read.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Adds `n` to a counter that any thread may write.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts 1 from a counter that only its core loop writes.
#[inline]
pub(crate) fn drop_one(counter: &AtomicU64) {
    counter.store(
        counter.load(Ordering::Relaxed).saturating_sub(1),
        Ordering::Relaxed,
    );
}

/// Sums per-core-loop counters plus the shared ones.
pub(crate) fn snapshot<'a>(per_worker: impl IntoIterator<Item = &'a Counters>) -> Stats {
    let mut s = Stats::default();
    for c in per_worker {
        c.add_to(&mut s);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_sum_core_loops() {
        let a = Counters::default();
        let b = Counters::default();
        bump(&a.accepted, 2);
        bump(&b.accepted, 3);
        bump(&b.connections, 1);
        drop_one(&b.connections);
        drop_one(&b.connections);
        let s = snapshot([&a, &b]);
        assert_eq!(s.accepted, 5);
        assert_eq!(s.connections, 0, "never below zero");
        assert_eq!(std::mem::align_of::<Counters>(), 128);
    }
}
