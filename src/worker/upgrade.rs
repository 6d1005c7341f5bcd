//! A core loop's side of the WebSocket upgrade: stepping the handshake, running a deferred
//! hook with a reply that comes back through the mailbox, and acting on the outcome —
//! opening the client with what the hook settled on, or answering and dropping it.

use std::net::Shutdown;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use log::{debug, error};

use super::Worker;
use crate::codec::ws::WsDecoder;
use crate::conn::accept::{Accept, Extras, HandshakeHook, HandshakeReply};
use crate::conn::deflate::Deflater;
use crate::conn::forwarded::client_ip;
use crate::conn::handshake::{BAD_REQUEST, HEAD_TOO_LARGE, Rejection, SHUTTING_DOWN, Step};
use crate::conn::{Decoder, Phase};
use crate::id::ClientId;
use crate::mailbox::{Command, Offer, current_worker};
use crate::stats::bump;

impl Worker {
    pub(super) fn handshake(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let Phase::Handshake(hs, _) = &mut conn.phase else {
            return;
        };
        let Some(hs) = hs else {
            // A TCP protocol: its only handshake is TLS's.
            self.tls_handshake(slot);
            return;
        };
        let step = hs.step(conn.io.input());
        self.handshake_step(slot, step);
    }

    /// A deferred handshake hook's answer for client `id`: ignored unless the client is still
    /// waiting for it (an answer after the deadline finds it gone).
    pub(super) fn handshake_answer(
        &mut self,
        id: ClientId,
        answer: std::result::Result<Box<Accept>, Rejection>,
    ) {
        let Some(slot) = self.slot_of(id) else {
            debug!("core loop {}: a handshake answer came too late", self.id);
            return;
        };
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let Phase::Handshake(Some(hs), _) = &mut conn.phase else {
            return;
        };
        let step = hs.complete(answer.map(|a| *a));
        self.handshake_step(slot, step);
    }

    /// Runs a deferred handshake hook with a reply that reaches this core loop's mailbox.
    fn defer(&mut self, slot: u32, hook: &HandshakeHook) {
        let HandshakeHook::Later(hook) = hook else {
            return;
        };
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        let Phase::Handshake(Some(hs), deadline) = &conn.phase else {
            return;
        };
        let Some(request) = hs.parked_request() else {
            return;
        };
        let (runtime, worker, id, deadline) =
            (self.runtime.clone(), self.id, conn.io.id, *deadline);
        let reply = HandshakeReply::new(move |answer| {
            let Some(mailbox) = runtime.mailboxes.get(worker.index()) else {
                return;
            };
            let cmd = Command::Handshake {
                id,
                answer: answer.map(Box::new),
            };
            // From an application thread, wait for room up to the client's deadline (past it
            // the answer is moot). A core loop never waits: its own local queue always takes
            // the answer, and another core loop's full mailbox leaves the client to its
            // deadline.
            let offer = if current_worker(runtime.id).is_some() {
                mailbox.offer(cmd)
            } else {
                mailbox.send_within(cmd, deadline.saturating_duration_since(Instant::now()))
            };
            if !matches!(offer, Offer::Queued) {
                debug!("core loop {worker}: a handshake answer found no room ({offer:?})");
            }
        });
        // Application code: a panic refuses the client (500), as a synchronous hook's does.
        if catch_unwind(AssertUnwindSafe(|| hook(request, reply))).is_err() {
            let answer = Err(Rejection::new(500));
            let step = match self.conns.get_mut(slot).map(|c| &mut c.phase) {
                Some(Phase::Handshake(Some(hs), _)) => hs.complete(answer),
                _ => return,
            };
            let step = match step {
                Step::Rejected(bytes) => Step::HookPanicked(bytes),
                other => other,
            };
            self.handshake_step(slot, step);
        }
    }

    /// Acts on what a step of the handshake came to.
    fn handshake_step(&mut self, slot: u32, step: Step) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let counters = self.servers[conn.io.server as usize]
            .shared
            .counters(self.id);
        match step {
            Step::Pending => {}
            Step::Deferred(hook) => self.defer(slot, &hook),
            // Once shutdown was asked for (the loop may not have seen it yet, or drains run).
            Step::Done { .. } if self.runtime.is_leaving() => {
                bump(&counters.rejected, 1);
                debug!("core loop {}: refused an upgrade during shutdown", self.id);
                self.answer_and_close(slot, SHUTTING_DOWN.to_vec());
            }
            Step::NotUpgrade(head, reason) => {
                let server = conn.io.server as usize;
                self.plain_request(slot, server, &head, &reason);
            }
            Step::TooLarge => {
                bump(&counters.handshake_failures, 1);
                debug!("core loop {}: a request head over 64 KiB", self.id);
                self.answer_and_close(slot, HEAD_TOO_LARGE.to_vec());
            }
            Step::Done {
                request,
                response,
                rest,
                accept,
                deflate,
            } => {
                let shared = &self.servers[conn.io.server as usize].shared;
                let forwarded = match conn.io.socket.peer_addr() {
                    Ok(peer) if !shared.trusted_proxies.is_empty() => {
                        client_ip(&request, peer.ip(), &shared.trusted_proxies)
                    }
                    _ => None,
                };
                let subprotocol = accept.subprotocol.as_deref().map(Box::from);
                if forwarded.is_some() || subprotocol.is_some() {
                    conn.io.extras = Some(Box::new(Extras {
                        subprotocol,
                        forwarded,
                    }));
                }
                conn.io.request = Some(request);
                if let (Some(agreed), Some(config)) = (deflate, shared.config.permessage_deflate) {
                    conn.io.deflate =
                        Some(Box::new(Deflater::new(&config, agreed.server_takeover)));
                    conn.decoder = Decoder::Ws(WsDecoder::with_deflate(agreed.client_takeover));
                }
                conn.io.queue_handshake_answer(response);
                conn.phase = Phase::Open;
                conn.last_seen = self.now_ms;
                self.mark_dirty(slot);
                self.opened(slot, &rest, Some(accept));
            }
            Step::Rejected(answer) => {
                bump(&counters.rejected, 1);
                debug!("core loop {}: the handshake hook refused a client", self.id);
                conn.io.write_last(&answer);
                let _ = conn.io.socket.shutdown(Shutdown::Both);
                self.release(slot);
            }
            Step::HookPanicked(answer) => {
                bump(&counters.rejected, 1);
                bump(&counters.handler_panics, 1);
                error!(
                    "core loop {}: the handshake hook panicked; refused the client (500)",
                    self.id
                );
                conn.io.write_last(&answer);
                let _ = conn.io.socket.shutdown(Shutdown::Both);
                self.release(slot);
            }
            Step::Failed(reason) => {
                bump(&counters.handshake_failures, 1);
                debug!("core loop {}: handshake failed: {reason}", self.id);
                conn.io.write_last(BAD_REQUEST);
                let _ = conn.io.socket.shutdown(Shutdown::Both);
                self.release(slot);
            }
        }
    }
}
