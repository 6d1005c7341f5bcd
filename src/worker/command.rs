//! A core loop's commands: pushes (at once for one client, held for the next fan-out round
//! for many), closes, cluster events, barriers, handshake answers and worker messages, and
//! the connections a command reaches.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use log::error;

use super::Worker;
use crate::conn::MAX_IOVECS;
use crate::handler::{WorkerContext, WorkerMessage};
use crate::id::ClientId;
use crate::mailbox::{Command, LocalTarget, Stamp};
use crate::stats::bump;

impl Worker {
    /// Carries out one command, stamped `at`, from another thread or this one.
    pub(super) fn command(&mut self, cmd: Command, at: Stamp) {
        match cmd {
            Command::Push {
                server,
                frame,
                target,
            } => {
                let Some(limit) = self
                    .servers
                    .get(server as usize)
                    .map(|s| s.shared.config.max_outbound_bytes)
                else {
                    return;
                };
                // A message to one client goes out this turn; a fan-out may wait for the
                // next fan-out round and share its write with the frames that follow.
                let fan_out = match &target {
                    LocalTarget::Ids(ids) => ids.len() > 1,
                    LocalTarget::All { .. } => true,
                };
                let slots = self.targets_of(server, &target, at);
                if fan_out && !slots.is_empty() {
                    let idle = self.held.is_empty() && !self.in_round();
                    self.pacer.arrived(Instant::now(), idle);
                }
                for &slot in &slots {
                    let Some(conn) = self.conns.get_mut(slot) else {
                        continue;
                    };
                    if conn.io.queue_shared(&frame, limit) {
                        // A queue that fills a vectored write gains nothing by waiting.
                        if fan_out && conn.io.frames_waiting() < MAX_IOVECS {
                            self.mark_held(slot);
                        } else {
                            self.mark_dirty(slot);
                        }
                    } else if conn.io.overflow > 0 {
                        self.overflowed(slot);
                    }
                }
                self.targets = slots;
            }
            Command::Close { server, ids } => {
                let slots = self.targets_of(server, &LocalTarget::Ids(ids), at);
                for &slot in &slots {
                    self.closed_by_facade(slot, at);
                }
                self.targets = slots;
            }
            Command::Remote { server, event } => self.remote(server, event),
            Command::Unlinked { server, gateway } => self.unlinked(server, gateway),
            Command::Barrier(done) => {
                let _ = done.send(());
            }
            Command::Handshake { id, answer } => self.handshake_answer(id, answer),
            Command::Restored { server, id, from } => self.restored(server, id, from),
            Command::Seal { id, code, reason } => {
                if let Some(slot) = self.slot_of(id) {
                    self.seal(slot, code, &reason);
                }
            }
            Command::Message {
                server,
                action,
                data,
            } => self.worker_message(server as usize, action.as_deref(), &data),
        }
    }

    /// The slot of one of this core loop's connections.
    pub(super) fn slot_of(&self, id: ClientId) -> Option<u32> {
        if id.worker() != self.id || id.instance() != self.runtime.instance {
            return None;
        }
        self.conns.slot_of(id.serial())
    }

    /// The connections of `server` that a command stamped `at` reaches, in the reused buffer
    /// (hand it back to `self.targets` when done): those it names that still take pushes, or
    /// for everyone, those that opened before it and still take pushes.
    fn targets_of(&mut self, server: u16, target: &LocalTarget, at: Stamp) -> Vec<u32> {
        let mut out = std::mem::take(&mut self.targets);
        out.clear();
        match target {
            LocalTarget::Ids(ids) => {
                for &id in ids {
                    let Some(slot) = self.slot_of(id) else {
                        continue;
                    };
                    if self
                        .conns
                        .get(slot)
                        .is_some_and(|c| c.io.server == server && c.takes_pushes())
                    {
                        out.push(slot);
                    }
                }
            }
            LocalTarget::All { except } => out.extend(
                self.conns
                    .iter()
                    .filter(|(_, c)| c.io.server == server && c.counted_by(at))
                    .filter(|(_, c)| except.binary_search(&c.io.id).is_err())
                    .map(|(slot, _)| slot),
            ),
        }
        out
    }

    fn worker_message(&mut self, server: usize, action: Option<&str>, data: &[u8]) {
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        let mut ctx = WorkerContext {
            server: &s.facade,
            worker: self.id,
        };
        let result = catch_unwind(AssertUnwindSafe(|| match action {
            Some(action) => {
                let msg = WorkerMessage {
                    action,
                    data,
                    parser: &*s.shared.config.parser,
                };
                if !s.handler.action(&mut ctx, &msg) {
                    s.handler.handler().on_worker_message(&mut ctx, &msg);
                }
            }
            None => s.handler.handler().on_worker_message_raw(&mut ctx, data),
        }));
        if result.is_err() {
            bump(&s.shared.counters(self.id).handler_panics, 1);
            error!("core loop {}: a worker-message callback panicked", self.id);
        }
    }
}
