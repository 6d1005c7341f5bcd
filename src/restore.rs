//! What a restore answers (see [`Context::restore`](crate::Context::restore)).

use crate::id::ClientId;

/// The answer of [`Context::restore`](crate::Context::restore) and
/// [`Server::restore`](crate::Server::restore). Nothing to restore is an answer, not an
/// error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Restored {
    /// Nothing was restored and nothing changed: no context is kept under the flag (never
    /// bound, expired, or already restored), another live connection holds the flag, context
    /// keeping is off, or the connection is not connected.
    Nothing,
    /// The connection now holds the flag, the data and the groups of the closed connection
    /// `from`.
    Done {
        /// The closed connection whose context this was.
        from: ClientId,
        /// Its groups, which the connection is now in (sorted as they were joined).
        groups: Vec<String>,
    },
}

impl Restored {
    /// Whether a context was restored.
    pub fn is_done(&self) -> bool {
        matches!(self, Restored::Done { .. })
    }
}
