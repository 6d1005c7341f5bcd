//! Answering a query for this instance's connections: what every instance of a cluster does
//! for a query it receives, and what a single instance does for the whole cluster.
//!
//! Connection data crosses instances as JSON: a value set from another instance is stored as
//! a `serde_json::Value`; a value read from another instance must be a `serde_json::Value`,
//! `String`, `bool`, `i64`, `u64` or `f64` (anything else reads as absent there).

use std::sync::Arc;

use super::ask::Value;
use super::wire::Query;
use crate::delivery::Delivery;
use crate::registry::DataValue;
use crate::target::Scope;

/// Answers `query` for the connections of this instance within `scope`.
pub(crate) fn answer(delivery: &Delivery, query: &Query<'_>, scope: Scope<'_>) -> Value {
    match *query {
        Query::Exists(id) => Value::Bool(delivery.exists(id, scope)),
        Query::FlagMembers(flag) => Value::Ids(delivery.flag_members(flag, scope)),
        Query::FlagOf(id) => Value::Name(delivery.flag_of(id, scope)),
        Query::Connections => Value::Ids(delivery.connections(scope)),
        Query::Count => Value::Count(delivery.connection_count(scope) as u64),
        Query::GroupMembers(group) => Value::Ids(delivery.group_members(group, scope)),
        Query::Groups => Value::Names(delivery.group_names(scope)),
        Query::GroupsOf(id) => Value::Names(delivery.groups_of(id, scope)),
        Query::Data { id, key } => Value::Json(
            delivery
                .data(id, key, scope)
                .and_then(|v| to_json(&v))
                .and_then(|v| serde_json::to_vec(&v).ok()),
        ),
        Query::SetData { id, key, json } => {
            let stored = serde_json::from_slice::<serde_json::Value>(json)
                .is_ok_and(|v| delivery.set_data(id, key, Arc::new(v), scope));
            Value::Bool(stored)
        }
        Query::RemoveData { id, key } => Value::Bool(delivery.remove_data(id, key, scope)),
        Query::Bind {
            id,
            flag,
            exclusive,
        } => Value::Bool(delivery.bind(id, flag, exclusive, scope)),
        Query::Unbind(id) => Value::Name(delivery.unbind(id, scope)),
        Query::Join { id, group } => Value::Bool(delivery.join(id, group, scope)),
        Query::Leave { id, group } => Value::Bool(delivery.leave(id, group, scope)),
    }
}

/// A stored value as JSON, for the types that have an obvious JSON form.
pub(crate) fn to_json(value: &DataValue) -> Option<serde_json::Value> {
    if let Some(v) = value.downcast_ref::<serde_json::Value>() {
        return Some(v.clone());
    }
    if let Some(v) = value.downcast_ref::<String>() {
        return Some(serde_json::Value::String(v.clone()));
    }
    if let Some(v) = value.downcast_ref::<bool>() {
        return Some(serde_json::Value::Bool(*v));
    }
    if let Some(v) = value.downcast_ref::<i64>() {
        return Some((*v).into());
    }
    if let Some(v) = value.downcast_ref::<u64>() {
        return Some((*v).into());
    }
    value
        .downcast_ref::<f64>()
        .and_then(|v| serde_json::Number::from_f64(*v))
        .map(serde_json::Value::Number)
}
