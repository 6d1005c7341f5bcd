//! The `restore` op: takes over the context a closed connection kept under a flag (with
//! `--keep-ms`). On a cluster backend the context lives in the engine, so the call waits for
//! it and runs on a pool thread.

use corepush::{Answer, ClientId, Error, Restored, Server};
use serde_json::{Value, json};

use super::ops::{Failure, alone};

/// Restores into client `me`: `{"restored": true, "from": ID, "groups": [...]}` or
/// `{"restored": false}`.
pub(crate) fn op(server: &Server, me: ClientId, flag: &str) -> Result<Answer<Value>, Failure> {
    match server.restore(me, flag) {
        Ok(Restored::Done { from, groups }) => Ok(alone(json!({
            "restored": true,
            "from": from.to_string(),
            "groups": groups,
        }))),
        Ok(Restored::Nothing) => Ok(alone(json!({"restored": false}))),
        Err(Error::WouldBlock) => Err(Failure::WouldBlock),
        Err(e) => Err(Failure::Error(e.to_string())),
    }
}
