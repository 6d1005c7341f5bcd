//! The core loop: one thread, one `mio::Poll`, the connections it owns outright.
//!
//! A turn of the loop: wait for socket events (or the mailbox's waker), handle them, drain a
//! bounded batch of commands from the mailbox, then flush every connection that got output —
//! one vectored write per connection per turn, however many frames were queued to it.

pub(crate) mod shared;
pub(crate) mod slots;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use log::{debug, error, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::codec::ws::{Inbound, OpKind};
use crate::codec::{Message, ProtocolError};
use crate::config::Protocol;
use crate::conn::handshake::{BAD_REQUEST, Handshake, Step};
use crate::conn::{Conn, ConnIo, Decoder, Phase};
use crate::facade::Server;
use crate::handler::{Context, WorkerContext, WorkerMessage};
use crate::id::{ClientId, WorkerId, next_serial};
use crate::server::HandlerBox;
use shared::{Command, LocalTarget, RuntimeShared, ServerShared, set_current_worker};
use slots::Slots;

pub(crate) const WAKER: Token = Token(0);
const LISTENER_BASE: usize = 1;
const CONN_BASE: usize = 1 << 16;
/// Bytes read from one socket per turn before the others get theirs.
const READ_BUDGET: usize = 256 * 1024;
/// The per-core read buffer: connections keep no read buffer of their own while idle.
const SCRATCH: usize = 64 * 1024;
/// How long a closing connection may take to take its last frames and answer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often deadlines (handshakes, closes) are checked.
const TICK: Duration = Duration::from_millis(250);

/// One named server as a core loop holds it.
pub(crate) struct ServerSlot {
    pub(crate) shared: Arc<ServerShared>,
    pub(crate) facade: Server,
    pub(crate) handler: Box<dyn HandlerBox>,
    pub(crate) listener: Option<TcpListener>,
}

/// Everything one core loop owns.
pub(crate) struct Worker {
    id: WorkerId,
    runtime: Arc<RuntimeShared>,
    poll: Poll,
    rx: Receiver<Command>,
    servers: Vec<ServerSlot>,
    conns: Slots<Conn>,
    scratch: Vec<u8>,
    dirty: Vec<u32>,
    /// Connections whose read budget ran out: read again next turn.
    again: Vec<u32>,
    batch: usize,
    shutdown_timeout: Duration,
    stopping: Option<Instant>,
}

impl Worker {
    pub(crate) fn new(
        id: WorkerId,
        runtime: Arc<RuntimeShared>,
        poll: Poll,
        rx: Receiver<Command>,
        servers: Vec<ServerSlot>,
        batch: usize,
        shutdown_timeout: Duration,
    ) -> Self {
        Worker {
            id,
            runtime,
            poll,
            rx,
            servers,
            conns: Slots::default(),
            scratch: vec![0; SCRATCH],
            dirty: Vec::new(),
            again: Vec::new(),
            batch: batch.max(1),
            shutdown_timeout,
            stopping: None,
        }
    }

    /// Runs the loop until shutdown.
    pub(crate) fn run(mut self) -> io::Result<()> {
        set_current_worker(Some((self.runtime.id, self.id)));
        let result = self.run_loop();
        set_current_worker(None);
        result
    }

    fn run_loop(&mut self) -> io::Result<()> {
        for (i, s) in self.servers.iter_mut().enumerate() {
            if let Some(l) = s.listener.as_mut() {
                self.poll
                    .registry()
                    .register(l, Token(LISTENER_BASE + i), Interest::READABLE)?;
            }
        }
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        loop {
            let busy = !self.rx.is_empty() || !self.again.is_empty();
            let timeout = if busy { Duration::ZERO } else { TICK };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            for slot in std::mem::take(&mut self.again) {
                self.read(slot);
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t >= CONN_BASE => {
                        let slot = (t - CONN_BASE) as u32;
                        if self.is_handshaking(slot) {
                            self.handshake(slot);
                        } else {
                            if event.is_readable() || event.is_read_closed() || event.is_error() {
                                self.read(slot);
                            }
                            if event.is_writable() {
                                self.mark_dirty(slot);
                            }
                        }
                    }
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
            }
            self.drain_mailbox();
            self.flush_dirty();
            let now = Instant::now();
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.sweep(now);
            }
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() {
                    return Ok(());
                }
                if now >= deadline {
                    warn!(
                        "core loop {}: shutdown timeout, dropping {} connection(s)",
                        self.id,
                        self.conns.len()
                    );
                    for slot in self.conns.occupied() {
                        self.retire(slot);
                    }
                    return Ok(());
                }
            }
        }
    }

    fn is_handshaking(&mut self, slot: u32) -> bool {
        self.conns
            .get_mut(slot)
            .is_some_and(|c| matches!(c.phase, Phase::Handshake(..)))
    }

    fn accept(&mut self, server: usize) {
        loop {
            let Some(listener) = self.servers.get(server).and_then(|s| s.listener.as_ref()) else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => self.add_conn(server, stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error!("core loop {}: accept failed: {e}", self.id);
                    return;
                }
            }
        }
    }

    fn add_conn(&mut self, server: usize, mut stream: TcpStream) {
        if let Err(e) = stream.set_nodelay(true) {
            debug!("set_nodelay failed: {e}");
        }
        let shared = self.servers[server].shared.clone();
        let (instance, worker) = (self.runtime.instance, self.id);
        let registry = self.poll.registry();
        let Some(id) =
            next_serial(worker).and_then(|serial| ClientId::new(instance, worker, serial))
        else {
            error!(
                "core loop {}: client ids are spent; refusing a client",
                self.id
            );
            return;
        };
        // Registered once for both directions, edge-triggered: a writable edge arrives when a
        // full socket drains, so interest never needs to change (no epoll_ctl per flush).
        let mut registered = Ok(());
        let slot = self.conns.insert(id.serial(), |slot| {
            let token = Token(CONN_BASE + slot as usize);
            registered =
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE);
            let socket = Rc::new(stream);
            let phase = match shared.protocol {
                Protocol::WebSocket => Phase::Handshake(
                    Box::new(Handshake::new(socket.clone())),
                    Instant::now() + shared.handshake_timeout,
                ),
                _ => Phase::Open,
            };
            Conn {
                io: ConnIo::new(socket, id, shared.index, shared.protocol),
                decoder: Decoder::new(shared.protocol),
                phase,
                peer_closed: false,
                write_shut: false,
            }
        });
        if let Err(e) = registered {
            error!(
                "core loop {}: registering a connection failed: {e}",
                self.id
            );
            self.conns.remove(slot);
            return;
        }
        if self.conns.get_mut(slot).is_some_and(|c| c.is_open()) {
            self.opened(slot);
        }
    }

    /// Registers a connection that just opened and tells its handler.
    fn opened(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let s = &mut self.servers[conn.io.server as usize];
        s.shared.registry.open(conn.io.id);
        let mut ctx = Context {
            io: &mut conn.io,
            shared: &s.shared,
            server: &s.facade,
            worker: self.id,
        };
        guarded(&mut ctx, |ctx| s.handler.handler().on_open(ctx));
        if !s.shared.keep_request {
            conn.io.request = None;
        }
        self.after_handler(slot);
        // Bytes may have arrived right behind the handshake: edge-triggered, so look now.
        self.read(slot);
    }

    fn handshake(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let Phase::Handshake(hs, _) = &mut conn.phase else {
            return;
        };
        match hs.step() {
            Step::Pending => {}
            Step::Done(request) => {
                conn.io.request = Some(request);
                conn.phase = Phase::Open;
                self.opened(slot);
            }
            Step::Failed(reason) => {
                debug!("core loop {}: handshake failed: {reason}", self.id);
                let _ = (&*conn.io.socket).write(BAD_REQUEST);
                let _ = conn.io.socket.shutdown(Shutdown::Both);
                self.conns.remove(slot);
            }
        }
    }

    /// Reads and decodes until the socket is drained or the budget is spent.
    fn read(&mut self, slot: u32) {
        let mut budget = READ_BUDGET;
        let mut gone = false;
        loop {
            let Some(conn) = self.conns.get_mut(slot) else {
                return;
            };
            if matches!(conn.phase, Phase::Handshake(..)) {
                return;
            }
            let n = match (&*conn.io.socket).read(&mut self.scratch) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    debug!(
                        "core loop {}: read from {} failed: {e}",
                        self.id, conn.io.id
                    );
                    gone = true;
                    break;
                }
            };
            if let Err(e) = self.decode(slot, n) {
                let client = self.id_of(slot);
                debug!(
                    "core loop {}: client {client} violated the protocol: {}",
                    self.id, e.reason
                );
                self.begin_close(slot, e.close_code, e.reason);
            }
            self.after_handler(slot);
            budget = budget.saturating_sub(n);
            if budget == 0 {
                self.again.push(slot);
                return;
            }
        }
        if gone {
            self.peer_gone(slot);
        } else {
            self.finish_if_closed(slot);
        }
    }

    fn id_of(&mut self, slot: u32) -> String {
        self.conns
            .get_mut(slot)
            .map_or_else(String::new, |c| c.io.id.to_string())
    }

    /// Decodes `n` bytes of scratch and hands what they hold to the handler.
    fn decode(&mut self, slot: u32, n: usize) -> Result<(), ProtocolError> {
        let Some(conn) = self.conns.get_mut(slot) else {
            return Ok(());
        };
        let s = &mut self.servers[conn.io.server as usize];
        let input = &mut self.scratch[..n];
        let max = s.shared.max_message_size;
        let open = conn.is_open();
        let io = &mut conn.io;
        let peer_closed = &mut conn.peer_closed;
        let mut deliver = |io: &mut ConnIo, message: Message<'_>| {
            if !open || io.close_request.is_some() || io.output_closed {
                return;
            }
            let mut ctx = Context {
                io,
                shared: &s.shared,
                server: &s.facade,
                worker: self.id,
            };
            guarded(&mut ctx, |ctx| s.handler.handler().on_message(ctx, message));
        };
        match &mut conn.decoder {
            Decoder::Ws(d) => d.decode(input, max, &mut |inbound| match inbound {
                Inbound::Message(m) => deliver(io, m),
                Inbound::Ping(p) => io.queue_control(OpKind::Pong, p),
                Inbound::Pong(_) => {}
                Inbound::Close(code, _) => {
                    *peer_closed = true;
                    if open && io.close_request.is_none() {
                        io.close_request = Some((echo_code(code), String::new()));
                    }
                }
            }),
            Decoder::Lines(d) => d.decode(input, max, &mut |m| deliver(io, Message::Binary(m))),
            Decoder::Length(d) => d.decode(input, max, &mut |m| deliver(io, Message::Binary(m))),
        }
    }

    /// Acts on what a handler call left behind: a close request, output to flush.
    fn after_handler(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if let Some((code, reason)) = conn.io.close_request.take() {
            if conn.is_open() {
                self.begin_close(slot, code, &reason);
                return;
            }
        }
        if conn.io.has_output() {
            self.mark_dirty(slot);
        }
    }

    fn mark_dirty(&mut self, slot: u32) {
        if let Some(conn) = self.conns.get_mut(slot) {
            if !conn.io.is_dirty {
                conn.io.is_dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    /// Starts closing: queues the close frame after what is queued, tells the handler,
    /// unregisters the client. The socket goes once the output is written and the peer answered.
    fn begin_close(&mut self, slot: u32, code: u16, reason: &str) {
        // In a shutdown, the configured shutdown timeout bounds the close instead, so that
        // a slow client still gets what was queued for it.
        let now = Instant::now();
        let deadline = self
            .stopping
            .map_or(now + CLOSE_TIMEOUT, |d| d.max(now + CLOSE_TIMEOUT));
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        match conn.phase {
            Phase::Open => {
                conn.io.queue_close(code, reason);
                conn.io.output_closed = true;
                conn.phase = Phase::Closing(deadline);
                self.notify_closed(slot);
                self.mark_dirty(slot);
            }
            Phase::Handshake(..) => {
                self.conns.remove(slot);
            }
            Phase::Closing(_) => {}
        }
    }

    /// Runs on_close and releases the client's flag, groups and data.
    fn notify_closed(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        let s = &mut self.servers[conn.io.server as usize];
        let mut ctx = Context {
            io: &mut conn.io,
            shared: &s.shared,
            server: &s.facade,
            worker: self.id,
        };
        guarded(&mut ctx, |ctx| s.handler.handler().on_close(ctx));
        conn.io.close_request = None;
        s.shared.registry.close(conn.io.id);
    }

    /// The peer closed its side or the socket failed.
    fn peer_gone(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        conn.peer_closed = true;
        if conn.is_open() {
            // No close frame from a WebSocket peer: abnormal closure, nothing to answer.
            conn.io.output_closed = true;
            conn.phase = Phase::Closing(Instant::now() + CLOSE_TIMEOUT);
            self.notify_closed(slot);
        }
        // Best effort for what is still queued, then let go.
        if let Some(conn) = self.conns.get_mut(slot) {
            let _ = conn.io.flush();
        }
        self.retire(slot);
    }

    /// Drops a closing connection once its output is out and the peer is done.
    fn finish_if_closed(&mut self, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if !matches!(conn.phase, Phase::Closing(_)) || conn.io.has_output() {
            return;
        }
        if conn.peer_closed {
            self.conns.remove(slot);
        } else if !conn.write_shut {
            // Our side is done: a FIN after the last byte, then wait for the peer's.
            conn.write_shut = true;
            let _ = conn.io.socket.shutdown(Shutdown::Write);
        }
    }

    /// Drops a connection now, telling the handler first if it was open.
    fn retire(&mut self, slot: u32) {
        if self.conns.get_mut(slot).is_some_and(|c| c.is_open()) {
            self.notify_closed(slot);
        }
        self.conns.remove(slot);
    }

    fn flush_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for slot in dirty.drain(..) {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            conn.io.is_dirty = false;
            match conn.io.flush() {
                Ok(_) => self.finish_if_closed(slot),
                Err(e) => {
                    debug!("core loop {}: write to {} failed: {e}", self.id, conn.io.id);
                    self.retire(slot);
                }
            }
        }
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn drain_mailbox(&mut self) {
        if let Some(m) = self.runtime.mailboxes.get(self.id.index()) {
            m.rearm();
        }
        for _ in 0..self.batch {
            match self.rx.try_recv() {
                Ok(cmd) => self.command(cmd),
                Err(_) => return,
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Push {
                server,
                frame,
                target,
            } => {
                for slot in self.targets(server, &target) {
                    if let Some(conn) = self.conns.get_mut(slot) {
                        if conn.io.queue_shared(&frame) {
                            self.mark_dirty(slot);
                        }
                    }
                }
            }
            Command::Close { server, target } => {
                for slot in self.targets(server, &target) {
                    self.begin_close(slot, 1000, "");
                }
            }
            Command::Message {
                server,
                action,
                data,
            } => self.worker_message(server as usize, action.as_deref(), &data),
            Command::Shutdown => self.begin_shutdown(),
        }
    }

    /// The open connections of `server` that a command names.
    fn targets(&self, server: u16, target: &LocalTarget) -> Vec<u32> {
        match target {
            LocalTarget::Ids(ids) => ids
                .iter()
                .filter(|id| id.worker() == self.id && id.instance() == self.runtime.instance)
                .filter_map(|id| self.conns.slot_of(id.serial()))
                .filter(|&slot| {
                    self.conns
                        .get(slot)
                        .is_some_and(|c| c.io.server == server && c.is_open())
                })
                .collect(),
            LocalTarget::All { except } => self
                .conns
                .iter()
                .filter(|(_, c)| c.io.server == server && c.is_open())
                .filter(|(_, c)| except.binary_search(&c.io.id).is_err())
                .map(|(slot, _)| slot)
                .collect(),
        }
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
                    parser: &*s.shared.parser,
                };
                if !s.handler.action(&mut ctx, &msg) {
                    s.handler.handler().on_worker_message(&mut ctx, &msg);
                }
            }
            None => s.handler.handler().on_worker_message_raw(&mut ctx, data),
        }));
        if result.is_err() {
            error!("core loop {}: a worker-message callback panicked", self.id);
        }
    }

    fn begin_shutdown(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(Instant::now() + self.shutdown_timeout);
        for s in &mut self.servers {
            if let Some(mut l) = s.listener.take() {
                let _ = self.poll.registry().deregister(&mut l);
            }
        }
        for slot in self.conns.occupied() {
            self.begin_close(slot, 1001, "server shutting down");
        }
    }

    /// Enforces deadlines: slow handshakes and closes that never finish.
    fn sweep(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (slot, conn) in self.conns.iter() {
            match conn.phase {
                Phase::Handshake(_, deadline) | Phase::Closing(deadline) if now >= deadline => {
                    expired.push(slot)
                }
                _ => {}
            }
        }
        for slot in expired {
            debug!(
                "core loop {}: dropping a connection past its deadline",
                self.id
            );
            self.retire(slot);
        }
    }
}

/// The code to answer a client's close frame with (RFC 6455 §5.5.1: echo it).
fn echo_code(code: Option<u16>) -> u16 {
    code.unwrap_or(1000)
}

/// Runs a handler call; a panic closes the connection (1011) instead of the core loop.
fn guarded(ctx: &mut Context<'_>, f: impl FnOnce(&mut Context<'_>)) {
    if catch_unwind(AssertUnwindSafe(|| f(&mut *ctx))).is_err() {
        error!("handler panicked on client {}; closing it", ctx.io.id);
        ctx.io.close_request = Some((1011, "internal error".to_owned()));
    }
}
