//! The Gateway transport of a business process: one link to each gateway, over which the
//! facade's calls go to the gateways (as cluster messages; a gateway is an instance of the
//! cluster that holds clients) and the gateways' client events come in, to run the handler on
//! this process's core loops.
//!
//! * **Identity.** Each gateway says its instance number in its welcome; client ids carry it,
//!   so a push by id goes to the gateway that holds the client. Two gateways with the same
//!   number cannot both be linked: the second is refused here, logged, and tried again.
//! * **Sending** never blocks: frames go to the link's writer thread, which writes what is
//!   pending at once. A message for a gateway that is not linked (down, or a number no
//!   gateway has, or one whose link is ending) goes nowhere, as a cluster message for an
//!   instance that is not live: its clients count as not connected. With no gateway linked
//!   at all, sends fail with [`Error::Backend`].
//! * **Receiving**: the reader hands cluster messages (answers, hellos) to [`Node::receive`]
//!   and client events to the core loops ([`Delivery::remote`]), one client's always to the
//!   same core loop, in order.
//! * **Faults.** At start, a gateway that refuses the handshake (a wrong secret) fails the
//!   start with [`Error::Config`]; one that cannot be reached is tried again in the background,
//!   and the start fails with [`Error::Backend`] only when no gateway can be reached. A link
//!   that breaks is tried again with backoff (50 ms up to 1 s); meanwhile the clients of that
//!   gateway cannot be reached, and every other gateway is served on.
//!
//! [`Delivery::remote`]: crate::delivery::Delivery::remote

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use log::{error, info, warn};
use parking_lot::{Condvar, Mutex, RwLock};

use super::config::GatewayBackendConfig;
use super::proto::{self, FromGateway, Hello};
use crate::channel::proto::read_frame;
use crate::cluster::{Node, Route, Transport};
use crate::conn::handshake::HandshakeRequest;
use crate::error::{Error, Result};
use crate::inbox::{Filled, Inbox};
use crate::mailbox::RemoteEvent;
use crate::shared::Drain;

/// How often the threads look whether the runtime is stopping.
const POLL: Duration = Duration::from_millis(100);
/// Frames waiting for one link's writer; past it a send fails rather than grow memory.
const QUEUE: usize = 64 * 1024;
/// Frames written at once at most.
const BATCH: usize = 1024;
/// The longest pause between two attempts to reach a gateway.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The largest frame taken from a gateway.
const MAX_FRAME: usize = 256 << 20;

/// How long a business process that stops waits for its gateways' last events, and for its
/// core loops to handle them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// The links to the gateways, by gateway instance number.
#[derive(Debug, Default)]
pub(crate) struct GatewayTransport {
    links: RwLock<HashMap<u16, Sender<Vec<u8>>>>,
    /// While stopping: the gateways whose last event has not come yet.
    awaited: Mutex<HashSet<u16>>,
    drained: Condvar,
}

impl GatewayTransport {
    /// Gateway `n` sends no further event: it said so, or its link ended.
    fn drained(&self, n: u16) {
        let mut awaited = self.awaited.lock();
        if awaited.remove(&n) && awaited.is_empty() {
            self.drained.notify_all();
        }
    }
}

/// A business process stopping gracefully: it tells every gateway it is leaving, takes the
/// events they had already sent it, and lets its core loops handle them — their pushes and
/// answers go out before the links close (the writers send what is queued at stop).
#[derive(Debug)]
struct Leave {
    node: Arc<Node>,
    transport: Arc<GatewayTransport>,
}

impl Drain for Leave {
    fn drain(&self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut frame = Vec::new();
        proto::bare(proto::LEAVING, &mut frame);
        {
            let links = self.transport.links.read();
            let mut awaited = self.transport.awaited.lock();
            for (&n, tx) in links.iter() {
                awaited.insert(n);
                if tx.try_send(frame.clone()).is_err() {
                    awaited.remove(&n);
                }
            }
        }
        let mut awaited = self.transport.awaited.lock();
        while !awaited.is_empty() {
            if self
                .transport
                .drained
                .wait_until(&mut awaited, deadline)
                .timed_out()
            {
                warn!(
                    "business: gateway(s) {:?} sent no end of their events in time; stopping anyway",
                    awaited.iter().collect::<Vec<_>>()
                );
                break;
            }
        }
        drop(awaited);
        if !self.node.delivery.barrier(deadline) {
            warn!("business: the core loops did not handle every event in time; stopping anyway");
        }
    }
}

fn unreachable(what: String) -> Error {
    Error::Backend(Box::new(io::Error::new(io::ErrorKind::NotConnected, what)))
}

/// Queues a frame to one link; whether it was queued. False when the link is ending (its
/// writer is gone, its reader about to drop it): the gateway counts as not linked.
fn offer(tx: &Sender<Vec<u8>>, frame: Vec<u8>, gateway: u16) -> Result<bool> {
    match tx.try_send(frame) {
        Ok(()) => Ok(true),
        Err(TrySendError::Full(_)) => Err(Error::Backend(
            format!("the link to gateway {gateway} is behind: its queue is full").into(),
        )),
        Err(TrySendError::Disconnected(_)) => Ok(false),
    }
}

impl Transport for GatewayTransport {
    fn send(&self, to: Route, message: Vec<u8>) -> Result<()> {
        let mut frame = Vec::with_capacity(message.len() + 5);
        proto::cluster(&message, &mut frame);
        let links = self.links.read();
        match to {
            Route::To(n) => match links.get(&n) {
                Some(tx) => offer(tx, frame, n).map(drop),
                // Nobody linked holds gateway n's clients: they are not connected, as an
                // instance's that is not live. Failing here would fail a send to several
                // gateways after it reached the others.
                None if links.is_empty() => Err(unreachable("no gateway is reachable".into())),
                None => Ok(()),
            },
            Route::Others => {
                let mut outcome = Ok(());
                let mut queued = false;
                for (&n, tx) in links.iter() {
                    match offer(tx, frame.clone(), n) {
                        Ok(q) => queued |= q,
                        Err(e) => outcome = outcome.and(Err(e)),
                    }
                }
                if outcome.is_ok() && !queued {
                    return Err(unreachable("no gateway is reachable".into()));
                }
                outcome
            }
        }
    }

    fn check(&self) -> Result<()> {
        if self.links.read().is_empty() {
            Err(unreachable("no gateway is reachable".into()))
        } else {
            Ok(())
        }
    }
}

/// What one link's threads share.
struct Link {
    config: GatewayBackendConfig,
    addr: String,
    node: Arc<Node>,
    transport: Arc<GatewayTransport>,
}

/// Connects to every gateway and starts one thread per gateway, which keeps its link up until
/// the runtime stops.
pub(crate) fn start(
    config: &GatewayBackendConfig,
    node: Arc<Node>,
) -> Result<(Arc<GatewayTransport>, Vec<JoinHandle<()>>)> {
    if config.gateways.is_empty() {
        return Err(Error::Config(
            "the gateway backend needs at least one gateway".into(),
        ));
    }
    let transport = Arc::new(GatewayTransport::default());
    let mut firsts = Vec::new();
    let mut last_error = None;
    for addr in &config.gateways {
        match handshake(config, addr, node.me) {
            Ok(linked) => firsts.push(Some(linked)),
            Err(Error::Config(m)) => return Err(Error::Config(m)),
            Err(e) => {
                warn!("business: gateway {addr} cannot be reached yet ({e}); trying again");
                last_error = Some(e);
                firsts.push(None);
            }
        }
    }
    if firsts.iter().all(Option::is_none) {
        // A refused connection is an I/O error; with no gateway at all it is the backend's.
        return Err(match last_error {
            Some(e @ Error::Backend(_)) => e,
            Some(e) => Error::Backend(Box::new(e)),
            None => unreachable("no gateway".into()),
        });
    }
    let mut threads = Vec::new();
    for (addr, first) in config.gateways.iter().zip(firsts) {
        let link = Arc::new(Link {
            config: config.clone(),
            addr: addr.clone(),
            node: node.clone(),
            transport: transport.clone(),
        });
        // Linked before start returns: the first calls reach every gateway that answered.
        let first = first.and_then(|(stream, n)| register(&link, stream, n));
        threads.push(
            thread::Builder::new()
                .name("corepush-gateway-link".into())
                .spawn(move || run(&link, first))?,
        );
    }
    node.delivery.add_drain(Arc::new(Leave {
        node: node.clone(),
        transport: transport.clone(),
    }));
    Ok((transport, threads))
}

/// A linked gateway: its number, the reading half and the writer's queue.
type Linked = (u16, TcpStream, Receiver<Vec<u8>>);

/// Makes a new link to gateway `n` the one its sends take; `None` if another gateway holds
/// the number.
fn register(link: &Link, stream: TcpStream, n: u16) -> Option<Linked> {
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    {
        let mut links = link.transport.links.write();
        if links.contains_key(&n) {
            error!(
                "business: gateway {} says it is instance {n}, which another linked gateway is; \
                 each gateway needs its own number",
                link.addr
            );
            let _ = stream.shutdown(Shutdown::Both);
            return None;
        }
        links.insert(n, tx);
    }
    link.node.peers.heard(n);
    info!("business: linked to gateway {n} at {}", link.addr);
    Some((n, stream, rx))
}

/// Keeps one gateway linked until the runtime stops.
fn run(link: &Link, mut first: Option<Linked>) {
    let mut pause = Duration::from_millis(50);
    loop {
        let linked = match first.take() {
            Some(linked) => Some(linked),
            None => {
                // Leaving: a new link would bring new clients' events.
                if link.node.delivery.is_leaving() {
                    return;
                }
                match handshake(&link.config, &link.addr, link.node.me) {
                    Ok((stream, n)) => register(link, stream, n),
                    Err(_) => None,
                }
            }
        };
        let Some((n, stream, rx)) = linked else {
            thread::sleep(pause);
            pause = (pause * 2).min(MAX_BACKOFF);
            continue;
        };
        pause = Duration::from_millis(50);
        serve(link, n, stream, rx);
        link.transport.links.write().remove(&n);
        link.transport.drained(n);
        link.node.peers.gone(n);
        link.node.delivery.unlinked(n);
        if link.node.delivery.is_leaving() {
            return;
        }
        warn!("business: lost gateway {n} at {}; reconnecting", link.addr);
    }
}

/// Reads from a linked gateway, with a writer thread beside, until the link ends.
fn serve(link: &Link, n: u16, stream: TcpStream, rx: Receiver<Vec<u8>>) {
    let Ok(write) = stream.try_clone() else {
        return;
    };
    let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let node = link.node.clone();
        let stopping = stopping.clone();
        thread::Builder::new()
            .name("corepush-gateway-write".into())
            .spawn(move || write_loop(&node, write, &rx, &stopping))
    };
    read_loop(link, n, stream);
    stopping.store(true, std::sync::atomic::Ordering::Release);
    if let Ok(w) = writer {
        let _ = w.join();
    }
    let _ = n;
}

fn write_loop(
    node: &Node,
    mut stream: TcpStream,
    rx: &Receiver<Vec<u8>>,
    stopping: &std::sync::atomic::AtomicBool,
) {
    let mut buf = Vec::new();
    loop {
        if node.delivery.is_stopping() {
            // What the core loops queued before they stopped (answers to the last events)
            // goes out before the link closes.
            for m in rx.try_iter() {
                buf.extend_from_slice(&m);
            }
            let _ = stream.write_all(&buf);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        if stopping.load(std::sync::atomic::Ordering::Acquire) {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        match rx.recv_timeout(POLL) {
            Ok(first) => {
                buf.extend_from_slice(&first);
                for m in rx.try_iter().take(BATCH) {
                    buf.extend_from_slice(&m);
                }
            }
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if stream.write_all(&buf).is_err() {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        buf.clear();
    }
}

fn read_loop(link: &Link, n: u16, mut stream: TcpStream) {
    let node = &link.node;
    let _ = stream.set_read_timeout(Some(POLL));
    let mut inbox = Inbox::default();
    loop {
        if node.delivery.is_stopping() {
            return;
        }
        match inbox.fill(&mut stream) {
            Filled::Bytes => {}
            Filled::Idle => continue,
            Filled::Closed | Filled::Failed(_) => return,
        }
        let took = inbox.frames(MAX_FRAME, |body| {
            match proto::decode_from_gateway(body) {
                Some(FromGateway::Cluster(message)) => {
                    node.receive(message, &*link.transport);
                    Ok(())
                }
                Some(FromGateway::Open { id, uri, headers }) => {
                    // A TCP client has no upgrade request: an empty target says so.
                    let request = (!uri.is_empty()).then(|| {
                        Box::new(HandshakeRequest {
                            uri: uri.to_owned(),
                            headers: headers
                                .into_iter()
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .collect(),
                        })
                    });
                    hand(node, RemoteEvent::Open { id, request });
                    Ok(())
                }
                Some(FromGateway::Data {
                    id,
                    is_text,
                    payload,
                }) => {
                    hand(
                        node,
                        RemoteEvent::Message {
                            id,
                            is_text,
                            payload: payload.to_vec(),
                        },
                    );
                    Ok(())
                }
                Some(FromGateway::Closed { id, flag, groups }) => {
                    hand(
                        node,
                        RemoteEvent::Closed {
                            id,
                            flag: flag.map(str::to_owned),
                            groups: groups.into_iter().map(str::to_owned).collect(),
                        },
                    );
                    Ok(())
                }
                Some(FromGateway::Drained) => {
                    link.transport.drained(n);
                    Ok(())
                }
                Some(FromGateway::Welcome { .. } | FromGateway::Refused(_)) | None => {
                    Err("a frame that does not belong here".to_owned())
                }
            }
        });
        if let Err(why) = took {
            warn!(
                "business: {why} from gateway at {}; reconnecting",
                link.addr
            );
            return;
        }
    }
}

/// Hands a client event to the core loops; what they cannot take in time is logged.
fn hand(node: &Node, event: RemoteEvent) {
    let id = event.id();
    if let Err(e) = node.delivery.remote(event) {
        warn!("business: an event of client {id} was dropped: {e}");
    }
}

/// Connects to a gateway and says who this is; the stream and the gateway's number.
fn handshake(config: &GatewayBackendConfig, addr: &str, me: u16) -> Result<(TcpStream, u16)> {
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::Config(format!("gateway address {addr:?} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(&target, config.connect_timeout)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(config.connect_timeout))?;
    stream.set_write_timeout(Some(config.connect_timeout))?;
    let mut out = Vec::new();
    proto::hello(
        &Hello {
            instance: me,
            secret: &config.secret,
            name: config.name.as_deref().unwrap_or(""),
        },
        &mut out,
    );
    stream.write_all(&out)?;
    let body = read_frame(&mut stream, 64 * 1024)?;
    match proto::decode_from_gateway(&body) {
        Some(FromGateway::Welcome { instance }) => {
            stream.set_write_timeout(None)?;
            Ok((stream, instance))
        }
        Some(FromGateway::Refused(why)) => Err(Error::Config(format!(
            "gateway {addr} refused this business process: {why}"
        ))),
        _ => Err(Error::Backend(
            format!("gateway {addr} answered with something that is not a welcome").into(),
        )),
    }
}
