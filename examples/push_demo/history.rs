//! The history ops: `join` and `bind` with `"position": true`, and `recover`. They act for
//! the connection that sent them, through the facade, on the core loop that received them or
//! — where the history lives in Redis, which a core loop must not wait for — on a pool
//! thread.

use corepush::{Answer, ClientId, Error, Recovery, Server, StreamPosition};
use serde_json::{Value, json};

use super::args::Args;
use super::ops::{Failure, alone};

/// The outcome of a history op, or `None` for a request that is not one (`join` and `bind`
/// without `position` are plain ops).
pub(crate) fn history_op(
    a: &Args<'_>,
    server: &Server,
    client: ClientId,
) -> Option<Result<Answer<Value>, Failure>> {
    let op = a.str("op").ok()?;
    let positioned = || a.flag("position").unwrap_or(false);
    match op {
        "join" if positioned() => Some(at(a
            .str("group")
            .map_err(Failure::from)
            .and_then(|group| done(server.join_recovering(client, group, None))))),
        "bind" if positioned() => Some(at(a
            .str("flag")
            .map_err(Failure::from)
            .and_then(|flag| done(server.bind_recovering(client, flag, None))))),
        "recover" => Some(recover(a, server, client)),
        _ => None,
    }
}

fn recover(a: &Args<'_>, server: &Server, client: ClientId) -> Result<Answer<Value>, Failure> {
    let since = StreamPosition {
        epoch: a.str("epoch")?.to_owned(),
        offset: a
            .opt("offset")
            .and_then(Value::as_u64)
            .ok_or_else(|| "offset must be a whole number of 0 or more".to_owned())?,
    };
    let recovery = match (a.opt("group"), a.opt("flag")) {
        (Some(_), None) => done(server.join_recovering(client, a.str("group")?, Some(&since)))?,
        (None, Some(_)) => done(server.bind_recovering(client, a.str("flag")?, Some(&since)))?,
        _ => {
            return Err("recover takes a group or a flag (one of them)"
                .to_owned()
                .into());
        }
    };
    Ok(alone(if recovery.recovered {
        json!({"recovered": true, "missed": recovery.missed})
    } else {
        json!({"recovered": false})
    }))
}

/// The position part of an answer.
fn at(recovery: Result<Recovery, Failure>) -> Result<Answer<Value>, Failure> {
    let p = recovery?.position;
    Ok(alone(json!({"epoch": p.epoch, "offset": p.offset})))
}

fn done(outcome: corepush::Result<Recovery>) -> Result<Recovery, Failure> {
    match outcome {
        Ok(recovery) => Ok(recovery),
        Err(Error::WouldBlock) => Err(Failure::WouldBlock),
        Err(e) => Err(Failure::Error(e.to_string())),
    }
}
