//! [`Context::restore`]: taking over a closed connection's context.

use super::{Conn, Context};
use crate::error::{Error, Result};
use crate::restore::Restored;

impl Context<'_> {
    /// Takes over the context kept under `flag` from a closed connection (imi's
    /// `ConnectionContext::restore`): this connection then holds the flag (replacing any flag
    /// it had), is in the closed connection's groups too (up to
    /// [`max_groups_per_connection`](crate::ServerConfig::max_groups_per_connection)), and has
    /// its data (overwriting its own values of the same keys).
    /// Works once per kept context, and only with
    /// [`ServerConfig::keep_context`](crate::ServerConfig::keep_context) on; the handler's
    /// [`on_restore`](crate::Handler::on_restore) follows this call. Nothing is pushed.
    ///
    /// Answers [`Restored::Nothing`] when nothing is kept under the flag (never bound, kept
    /// longer than the keep time, or already restored) or another live connection holds it.
    ///
    /// # Errors
    ///
    /// On a cluster backend the context lives in the engine: on a core loop this fails with
    /// [`Error::WouldBlock`] (make the call with [`Server::restore`](crate::Server::restore)
    /// from another thread), and with [`Error::Backend`] when the engine is unreachable.
    /// [`Error::Unsupported`] on the Channel and Gateway backends; [`Error::MailboxFull`]
    /// when the connection's core loop cannot take the `on_restore` call (nothing changed).
    pub fn restore(&mut self, flag: &str) -> Result<Restored> {
        match &self.conn {
            Conn::Local(io) => self.server.restore(io.id, flag),
            Conn::Remote(_) => Err(Error::Unsupported(
                "restore behind a gateway (the gateway keeps no closed contexts)".into(),
            )),
        }
    }
}
