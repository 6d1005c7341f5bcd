//! The gateway role: the business processes' side of a gateway. It listens on the internal
//! address, checks each business process's handshake, carries out what it asks of this
//! instance's clients (through the one delivery door, as a cluster instance does — see
//! [`Node::receive`]), and hands it the client events of the clients it serves.
//!
//! Threads: one accepts business processes; each link has a reader (the business's requests,
//! carried out in the order it sent them) and a writer (events and answers, batched, and a
//! hello every second so that the business counts this gateway as live). Nothing here runs on
//! a core loop but [`Hub::dispatch`], which never blocks: it hands a frame to a link's bounded
//! queue, or keeps it while no business process is connected.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use log::{debug, error, info, warn};
use parking_lot::{Mutex, RwLock};

use super::config::GatewayConfig;
use super::proto;
use crate::channel::proto::read_frame;
use crate::cluster::{Node, Route, Transport, hello};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::inbox::{Filled, Inbox};

/// How long a business process may take to say who it is.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a hello is said on each link.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often the threads look whether the runtime is stopping.
const POLL: Duration = Duration::from_millis(100);
/// Frames written at once at most.
const BATCH: usize = 1024;

/// One business process, connected.
#[derive(Debug)]
pub(crate) struct Link {
    id: u64,
    name: String,
    tx: Sender<Vec<u8>>,
    alive: AtomicBool,
    /// Whether it takes client events: until it leaves. Held for reading while an event is
    /// queued to it, so that none can follow the [`proto::DRAINED`] that ends them.
    taking: RwLock<bool>,
}

/// What became of a client event offered to a link.
enum Offered {
    Queued,
    Full,
    /// The link is gone or leaving: the event goes elsewhere.
    Refused(Vec<u8>),
}

impl Link {
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    fn offer(&self, frame: Vec<u8>) -> Offered {
        let taking = self.taking.read();
        if !*taking || !self.is_alive() {
            return Offered::Refused(frame);
        }
        match self.tx.try_send(frame) {
            Ok(()) => Offered::Queued,
            Err(TrySendError::Full(_)) => Offered::Full,
            Err(TrySendError::Disconnected(frame)) => Offered::Refused(frame),
        }
    }
}

/// Where one client's events go (kept by the core loop that holds the client).
#[derive(Debug, Default)]
pub(crate) enum Serving {
    /// Nowhere yet: to the next business process in turn.
    #[default]
    Unassigned,
    /// To this business process, while it lives.
    Link(Arc<Link>),
    /// Some of its events were kept, in batch `n`, while no business process was connected:
    /// to the one that batch went to, while it lives.
    Kept(u64),
}

/// The links and what waits for one.
#[derive(Debug, Default)]
struct State {
    links: Vec<Arc<Link>>,
    /// Client events kept while no business process is connected, in order.
    pending: VecDeque<Vec<u8>>,
    /// The batch the events kept now belong to; it ends when a business process takes them.
    batch: u64,
    /// The live business processes that took a batch of kept events, with its number: the
    /// clients of that batch stay with them.
    took: Vec<(u64, Arc<Link>)>,
    /// The next link to give a client to, round robin.
    turn: usize,
}

/// The gateway of one server.
#[derive(Debug)]
pub(crate) struct Hub {
    config: GatewayConfig,
    node: OnceLock<Arc<Node>>,
    addr: OnceLock<SocketAddr>,
    state: Mutex<State>,
    next_link: AtomicU64,
    /// Client events handed to a business process's link.
    forwarded: AtomicU64,
    /// Client events dropped: none connected and the pending bound reached, or a full link.
    dropped: AtomicU64,
}

/// What a gateway reports of itself (see [`Runtime::gateway`](crate::Runtime::gateway)).
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    hub: Arc<Hub>,
}

impl GatewayHandle {
    pub(crate) fn new(hub: Arc<Hub>) -> Self {
        GatewayHandle { hub }
    }

    /// The address business processes connect to.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.hub.addr.get().copied()
    }

    /// How many business processes are connected now.
    pub fn businesses(&self) -> usize {
        self.hub.state.lock().links.len()
    }

    /// Client events kept now for want of a business process.
    pub fn pending_events(&self) -> usize {
        self.hub.state.lock().pending.len()
    }

    /// Client events handed to a business process since start.
    pub fn forwarded_events(&self) -> u64 {
        self.hub.forwarded.load(Ordering::Relaxed)
    }

    /// Client events dropped since start: while no business process was connected past
    /// [`max_pending_events`](crate::GatewayConfig::max_pending_events), or for a business
    /// process whose queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.hub.dropped.load(Ordering::Relaxed)
    }
}

/// Answers a business process's requests on its own link.
#[derive(Debug)]
struct Reply<'a>(&'a Link);

impl Transport for Reply<'_> {
    fn send(&self, _to: Route, message: Vec<u8>) -> Result<()> {
        let mut frame = Vec::with_capacity(message.len() + 5);
        proto::cluster(&message, &mut frame);
        self.0
            .tx
            .try_send(frame)
            .map_err(|_| Error::Backend("the business process's queue is full".into()))
    }

    fn check(&self) -> Result<()> {
        Ok(())
    }
}

impl Hub {
    pub(crate) fn new(config: GatewayConfig) -> Self {
        Hub {
            config,
            node: OnceLock::new(),
            addr: OnceLock::new(),
            state: Mutex::new(State::default()),
            next_link: AtomicU64::new(1),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    /// Binds the internal address and starts accepting business processes for the server
    /// `delivery` delivers to. The thread ends once the runtime stops.
    pub(crate) fn start(self: &Arc<Self>, delivery: Arc<Delivery>) -> Result<JoinHandle<()>> {
        let me = delivery.instance();
        if me == 0 {
            return Err(Error::Config(
                "a gateway needs an instance number from 1 up (RuntimeConfig::instance): \
                 it is how business processes tell gateways apart"
                    .into(),
            ));
        }
        let listener = TcpListener::bind(self.config.internal_addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let _ = self.addr.set(addr);
        let _ = self.node.set(Arc::new(Node::new(delivery, me)));
        let hub = self.clone();
        let thread = thread::Builder::new()
            .name(format!("corepush-gateway-{me}"))
            .spawn(move || hub.accept_loop(&listener))?;
        info!("gateway {me}: business processes connect to {addr}");
        Ok(thread)
    }

    fn node(&self) -> &Node {
        self.node.get().expect("started")
    }

    fn accept_loop(self: &Arc<Self>, listener: &TcpListener) {
        let mut links: Vec<JoinHandle<()>> = Vec::new();
        while !self.node().delivery.is_stopping() {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let hub = self.clone();
                    let spawned = thread::Builder::new()
                        .name("corepush-gateway-link".into())
                        .spawn(move || hub.serve(stream, peer));
                    match spawned {
                        Ok(t) => links.push(t),
                        Err(e) => error!("gateway: no thread for a business process: {e}"),
                    }
                    links.retain(|t| !t.is_finished());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 2),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("gateway: accepting a business process failed: {e}");
                    thread::sleep(POLL);
                }
            }
        }
        for t in links {
            let _ = t.join();
        }
    }

    /// One business process, from its handshake to its end.
    fn serve(self: Arc<Self>, mut stream: TcpStream, peer: SocketAddr) {
        let me = self.node().me;
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
        let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
        let body = match read_frame(&mut stream, 64 * 1024) {
            Ok(body) => body,
            Err(e) => {
                debug!("gateway {me}: {peer} sent no handshake: {e}");
                return;
            }
        };
        let name = match self.admit(&body) {
            Ok(name) => name,
            Err(why) => {
                warn!("gateway {me}: business process at {peer} refused: {why}");
                let mut out = Vec::new();
                proto::refused(&why, &mut out);
                let _ = stream.write_all(&out);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        };
        let mut out = Vec::new();
        proto::welcome(me, &mut out);
        if stream.write_all(&out).is_err() {
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(self.config.link_queue.max(1));
        let link = Arc::new(Link {
            id: self.next_link.fetch_add(1, Ordering::Relaxed),
            name,
            tx,
            alive: AtomicBool::new(true),
            taking: RwLock::new(true),
        });
        let Ok(write) = stream.try_clone() else {
            return;
        };
        let (hub, writer_link) = (self.clone(), link.clone());
        let writer = thread::Builder::new()
            .name("corepush-gateway-write".into())
            .spawn(move || hub.write_loop(&writer_link, write, &rx));
        let Ok(writer) = writer else {
            return;
        };
        self.add(&link);
        info!(
            "gateway {me}: business process {:?} connected from {peer}",
            link.name
        );
        let why = self.read_loop(&link, &mut stream);
        self.remove(&link);
        let _ = stream.shutdown(Shutdown::Both);
        let _ = writer.join();
        match why {
            Some(why) => warn!(
                "gateway {me}: business process {:?} ({peer}) left: {why}",
                link.name
            ),
            None => info!("gateway {me}: business process {:?} left", link.name),
        }
    }

    /// Checks a handshake; the business process's name, or why it is refused.
    fn admit(&self, body: &[u8]) -> std::result::Result<String, String> {
        let Some(hello) = proto::decode_hello(body) else {
            return Err("not a gateway handshake of version 1".into());
        };
        if !same_secret(hello.secret.as_bytes(), self.config.secret.as_bytes()) {
            return Err("wrong secret".into());
        }
        if hello.instance == self.node().me {
            return Err(format!(
                "instance number {} is this gateway's own",
                hello.instance
            ));
        }
        Ok(if hello.name.is_empty() {
            format!("instance-{}", hello.instance)
        } else {
            hello.name.to_owned()
        })
    }

    /// Carries out the business process's requests until it leaves, the link breaks or the
    /// runtime stops; why it ended, where that is worth a warning.
    fn read_loop(&self, link: &Link, stream: &mut TcpStream) -> Option<String> {
        let node = self.node();
        let _ = stream.set_read_timeout(Some(POLL));
        let reply = Reply(link);
        let mut inbox = Inbox::default();
        loop {
            if node.delivery.is_stopping() || !link.is_alive() {
                return None;
            }
            match inbox.fill(stream) {
                Filled::Bytes => {}
                Filled::Idle => continue,
                Filled::Closed => return None,
                Filled::Failed(e) => return Some(e.to_string()),
            }
            let took = inbox.frames(self.config.max_frame, |body| match body.split_first() {
                Some((&proto::CLUSTER, message)) => {
                    node.receive(message, &reply);
                    Ok(())
                }
                Some((&proto::LEAVING, [])) => {
                    self.leaving(link);
                    Ok(())
                }
                _ => Err("a frame of an unknown kind".into()),
            });
            if let Err(why) = took {
                return Some(why);
            }
        }
    }

    /// Writes what is queued to the link, a hello every second, and goodbye at stop.
    fn write_loop(&self, link: &Link, mut stream: TcpStream, rx: &Receiver<Vec<u8>>) {
        let me = self.node().me;
        let _ = stream.set_write_timeout(None);
        let mut beat = Instant::now();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            if self.node().delivery.is_stopping() {
                proto::cluster(&hello(me, false), &mut buf);
                let _ = stream.write_all(&buf);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            if !link.is_alive() {
                return;
            }
            match rx.recv_timeout(POLL.min(beat.saturating_duration_since(Instant::now()))) {
                Ok(first) => {
                    buf.extend_from_slice(&first);
                    for m in rx.try_iter().take(BATCH) {
                        buf.extend_from_slice(&m);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= beat {
                beat = Instant::now() + HEARTBEAT;
                proto::cluster(&hello(me, true), &mut buf);
            }
            if !buf.is_empty() {
                if stream.write_all(&buf).is_err() {
                    link.alive.store(false, Ordering::Release);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                buf.clear();
            }
        }
    }

    /// A business process is ready: what waited for one goes to it first, in order.
    fn add(&self, link: &Arc<Link>) {
        let mut state = self.state.lock();
        let mut lost = 0;
        let kept = !state.pending.is_empty();
        while let Some(frame) = state.pending.pop_front() {
            match link.tx.try_send(frame) {
                Ok(()) => {
                    self.forwarded.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => lost += 1,
            }
        }
        if lost > 0 {
            self.dropped.fetch_add(lost, Ordering::Relaxed);
            warn!(
                "gateway: {lost} kept client event(s) dropped: business process {:?}'s queue is full",
                link.name
            );
        }
        if kept {
            // The clients of the batch it took are its own from now on (see `dispatch`).
            let batch = state.batch;
            state.took.push((batch, link.clone()));
            state.batch += 1;
        }
        state.links.push(link.clone());
    }

    /// The business process is stopping: its clients' next events go to another one (or
    /// wait), and [`proto::DRAINED`] follows the last event queued to it.
    fn leaving(&self, link: &Link) {
        {
            let mut state = self.state.lock();
            state.links.retain(|l| l.id != link.id);
            state.took.retain(|(_, l)| l.id != link.id);
        }
        let mut taking = link.taking.write();
        if *taking {
            *taking = false;
            let mut frame = Vec::new();
            proto::bare(proto::DRAINED, &mut frame);
            // Waits for room: the marker must follow the events (the writer makes room).
            let _ = link.tx.send_timeout(frame, Duration::from_secs(5));
            info!("gateway: business process {:?} is leaving", link.name);
        }
    }

    fn remove(&self, link: &Link) {
        link.alive.store(false, Ordering::Release);
        let mut state = self.state.lock();
        state.links.retain(|l| l.id != link.id);
        state.took.retain(|(_, l)| l.id != link.id);
    }

    /// Hands a client event to the business process serving the client (`serving`, where it
    /// is still connected: the one it was given to, or the one that took its kept events) or
    /// to the next one in turn, which then serves it; with none connected, keeps it up to the
    /// bound. Never blocks.
    pub(crate) fn dispatch(&self, serving: &mut Serving, frame: Vec<u8>) {
        let mut frame = match serving {
            Serving::Link(link) => match link.offer(frame) {
                Offered::Queued => return self.forwarded(),
                Offered::Full => return self.drop_event("the business process's queue is full"),
                Offered::Refused(frame) => frame,
            },
            _ => frame,
        };
        // A link picked below may be leaving by the time the event is offered to it: then
        // the next pick does not find it.
        loop {
            let mut state = self.state.lock();
            // Its kept events went to a business process that lives: it goes on serving it,
            // after them (they were queued to it first).
            let took = match *serving {
                Serving::Kept(batch) => state
                    .took
                    .iter()
                    .find(|(b, l)| *b == batch && l.is_alive())
                    .map(|(_, l)| l.clone()),
                _ => None,
            };
            let link = match took {
                Some(link) => link,
                None if state.links.is_empty() => {
                    if state.pending.len() < self.config.max_pending_events {
                        state.pending.push_back(frame);
                        *serving = Serving::Kept(state.batch);
                    } else {
                        drop(state);
                        self.drop_event(
                            "no business process is connected and the pending bound is reached",
                        );
                    }
                    return;
                }
                None => {
                    let at = state.turn % state.links.len();
                    state.turn = state.turn.wrapping_add(1);
                    state.links[at].clone()
                }
            };
            drop(state);
            match link.offer(frame) {
                Offered::Queued => {
                    self.forwarded();
                    *serving = Serving::Link(link);
                    return;
                }
                Offered::Full => {
                    *serving = Serving::Link(link);
                    return self.drop_event("the business process's queue is full");
                }
                Offered::Refused(back) => {
                    frame = back;
                    *serving = Serving::Unassigned;
                    if !link.is_alive() {
                        // Its writer failed before its reader noticed: no further pick finds it.
                        self.state.lock().links.retain(|l| l.id != link.id);
                    }
                }
            }
        }
    }

    fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    fn drop_event(&self, why: &str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        // The first, then one line per 1,000, so that a flood cannot flood the log.
        if n == 1 || n % 1000 == 0 {
            warn!("gateway: a client event was dropped ({why}); {n} dropped so far");
        }
    }
}

/// Compares secrets in a time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
