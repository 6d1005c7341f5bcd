//! The request-scoped no-op backend: there are no persistent connections, so every push
//! reaches nobody. Code written for the push server runs unchanged and learns it sent nothing.

use log::debug;

use super::{Backend, Payload, Scope, Target};
use crate::error::Result;
use crate::facade::Workers;
use crate::id::ClientId;
use crate::registry::DataValue;
use crate::stats::Stats;

/// The no-op backend.
#[derive(Debug, Default)]
pub(crate) struct FpmBackend;

impl Backend for FpmBackend {
    fn push(&self, target: Target, _: Payload<'_>, _: Scope<'_>) -> Result<usize> {
        debug!("push to {target:?} ignored: the Fpm backend has no connections");
        Ok(0)
    }
    fn close(&self, target: Target, _: Scope<'_>) -> Result<usize> {
        debug!("close of {target:?} ignored: the Fpm backend has no connections");
        Ok(0)
    }
    fn send_message(&self, action: Option<&str>, _: &[u8], _: &Workers) -> Result<usize> {
        debug!("worker message {action:?} ignored: the Fpm backend has no workers");
        Ok(0)
    }
    fn exists(&self, _: ClientId, _: Scope<'_>) -> bool {
        false
    }
    fn flag_members(&self, _: &str, _: Scope<'_>) -> Vec<ClientId> {
        Vec::new()
    }
    fn flag_of(&self, _: ClientId) -> Option<String> {
        None
    }
    fn connections(&self, _: Scope<'_>) -> Vec<ClientId> {
        Vec::new()
    }
    fn connection_count(&self, _: Scope<'_>) -> usize {
        0
    }
    fn group_members(&self, _: &str, _: Scope<'_>) -> Vec<ClientId> {
        Vec::new()
    }
    fn group_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn set_data(&self, _: ClientId, _: &str, _: DataValue) -> bool {
        false
    }
    fn data(&self, _: ClientId, _: &str) -> Option<DataValue> {
        None
    }
    fn remove_data(&self, _: ClientId, _: &str) -> bool {
        false
    }
    fn workers(&self) -> usize {
        0
    }
    fn runtime_id(&self) -> Option<u64> {
        None
    }
    fn stats(&self) -> Stats {
        Stats::default()
    }
}
