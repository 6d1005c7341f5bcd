//! The arguments of a request, read with error messages that name the argument.

use corepush::{ClientId, Context, Server, WorkerId, Workers};
use serde_json::{Map, Value};

/// The arguments of one request, read with error messages that name the argument.
pub(crate) struct Args<'a>(pub(crate) &'a Map<String, Value>);

impl Args<'_> {
    /// An optional argument: absent and `null` are the same.
    pub(crate) fn opt(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    /// An optional boolean: absent and `null` are false.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, String> {
        match self.opt(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("{key} must be true or false")),
        }
    }

    pub(crate) fn value(&self, key: &str) -> Result<&Value, String> {
        self.0.get(key).ok_or_else(|| format!("missing {key}"))
    }

    pub(crate) fn str(&self, key: &str) -> Result<&str, String> {
        match self.opt(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("{key} must be a string")),
            None => Err(format!("missing {key}")),
        }
    }

    /// One value or an array of values, each converted by `one`.
    fn many<T>(
        &self,
        key: &str,
        one: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        match self.opt(key) {
            Some(Value::Array(items)) => items.iter().map(one).collect(),
            Some(v) => one(v).map(|t| vec![t]),
            None => Err(format!("missing {key}")),
        }
    }

    pub(crate) fn ids(&self, key: &str) -> Result<Vec<ClientId>, String> {
        self.many(key, |v| client_id(key, v))
    }

    pub(crate) fn id(&self, key: &str) -> Result<ClientId, String> {
        client_id(key, self.opt(key).ok_or_else(|| format!("missing {key}"))?)
    }

    pub(crate) fn opt_id(&self, key: &str) -> Result<Option<ClientId>, String> {
        self.opt(key).map(|v| client_id(key, v)).transpose()
    }

    pub(crate) fn names(&self, key: &str) -> Result<Vec<String>, String> {
        self.many(key, |v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(format!("{key} must be a string or an array of strings")),
        })
    }

    pub(crate) fn workers(&self) -> Result<Workers, String> {
        if self.opt("workers").is_none() {
            return Ok(Workers::All);
        }
        let list = self.many("workers", |v| {
            v.as_u64()
                .and_then(|w| u16::try_from(w).ok())
                .map(WorkerId)
                .ok_or_else(|| "workers must be a core loop index or an array of them".to_owned())
        })?;
        Ok(Workers::Some(list))
    }

    /// The facade the op goes through: confined by `scope`, excluding `except`.
    pub(crate) fn facade(&self, ctx: &Context<'_>) -> Result<Server, String> {
        let mut server = match self.opt("scope") {
            None => ctx.server().clone(),
            Some(Value::String(s)) if s == "worker" => {
                ctx.server().this_worker().map_err(|e| e.to_string())?
            }
            Some(other) => return Err(format!("unknown scope {other} (only \"worker\")")),
        };
        if self.opt("except").is_some() {
            server = server.except(self.ids("except")?);
        }
        Ok(server)
    }
}

fn client_id(key: &str, value: &Value) -> Result<ClientId, String> {
    match value {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("{key}: {s:?} is not a client id (a non-zero decimal string)")),
        Value::Number(_) => Err(format!(
            "{key}: client ids are decimal strings, not JSON numbers (which lose precision)"
        )),
        _ => Err(format!(
            "{key} must be a client id string or an array of them"
        )),
    }
}
