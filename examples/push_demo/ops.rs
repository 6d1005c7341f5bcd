//! The ops that act through the facade alone, not through the connection's context: they
//! run on the core loop that received them, or on a pool thread where they would wait for
//! other instances.

use corepush::{Answer, Error, Server};
use serde_json::Value;

use super::args::Args;

/// Why an op has no result.
pub(crate) enum Failure {
    /// Its call would wait for other instances, which only a pool thread may do. The facade
    /// says so before it sends anything.
    WouldBlock,
    /// The text of the error reply.
    Error(String),
}

impl From<String> for Failure {
    fn from(error: String) -> Self {
        Failure::Error(error)
    }
}

impl Failure {
    pub(crate) fn text(self) -> String {
        match self {
            Failure::WouldBlock => Error::WouldBlock.to_string(),
            Failure::Error(error) => error,
        }
    }
}

/// The ops that act through the facade alone — `server` is confined by `scope` and excludes
/// `except` — on the core loop that received them, or on a pool thread. On a cluster backend
/// (`cluster`) the queries answer for the whole cluster; everywhere `wait` asks for the
/// counted form of a send or close.
pub(crate) fn facade_op(
    a: &Args<'_>,
    server: &Server,
    cluster: bool,
) -> Result<Answer<Value>, Failure> {
    let op = a.str("op")?;
    let wait = a.flag("wait")?;
    // The fire-and-forget form counts this instance's part, the counted one the cluster's.
    macro_rules! push {
        ($method:ident($($arg:expr),*)) => {
            if wait {
                answered(server.cluster().$method($($arg),*), Value::from)
            } else {
                answered(server.$method($($arg),*).map(alone), Value::from)
            }
        };
    }
    match op {
        "send" => push!(send(a.value("data")?, a.ids("to")?)),
        "sendRaw" => push!(send_raw(a.str("text")?, a.ids("to")?)),
        "sendByFlag" => push!(send_by_flag(a.value("data")?, a.names("flag")?)),
        "sendRawByFlag" => push!(send_raw_by_flag(a.str("text")?, a.names("flag")?)),
        "sendToAll" => push!(send_to_all(a.value("data")?)),
        "sendRawToAll" => push!(send_raw_to_all(a.str("text")?)),
        "sendToGroup" => push!(send_to_group(a.names("group")?, a.value("data")?)),
        "sendRawToGroup" => push!(send_raw_to_group(a.names("group")?, a.str("text")?)),
        "close" => push!(close(a.ids("to")?)),
        "closeByFlag" => push!(close_by_flag(a.names("flag")?)),
        "exists" => {
            let id = a.id("to")?;
            ask(
                cluster,
                || server.cluster().exists(id),
                || server.exists(id),
                Value::from,
            )
        }
        "flagExists" => {
            let flag = a.str("flag")?;
            ask(
                cluster,
                || server.cluster().flag_exists(flag),
                || server.flag_exists(flag),
                Value::from,
            )
        }
        "connections" => ask(
            cluster,
            || server.cluster().connections(),
            || server.connections(),
            |ids| ids.iter().map(|id| Value::from(id.to_string())).collect(),
        ),
        "count" => ask(
            cluster,
            || server.cluster().connection_count(),
            || server.connection_count(),
            Value::from,
        ),
        "groupCount" => {
            let group = a.str("group")?;
            ask(
                cluster,
                || server.cluster().group_count(group),
                || server.group_count(group),
                Value::from,
            )
        }
        // Another connection's data (a connection's own never comes here).
        "get" => {
            let (key, to) = (a.str("key")?, a.id("to")?);
            ask(
                cluster,
                || server.cluster().data::<Value>(to, key),
                || server.data::<Value>(to, key),
                |value| value.unwrap_or(Value::Null),
            )
        }
        "set" => {
            let (key, value, to) = (a.str("key")?, a.value("value")?, a.id("to")?);
            ask(
                cluster,
                || server.cluster().set_data(to, key, value),
                || server.set_data(to, key, value.clone()),
                Value::from,
            )
        }
        // This instance's core loops, on every backend.
        "sendMessage" => {
            let (action, data) = (a.str("action")?, a.value("data")?);
            let sent = server.send_message(action, data, a.workers()?);
            answered(sent.map(alone), Value::from)
        }
        "sendMessageRaw" => {
            let sent = server.send_message_raw(a.str("text")?, a.workers()?);
            answered(sent.map(alone), Value::from)
        }
        // Handed over by the core loop, with `to` set to the connection that asked.
        "restore" => super::restore::op(server, a.id("to")?, a.str("flag")?),
        other => Err(format!("unknown op {other:?}").into()),
    }
}

/// An answer of this instance alone.
pub(crate) fn alone<T>(value: T) -> Answer<T> {
    Answer {
        value,
        complete: true,
    }
}

/// A facade call's outcome as an op's: `WouldBlock` kept apart, other errors as their text.
fn answered<T>(
    outcome: corepush::Result<Answer<T>>,
    json: impl FnOnce(T) -> Value,
) -> Result<Answer<Value>, Failure> {
    match outcome {
        Ok(answer) => Ok(Answer {
            value: json(answer.value),
            complete: answer.complete,
        }),
        Err(Error::WouldBlock) => Err(Failure::WouldBlock),
        Err(e) => Err(Failure::Error(e.to_string())),
    }
}

/// A query: for the whole cluster on a cluster backend, else the plain facade's.
fn ask<T>(
    cluster: bool,
    whole: impl FnOnce() -> corepush::Result<Answer<T>>,
    here: impl FnOnce() -> T,
    json: impl FnOnce(T) -> Value,
) -> Result<Answer<Value>, Failure> {
    let outcome = if cluster { whole() } else { Ok(alone(here())) };
    answered(outcome, json)
}
