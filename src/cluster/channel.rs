//! The Channel transport: instances of one server talk through a channel broker
//! ([`ChannelServer`](crate::ChannelServer)), over one TCP connection each, with plain
//! blocking sockets on two threads of their own — nothing on a core loop.
//!
//! * **Identity.** The broker holds the instance numbers: the handshake claims this
//!   instance's number, and a number held by another live instance of the prefix is refused
//!   ([`Error::Config`]). Number 0 in the runtime's configuration asks the broker for the
//!   lowest free one ([`claim_free`]); the broker keeps it for this runtime while its
//!   transports connect.
//! * **Sending** never blocks the caller: frames go to the writer thread, which writes
//!   everything pending at once; it also says hello every second and goodbye at stop.
//! * **Receiving**: the reader thread hands every message the broker forwards to
//!   [`Node::receive`], and answers a newcomer's hello with a hello.
//! * **Faults.** Unreachable at start: [`Error::Backend`]. Lost later: sends fail with
//!   [`Error::Backend`] until the writer has connected and claimed the same number again
//!   (with backoff); each transition is logged once. Local delivery goes on meanwhile.

use std::io::{self, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{error, info, warn};

use super::{LinkUp, Node, Route, Transport, hello};
use crate::channel::proto::{self, Handshake, Refusal};
use crate::config::ChannelBackendConfig;
use crate::error::{Error, Result};
use crate::inbox::{Filled, Inbox};

/// How often a hello is said.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long connecting, and writing to a broker that does not read, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the threads look whether the runtime is stopping.
const POLL: Duration = Duration::from_millis(100);
/// Frames waiting for the writer; past it a send fails rather than grow memory.
const QUEUE: usize = 64 * 1024;
/// Frames written at once at most.
const BATCH: usize = 1024;
/// The longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// The largest frame taken from the broker.
const MAX_FRAME: usize = 256 << 20;

/// The sending half, shared by the facade's threads and the reader.
pub(crate) struct ChannelTransport {
    tx: Sender<Vec<u8>>,
    connected: LinkUp,
    addr: String,
}

impl std::fmt::Debug for ChannelTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelTransport")
            .field("addr", &self.addr)
            .field("connected", &self.connected.is_up())
            .finish()
    }
}

impl Transport for ChannelTransport {
    fn check(&self) -> Result<()> {
        self.connected.check()
    }

    fn send(&self, to: Route, message: Vec<u8>) -> Result<()> {
        self.check()?;
        let mut frame = Vec::with_capacity(message.len() + 7);
        match to {
            Route::Others => proto::frame(&[&[proto::TO_ALL], &message], &mut frame),
            Route::To(n) => {
                proto::frame(&[&[proto::TO_ONE], &n.to_be_bytes(), &message], &mut frame);
            }
        }
        self.tx
            .try_send(frame)
            .map_err(|e| Error::queue_refused(e, "the channel writer"))
    }
}

/// What both threads know of their link.
struct Link {
    config: ChannelBackendConfig,
    server: String,
    session: String,
    node: Arc<Node>,
    /// The generation of the connection the reader saw end (generations start at 1).
    broken: AtomicU64,
}

/// Connects to the broker, claims this instance's number, and starts the writer and reader
/// threads of one server's cluster backend. They end once the runtime stops (the writer
/// after saying goodbye).
pub(crate) fn start(
    config: &ChannelBackendConfig,
    server: &str,
    node: Arc<Node>,
) -> Result<(Arc<ChannelTransport>, Vec<JoinHandle<()>>)> {
    let me = node.me;
    let link = Arc::new(Link {
        session: session(config, node.delivery.runtime_id()),
        config: config.clone(),
        server: server.to_owned(),
        node,
        broken: AtomicU64::new(0),
    });
    let (stream, _) = handshake(&link.config, &link.server, &link.session, me)?;
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let transport = Arc::new(ChannelTransport {
        tx,
        connected: LinkUp::new("the channel broker"),
        addr: config.addr.clone(),
    });
    let (streams_tx, streams) = crossbeam_channel::bounded(1);
    let _ = streams_tx.send((1, stream.try_clone()?));
    let (read_link, read_transport) = (link.clone(), transport.clone());
    let reader = thread::Builder::new()
        .name(format!("corepush-channel-read-{me}"))
        .spawn(move || read_loop(&read_link, &read_transport, &streams))?;
    // Hello before serving, so that the others count this instance at once.
    transport.send(Route::Others, hello(me, true))?;
    let write_transport = transport.clone();
    let writer = thread::Builder::new()
        .name(format!("corepush-channel-write-{me}"))
        .spawn(move || write_loop(&link, &write_transport, stream, &rx, &streams_tx))?;
    info!(
        "instance {me}: on the channel broker at {} (prefix {:?})",
        config.addr, config.prefix
    );
    Ok((transport, vec![reader, writer]))
}

/// Asks the broker for the lowest instance number free in the cluster, for a runtime that
/// left the number to the cluster. The broker keeps it for this runtime for a few seconds,
/// while its transports connect and claim it for good.
pub(crate) fn claim_free(config: &ChannelBackendConfig, runtime: u64) -> Result<u16> {
    let (stream, number) = handshake(config, "", &session(config, runtime), 0)?;
    drop(stream);
    Ok(number)
}

/// A value unique to this runtime: the broker lets connections of one session share a number.
fn session(config: &ChannelBackendConfig, runtime: u64) -> String {
    static BOOT: OnceLock<u128> = OnceLock::new();
    let nanos = BOOT.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let name = config.name.as_deref().unwrap_or("corepush");
    format!("{name}/{}/{runtime}/{nanos}", std::process::id())
}

/// Connects and shakes hands; the stream and the number the broker answered.
fn handshake(
    config: &ChannelBackendConfig,
    server: &str,
    session: &str,
    number: u16,
) -> Result<(TcpStream, u16)> {
    let addr = config
        .addr
        .to_socket_addrs()
        .map_err(|e| Error::Config(format!("channel broker address {:?}: {e}", config.addr)))?
        .next()
        .ok_or_else(|| Error::Config(format!("channel broker address {:?}", config.addr)))?;
    let backend = |e: io::Error| Error::Backend(Box::new(e));
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(backend)?;
    stream.set_nodelay(true).map_err(backend)?;
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(backend)?;
    stream
        .set_write_timeout(Some(CONNECT_TIMEOUT))
        .map_err(backend)?;
    let mut out = Vec::new();
    proto::encode_handshake(
        &Handshake {
            number,
            token: config.token.as_deref().unwrap_or(""),
            prefix: &config.prefix,
            server,
            session,
        },
        &mut out,
    );
    stream.write_all(&out).map_err(backend)?;
    let answer = proto::read_frame(&mut stream, 64 * 1024).map_err(backend)?;
    match answer.split_first() {
        Some((&proto::OK, rest)) => match proto::split_u16(rest) {
            Some((n, _)) => Ok((stream, n)),
            None => Err(Error::Backend("a truncated answer from the broker".into())),
        },
        Some((&proto::REFUSED, rest)) => {
            let (code, message) = rest.split_first().unwrap_or((&0, &[]));
            let message = String::from_utf8_lossy(message);
            Err(match Refusal::from_code(*code) {
                Some(Refusal::Token) => Error::Config(format!(
                    "the channel broker at {} refused the token ({message}): set \
                     ChannelBackendConfig::token to the broker's",
                    config.addr
                )),
                Some(Refusal::Taken) => Error::Config(format!(
                    "the channel broker at {} refused instance {number} ({message}): give \
                     every instance its own RuntimeConfig::instance, or 0",
                    config.addr
                )),
                _ => Error::Backend(
                    format!("the channel broker at {} refused: {message}", config.addr).into(),
                ),
            })
        }
        _ => Err(Error::Backend(
            format!("{} does not answer as a channel broker", config.addr).into(),
        )),
    }
}

/// A whole `TO_ALL` frame carrying a hello.
fn hello_frame(me: u16, up: bool) -> Vec<u8> {
    let mut out = Vec::new();
    proto::frame(&[&[proto::TO_ALL], &hello(me, up)], &mut out);
    out
}

fn write_loop(
    link: &Link,
    transport: &ChannelTransport,
    stream: TcpStream,
    rx: &Receiver<Vec<u8>>,
    streams: &Sender<(u64, TcpStream)>,
) {
    let me = link.node.me;
    let mut stream = stream;
    let mut generation = 1;
    let mut beat = Instant::now() + HEARTBEAT;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if link.node.delivery.is_stopping() {
            // Goodbye: the others stop waiting for this instance, and the number is free.
            let mut out = hello_frame(me, false);
            proto::frame(&[&[proto::LEAVE]], &mut out);
            let _ = stream.write_all(&out);
            let _ = stream.shutdown(Shutdown::Both);
            transport.connected.set(false);
            return;
        }
        let mut broken = link.broken.load(Ordering::Acquire) == generation;
        let mut lost = 0;
        if !broken {
            match rx.recv_timeout(POLL.min(beat.saturating_duration_since(Instant::now()))) {
                Ok(first) => {
                    buf.extend_from_slice(&first);
                    lost = 1;
                    for m in rx.try_iter().take(BATCH) {
                        buf.extend_from_slice(&m);
                        lost += 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= beat {
                beat = Instant::now() + HEARTBEAT;
                buf.extend_from_slice(&hello_frame(me, true));
            }
            if !buf.is_empty() {
                broken = stream.write_all(&buf).is_err();
                buf.clear();
            }
        }
        if broken {
            transport.connected.set(false);
            let _ = stream.shutdown(Shutdown::Both);
            error!(
                "instance {me}: lost the channel broker at {}; {lost} message(s) lost; reconnecting",
                link.config.addr
            );
            let Some(s) = reconnect(link) else {
                return;
            };
            generation += 1;
            let Ok(read) = s.try_clone() else {
                return;
            };
            if streams.send((generation, read)).is_err() {
                return;
            }
            stream = s;
            // What piled up while unreachable was refused at the door, but drop stragglers.
            let dropped = rx.try_iter().count();
            if dropped > 0 {
                warn!(
                    "instance {me}: {dropped} message(s) queued before the broker went away were not sent"
                );
            }
            transport.connected.set(true);
            info!(
                "instance {me}: the channel broker at {} is reachable again",
                link.config.addr
            );
            // Hello at once, so that the others count this instance again without delay.
            beat = Instant::now();
        }
    }
}

/// Connects and claims this instance's number again, with growing pauses, until it works or
/// the runtime stops. A number taken meanwhile (the broker restarted and another instance
/// claimed it) is logged once; this instance keeps trying, as its clients' ids cannot change.
fn reconnect(link: &Link) -> Option<TcpStream> {
    let me = link.node.me;
    let mut pause = Duration::from_millis(50);
    let mut clashed = false;
    loop {
        if link.node.delivery.is_stopping() {
            return None;
        }
        match handshake(&link.config, &link.server, &link.session, me) {
            Ok((s, _)) => return Some(s),
            Err(Error::Config(m)) if !clashed => {
                clashed = true;
                error!("instance {me}: {m}; retrying");
            }
            Err(_) => {}
        }
        thread::sleep(pause);
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

/// Hands every forwarded message to the node, on each connection the writer makes, until the
/// runtime stops.
fn read_loop(link: &Link, transport: &ChannelTransport, streams: &Receiver<(u64, TcpStream)>) {
    let me = link.node.me;
    loop {
        let (generation, mut stream) = match streams.recv_timeout(POLL) {
            Ok(s) => s,
            Err(RecvTimeoutError::Timeout) if link.node.delivery.is_stopping() => return,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let _ = stream.set_read_timeout(Some(POLL));
        let mut inbox = Inbox::default();
        loop {
            if link.node.delivery.is_stopping() {
                return;
            }
            match inbox.fill(&mut stream) {
                Filled::Bytes => {}
                Filled::Idle => continue,
                Filled::Closed | Filled::Failed(_) => break,
            }
            let took = inbox.frames(MAX_FRAME, |body| {
                let (from, message) = forwarded(body)?;
                if from != me && link.node.receive(message, transport) {
                    // A newcomer: answer its hello at once, so that it counts this instance
                    // without waiting for the next heartbeat.
                    let _ = transport.send(Route::Others, hello(me, true));
                }
                Ok(())
            });
            if let Err(why) = took {
                warn!("instance {me}: {why} from the channel broker; reconnecting");
                break;
            }
        }
        link.broken.store(generation, Ordering::Release);
    }
}

/// The sender and message of a `FORWARD` frame's body.
fn forwarded(body: &[u8]) -> Result<(u16, &[u8]), String> {
    match body.split_first() {
        Some((&proto::FORWARD, rest)) => {
            proto::split_u16(rest).ok_or_else(|| "a truncated frame".to_owned())
        }
        _ => Err("a frame of an unknown kind".into()),
    }
}
