//! Restore on a cluster backend: the context is taken from the engine (once across the
//! cluster), then given to the connection on this instance as the Local backend does.

use std::sync::Arc;

use log::warn;

use super::ClusterBackend;
use crate::cluster::kept::{self, KeptStore};
use crate::cluster::wire::Query;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::id::ClientId;
use crate::registry::Source;
use crate::restore::Restored;
use crate::target::Scope;

impl ClusterBackend {
    /// Keeps closed contexts in `store` too: every context this instance keeps is copied
    /// there, and restores take from there.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store keeps copies
    pub(crate) fn keeping(mut self, store: Arc<dyn KeptStore>, delivery: &Delivery) -> Self {
        let copy = store.clone();
        delivery.set_keep_hook(Box::new(move |flag, from, context| {
            copy.keep(flag, kept::encode(from, context));
        }));
        self.kept = Some(store);
        self
    }

    /// As [`Backend::restore`](crate::backend::Backend::restore), from the engine.
    pub(super) fn restore_kept(
        &self,
        id: ClientId,
        flag: &str,
        scope: Scope<'_>,
    ) -> Result<Restored> {
        let Some(store) = &self.kept else {
            return if self.delivery().is_keeping() {
                Err(Error::Unsupported(
                    "restore on this cluster backend: closed contexts are kept on the Local \
                     and Redis backends only"
                        .into(),
                ))
            } else {
                Ok(Restored::Nothing)
            };
        };
        self.delivery().check_running()?;
        if !self.delivery().exists(id, scope) {
            return Ok(Restored::Nothing);
        }
        self.may_wait()?;
        // Held by a live connection of any instance: nothing to restore.
        let everyone = Scope {
            worker: None,
            except: &[],
        };
        let holders = self.query(&Query::FlagMembers(flag), everyone)?.ids();
        if holders.iter().any(|&h| h != id) {
            return Ok(Restored::Nothing);
        }
        let Some(record) = store.take(flag)? else {
            return Ok(Restored::Nothing);
        };
        let Some((from, context)) = kept::decode(&record) else {
            warn!("the context kept under flag {flag:?} is not a record; dropped");
            return Ok(Restored::Nothing);
        };
        let given = self
            .delivery()
            .restore(id, flag, scope, Source::Given(from, context));
        // Taken but not given (the connection closed, or a connection of this instance bound
        // the flag, in the meantime): kept again for another restore.
        if !matches!(given, Ok(Restored::Done { .. })) {
            store.put_back(flag, record);
        }
        given
    }
}
