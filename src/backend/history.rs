//! A backend with a history ([`crate::history`]): the backend as built, whose pushes to kept
//! groups and flags go through a [`Keeper`], which also answers recoveries and positions.
//! Local and Redis keep history; the Channel and Gateway backends refuse a history at start
//! (their recoveries answer "not recovered", as with no history).

use std::sync::Arc;

use super::{Backend, Built};
use crate::cluster::ask::{Gathered, Request, Value};
use crate::config::{BackendConfig, ServerConfig};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::history::local::LocalKeeper;
use crate::history::{Keeper, Kind, Recovery, StreamPosition};
use crate::id::ClientId;
use crate::registry::DataValue;
use crate::restore::Restored;
use crate::target::{Payload, Scope, Target, Workers};

/// Puts the server's history, if it keeps one, in front of the backend as built.
pub(crate) fn keep(built: Built, config: &ServerConfig, delivery: &Arc<Delivery>) -> Result<Built> {
    let history = &config.history;
    if history.is_off() {
        return Ok(built);
    }
    history.validate()?;
    let keeper: Arc<dyn Keeper> = match &config.backend {
        BackendConfig::Local => Arc::new(LocalKeeper::new(history.clone(), delivery.clone())),
        #[cfg(feature = "redis")]
        BackendConfig::Redis(redis) => {
            let (keeper, thread) = crate::history::redis::RedisKeeper::start(
                history.clone(),
                &redis.url,
                &format!("{}:{}", redis.prefix, config.name),
                delivery.clone(),
            )?;
            let mut threads = built.threads;
            threads.push(thread);
            return Ok(Built {
                backend: Arc::new(WithHistory {
                    inner: built.backend,
                    keeper,
                }),
                local: built.local,
                threads,
            });
        }
        BackendConfig::Fpm => return Ok(built),
        _ => {
            return Err(Error::Config(format!(
                "server {:?}: history is kept on the Local and Redis backends only",
                config.name
            )));
        }
    };
    Ok(Built {
        backend: Arc::new(WithHistory {
            inner: built.backend,
            keeper,
        }),
        local: built.local,
        threads: built.threads,
    })
}

/// A backend whose pushes to kept names go through a keeper.
#[derive(Debug)]
struct WithHistory {
    inner: Arc<dyn Backend>,
    keeper: Arc<dyn Keeper>,
}

impl Backend for WithHistory {
    fn push(&self, target: Target, payload: Payload<'_>, scope: Scope<'_>) -> Result<usize> {
        match self.keeper.push(&target, payload, scope) {
            Some(n) => n,
            None => self.inner.push(target, payload, scope),
        }
    }
    fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize> {
        self.inner.close(target, scope)
    }
    fn send_message(
        &self,
        action: Option<&str>,
        data: &[u8],
        workers: &Workers,
        scope: Scope<'_>,
    ) -> Result<usize> {
        self.inner.send_message(action, data, workers, scope)
    }
    fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool {
        self.inner.exists(id, scope)
    }
    fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId> {
        self.inner.flag_members(flag, scope)
    }
    fn flag_of(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        self.inner.flag_of(id, scope)
    }
    fn connections(&self, scope: Scope<'_>) -> Vec<ClientId> {
        self.inner.connections(scope)
    }
    fn connection_count(&self, scope: Scope<'_>) -> usize {
        self.inner.connection_count(scope)
    }
    fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId> {
        self.inner.group_members(group, scope)
    }
    fn group_names(&self, scope: Scope<'_>) -> Vec<String> {
        self.inner.group_names(scope)
    }
    fn bind(&self, id: ClientId, flag: &str, exclusive: bool, scope: Scope<'_>) -> bool {
        self.inner.bind(id, flag, exclusive, scope)
    }
    fn unbind(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        self.inner.unbind(id, scope)
    }
    fn join(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        self.inner.join(id, group, scope)
    }
    fn leave(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        self.inner.leave(id, group, scope)
    }
    fn groups_of(&self, id: ClientId, scope: Scope<'_>) -> Vec<String> {
        self.inner.groups_of(id, scope)
    }
    fn set_data(&self, id: ClientId, key: &str, value: DataValue, scope: Scope<'_>) -> bool {
        self.inner.set_data(id, key, value, scope)
    }
    fn data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> Option<DataValue> {
        self.inner.data(id, key, scope)
    }
    fn remove_data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> bool {
        self.inner.remove_data(id, key, scope)
    }
    /// A counted push to kept names is kept like any other: it counts this instance's
    /// connections, and where other instances are live (which deliver it from the history's
    /// own channel, uncounted) the answer says it is not complete.
    fn gather(&self, request: &Request<'_>, scope: Scope<'_>) -> Result<Gathered> {
        if let Request::Push { target, payload } = request {
            if let Some(n) = self.keeper.push(target, *payload, scope) {
                let mut gathered = Gathered::alone(Value::Count(n? as u64));
                gathered.complete = self.inner.instances().len() <= 1;
                return Ok(gathered);
            }
        }
        self.inner.gather(request, scope)
    }
    fn instances(&self) -> Vec<u16> {
        self.inner.instances()
    }
    fn restore(&self, id: ClientId, flag: &str, scope: Scope<'_>) -> Result<Restored> {
        self.inner.restore(id, flag, scope)
    }
    fn recover(
        &self,
        id: ClientId,
        kind: Kind,
        name: &str,
        since: Option<&StreamPosition>,
        scope: Scope<'_>,
    ) -> Result<Recovery> {
        self.keeper.recover(id, kind, name, since, scope)
    }
    fn position(&self, kind: Kind, name: &str) -> Result<StreamPosition> {
        self.keeper.position(kind, name)
    }
}
