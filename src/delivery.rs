//! The one door into this instance's core loops, for one server: every backend delivers
//! through it — the Local backend is nothing more, and a cluster backend is this plus the
//! threads that carry calls between instances.
//!
//! A push is framed once; each core loop that owns a receiver gets one command carrying the
//! shared frame and the ids it owns (or "all, except these"), so a broadcast costs one
//! channel message per core loop, not one per client. Each core loop's receivers are counted
//! under its table lock while the command is handed over (see [`crate::registry`]), so the
//! count is exactly the number of connections the message is queued to.

use std::sync::Arc;
use std::time::Instant;

use crate::codec::{Frame, SharedFrame, frame};
use crate::error::{Error, Result};
use crate::id::{ClientId, WorkerId};
use crate::mailbox::{Command, LocalTarget, Mailbox, Offer, RemoteEvent, current_worker_runtime};
use crate::registry::{DataValue, Live};
use crate::shared::{Drain, RuntimeShared, ServerShared};
use crate::stats::{Stats, add};
use crate::target::{Payload, Scope, Target, Workers};

mod restore;

/// Delivers into the core loops of one runtime, for one of its servers.
#[derive(Debug)]
pub(crate) struct Delivery {
    runtime: Arc<RuntimeShared>,
    server: Arc<ServerShared>,
}

/// Why a command was not handed over.
enum Refused {
    Full,
    Stopped,
}

impl Delivery {
    pub(crate) fn new(runtime: Arc<RuntimeShared>, server: usize) -> Self {
        let server = runtime.servers[server].clone();
        Delivery { runtime, server }
    }

    fn is_ours(&self, id: ClientId) -> bool {
        id.instance() == self.runtime.instance
    }

    /// Whether the handle's scope lets it see this client at all.
    fn visible(&self, id: ClientId, scope: Scope<'_>) -> bool {
        self.is_ours(id) && scope.covers(id) && !scope.except.contains(&id)
    }

    /// Hands a client event from a gateway to the core loop that serves its client (the same
    /// one for every event of a client), waiting for room up to the mailbox timeout. Called
    /// by a business process's gateway links, never on a core loop.
    pub(crate) fn remote(&self, event: RemoteEvent) -> Result<()> {
        let workers = self.runtime.workers().max(1) as u64;
        let w = (event.id().as_u64() % workers) as usize;
        let Some(mailbox) = self.runtime.mailboxes.get(w) else {
            return Err(Error::Shutdown);
        };
        let cmd = Command::Remote {
            server: self.server.index,
            event,
        };
        match mailbox.send_within(cmd, self.runtime.mailbox_timeout) {
            Offer::Queued => Ok(()),
            Offer::Full => {
                add(&self.server.shared_counters.mailbox_timeouts, 1);
                Err(Error::MailboxFull { queued: 0 })
            }
            Offer::Stopped => Err(Error::Shutdown),
        }
    }

    /// Tells every core loop that the link to `gateway` broke (see [`Command::Unlinked`]).
    pub(crate) fn unlinked(&self, gateway: u16) {
        for mailbox in &self.runtime.mailboxes {
            let cmd = Command::Unlinked {
                server: self.server.index,
                gateway,
            };
            // Only at shutdown can this fail, and then nothing is left to forget.
            let _ = mailbox.send_within(cmd, self.runtime.mailbox_timeout);
        }
    }

    /// Registers work to finish before the core loops stop (see [`Drain`]).
    pub(crate) fn add_drain(&self, drain: Arc<dyn Drain>) {
        self.runtime.drains.lock().push(drain);
    }

    /// Returns once every core loop has carried out every command handed to it before this
    /// call, or false at `deadline`. From a thread that is not a core loop.
    pub(crate) fn barrier(&self, deadline: Instant) -> bool {
        let (tx, rx) = crossbeam_channel::bounded(self.runtime.mailboxes.len());
        let mut asked = 0;
        for mailbox in &self.runtime.mailboxes {
            let wait = deadline.saturating_duration_since(Instant::now());
            if let Offer::Queued = mailbox.send_within(Command::Barrier(tx.clone()), wait) {
                asked += 1;
            }
        }
        (0..asked).all(|_| rx.recv_deadline(deadline).is_ok())
            && asked == self.runtime.mailboxes.len()
    }

    /// Whether shutdown was asked for (its drains may still run).
    pub(crate) fn is_leaving(&self) -> bool {
        self.runtime.is_leaving()
    }

    /// Whether the runtime is shutting down (for a cluster transport's threads).
    pub(crate) fn is_stopping(&self) -> bool {
        self.runtime.is_stopping()
    }

    /// The server's name (for a cluster transport's channels).
    pub(crate) fn server_name(&self) -> &str {
        &self.server.config.name
    }

    /// This instance's number in a cluster (the instance field of its client ids).
    pub(crate) fn instance(&self) -> u16 {
        self.runtime.instance
    }

    /// Fails once the runtime is shutting down.
    pub(crate) fn check_running(&self) -> Result<()> {
        if self.runtime.is_stopping() {
            Err(Error::Shutdown)
        } else {
            Ok(())
        }
    }

    /// The in-scope, not excluded candidates among `target`, sorted and unique (not yet
    /// checked for being connected). `None` for `All`.
    fn candidates(&self, target: Target, scope: Scope<'_>) -> Option<Vec<ClientId>> {
        let reg = &self.server.registry;
        let mut ids = match target {
            Target::All => return None,
            Target::Clients(ids) => ids,
            Target::Flags(flags) => flags.iter().flat_map(|f| reg.flag_members(f)).collect(),
            Target::Groups(groups) => groups.iter().flat_map(|g| reg.group_members(g)).collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids.retain(|&id| self.visible(id, scope));
        Some(ids)
    }

    fn workers_in(&self, scope: Scope<'_>) -> impl Iterator<Item = WorkerId> + '_ {
        let only = scope.worker;
        (0..self.runtime.workers())
            .map(|w| WorkerId(w as u16))
            .filter(move |w| only.is_none_or(|o| o == *w))
    }

    fn mailbox(&self, w: WorkerId) -> Option<&Mailbox> {
        self.runtime.mailboxes.get(w.index())
    }

    /// Hands each core loop with receivers among `target` one command made by `make`; returns
    /// how many connections it was queued to.
    fn each_worker(
        &self,
        target: Target,
        scope: Scope<'_>,
        make: impl Fn(LocalTarget) -> Command,
    ) -> Result<usize> {
        let mut total = 0;
        // One deadline for the whole call, however many mailboxes it waits for.
        let mut deadline = None;
        match self.candidates(target, scope) {
            None => {
                let except: Arc<[ClientId]> = scope.except.into();
                for w in self.workers_in(scope) {
                    total += self.counted(w, total, &mut deadline, |live| {
                        let excluded = except.iter().filter(|&&id| live.contains(id)).count();
                        let n = live.len().saturating_sub(excluded);
                        let except = except.clone();
                        (n > 0).then(|| (n, make(LocalTarget::All { except })))
                    })?;
                }
            }
            Some(ids) => {
                // Sorted ids group by worker (the worker field sits above the serial).
                for mine in ids.chunk_by(|a, b| a.worker() == b.worker()) {
                    total += self.counted(mine[0].worker(), total, &mut deadline, |live| {
                        let ids: Vec<ClientId> = mine
                            .iter()
                            .copied()
                            .filter(|&id| live.contains(id))
                            .collect();
                        (!ids.is_empty()).then(|| (ids.len(), make(LocalTarget::Ids(ids))))
                    })?;
                }
            }
        }
        Ok(total)
    }

    /// Counts core loop `w`'s receivers and hands the command over, both under its table
    /// lock; waits for room in a full mailbox (see [`Self::wait`]). `done` is what the call
    /// queued on other core loops so far, for the error.
    fn counted(
        &self,
        w: WorkerId,
        done: usize,
        deadline: &mut Option<Instant>,
        mut make: impl FnMut(&Live<'_>) -> Option<(usize, Command)>,
    ) -> Result<usize> {
        let Some(mailbox) = self.mailbox(w) else {
            return Ok(0);
        };
        loop {
            let outcome = self.server.registry.with_live(w, |live| {
                let Some((n, cmd)) = make(live) else {
                    return Ok(0);
                };
                match mailbox.offer(cmd) {
                    Offer::Queued => Ok(n),
                    Offer::Full => Err(Refused::Full),
                    Offer::Stopped => Err(Refused::Stopped),
                }
            });
            match outcome {
                Ok(n) => return Ok(n),
                Err(refused) => self.wait(mailbox, refused, deadline, done)?,
            }
        }
    }

    /// After a mailbox refused a command: waits for room up to
    /// [`RuntimeConfig::mailbox_timeout`](crate::RuntimeConfig::mailbox_timeout), never on a
    /// core loop (which could be the one that must make the room).
    fn wait(
        &self,
        mailbox: &Mailbox,
        refused: Refused,
        deadline: &mut Option<Instant>,
        done: usize,
    ) -> Result<()> {
        if matches!(refused, Refused::Stopped) || self.runtime.is_stopping() {
            return Err(Error::Shutdown);
        }
        let counters = &self.server.shared_counters;
        if deadline.is_none() {
            add(&counters.mailbox_full, 1);
        }
        let full = || {
            add(&counters.mailbox_timeouts, 1);
            Err(Error::MailboxFull { queued: done })
        };
        if current_worker_runtime().is_some() {
            return full();
        }
        let until = *deadline.get_or_insert_with(|| Instant::now() + self.runtime.mailbox_timeout);
        if mailbox.wait_for_room(until, || self.runtime.is_stopping()) {
            Ok(())
        } else if self.runtime.is_stopping() {
            Err(Error::Shutdown)
        } else {
            full()
        }
    }

    /// Closes the connected clients among `ids` (sorted) of one core loop: unregistered and
    /// handed to the core loop under its table lock.
    fn close_on(
        &self,
        w: WorkerId,
        ids: &[ClientId],
        done: usize,
        deadline: &mut Option<Instant>,
    ) -> Result<usize> {
        let Some(mailbox) = self.mailbox(w) else {
            return Ok(0);
        };
        let server = self.server.index;
        loop {
            let outcome = self.server.registry.close_live(w, ids, |live| {
                match mailbox.offer(Command::Close { server, ids: live }) {
                    Offer::Queued => Ok(()),
                    Offer::Full => Err(Refused::Full),
                    Offer::Stopped => Err(Refused::Stopped),
                }
            });
            match outcome {
                Ok(n) => return Ok(n),
                Err(refused) => self.wait(mailbox, refused, deadline, done)?,
            }
        }
    }
}

/// What the facade asks of this instance; see [`Backend`](crate::backend::Backend) for the
/// contract each method keeps.
impl Delivery {
    pub(crate) fn push(
        &self,
        target: Target,
        payload: Payload<'_>,
        scope: Scope<'_>,
    ) -> Result<usize> {
        self.check_running()?;
        let frame = self.frame(payload)?;
        self.push_frame(target, frame, scope)
    }

    /// Frames a payload for this server's protocol, once for every receiver.
    pub(crate) fn frame(&self, payload: Payload<'_>) -> Result<SharedFrame> {
        Ok(Arc::new(Frame::new(frame(
            self.server.config.protocol,
            payload.is_text,
            payload.bytes,
        )?)))
    }

    /// Delivers a framed message to the targets connected to this instance.
    pub(crate) fn push_frame(
        &self,
        target: Target,
        frame: SharedFrame,
        scope: Scope<'_>,
    ) -> Result<usize> {
        self.check_running()?;
        let server = self.server.index;
        self.each_worker(target, scope, |target| Command::Push {
            server,
            frame: frame.clone(),
            target,
        })
    }

    pub(crate) fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize> {
        self.check_running()?;
        let ids = match self.candidates(target, scope) {
            Some(ids) => ids,
            None => {
                let mut ids = self.server.registry.ids(scope.worker);
                ids.retain(|&id| self.visible(id, scope));
                ids
            }
        };
        let mut total = 0;
        let mut deadline = None;
        for mine in ids.chunk_by(|a, b| a.worker() == b.worker()) {
            total += self.close_on(mine[0].worker(), mine, total, &mut deadline)?;
        }
        Ok(total)
    }

    pub(crate) fn send_message(
        &self,
        action: Option<&str>,
        data: &[u8],
        workers: &Workers,
        scope: Scope<'_>,
    ) -> Result<usize> {
        self.check_running()?;
        let action: Option<Arc<str>> = action.map(Arc::from);
        let data: Arc<[u8]> = data.into();
        let mut reached = 0;
        let mut deadline = None;
        for w in workers.resolve(self.runtime.workers()) {
            if scope.worker.is_some_and(|only| only != w) {
                continue;
            }
            reached += self.counted(w, reached, &mut deadline, |_| {
                let cmd = Command::Message {
                    server: self.server.index,
                    action: action.clone(),
                    data: data.clone(),
                };
                Some((1, cmd))
            })?;
        }
        Ok(reached)
    }

    pub(crate) fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool {
        self.visible(id, scope) && self.server.registry.exists(id)
    }

    pub(crate) fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId> {
        let mut ids = self.server.registry.flag_members(flag);
        ids.retain(|&id| self.visible(id, scope));
        ids.sort_unstable();
        ids
    }

    pub(crate) fn flag_of(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        if !self.visible(id, scope) {
            return None;
        }
        self.server
            .registry
            .flag_of(id, false)
            .map(|f| f.to_string())
    }

    pub(crate) fn connections(&self, scope: Scope<'_>) -> Vec<ClientId> {
        let mut ids = self.server.registry.ids(scope.worker);
        ids.retain(|id| !scope.except.contains(id));
        ids
    }

    pub(crate) fn connection_count(&self, scope: Scope<'_>) -> usize {
        if scope.except.is_empty() {
            self.server.registry.count(scope.worker)
        } else {
            self.connections(scope).len()
        }
    }

    pub(crate) fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId> {
        let mut ids = self.server.registry.group_members(group);
        ids.retain(|&id| self.visible(id, scope));
        ids
    }

    pub(crate) fn group_names(&self, scope: Scope<'_>) -> Vec<String> {
        self.server
            .registry
            .group_names(|id| self.visible(id, scope))
    }

    pub(crate) fn bind(&self, id: ClientId, flag: &str, exclusive: bool, scope: Scope<'_>) -> bool {
        self.visible(id, scope) && self.server.registry.bind(id, flag, exclusive)
    }

    pub(crate) fn unbind(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        if !self.visible(id, scope) {
            return None;
        }
        self.server.registry.unbind(id).map(|f| f.to_string())
    }

    pub(crate) fn join(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        let max = self.server.config.max_groups_per_connection;
        self.visible(id, scope) && self.server.registry.join(id, group, max)
    }

    pub(crate) fn leave(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        self.visible(id, scope) && self.server.registry.leave(id, group)
    }

    pub(crate) fn groups_of(&self, id: ClientId, scope: Scope<'_>) -> Vec<String> {
        if !self.visible(id, scope) {
            return Vec::new();
        }
        let groups = self.server.registry.groups_of(id, false);
        let mut names: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        names.sort_unstable();
        names
    }

    pub(crate) fn set_data(
        &self,
        id: ClientId,
        key: &str,
        value: DataValue,
        scope: Scope<'_>,
    ) -> bool {
        self.visible(id, scope) && self.server.registry.set_data(id, key, value)
    }

    pub(crate) fn data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> Option<DataValue> {
        if !self.visible(id, scope) {
            return None;
        }
        self.server.registry.data(id, key, false)
    }

    pub(crate) fn remove_data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> bool {
        self.visible(id, scope) && self.server.registry.remove_data(id, key)
    }

    /// How many core loops the runtime has.
    pub(crate) fn workers(&self) -> usize {
        self.runtime.workers()
    }

    /// The runtime delivered into, for `this_worker`.
    pub(crate) fn runtime_id(&self) -> u64 {
        self.runtime.id
    }

    /// The server's counters.
    pub(crate) fn stats(&self) -> Stats {
        self.server.stats()
    }
}
