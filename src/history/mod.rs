//! Bounded history per group and per flag, and exact recovery after a reconnect.
//!
//! Opt in per name pattern with [`HistoryConfig`] ([`ServerConfig::history`](crate::ServerConfig::history)):
//! every send to a kept group or flag — whether or not anyone receives it, whatever its
//! exclusions, but not a send confined to one core loop — is kept with the next **offset** of
//! its stream (1, 2, …), for the last N messages and/or the last T. The offsets count within
//! an **epoch**, a string that changes whenever the history is lost (a restart of the Local
//! backend; Redis losing its keys) and never otherwise. A [`StreamPosition`] is an epoch and
//! the last offset a client has.
//!
//! A client that reconnects calls [`Server::join_recovering`](crate::Server::join_recovering)
//! (or `bind_recovering`, or the [`Context`](crate::Context) forms) with the position it had:
//! it joins the group (binds the flag) and receives what it missed, in order, then live
//! messages — or learns that the history no longer covers it ([`Recovery::recovered`] false)
//! and reloads.
//!
//! # The seam
//!
//! Recovery is exact when every message after the client's position reaches it exactly
//! once: either in the missed set or live, never both, never neither, and the missed ones
//! before any later live one. A message `m` of stream `s` is in exactly one of two cases
//! relative to the recovery of client `c`:
//!
//! * `m` is kept (gets its offset) before `c` is a member of `s`: then no live delivery of
//!   `m` can count `c`, and the recovery must hand `m` over;
//! * `m` is kept after `c` is a member: then `m` counts `c` live, and the recovery must not.
//!
//! So each backend makes "keep `m` + hand `m` to the connections" one step, and "make `c` a
//! member + read the missed ones + hand them to `c`" another, ordered against each other per
//! stream; and hands everything to a connection through the one delivery door, whose order
//! is the order of hand-over. How each backend does it is in the docs of `local.rs` and
//! `redis.rs` beside this module, and in README "History and recovery".
//!
//! # Cost
//!
//! A kept message costs one shared frame (the frame the live push sends, shared by the
//! history: no copy of the payload) plus its offset and time in a ring; a kept name costs its
//! ring and its place in a map, and is kept for the life of the epoch, so that its offsets
//! never restart. README "History and recovery" has the measured numbers.

pub(crate) mod config;
pub(crate) mod local;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
mod redis_script;
mod ring;
#[cfg(feature = "redis")]
mod wire;

pub(crate) use config::{Bound, Kind};
pub use config::{HistoryConfig, HistoryRule};

use std::fmt;

use crate::error::Result;
use crate::id::ClientId;
use crate::target::{Payload, Scope, Target};

/// The kind and names of a push that a history may keep: one to groups or flags, not
/// confined to one core loop (`None` for any other).
pub(crate) fn kept_target<'t>(
    target: &'t Target,
    scope: Scope<'_>,
) -> Option<(Kind, &'t [String])> {
    if scope.worker.is_some() {
        return None;
    }
    match target {
        Target::Groups(names) => Some((Kind::Group, names)),
        Target::Flags(names) => Some((Kind::Flag, names)),
        _ => None,
    }
}

/// Keeps a server's history and recovers clients from it, on one backend.
///
/// # Contract
///
/// * **Threads.** Every method may be called from any thread, concurrently; on a core loop
///   none waits on the network (what would, fails with [`Error::WouldBlock`](crate::Error::WouldBlock)).
/// * **Seam.** For each kept name, `push` ("keep + hand to the connections") and `recover`
///   ("make a member + read the missed + hand them over") are ordered against each other,
///   so that a recovering client receives every message after its position exactly once,
///   the missed ones first (see the module docs).
/// * **What is kept.** Every push to a kept group or flag, whatever its `scope.except`; a
///   push confined to one core loop (`scope.worker`) is not kept and not handled here.
pub(crate) trait Keeper: Send + Sync + fmt::Debug {
    /// Keeps and delivers a push to groups or flags of which some are kept, returning the
    /// count as the backend's `push` does; `None` when the push has no kept name (the
    /// backend then sends it as usual).
    fn push(
        &self,
        target: &Target,
        payload: Payload<'_>,
        scope: Scope<'_>,
    ) -> Option<Result<usize>>;
    /// Joins the group (binds the flag) and, where `since` is covered, queues what the
    /// client missed.
    fn recover(
        &self,
        id: ClientId,
        kind: Kind,
        name: &str,
        since: Option<&StreamPosition>,
        scope: Scope<'_>,
    ) -> Result<Recovery>;
    /// A stream's position now.
    fn position(&self, kind: Kind, name: &str) -> Result<StreamPosition>;
}

/// Where a client stands in a group's or a flag's stream: the epoch, and the last offset it
/// has (0 before any message).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamPosition {
    /// The stream's epoch; empty where no history is kept for the name.
    pub epoch: String,
    /// The last offset the client has.
    pub offset: u64,
}

/// What a recovering join or bind did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Whether the history covered the position given: then the `missed` messages after it
    /// were queued to the client, in order, before any later message of the stream. False
    /// when no position was given, the epoch differs, the offset is ahead of the last one, or
    /// the message after it is no longer kept; nothing was queued then: reload.
    pub recovered: bool,
    /// How many missed messages were queued.
    pub missed: usize,
    /// The stream's position when the client became a member: with `recovered`, the client
    /// now has everything up to it; in any case every later message reaches it live.
    pub position: StreamPosition,
    /// Whether the client is connected (and now a member); false answers nothing else.
    pub is_member: bool,
}

/// Whether a client at `since` can be given what it missed by a stream at epoch `epoch`
/// whose last offset is `last` and whose first kept offset is `first` (`None` when nothing is
/// kept).
pub(crate) fn covers(since: &StreamPosition, epoch: &str, last: u64, first: Option<u64>) -> bool {
    since.epoch == epoch
        && since.offset <= last
        && (since.offset == last || first.is_some_and(|f| f <= since.offset + 1))
}

/// A fresh epoch: the wall clock in nanoseconds and a per-process counter, in hex.
pub(crate) fn new_epoch() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:x}{:x}{n:x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage() {
        let at = |offset| StreamPosition {
            epoch: "e".into(),
            offset,
        };
        assert!(covers(&at(5), "e", 5, None));
        assert!(covers(&at(4), "e", 5, Some(5)));
        assert!(!covers(&at(3), "e", 5, Some(5)));
        assert!(!covers(&at(6), "e", 5, Some(1)));
        assert!(!covers(&at(0), "x", 0, None));
        assert!(covers(&at(0), "e", 3, Some(1)));
    }
}
