//! [`Context::join_recovering`] and [`Context::bind_recovering`]: joining or binding with
//! recovery of what the connection missed (see [`crate::history`]).

use super::Context;
use crate::error::Result;
use crate::history::{Recovery, StreamPosition};

impl Context<'_> {
    /// Joins a group and queues what this connection missed since `since`, in one step: see
    /// [`Server::join_recovering`](crate::Server::join_recovering). From a core loop, where
    /// the history lives in Redis, it fails with [`Error::WouldBlock`](crate::Error::WouldBlock):
    /// make the call from another thread.
    pub fn join_recovering(
        &mut self,
        group: &str,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery> {
        self.server.join_recovering(self.client_id(), group, since)
    }

    /// Binds a flag and queues what this connection missed since `since`, in one step: see
    /// [`Server::bind_recovering`](crate::Server::bind_recovering).
    pub fn bind_recovering(
        &mut self,
        flag: &str,
        since: Option<&StreamPosition>,
    ) -> Result<Recovery> {
        self.server.bind_recovering(self.client_id(), flag, since)
    }
}
