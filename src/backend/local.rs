//! The Local backend: every core loop of this process, and nothing else — the delivery door
//! itself.

use super::Backend;
use crate::cluster::answer::answer;
use crate::cluster::ask::{Gathered, Request, Value};
use crate::delivery::Delivery;
use crate::error::Result;
use crate::id::ClientId;
use crate::registry::{DataValue, Source};
use crate::restore::Restored;
use crate::target::{Payload, Scope, Target, Workers};

impl Backend for Delivery {
    fn push(&self, target: Target, payload: Payload<'_>, scope: Scope<'_>) -> Result<usize> {
        Delivery::push(self, target, payload, scope)
    }
    fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize> {
        Delivery::close(self, target, scope)
    }
    fn send_message(
        &self,
        action: Option<&str>,
        data: &[u8],
        workers: &Workers,
        scope: Scope<'_>,
    ) -> Result<usize> {
        Delivery::send_message(self, action, data, workers, scope)
    }
    fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool {
        Delivery::exists(self, id, scope)
    }
    fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId> {
        Delivery::flag_members(self, flag, scope)
    }
    fn flag_of(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        Delivery::flag_of(self, id, scope)
    }
    fn connections(&self, scope: Scope<'_>) -> Vec<ClientId> {
        Delivery::connections(self, scope)
    }
    fn connection_count(&self, scope: Scope<'_>) -> usize {
        Delivery::connection_count(self, scope)
    }
    fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId> {
        Delivery::group_members(self, group, scope)
    }
    fn group_names(&self, scope: Scope<'_>) -> Vec<String> {
        Delivery::group_names(self, scope)
    }
    fn bind(&self, id: ClientId, flag: &str, exclusive: bool, scope: Scope<'_>) -> bool {
        Delivery::bind(self, id, flag, exclusive, scope)
    }
    fn unbind(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        Delivery::unbind(self, id, scope)
    }
    fn join(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        Delivery::join(self, id, group, scope)
    }
    fn leave(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        Delivery::leave(self, id, group, scope)
    }
    fn groups_of(&self, id: ClientId, scope: Scope<'_>) -> Vec<String> {
        Delivery::groups_of(self, id, scope)
    }
    fn set_data(&self, id: ClientId, key: &str, value: DataValue, scope: Scope<'_>) -> bool {
        Delivery::set_data(self, id, key, value, scope)
    }
    fn data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> Option<DataValue> {
        Delivery::data(self, id, key, scope)
    }
    fn remove_data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> bool {
        Delivery::remove_data(self, id, key, scope)
    }
    /// This instance is the whole deployment: it answers alone, at once.
    fn gather(&self, request: &Request<'_>, scope: Scope<'_>) -> Result<Gathered> {
        let value = match request {
            Request::Query(q) => {
                self.check_running()?;
                answer(self, q, scope)
            }
            Request::Push { target, payload } => {
                Value::Count(Delivery::push(self, target.clone(), *payload, scope)? as u64)
            }
            Request::Close { target } => {
                Value::Count(Delivery::close(self, target.clone(), scope)? as u64)
            }
            Request::Message {
                action,
                data,
                workers,
            } => Value::Count(Delivery::send_message(self, *action, data, workers, scope)? as u64),
        };
        Ok(Gathered::alone(value))
    }
    fn instances(&self) -> Vec<u16> {
        vec![self.instance()]
    }
    fn restore(&self, id: ClientId, flag: &str, scope: Scope<'_>) -> Result<Restored> {
        Delivery::restore(self, id, flag, scope, Source::Kept)
    }
}
