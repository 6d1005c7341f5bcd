//! Backends: what carries a push from the facade to the connections that must receive it.
//!
//! | backend | scope |
//! |---------|-------|
//! | [`local`] | all core loops of this process |
//! | [`fpm`]   | nothing: the request-scoped no-op |

pub(crate) mod fpm;
pub(crate) mod local;

use std::fmt;

use crate::error::Result;
use crate::facade::Workers;
use crate::id::{ClientId, WorkerId};
use crate::registry::DataValue;
use crate::stats::Stats;

/// Whom a push or close is for. Targets are values, resolved by the backend.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Clients(Vec<ClientId>),
    Flags(Vec<String>),
    Groups(Vec<String>),
    All,
}

/// An unframed message: the backend frames it for the server's protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Payload<'a> {
    pub(crate) is_text: bool,
    pub(crate) bytes: &'a [u8],
}

/// Limits that travel with a call: the core loop it is confined to, and the ids to skip.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub(crate) worker: Option<WorkerId>,
    pub(crate) except: &'a [ClientId],
}

impl Scope<'_> {
    /// Whether a client falls inside the scope (ignoring exclusions).
    pub(crate) fn covers(&self, id: ClientId) -> bool {
        self.worker.is_none_or(|w| w == id.worker())
    }
}

/// One implementation of the facade's operations. Every method answers what this backend can
/// know; the facade only encodes, converts targets and forwards.
pub(crate) trait Backend: Send + Sync + fmt::Debug {
    fn push(&self, target: Target, payload: Payload<'_>, scope: Scope<'_>) -> Result<usize>;
    fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize>;
    fn send_message(&self, action: Option<&str>, data: &[u8], workers: &Workers) -> Result<usize>;
    fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool;
    fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId>;
    fn flag_of(&self, id: ClientId) -> Option<String>;
    fn connections(&self, scope: Scope<'_>) -> Vec<ClientId>;
    fn connection_count(&self, scope: Scope<'_>) -> usize;
    fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId>;
    fn group_names(&self) -> Vec<String>;
    fn set_data(&self, id: ClientId, key: &str, value: DataValue) -> bool;
    fn data(&self, id: ClientId, key: &str) -> Option<DataValue>;
    fn remove_data(&self, id: ClientId, key: &str) -> bool;
    fn workers(&self) -> usize;
    /// The runtime this backend delivers into, for `this_worker`; `None` when there is none.
    fn runtime_id(&self) -> Option<u64>;
    /// The server's counters as this backend knows them.
    fn stats(&self) -> Stats;
}
