//! A core loop's work on one connection: handshake, reading and decoding, handing messages
//! to the handler, the outbound limit, flushing, and the ways a connection ends.

use std::io::Read;
use std::net::Shutdown;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use log::{debug, error, warn};

use super::{CLOSE_TIMEOUT, FANOUT_CHUNK, READ_BUDGET, Worker};
use crate::codec::ws::{Inbound, OpKind};
use crate::codec::{Message, ProtocolError};
use crate::config::SlowConsumer;
use crate::conn::accept::Accept;
use crate::conn::handshake::BAD_REQUEST;
use crate::conn::{ConnIo, Decoder, Pending, Phase};
use crate::edge::{self, Outcome};
use crate::handler::{Conn, Context};
use crate::mailbox::{Command, Stamp, push_local, stamp_now};
use crate::stats::{Counters, bump, drop_one};

impl Worker {
    /// Registers a connection that just opened and tells its handler; `rest` holds bytes the
    /// client sent right behind its handshake. Whatever is queued to it already (the 101)
    /// goes first.
    pub(super) fn opened(&mut self, slot: u32, rest: &[u8], accept: Option<Box<Accept>>) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let s = &mut self.servers[conn.io.server as usize];
        let rx = &self.rx;
        // Registered, with its place in the loop's order taken under the table lock, before
        // the 101 can leave: a client that holds its answer is counted, and every push counted
        // from then on reaches it.
        if let Some(at) = s.shared.registry.open(conn.io.id, || stamp_now(rx.len())) {
            conn.opened = at;
        }
        // What the handshake hook settled on, in place before on_open and before the 101
        // leaves (it is written at the end of this turn at the earliest).
        if let Some(accept) = accept {
            let Accept { flag, data, .. } = *accept;
            if let Some(flag) = flag {
                s.shared.registry.bind(conn.io.id, &flag, false);
            }
            for (key, value) in data {
                s.shared.registry.set_data(conn.io.id, &key, value);
            }
        }
        bump(&s.shared.counters(self.id).connections, 1);
        let mut ctx = Context::local(&mut conn.io, &s.shared, &s.facade, self.id);
        guarded(&mut ctx, |ctx| s.handler.handler().on_open(ctx));
        if !s.shared.config.keep_request {
            conn.io.request = None;
        }
        self.after_handler(slot);
        if !rest.is_empty() {
            self.decode_bytes(slot, rest);
        }
        // Bytes may have arrived right behind the handshake: edge-triggered, so look now.
        self.read(slot);
    }

    /// Drives the TLS handshake of a TCP-protocol connection; opens it once done. A client
    /// that does not speak TLS, or fails the handshake, is dropped and counted.
    pub(super) fn tls_handshake(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        #[cfg(feature = "tls")]
        let outcome = match conn.io.tls.as_mut() {
            Some(tls) => tls.advance(&conn.io.socket),
            None => Ok(true),
        };
        #[cfg(not(feature = "tls"))]
        let outcome: std::io::Result<bool> = Ok(true);
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                conn.phase = Phase::Open;
                conn.last_seen = self.now_ms;
                // Reads what came behind the handshake (edge-triggered: no new edge for it).
                self.opened(slot, &[], None);
            }
            Err(e) => {
                let shared = &self.servers[conn.io.server as usize].shared;
                bump(&shared.counters(self.id).handshake_failures, 1);
                debug!("core loop {}: TLS handshake failed: {e}", self.id);
                conn.io.write_last(&[]);
                let _ = conn.io.socket.shutdown(Shutdown::Both);
                self.release(slot);
            }
        }
    }

    /// Answers a request head that is not a valid upgrade: as a plain HTTP request where the
    /// server answers them, else 400.
    pub(super) fn plain_request(&mut self, slot: u32, server: usize, head: &[u8], reason: &str) {
        let s = &self.servers[server];
        let counters = s.shared.counters(self.id);
        if !s.plain_http.is_on() {
            bump(&counters.handshake_failures, 1);
            debug!("core loop {}: handshake failed: {reason}", self.id);
            self.answer_and_close(slot, BAD_REQUEST.to_vec());
            return;
        }
        let answer = edge::answer(&s.plain_http, &self.runtime, head);
        let counter = match answer.outcome {
            Outcome::Served => &counters.http_requests,
            Outcome::Refused => &counters.http_refused,
            Outcome::Failed => &counters.handshake_failures,
        };
        bump(counter, 1);
        if answer.outcome != Outcome::Served {
            debug!(
                "core loop {}: refused a request ({}; {reason})",
                self.id, answer.reason
            );
        }
        self.answer_and_close(slot, answer.bytes);
    }

    /// Writes an HTTP answer to a connection that never opened, then closes it as an open one
    /// closes: the answer out, our side shut, the peer's end awaited up to the close timeout
    /// (so that the answer is not lost to a reset).
    pub(super) fn answer_and_close(&mut self, slot: u32, answer: Vec<u8>) {
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.io.queue_handshake_answer(answer);
        conn.io.output_closed = true;
        // Whatever the client sends now is read and dropped.
        conn.decoder = Decoder::Failed;
        conn.phase = Phase::Closing {
            deadline,
            sealed: true,
            at: Stamp::default(),
            code: 1000,
        };
        self.mark_dirty(slot);
    }

    /// Reads and decodes until the socket is drained or the budget is spent.
    pub(super) fn read(&mut self, slot: u32) {
        self.read_from(slot, false);
    }

    /// As [`read`](Self::read); with `short_is_drained`, a read that does not fill the buffer
    /// ends it without the extra read that would only say "would block". For TCP such a read
    /// has emptied the socket's receive queue, and data or an end of stream arriving later
    /// raises a new edge. Only for a readable event that did not also report the end of
    /// stream: that end must be read now, as no later edge will announce it. Never under TLS,
    /// where a short read of decrypted bytes says nothing about the socket.
    pub(super) fn read_from(&mut self, slot: u32, short_is_drained: bool) {
        let mut budget = READ_BUDGET;
        let mut gone = false;
        loop {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            if matches!(conn.phase, Phase::Handshake(..)) {
                return;
            }
            let short_is_drained = short_is_drained && conn.io.short_read_drains();
            let n = match conn.io.input().read(&mut self.scratch) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(
                        "core loop {}: read from {} failed: {e}",
                        self.id, conn.io.id
                    );
                    gone = true;
                    break;
                }
            };
            self.take_input(slot, n);
            budget = budget.saturating_sub(n);
            if budget == 0 {
                self.again.push(slot);
                return;
            }
            if short_is_drained && n < self.scratch.len() {
                break;
            }
        }
        if gone {
            self.peer_gone(slot);
        } else {
            self.finish_if_closed(slot);
        }
    }

    /// Decodes bytes that came with the handshake, as if just read.
    fn decode_bytes(&mut self, slot: u32, bytes: &[u8]) {
        for chunk in bytes.chunks(self.scratch.len()) {
            self.scratch[..chunk.len()].copy_from_slice(chunk);
            self.take_input(slot, chunk.len());
        }
    }

    /// Counts and decodes `n` bytes read into scratch, hands what they hold to the handler,
    /// and closes the connection if they break the protocol.
    fn take_input(&mut self, slot: u32, n: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.last_seen = self.now_ms;
        conn.pinged = false;
        let server = conn.io.server as usize;
        bump(
            &self.servers[server].shared.counters(self.id).bytes_in,
            n as u64,
        );
        if let Err(e) = self.decode(slot, n) {
            // Frees the decoder's buffers, and nothing after the error is decoded.
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.decoder = Decoder::Failed;
            }
            let client = self.conns.get(slot).map(|c| c.io.id);
            debug!(
                "core loop {}: client {client:?} broke the protocol: {}",
                self.id, e.reason
            );
            bump(
                &self.servers[server]
                    .shared
                    .counters(self.id)
                    .protocol_errors,
                1,
            );
            self.begin_close(slot, e.close_code, e.reason);
        }
        self.after_handler(slot);
    }

    /// Decodes `n` bytes of scratch and hands what they hold to the handler.
    fn decode(&mut self, slot: u32, n: usize) -> Result<(), ProtocolError> {
        let Some(conn) = self.conns.get_mut(slot) else {
            return Ok(());
        };
        let s = &mut self.servers[conn.io.server as usize];
        let input = &mut self.scratch[..n];
        let max = s.shared.config.max_message_size;
        let limit = s.shared.config.max_outbound_bytes;
        let counters = s.shared.counters(self.id);
        let open = conn.is_open();
        let io = &mut conn.io;
        let peer_closed = &mut conn.peer_closed;
        let mut deliver = |io: &mut ConnIo, message: Message<'_>| {
            if !open || io.close_request.is_some() || io.output_closed {
                return;
            }
            bump(&counters.messages_in, 1);
            let mut ctx = Context::local(io, &s.shared, &s.facade, self.id);
            guarded(&mut ctx, |ctx| s.handler.handler().on_message(ctx, message));
        };
        match &mut conn.decoder {
            Decoder::Ws(d) => d.decode(input, max, &mut |inbound| match inbound {
                Inbound::Message(m) => deliver(io, m),
                Inbound::Ping(p) => io.queue_control(OpKind::Pong, p, limit),
                Inbound::Pong(_) => {}
                Inbound::Close(code, _) => {
                    *peer_closed = true;
                    if open && io.close_request.is_none() {
                        // RFC 6455 §5.5.1: answer with the code the client sent.
                        io.close_request = Some((code.unwrap_or(1000), String::new()));
                    }
                }
            }),
            Decoder::Lines(d) => d.decode(input, max, &mut |m| deliver(io, Message::Binary(m))),
            Decoder::Length(d) => d.decode(input, max, &mut |m| deliver(io, Message::Binary(m))),
            Decoder::Failed => Ok(()),
        }
    }

    /// Acts on what a handler call left behind: a close request, a full outbound queue,
    /// output to flush.
    pub(super) fn after_handler(&mut self, slot: u32) {
        // What the handler pushed through the facade to this core loop's connections.
        self.run_local();
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if let Some((code, reason)) = conn.io.close_request.take() {
            if conn.is_open() {
                self.begin_close(slot, code, &reason);
                return;
            }
        }
        if conn.io.overflow > 0 {
            self.overflowed(slot);
        }
        if self.conns.get(slot).is_some_and(|c| c.io.has_output()) {
            self.mark_dirty(slot);
        }
    }

    /// Applies the slow-consumer policy to a connection whose queue refused frames.
    pub(super) fn overflowed(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let refused = std::mem::take(&mut conn.io.overflow);
        let s = &self.servers[conn.io.server as usize].shared;
        let counters = s.counters(self.id);
        match s.config.slow_consumer {
            SlowConsumer::Drop => {
                bump(&counters.dropped, refused as u64);
                if !conn.slow_logged {
                    conn.slow_logged = true;
                    warn!(
                        "core loop {}: client {} is not keeping up; dropping messages for it",
                        self.id, conn.io.id
                    );
                }
            }
            SlowConsumer::Close => {
                // The message that found the queue full, and any counted to the connection
                // before its close frame, are dropped: counted, so that nothing goes missing
                // without a trace.
                bump(&counters.dropped, refused as u64);
                if conn.is_open() {
                    bump(&counters.slow_consumer_closes, 1);
                    warn!(
                        "core loop {}: client {} is not keeping up; closing it (1008)",
                        self.id, conn.io.id
                    );
                    self.begin_close(slot, 1008, "slow consumer");
                }
            }
        }
    }

    /// Puts a connection on the list written at the end of this turn.
    pub(super) fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(slot) {
            if conn.io.pending != Pending::Now {
                conn.io.pending = Pending::Now;
                self.dirty.push(slot);
            }
        }
    }

    /// Puts a connection that got a fan-out frame on the list of the next fan-out round,
    /// unless it is already due sooner.
    pub(super) fn mark_held(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(slot) {
            if conn.io.pending == Pending::Clean {
                conn.io.pending = Pending::Held;
                self.held.push(slot);
            }
        }
    }

    /// Starts closing: unregisters the client (every thread sees it gone from here on), tells
    /// the handler, and queues the close frame behind every push counted to it before — at
    /// this moment's place in the loop's order. The socket goes once the output is written and
    /// the peer answered, or at the deadline.
    pub(super) fn begin_close(&mut self, slot: u32, code: u16, reason: &str) {
        let Some(conn) = self.conns.get(slot) else {
            return;
        };
        match conn.phase {
            Phase::Open => {
                let deadline = self.close_deadline();
                let id = conn.io.id;
                // `None`: another thread's close came first; its command, on the way, seals it.
                if let Some(at) = self.unregister(slot, deadline, code) {
                    let reason = reason.to_owned();
                    push_local(at, Command::Seal { id, code, reason });
                }
                self.notify_closed(slot);
            }
            Phase::Handshake(..) => self.release(slot),
            Phase::Closing { .. } => {}
        }
    }

    /// When a close that starts now must be done: in a shutdown, the configured shutdown
    /// timeout bounds it instead, so that a slow client still gets what was queued for it.
    fn close_deadline(&self) -> Instant {
        let now = Instant::now();
        self.stopping
            .map_or(now + CLOSE_TIMEOUT, |d| d.max(now + CLOSE_TIMEOUT))
    }

    /// Unregisters an open connection and marks it closing; its place in the loop's order,
    /// or `None` if another thread unregistered it first (its close command, on the way,
    /// then sets the place).
    fn unregister(&mut self, slot: u32, deadline: Instant, code: u16) -> Option<Stamp> {
        let conn = self.conns.get_mut(slot)?;
        let registry = &self.servers[conn.io.server as usize].shared.registry;
        let rx = &self.rx;
        // The place is taken under the table lock: every push that counted the client lies
        // before it, every push that did not, after it.
        let won = registry.unregister(conn.io.id, || stamp_now(rx.len()));
        conn.phase = Phase::Closing {
            deadline,
            sealed: false,
            at: won.unwrap_or_else(|| stamp_now(rx.len())),
            code,
        };
        conn.io.unregistered = true;
        won
    }

    /// A close from the facade, stamped `at` (the client is already unregistered): tells the
    /// handler and queues the close frame — at once for a close from another thread; for one
    /// from this core loop's own thread, behind what that thread queued since, so that a
    /// handler that closes its own connection and then answers gets its answer out first.
    pub(super) fn closed_by_facade(&mut self, slot: u32, at: Stamp) {
        let deadline = self.close_deadline();
        let mut code = 1000;
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let id = conn.io.id;
        match &mut conn.phase {
            Phase::Open => {
                conn.phase = Phase::Closing {
                    deadline,
                    sealed: false,
                    at,
                    code,
                };
                conn.io.unregistered = true;
                self.notify_closed(slot);
            }
            Phase::Closing {
                sealed: false,
                at: closed,
                code: wanted,
                ..
            } => {
                // The core loop was closing it too (with its own code), and this close
                // unregistered it first: this command's place is where it closed.
                *closed = (*closed).min(at);
                code = *wanted;
            }
            _ => return,
        }
        if at.is_local() {
            let seal = Command::Seal {
                id,
                code,
                reason: String::new(),
            };
            push_local(self.stamp(), seal);
        } else {
            self.seal(slot, code, "");
        }
    }

    /// Queues the close frame of a closing connection: nothing follows it.
    pub(super) fn seal(&mut self, slot: u32, code: u16, reason: &str) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if let Phase::Closing { sealed, .. } = &mut conn.phase {
            if !*sealed {
                *sealed = true;
                conn.io.queue_close(code, reason);
                self.mark_dirty(slot);
            }
        }
    }

    /// Runs on_close, then drops the client's entry (its flag, groups and data).
    fn notify_closed(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let s = &mut self.servers[conn.io.server as usize];
        let mut ctx = Context::local(&mut conn.io, &s.shared, &s.facade, self.id);
        guarded(&mut ctx, |ctx| s.handler.handler().on_close(ctx));
        conn.io.close_request = None;
        s.shared.registry.forget(conn.io.id);
        let counters = s.shared.counters(self.id);
        drop_one(&counters.connections);
        bump(&counters.closed, 1);
    }

    /// The peer closed its side or the socket failed.
    fn peer_gone(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.peer_closed = true;
        if conn.is_open() {
            // No close frame from a WebSocket peer: abnormal closure, nothing to answer.
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            let _ = self.unregister(slot, deadline, 1006);
            self.notify_closed(slot);
        }
        // Best effort for what is still queued (counted as every flush is), then let go.
        if let Some(conn) = self.conns.get_mut(slot) {
            let counters = self.servers[conn.io.server as usize]
                .shared
                .counters(self.id);
            let _ = flush_counted(&mut conn.io, counters);
        }
        self.release(slot);
    }

    /// Drops a closing connection once its close frame is out and the peer is done.
    pub(super) fn finish_if_closed(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if !matches!(conn.phase, Phase::Closing { sealed: true, .. }) || conn.io.has_output() {
            return;
        }
        if conn.peer_closed {
            self.release(slot);
        } else if !conn.write_shut {
            // Our side is done: a FIN after the last byte, then wait for the peer's.
            conn.write_shut = true;
            let _ = conn.io.socket.shutdown(Shutdown::Write);
        }
    }

    /// Drops a connection now, telling the handler first if it was open.
    pub(super) fn retire(&mut self, slot: u32) {
        if self.conns.get(slot).is_some_and(|c| c.is_open()) {
            let deadline = Instant::now();
            let _ = self.unregister(slot, deadline, 1006);
            self.notify_closed(slot);
        }
        self.release(slot);
    }

    /// Removes a connection from the table and gives back its place under the limits.
    pub(super) fn release(&mut self, slot: u32) {
        if let Some(conn) = self.conns.remove(slot) {
            let shared = self.servers[conn.io.server as usize].shared.clone();
            self.unadmit(&shared, conn.peer);
            self.released = true;
        }
    }

    /// Writes every connection due this turn.
    pub(super) fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        self.flush_slots(&dirty, Pending::Now);
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    /// Works on the fan-out flush: a round writes every held connection, at most
    /// [`FANOUT_CHUNK`] per turn so that the loop keeps reading and answering in between; a
    /// new round starts once the fan-out window allows (see [`super::pacer`]), or straight
    /// away when the loop is stopping. Connections that get fan-out frames during a round
    /// after their write wait for the next one.
    pub(super) fn flush_held(&mut self, now: Instant) {
        if self.round_pos >= self.round.len() {
            self.round.clear();
            self.round_pos = 0;
            if self.held.is_empty() || (now < self.next_round() && self.stopping.is_none()) {
                return;
            }
            self.pacer.started(now);
            std::mem::swap(&mut self.round, &mut self.held);
        }
        let round = std::mem::take(&mut self.round);
        let end = (self.round_pos + FANOUT_CHUNK).min(round.len());
        let began = Instant::now();
        self.flush_slots(&round[self.round_pos..end], Pending::Held);
        self.pacer.wrote(began.elapsed());
        self.round = round;
        self.round_pos = end;
        if end >= self.round.len() {
            self.pacer.finished(!self.held.is_empty());
        }
    }

    /// When the next fan-out round may start.
    pub(super) fn next_round(&self) -> Instant {
        self.pacer.next_round(self.epoch)
    }

    /// Whether a fan-out round is part done.
    pub(super) fn in_round(&self) -> bool {
        self.round_pos < self.round.len()
    }

    /// Writes the connections of `slots` still marked `due` (a connection may have moved to
    /// the other list, or a slot been reused, since it was listed).
    fn flush_slots(&mut self, slots: &[u32], due: Pending) {
        for &slot in slots {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.io.pending != due {
                continue;
            }
            conn.io.pending = Pending::Clean;
            let counters = self.servers[conn.io.server as usize]
                .shared
                .counters(self.id);
            match flush_counted(&mut conn.io, counters) {
                Ok(()) => self.finish_if_closed(slot),
                Err(e) => {
                    debug!("core loop {}: write to {} failed: {e}", self.id, conn.io.id);
                    self.retire(slot);
                }
            }
        }
    }
}

/// Writes a connection's queue and counts it: the frames queued since the last count, then
/// the bytes and the write calls that went out.
fn flush_counted(io: &mut ConnIo, counters: &Counters) -> std::io::Result<()> {
    bump(
        &counters.messages_out,
        u64::from(std::mem::take(&mut io.frames_queued)),
    );
    bump(
        &counters.frames_compressed,
        u64::from(std::mem::take(&mut io.frames_compressed)),
    );
    let done = io.flush()?;
    bump(&counters.bytes_out, done.bytes as u64);
    bump(&counters.writes, done.writes as u64);
    Ok(())
}

/// Runs a handler call; a panic closes the connection (1011) instead of the core loop.
pub(super) fn guarded(ctx: &mut Context<'_>, f: impl FnOnce(&mut Context<'_>)) {
    if catch_unwind(AssertUnwindSafe(|| f(&mut *ctx))).is_err() {
        bump(&ctx.shared.counters(ctx.worker).handler_panics, 1);
        error!("handler panicked on client {}; closing it", ctx.client_id());
        match &mut ctx.conn {
            Conn::Local(io) => io.close_request = Some((1011, "internal error".to_owned())),
            Conn::Remote(_) => ctx.close(),
        }
    }
}
