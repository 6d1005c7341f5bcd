//! The request-scoped no-op backend: there are no persistent connections, so every push
//! reaches nobody. Code written for the push server runs unchanged and learns it sent nothing.

use std::sync::atomic::{AtomicU8, Ordering};

use log::debug;

use super::Backend;
use crate::cluster::ask::{Gathered, Request, Value};
use crate::cluster::wire::Query;
use crate::error::Result;
use crate::id::ClientId;
use crate::registry::DataValue;
use crate::restore::Restored;
use crate::target::{Payload, Scope, Target, Workers};

/// The no-op backend.
#[derive(Debug, Default)]
pub(crate) struct FpmBackend;

/// The kinds of call already logged, one bit each: request-scoped code may push on every
/// request, and one debug line per kind says as much as a line per call.
static LOGGED: AtomicU8 = AtomicU8::new(0);
const PUSH: u8 = 1;
const CLOSE: u8 = 2;
const MESSAGE: u8 = 4;
const SET_DATA: u8 = 8;

/// True the first time for each kind, in the whole process. A plain load first keeps the
/// cache line shared once every kind has been logged.
fn first(kind: u8) -> bool {
    LOGGED.load(Ordering::Relaxed) & kind == 0
        && LOGGED.fetch_or(kind, Ordering::Relaxed) & kind == 0
}

impl Backend for FpmBackend {
    fn push(&self, target: Target, _: Payload<'_>, _: Scope<'_>) -> Result<usize> {
        if first(PUSH) {
            debug!("push to {target:?} ignored: the Fpm backend has no connections (logged once)");
        }
        Ok(0)
    }
    fn close(&self, target: Target, _: Scope<'_>) -> Result<usize> {
        if first(CLOSE) {
            debug!("close of {target:?} ignored: the Fpm backend has no connections (logged once)");
        }
        Ok(0)
    }
    fn send_message(
        &self,
        action: Option<&str>,
        _: &[u8],
        _: &Workers,
        _: Scope<'_>,
    ) -> Result<usize> {
        if first(MESSAGE) {
            debug!(
                "worker message {action:?} ignored: the Fpm backend has no workers (logged once)"
            );
        }
        Ok(0)
    }
    fn exists(&self, _: ClientId, _: Scope<'_>) -> bool {
        false
    }
    fn flag_members(&self, _: &str, _: Scope<'_>) -> Vec<ClientId> {
        Vec::new()
    }
    fn flag_of(&self, _: ClientId, _: Scope<'_>) -> Option<String> {
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
    fn group_names(&self, _: Scope<'_>) -> Vec<String> {
        Vec::new()
    }
    fn bind(&self, _: ClientId, _: &str, _: bool, _: Scope<'_>) -> bool {
        false
    }
    fn unbind(&self, _: ClientId, _: Scope<'_>) -> Option<String> {
        None
    }
    fn join(&self, _: ClientId, _: &str, _: Scope<'_>) -> bool {
        false
    }
    fn leave(&self, _: ClientId, _: &str, _: Scope<'_>) -> bool {
        false
    }
    fn groups_of(&self, _: ClientId, _: Scope<'_>) -> Vec<String> {
        Vec::new()
    }
    fn set_data(&self, _: ClientId, key: &str, _: DataValue, _: Scope<'_>) -> bool {
        if first(SET_DATA) {
            debug!("set_data {key:?} ignored: the Fpm backend has no connections (logged once)");
        }
        false
    }
    fn data(&self, _: ClientId, _: &str, _: Scope<'_>) -> Option<DataValue> {
        None
    }
    fn remove_data(&self, _: ClientId, _: &str, _: Scope<'_>) -> bool {
        false
    }
    fn gather(&self, request: &Request<'_>, _: Scope<'_>) -> Result<Gathered> {
        let value = match request {
            Request::Query(
                Query::Exists(_)
                | Query::SetData { .. }
                | Query::RemoveData { .. }
                | Query::Bind { .. }
                | Query::Join { .. }
                | Query::Leave { .. },
            ) => Value::Bool(false),
            Request::Query(Query::Count)
            | Request::Push { .. }
            | Request::Close { .. }
            | Request::Message { .. } => Value::Count(0),
            Request::Query(Query::FlagMembers(_) | Query::Connections | Query::GroupMembers(_)) => {
                Value::Ids(Vec::new())
            }
            Request::Query(Query::Groups | Query::GroupsOf(_)) => Value::Names(Vec::new()),
            Request::Query(Query::FlagOf(_) | Query::Unbind(_)) => Value::Name(None),
            Request::Query(Query::Data { .. }) => Value::Json(None),
        };
        Ok(Gathered::alone(value))
    }
    fn instances(&self) -> Vec<u16> {
        Vec::new()
    }
    fn restore(&self, _: ClientId, _: &str, _: Scope<'_>) -> Result<Restored> {
        Ok(Restored::Nothing)
    }
}
