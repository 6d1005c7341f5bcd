//! The Local backend: every core loop of this process, through their mailboxes.
//!
//! A push is framed once; each core loop that owns a receiver gets one command carrying the
//! shared frame and the ids it owns (or "all, except these"), so a broadcast costs one
//! channel message per core loop, not one per client.

use std::sync::Arc;

use super::{Backend, Payload, Scope, Target};
use crate::conn::frame;
use crate::error::Result;
use crate::facade::Workers;
use crate::id::{ClientId, WorkerId};
use crate::registry::DataValue;
use crate::stats::Stats;
use crate::worker::shared::{Command, LocalTarget, RuntimeShared, ServerShared};

/// Delivers into the core loops of one runtime, for one of its servers.
#[derive(Debug)]
pub(crate) struct LocalBackend {
    runtime: Arc<RuntimeShared>,
    server: Arc<ServerShared>,
}

impl LocalBackend {
    pub(crate) fn new(runtime: Arc<RuntimeShared>, server: usize) -> Self {
        let server = runtime.servers[server].clone();
        LocalBackend { runtime, server }
    }

    fn is_ours(&self, id: ClientId) -> bool {
        id.instance() == self.runtime.instance
    }

    /// The connected, in-scope, not excluded clients among `target`, sorted and unique.
    /// `None` for `All`.
    fn resolve(&self, target: Target, scope: Scope<'_>) -> Option<Vec<ClientId>> {
        let reg = &self.server.registry;
        let mut ids = match target {
            Target::All => return None,
            Target::Clients(ids) => ids,
            Target::Flags(flags) => flags.iter().flat_map(|f| reg.flag_members(f)).collect(),
            Target::Groups(groups) => groups.iter().flat_map(|g| reg.group_members(g)).collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&id| {
            self.is_ours(id) && scope.covers(id) && !scope.except.contains(&id) && reg.exists(id)
        });
        Some(ids)
    }

    fn workers_in(&self, scope: Scope<'_>) -> impl Iterator<Item = WorkerId> + '_ {
        let only = scope.worker;
        (0..self.runtime.workers())
            .map(|w| WorkerId(w as u16))
            .filter(move |w| only.is_none_or(|o| o == *w))
    }

    /// Sends one command per core loop that has receivers; returns how many receivers.
    fn dispatch(
        &self,
        target: Target,
        scope: Scope<'_>,
        mut make: impl FnMut(LocalTarget) -> Command,
    ) -> usize {
        let reg = &self.server.registry;
        match self.resolve(target, scope) {
            None => {
                let except: Arc<[ClientId]> = scope.except.into();
                let mut total = 0;
                for w in self.workers_in(scope) {
                    let excluded = except
                        .iter()
                        .filter(|&&id| id.worker() == w && self.is_ours(id) && reg.exists(id))
                        .count();
                    let n = reg.count(Some(w)).saturating_sub(excluded);
                    if n > 0
                        && self.mailbox(
                            w,
                            make(LocalTarget::All {
                                except: except.clone(),
                            }),
                        )
                    {
                        total += n;
                    }
                }
                total
            }
            Some(ids) => {
                let mut total = 0;
                let mut rest = ids.as_slice();
                // Sorted ids group by worker (the worker field sits above slot and generation).
                while let Some(first) = rest.first() {
                    let w = first.worker();
                    let n = rest.iter().take_while(|id| id.worker() == w).count();
                    let (mine, tail) = rest.split_at(n);
                    if self.mailbox(w, make(LocalTarget::Ids(mine.to_vec()))) {
                        total += n;
                    }
                    rest = tail;
                }
                total
            }
        }
    }

    fn mailbox(&self, w: WorkerId, cmd: Command) -> bool {
        self.runtime
            .mailboxes
            .get(w.index())
            .is_some_and(|m| m.send(cmd))
    }
}

impl Backend for LocalBackend {
    fn push(&self, target: Target, payload: Payload<'_>, scope: Scope<'_>) -> Result<usize> {
        let frame = Arc::new(frame(
            self.server.config.protocol,
            payload.is_text,
            payload.bytes,
        )?);
        let server = self.server.index;
        Ok(self.dispatch(target, scope, |target| Command::Push {
            server,
            frame: frame.clone(),
            target,
        }))
    }

    fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize> {
        let server = self.server.index;
        Ok(self.dispatch(target, scope, |target| Command::Close { server, target }))
    }

    fn send_message(&self, action: Option<&str>, data: &[u8], workers: &Workers) -> Result<usize> {
        let action: Option<Arc<str>> = action.map(Arc::from);
        let data: Arc<[u8]> = data.into();
        let mut reached = 0;
        for w in workers.resolve(self.runtime.workers()) {
            let cmd = Command::Message {
                server: self.server.index,
                action: action.clone(),
                data: data.clone(),
            };
            if self.mailbox(w, cmd) {
                reached += 1;
            }
        }
        Ok(reached)
    }

    fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool {
        self.is_ours(id) && scope.covers(id) && self.server.registry.exists(id)
    }

    fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId> {
        let mut ids = self.server.registry.flag_members(flag);
        ids.retain(|&id| scope.covers(id) && !scope.except.contains(&id));
        ids.sort_unstable();
        ids
    }

    fn flag_of(&self, id: ClientId) -> Option<String> {
        self.server.registry.flag_of(id).map(|f| f.to_string())
    }

    fn connections(&self, scope: Scope<'_>) -> Vec<ClientId> {
        let mut ids = self.server.registry.ids(scope.worker);
        ids.retain(|id| !scope.except.contains(id));
        ids
    }

    fn connection_count(&self, scope: Scope<'_>) -> usize {
        if scope.except.is_empty() {
            self.server.registry.count(scope.worker)
        } else {
            self.connections(scope).len()
        }
    }

    fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId> {
        let mut ids = self.server.registry.group_members(group);
        ids.retain(|&id| scope.covers(id) && !scope.except.contains(&id));
        ids
    }

    fn group_names(&self) -> Vec<String> {
        self.server.registry.group_names()
    }

    fn set_data(&self, id: ClientId, key: &str, value: DataValue) -> bool {
        self.is_ours(id) && self.server.registry.set_data(id, key, value)
    }

    fn data(&self, id: ClientId, key: &str) -> Option<DataValue> {
        if self.is_ours(id) {
            self.server.registry.data(id, key)
        } else {
            None
        }
    }

    fn remove_data(&self, id: ClientId, key: &str) -> bool {
        self.is_ours(id) && self.server.registry.remove_data(id, key)
    }

    fn workers(&self) -> usize {
        self.runtime.workers()
    }

    fn runtime_id(&self) -> Option<u64> {
        Some(self.runtime.id)
    }

    fn stats(&self) -> Stats {
        self.server.stats()
    }
}
