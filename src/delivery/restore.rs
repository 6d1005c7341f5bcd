//! Restore through the delivery door: the registry's one-step restore, with the core loop's
//! `on_restore` handed over under the same locks.

use super::{Delivery, Refused};
use crate::error::Result;
use crate::id::ClientId;
use crate::mailbox::{Command, Offer};
use crate::registry::{KeepHook, Source};
use crate::restore::Restored;
use crate::target::Scope;

impl Delivery {
    /// Gives client `id` the context `source` names (see [`Registry::restore`]), handing its
    /// core loop the `on_restore` call under the same locks: a restore that happened is
    /// always told; one the mailbox had no room for did not happen.
    ///
    /// [`Registry::restore`]: crate::registry::Registry::restore
    pub(crate) fn restore(
        &self,
        id: ClientId,
        flag: &str,
        scope: Scope<'_>,
        source: Source,
    ) -> Result<Restored> {
        self.check_running()?;
        let Some(mailbox) = self
            .mailbox(id.worker())
            .filter(|_| self.visible(id, scope))
        else {
            return Ok(Restored::Nothing);
        };
        let (server, max) = (
            self.server.index,
            self.server.config.max_groups_per_connection,
        );
        let mut deadline = None;
        loop {
            let done = self
                .server
                .registry
                .restore(id, flag, max, source.clone(), |from| {
                    match mailbox.offer(Command::Restored { server, id, from }) {
                        Offer::Queued => Ok(()),
                        Offer::Full => Err(Refused::Full),
                        Offer::Stopped => Err(Refused::Stopped),
                    }
                });
            match done {
                Ok(Some(done)) => {
                    return Ok(Restored::Done {
                        from: done.from,
                        groups: done.groups,
                    });
                }
                Ok(None) => return Ok(Restored::Nothing),
                Err(refused) => self.wait(mailbox, refused, &mut deadline, 0)?,
            }
        }
    }

    /// Whether the server keeps closing flag holders' contexts.
    pub(crate) fn is_keeping(&self) -> bool {
        self.server.registry.is_keeping()
    }

    /// How long closing flag holders' contexts are kept, if they are.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store keeps copies
    pub(crate) fn keep_context(&self) -> Option<std::time::Duration> {
        self.server.config.keep_context
    }

    /// Sets the hook told of every context kept (a cluster backend's copy into its engine).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store keeps copies
    pub(crate) fn set_keep_hook(&self, hook: KeepHook) {
        self.server.registry.set_keep_hook(hook);
    }
}
