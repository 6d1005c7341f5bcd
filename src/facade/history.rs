//! The facade's calls for history and recovery (see [`crate::history`]).

use super::Server;
use crate::error::Result;
use crate::history::{Kind, Recovery, StreamPosition};
use crate::id::ClientId;

impl Server {
    /// Adds a connected client to a group, as [`join`](Server::join), and queues to it the
    /// group's messages after `since` — what it missed while away — before any later message
    /// of the group; in one step, so that each message after `since` reaches it exactly once.
    ///
    /// Call it instead of `join` when a client comes back with the position it had (its
    /// epoch and the last offset it received); with `since` `None`, it joins and answers the
    /// position to remember. [`Recovery::recovered`] is false when the history no longer
    /// covers `since` (or none is kept for the group): nothing was queued, and the client
    /// should reload. A client already in the group may receive messages twice.
    ///
    /// # Errors
    ///
    /// [`Error::Backend`](crate::Error::Backend) when the history's engine (Redis) cannot be
    /// reached — never a wrong answer; [`Error::WouldBlock`](crate::Error::WouldBlock) on a
    /// core loop where the history lives in Redis; [`Error::MailboxFull`](crate::Error::MailboxFull)
    /// or [`Error::Shutdown`](crate::Error::Shutdown) as for a send (the client then has an
    /// incomplete set: close it, and let it reload).
    pub fn join_recovering(
        &self,
        id: ClientId,
        group: &str,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery> {
        self.inner
            .backend
            .recover(id, Kind::Group, group, since, self.scope_ref())
    }

    /// Binds a connected client to a flag, as [`bind`](Server::bind), and queues to it the
    /// flag's messages after `since`; see [`join_recovering`](Server::join_recovering).
    pub fn bind_recovering(
        &self,
        id: ClientId,
        flag: &str,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery> {
        self.inner
            .backend
            .recover(id, Kind::Flag, flag, since, self.scope_ref())
    }

    /// A group's stream position now: its epoch and last offset (an empty epoch and 0 where
    /// no history is kept for it). To join at a position, use
    /// [`join_recovering`](Server::join_recovering) with `None`, which reads it in the same
    /// step as the join.
    pub fn group_position(&self, group: &str) -> Result<StreamPosition> {
        self.inner.backend.position(Kind::Group, group)
    }

    /// A flag's stream position now; see [`group_position`](Server::group_position).
    pub fn flag_position(&self, flag: &str) -> Result<StreamPosition> {
        self.inner.backend.position(Kind::Flag, flag)
    }
}
