//! Closed connections' contexts kept in a cluster's engine, so that a client may restore on
//! another instance than the one it left (see [`Context::restore`](crate::Context::restore)).
//!
//! A context crosses instances as a JSON record: the closed client's id, its groups, and its
//! data values that have a JSON form (`serde_json::Value`, `String`, `bool`, `i64`, `u64`,
//! `f64`, as for the cluster's data queries); other values stay behind. On another instance
//! every value comes back as a `serde_json::Value`; on the instance it was kept on, the
//! instance's own copy is restored, typed values included.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::answer::to_json;
use crate::error::Result;
use crate::id::ClientId;
use crate::registry::{DataValue, KeptContext};

/// Where the instances of a cluster keep closed connections' contexts.
///
/// # Contract
///
/// * [`keep`](KeptStore::keep) is called under the registry's locks, on any thread (core
///   loops included): it must not block — hand the write to a thread — and replaces what is
///   kept under the flag, to expire after the keep time.
/// * [`put_back`](KeptStore::put_back), as `keep`, keeps a record taken by a restore that
///   then could not give it (the connection closed meanwhile), unless another is kept under
///   the flag by then.
/// * [`take`](KeptStore::take) is called off core loops and may wait for the engine: it
///   removes and returns what is kept under the flag, atomically across the cluster (two
///   instances taking at once: one gets it). An unreachable engine is an
///   [`Error::Backend`](crate::Error::Backend).
pub(crate) trait KeptStore: Send + Sync + fmt::Debug {
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store keeps copies
    fn keep(&self, flag: &str, record: Vec<u8>);
    fn put_back(&self, flag: &str, record: Vec<u8>);
    fn take(&self, flag: &str) -> Result<Option<Vec<u8>>>;
}

/// The JSON record of a context kept from client `from`.
#[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store keeps copies
pub(crate) fn encode(from: ClientId, context: &KeptContext) -> Vec<u8> {
    let data: Map<String, Value> = context
        .data
        .iter()
        .flat_map(|d| d.iter())
        .filter_map(|(k, v)| Some((k.clone(), to_json(v)?)))
        .collect();
    let groups: Vec<&str> = context.groups.iter().map(|g| &**g).collect();
    let record = json!({"from": from.to_string(), "groups": groups, "data": data});
    record.to_string().into_bytes()
}

/// A record read back: the client it was kept from and its context (data as
/// `serde_json::Value`s). `None` for bytes that are not such a record.
pub(crate) fn decode(bytes: &[u8]) -> Option<(ClientId, KeptContext)> {
    let Value::Object(mut record) = serde_json::from_slice(bytes).ok()? else {
        return None;
    };
    let from: ClientId = record.get("from")?.as_str()?.parse().ok()?;
    let groups = match record.remove("groups")? {
        Value::Array(groups) => groups
            .into_iter()
            .filter_map(|g| g.as_str().map(Arc::from))
            .collect(),
        _ => return None,
    };
    let data: HashMap<String, DataValue> = match record.remove("data")? {
        Value::Object(data) => data
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v) as DataValue))
            .collect(),
        _ => return None,
    };
    let data = (!data.is_empty()).then(|| Box::new(data));
    Some((from, KeptContext { groups, data }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::WorkerId;

    #[test]
    fn a_record_carries_groups_and_json_data() {
        let from = ClientId::new(3, WorkerId(1), 42).unwrap();
        let mut data: HashMap<String, DataValue> = HashMap::new();
        data.insert("name".into(), Arc::new("ann".to_owned()));
        data.insert("n".into(), Arc::new(json!({"a": [1, 2]})));
        data.insert("typed".into(), Arc::new(7u8));
        let context = KeptContext {
            groups: vec!["room".into(), "hall".into()],
            data: Some(Box::new(data)),
        };
        let (back, got) = decode(&encode(from, &context)).unwrap();
        assert_eq!(back, from);
        assert_eq!(got.groups, context.groups);
        let data = got.data.unwrap();
        let value = |k: &str| data.get(k).and_then(|v| v.downcast_ref::<Value>()).cloned();
        assert_eq!(value("name"), Some(json!("ann")));
        assert_eq!(value("n"), Some(json!({"a": [1, 2]})));
        assert!(
            !data.contains_key("typed"),
            "a value with no JSON form stays behind"
        );
        assert!(decode(b"{\"from\": 1}").is_none());
        assert!(decode(b"not json").is_none());
    }
}
