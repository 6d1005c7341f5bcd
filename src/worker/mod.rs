//! The core loop: one thread, one `mio::Poll`, the connections it owns outright.
//!
//! A turn of the loop: wait for socket events (or the mailbox's waker), handle them, drain a
//! bounded batch of commands from the mailbox, then flush every connection due — one
//! vectored write per connection, however many frames were queued to it. A connection that
//! got a message of its own (a reply, a push to it alone, a ping, a close) is due this turn;
//! one holding only fan-out frames waits for the next fan-out round, which starts when the
//! fan-out window allows (`RuntimeConfig::fanout_window`, sized by [`pacer`]) and is written
//! `FANOUT_CHUNK` connections per turn.
//! Accepting and admitting connections lives in [`accept`], the commands from the mailbox in
//! [`command`], per-connection I/O and the close paths in [`io`].

mod accept;
mod command;
mod io;
mod pacer;
mod remote;
mod restored;
pub(crate) mod slots;
mod upgrade;

use std::collections::HashMap;
use std::io as stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use log::{debug, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};

use crate::codec::ws::OpKind;
use crate::config::RuntimeConfig;
use crate::conn::remote::RemoteConn;
use crate::conn::{Conn, Phase};
use crate::edge::PlainHttp;
use crate::facade::Server;
use crate::id::{ClientId, WorkerId};
use crate::mailbox::{Command, Stamp, pop_local, set_current_worker, stamp_now, take_one};
use crate::shared::{RuntimeShared, ServerShared};
use crate::spec::HandlerBox;
use crate::stats::bump;
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
/// Connections written per turn in a fan-out round (see `Worker::flush_held`). A write to a
/// socket costs the loop several microseconds (loopback: 7–12 µs with the receiver's TCP
/// work), so 64 of them keep a reply or a read that comes during a round waiting well under
/// a millisecond; 256 kept it waiting up to ~3 ms, which slowed closed-loop senders and with
/// them how many frames a round gathers (examples/load at 1,000 clients: 1.3× the
/// deliveries/s at 0.7× the CPU per delivery against 256).
const FANOUT_CHUNK: usize = 64;
/// How often deadlines (handshakes, closes, idle connections) are checked.
const TICK: Duration = Duration::from_millis(250);

/// One named server as a core loop holds it.
pub(crate) struct ServerSlot {
    pub(crate) shared: Arc<ServerShared>,
    pub(crate) facade: Server,
    pub(crate) handler: Box<dyn HandlerBox>,
    pub(crate) listener: Option<TcpListener>,
    /// How plain HTTP requests on the port are answered.
    pub(crate) plain_http: Arc<PlainHttp>,
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
    /// Connections holding only fan-out frames, for the next fan-out round.
    held: Vec<u32>,
    /// The fan-out round under way, written up to `round_pos`.
    round: Vec<u32>,
    round_pos: usize,
    /// When the next fan-out round may start.
    pacer: pacer::Pacer,
    /// Connections whose read budget ran out: read again next turn.
    again: Vec<u32>,
    /// The slots a command names, reused from command to command.
    targets: Vec<u32>,
    config: RuntimeConfig,
    stopping: Option<Instant>,
    /// The loop's clock: `now_ms` is milliseconds since `epoch`, refreshed every turn.
    epoch: Instant,
    now_ms: u32,
    /// Clients refused since the last log line about it.
    refused: u64,
    /// Per server: an accept failed for want of file descriptors or memory; see `accept`.
    accept_paused: Vec<bool>,
    /// A connection was let go this turn (its descriptor is free again).
    released: bool,
    /// Local commands are being carried out (see `run_local`).
    in_local: bool,
    /// In a business process: the clients of gateways this core loop serves.
    remotes: HashMap<ClientId, RemoteConn>,
    last_stats: Instant,
}

impl Worker {
    pub(crate) fn new(
        id: WorkerId,
        runtime: Arc<RuntimeShared>,
        poll: Poll,
        rx: Receiver<Command>,
        servers: Vec<ServerSlot>,
        config: RuntimeConfig,
    ) -> Self {
        let now = Instant::now();
        let n_servers = servers.len();
        Worker {
            id,
            runtime,
            poll,
            rx,
            servers,
            conns: Slots::default(),
            scratch: vec![0; SCRATCH],
            dirty: Vec::new(),
            held: Vec::new(),
            round: Vec::new(),
            round_pos: 0,
            pacer: pacer::Pacer::new(config.fanout_window),
            again: Vec::new(),
            targets: Vec::new(),
            config,
            stopping: None,
            epoch: now,
            now_ms: 0,
            refused: 0,
            accept_paused: vec![false; n_servers],
            released: false,
            in_local: false,
            remotes: HashMap::new(),
            last_stats: now,
        }
    }

    /// Runs the loop until shutdown.
    pub(crate) fn run(mut self) -> stdio::Result<()> {
        set_current_worker(Some((self.runtime.id, self.id)));
        let result = self.run_loop();
        set_current_worker(None);
        result
    }

    fn run_loop(&mut self) -> stdio::Result<()> {
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
            let busy = !self.rx.is_empty()
                || crate::mailbox::local_pending()
                || !self.again.is_empty()
                || !self.dirty.is_empty()
                || self.in_round();
            let timeout = if busy {
                Duration::ZERO
            } else if self.held.is_empty() {
                TICK
            } else {
                self.next_round()
                    .saturating_duration_since(Instant::now())
                    .min(TICK)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == stdio::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let now = Instant::now();
            self.now_ms = now.duration_since(self.epoch).as_millis() as u32;
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
                            let ended = event.is_read_closed() || event.is_error();
                            if ended {
                                self.read(slot);
                            } else if event.is_readable() {
                                self.read_from(slot, true);
                            }
                            if event.is_writable() {
                                self.mark_dirty(slot);
                            }
                        }
                    }
                    Token(t) => self.accept(t - LISTENER_BASE),
                }
            }
            if self.stopping.is_none() && self.runtime.is_stopping() {
                self.begin_shutdown();
            }
            self.drain_mailbox();
            // Before the flush, so that the pings and close frames it queues go out in this
            // turn rather than up to a tick later, eating into the time a client has to answer.
            let tick = now.duration_since(last_tick) >= TICK;
            if tick {
                last_tick = now;
                self.sweep(now);
            }
            let released = std::mem::take(&mut self.released);
            if (tick || released) && self.accept_paused.contains(&true) {
                self.retry_accept();
            }
            self.run_local();
            self.flush_dirty();
            self.flush_held(Instant::now());
            if let Some(deadline) = self.stopping {
                if self.conns.is_empty() {
                    // Worker messages already counted as delivered to this loop still run.
                    while !self.rx.is_empty() || crate::mailbox::local_pending() {
                        self.drain_mailbox();
                    }
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

    fn is_handshaking(&self, slot: u32) -> bool {
        self.conns
            .get(slot)
            .is_some_and(|c| matches!(c.phase, Phase::Handshake(..)))
    }

    /// Carries out a bounded batch of commands from the channel, each with the local commands
    /// whose turn comes before it (see [`crate::mailbox`]).
    fn drain_mailbox(&mut self) {
        let Some(mailbox) = self.runtime.mailboxes.get(self.id.index()) else {
            return;
        };
        mailbox.rearm();
        self.run_local();
        let mut took = false;
        for _ in 0..self.config.mailbox_batch.max(1) {
            match self.rx.try_recv() {
                Ok(cmd) => {
                    took = true;
                    let at = take_one();
                    self.command(cmd, at);
                    self.run_local();
                }
                Err(_) => break,
            }
        }
        if took {
            if let Some(mailbox) = self.runtime.mailboxes.get(self.id.index()) {
                mailbox.made_room();
            }
        }
    }

    /// Carries out the commands of this thread whose turn has come.
    pub(super) fn run_local(&mut self) {
        // Not re-entered: a command carried out here may queue more, which wait their turn.
        if self.in_local {
            return;
        }
        self.in_local = true;
        while let Some((at, cmd)) = pop_local() {
            self.command(cmd, at);
        }
        self.in_local = false;
    }

    /// The stamp of an event of this core loop happening now.
    pub(super) fn stamp(&self) -> Stamp {
        stamp_now(self.rx.len())
    }

    fn begin_shutdown(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let stop_at = Instant::now() + self.config.shutdown_timeout;
        self.stopping = Some(stop_at);
        for s in &mut self.servers {
            if let Some(mut l) = s.listener.take() {
                let _ = self.poll.registry().deregister(&mut l);
            }
        }
        for slot in self.conns.occupied() {
            // A client still sending its request head may finish it, up to its deadline and
            // the shutdown timeout: an upgrade is then refused (503), a plain request answered
            // (`/health` with 503).
            if let Some(Conn {
                phase: Phase::Handshake(_, deadline),
                ..
            }) = self.conns.get_mut(slot)
            {
                *deadline = (*deadline).min(stop_at);
                continue;
            }
            self.begin_close(slot, 1001, "server shutting down");
        }
    }

    /// Enforces deadlines (slow handshakes, closes that never finish, idle connections),
    /// sends keepalive pings, and logs what needs logging.
    fn sweep(&mut self, now: Instant) {
        let mut expired = Vec::new();
        let mut idle = Vec::new();
        let mut ping = Vec::new();
        for (slot, conn) in self.conns.iter() {
            match conn.phase {
                Phase::Handshake(_, deadline) | Phase::Closing { deadline, .. }
                    if now >= deadline =>
                {
                    expired.push(slot)
                }
                Phase::Open => {
                    let Some(timeout) = self.servers[conn.io.server as usize]
                        .shared
                        .config
                        .idle_timeout
                    else {
                        continue;
                    };
                    let silent = self.now_ms.wrapping_sub(conn.last_seen) as u128;
                    // Never closed unpinged: when a late sweep finds a client already past the
                    // timeout, it gets its ping now and until the next sweep to answer.
                    if silent >= timeout.as_millis() && conn.pinged {
                        idle.push(slot);
                    } else if silent >= timeout.as_millis() / 2 && !conn.pinged {
                        ping.push(slot);
                    }
                }
                _ => {}
            }
        }
        for slot in expired {
            if let Some(conn) = self.conns.get(slot) {
                if matches!(conn.phase, Phase::Handshake(..)) {
                    let shared = &self.servers[conn.io.server as usize].shared;
                    bump(&shared.counters(self.id).handshake_failures, 1);
                }
            }
            debug!(
                "core loop {}: dropping a connection past its deadline",
                self.id
            );
            self.retire(slot);
        }
        for slot in idle {
            if let Some(conn) = self.conns.get(slot) {
                let shared = &self.servers[conn.io.server as usize].shared;
                bump(&shared.counters(self.id).idle_closes, 1);
                debug!("core loop {}: closing idle client {}", self.id, conn.io.id);
            }
            self.begin_close(slot, 1001, "idle timeout");
        }
        for slot in ping {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.pinged = true;
                conn.io.queue_control(OpKind::Ping, b"", usize::MAX);
            }
            self.mark_dirty(slot);
        }
        if self.refused > 0 {
            warn!(
                "core loop {}: refused {} client(s) over the connection limits",
                self.id, self.refused
            );
            self.refused = 0;
        }
        if let Some(every) = self.config.stats_interval {
            if self.id.index() == 0 && now.duration_since(self.last_stats) >= every {
                self.last_stats = now;
                for s in &self.servers {
                    info!("server {:?}: {:?}", s.shared.config.name, s.shared.stats());
                }
            }
        }
    }
}
