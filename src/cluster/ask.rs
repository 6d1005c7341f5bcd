//! Cluster-wide requests — queries, and sends and closes that count across the cluster — and
//! the answers instances give, as a backend gathers them for the facade.

use super::wire::{self, Query};
use crate::id::ClientId;
use crate::target::{Payload, Target, Workers};

/// What the facade asks of the whole cluster.
#[derive(Debug)]
pub(crate) enum Request<'a> {
    Query(Query<'a>),
    /// A send that answers how many connections it was queued to, on every instance.
    Push {
        target: Target,
        payload: Payload<'a>,
    },
    /// A close that answers how many connections it closed, on every instance.
    Close {
        target: Target,
    },
    /// A worker message to the chosen core loops of every instance, answering how many core
    /// loops it reached.
    Message {
        action: Option<&'a str>,
        data: &'a [u8],
        workers: &'a Workers,
    },
}

/// One instance's answer, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Bool(bool),
    Count(u64),
    Ids(Vec<ClientId>),
    Names(Vec<String>),
    Name(Option<String>),
    Json(Option<Vec<u8>>),
}

impl Value {
    pub(crate) fn from_wire(answer: &wire::Answer<'_>) -> Self {
        match answer {
            wire::Answer::Bool(b) => Value::Bool(*b),
            wire::Answer::Count(n) => Value::Count(*n),
            wire::Answer::Ids(ids) => Value::Ids(ids.clone()),
            wire::Answer::Names(names) => {
                Value::Names(names.iter().map(|n| (*n).to_owned()).collect())
            }
            wire::Answer::Name(name) => Value::Name(name.map(str::to_owned)),
            wire::Answer::Json(json) => Value::Json(json.map(<[u8]>::to_vec)),
        }
    }

    pub(crate) fn to_wire(&self) -> wire::Answer<'_> {
        match self {
            Value::Bool(b) => wire::Answer::Bool(*b),
            Value::Count(n) => wire::Answer::Count(*n),
            Value::Ids(ids) => wire::Answer::Ids(ids.clone()),
            Value::Names(names) => wire::Answer::Names(names.iter().map(String::as_str).collect()),
            Value::Name(name) => wire::Answer::Name(name.as_deref()),
            Value::Json(json) => wire::Answer::Json(json.as_deref()),
        }
    }
}

/// The answers gathered for one request: one per instance that answered (this one
/// included), and whether every live instance answered before the deadline.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gathered {
    pub(crate) values: Vec<Value>,
    pub(crate) complete: bool,
}

impl Gathered {
    /// The answers of a single instance that is the whole deployment.
    pub(crate) fn alone(value: Value) -> Self {
        Gathered {
            values: vec![value],
            complete: true,
        }
    }

    /// Whether any instance answered true.
    pub(crate) fn any(&self) -> bool {
        self.values.iter().any(|v| matches!(v, Value::Bool(true)))
    }

    /// The sum of the counts.
    pub(crate) fn sum(&self) -> u64 {
        self.values
            .iter()
            .map(|v| match v {
                Value::Count(n) => *n,
                _ => 0,
            })
            .sum()
    }

    /// Every id answered, sorted, each once.
    pub(crate) fn ids(&self) -> Vec<ClientId> {
        let mut out: Vec<ClientId> = self
            .values
            .iter()
            .flat_map(|v| match v {
                Value::Ids(ids) => ids.clone(),
                _ => Vec::new(),
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Every name answered, sorted, each once.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .values
            .iter()
            .flat_map(|v| match v {
                Value::Names(names) => names.clone(),
                _ => Vec::new(),
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The first name answered (only the owner of a client has one).
    pub(crate) fn name(&self) -> Option<String> {
        self.values.iter().find_map(|v| match v {
            Value::Name(Some(n)) => Some(n.clone()),
            _ => None,
        })
    }

    /// The first JSON value answered (only the owner of a client has one).
    pub(crate) fn json(&self) -> Option<Vec<u8>> {
        self.values.iter().find_map(|v| match v {
            Value::Json(Some(j)) => Some(j.clone()),
            _ => None,
        })
    }
}
