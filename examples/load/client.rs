//! The load generator's clients: tungstenite's blocking client handshake from a few threads
//! in parallel, then each socket handed, raw and non-blocking, to an [`Engine`]: one mio loop
//! that parses the server's (unmasked) frames itself and writes masked frames of its own —
//! cheap enough that the generator is not what is being measured.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use parking_lot::Mutex;
use socket2::{Domain, Socket, Type};

/// Clients per source address: one address's ephemeral ports (~28k by default) cannot reach
/// one server port more often than that. Clients 0..20000 come from 127.0.0.1, the next
/// 20000 from 127.0.0.2, and so on (all loopback).
const PER_SOURCE: usize = 20_000;
/// Connect and handshake time allowed for one client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A server frame larger than this is a protocol error here.
const MAX_FRAME: usize = 1 << 20;

/// Opens `count` WebSocket clients (global indices `first..first + count`) to
/// ws://127.0.0.1:`port`/ from `threads` threads, each a blocking connect + handshake.
/// Returns them non-blocking, in index order. Fails on the first error or at `deadline`.
pub(crate) fn connect(
    port: u16,
    first: usize,
    count: usize,
    threads: usize,
    deadline: Instant,
) -> Result<Vec<TcpStream>, String> {
    let threads = threads.clamp(1, count.max(1));
    let failed = AtomicBool::new(false);
    let error = Mutex::new(None::<String>);
    let done = AtomicUsize::new(0);
    let mut all: Vec<(usize, TcpStream)> = Vec::with_capacity(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (failed, error, done) = (&failed, &error, &done);
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for i in (first + t..first + count).step_by(threads) {
                        if failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = if Instant::now() >= deadline {
                            Err("the connect deadline passed".to_owned())
                        } else {
                            connect_one(i, port)
                        };
                        match result {
                            Ok(s) => mine.push((i, s)),
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                error.lock().get_or_insert(format!("client {i}: {e}"));
                                break;
                            }
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % 5000 == 0 {
                            eprintln!("  connected {n}/{count}");
                        }
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(mine) => all.extend(mine),
                Err(_) => failed.store(true, Ordering::Relaxed),
            }
        }
    });
    if failed.load(Ordering::Relaxed) {
        let e = error.lock().take();
        return Err(e.unwrap_or_else(|| "a connect thread panicked".to_owned()));
    }
    all.sort_unstable_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, s)| s).collect())
}

fn connect_one(i: usize, port: u16) -> Result<TcpStream, String> {
    let err = |what: &'static str| move |e: io::Error| format!("{what}: {e}");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).map_err(err("socket"))?;
    let source = i / PER_SOURCE;
    if source > 0 {
        let ip = Ipv4Addr::new(
            127,
            0,
            0,
            u8::try_from(1 + source).map_err(|_| "too many clients")?,
        );
        socket
            .bind(&SocketAddr::from((ip, 0)).into())
            .map_err(err("bind"))?;
    }
    socket.set_tcp_nodelay(true).map_err(err("nodelay"))?;
    // Closing resets the connection: no TIME_WAIT piling up across runs.
    socket
        .set_linger(Some(Duration::ZERO))
        .map_err(err("linger"))?;
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    socket
        .connect_timeout(&server.into(), CONNECT_TIMEOUT)
        .map_err(err("connect"))?;
    let stream: std::net::TcpStream = socket.into();
    stream
        .set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(err("timeout"))?;
    stream
        .set_write_timeout(Some(CONNECT_TIMEOUT))
        .map_err(err("timeout"))?;
    // The server sends nothing after its 101 until asked: tungstenite's buffer holds nothing
    // that the raw socket would miss.
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}/"), stream)
        .map_err(|e| format!("handshake: {e}"))?;
    let stream = ws.into_inner();
    stream.set_read_timeout(None).map_err(err("timeout"))?;
    stream.set_write_timeout(None).map_err(err("timeout"))?;
    stream.set_nonblocking(true).map_err(err("nonblocking"))?;
    Ok(TcpStream::from_std(stream))
}

/// What a server message is, read from its text without a JSON parser: the servers put
/// `type` first, and the payload the generator sent carries `"seq":N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Broadcast,
    Result,
    Echo,
    Other,
}

/// A classified server message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Msg {
    pub(crate) kind: Kind,
    pub(crate) seq: u64,
    pub(crate) listeners: u64,
}

/// Classifies a server message.
pub(crate) fn classify(text: &[u8]) -> Msg {
    let kind = match after(text, br#""type":""#) {
        Some(t) if t.starts_with(b"broadcast\"") => Kind::Broadcast,
        Some(t) if t.starts_with(b"broadcastResult\"") => Kind::Result,
        Some(t) if t.starts_with(b"echo\"") => Kind::Echo,
        _ => Kind::Other,
    };
    let number = |key: &[u8]| after(text, key).map_or(u64::MAX, digits);
    Msg {
        kind,
        seq: number(br#""seq":"#),
        listeners: if kind == Kind::Result {
            number(br#""listenerCount":"#)
        } else {
            0
        },
    }
}

/// A request as the shootout load tools send it; the payload JSON
/// `{"seq":N,"padding":"x…"}` is `payload` bytes long, or as short as it can be.
pub(crate) fn request(kind: &str, seq: u64, payload: usize) -> Vec<u8> {
    let bare = r#"{"seq":,"padding":""}"#.len() + seq.to_string().len();
    let padding = "x".repeat(payload.saturating_sub(bare));
    format!(r#"{{"type":"{kind}","payload":{{"seq":{seq},"padding":"{padding}"}}}}"#).into_bytes()
}

/// One client thread's sockets, on one mio loop.
///
/// The first `priority` clients (the broadcasters, the echo clients) sit on a poll of their
/// own, nested in the main one and drained before every batch of other events, so that a
/// broadcastResult or an echo is not read late behind thousands of ordinary deliveries: the
/// latencies then say more about the server than about this generator's backlog.
pub(crate) struct Engine {
    poll: Poll,
    events: Events,
    priority: usize,
    prio: Poll,
    prio_events: Events,
    clients: Vec<Client>,
    scratch: Vec<u8>,
    rng: u64,
    /// Main-poll events of the last wait not handled yet (a pump returned early): the next
    /// pump handles them before it waits again, as edge-triggered events do not come back.
    unhandled: usize,
}

/// The main poll's token for the nested priority poll.
const PRIO: Token = Token(usize::MAX);
/// Main-poll events handled between two looks at the priority poll: a socket read costs
/// this generator about 10 µs here, so a result waits at most ~0.2 ms behind deliveries
/// (at 128 it waited over a millisecond, which slowed every server's closed loop alike).
const PRIO_EVERY: usize = 16;

struct Client {
    stream: TcpStream,
    /// A partial frame carried over to the next read.
    input: Vec<u8>,
    /// Bytes the socket did not take yet.
    pending: Vec<u8>,
}

impl Engine {
    pub(crate) fn new(seed: u64, priority: usize) -> Result<Self, String> {
        let err = |e: io::Error| format!("mio poll: {e}");
        let (poll, prio) = (Poll::new().map_err(err)?, Poll::new().map_err(err)?);
        let fd = prio.as_raw_fd();
        poll.registry()
            .register(&mut SourceFd(&fd), PRIO, Interest::READABLE)
            .map_err(err)?;
        Ok(Engine {
            poll,
            events: Events::with_capacity(4096),
            priority,
            prio,
            prio_events: Events::with_capacity(256),
            clients: Vec::new(),
            scratch: vec![0; 256 * 1024],
            rng: seed | 1,
            unhandled: 0,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.clients.len()
    }

    /// Takes a connected client; its local index is the previous `len()`.
    pub(crate) fn add(&mut self, mut stream: TcpStream) -> Result<(), String> {
        let token = Token(self.clients.len());
        let poll = if token.0 < self.priority {
            &self.prio
        } else {
            &self.poll
        };
        poll.registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("registering a client: {e}"))?;
        self.clients.push(Client {
            stream,
            input: Vec::new(),
            pending: Vec::new(),
        });
        Ok(())
    }

    /// Sends a masked text frame from client `i`; what the socket does not take now goes
    /// out on its next writable event.
    pub(crate) fn send_text(&mut self, i: usize, text: &[u8]) -> Result<(), String> {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let key = (self.rng as u32).to_be_bytes();
        let c = self.clients.get_mut(i).ok_or("no such client")?;
        let was_idle = c.pending.is_empty();
        masked_frame(&mut c.pending, text, key);
        if was_idle {
            flush(c).map_err(|e| format!("client {i}: write: {e}"))?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for socket events and hands every complete server message to
    /// `on(client, text, now)`, `now` in ns since `epoch` (taken once per read). When `on`
    /// returns true (the caller has something to send in answer), the pump returns once the
    /// current batch of priority events is handled, keeping the rest of the main poll's
    /// events for the next call: a broadcaster answers a broadcastResult at once rather than
    /// after thousands of ordinary deliveries.
    pub(crate) fn pump(
        &mut self,
        timeout: Duration,
        epoch: Instant,
        on: &mut dyn FnMut(usize, &[u8], u64) -> bool,
    ) -> Result<(), String> {
        let Engine {
            poll,
            events,
            prio,
            prio_events,
            clients,
            scratch,
            unhandled,
            ..
        } = self;
        let act = std::cell::Cell::new(false);
        let mut io = |token: Token, writable: bool, readable: bool| -> Result<(), String> {
            let i = token.0;
            let Some(c) = clients.get_mut(i) else {
                return Ok(());
            };
            if writable && !c.pending.is_empty() {
                flush(c).map_err(|e| format!("client {i}: write: {e}"))?;
            }
            if readable {
                read(c, scratch, epoch, &mut |text, now| {
                    if on(i, text, now) {
                        act.set(true);
                    }
                })
                .map_err(|e| format!("client {i}: {e}"))?;
            }
            Ok(())
        };
        let mut drain_prio = |io: &mut dyn FnMut(Token, bool, bool) -> Result<(), String>| {
            wait(prio, prio_events, Duration::ZERO)?;
            prio_events
                .iter()
                .try_for_each(|e| io(e.token(), e.is_writable(), is_readable(e)))
        };
        drain_prio(&mut io)?;
        if act.get() {
            return Ok(());
        }
        let total = if *unhandled > 0 {
            events.iter().count()
        } else {
            wait(poll, events, timeout)?;
            let n = events.iter().count();
            *unhandled = n;
            n
        };
        let first = total - *unhandled;
        for (k, event) in events.iter().enumerate().skip(first) {
            *unhandled -= 1;
            if event.token() == PRIO || k % PRIO_EVERY == PRIO_EVERY - 1 {
                drain_prio(&mut io)?;
            }
            if event.token() != PRIO {
                io(event.token(), event.is_writable(), is_readable(event))?;
            }
            if act.get() {
                break;
            }
        }
        Ok(())
    }
}

fn is_readable(e: &mio::event::Event) -> bool {
    e.is_readable() || e.is_read_closed() || e.is_error()
}

/// One poll; an interrupted one simply returns no events.
fn wait(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Result<(), String> {
    match poll.poll(events, Some(timeout)) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        result => result.map_err(|e| format!("client poll: {e}")),
    }
}

/// Reads until the socket is drained, handing each complete frame's payload on.
fn read(
    c: &mut Client,
    scratch: &mut [u8],
    epoch: Instant,
    on: &mut dyn FnMut(&[u8], u64),
) -> Result<(), String> {
    loop {
        let n = match c.stream.read(scratch) {
            Ok(0) => return Err("the server closed the connection".to_owned()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        let now = epoch.elapsed().as_nanos() as u64;
        if c.input.is_empty() {
            let used = frames(&scratch[..n], now, on)?;
            c.input.extend_from_slice(&scratch[used..n]);
        } else {
            c.input.extend_from_slice(&scratch[..n]);
            let used = frames(&c.input, now, on)?;
            c.input.drain(..used);
        }
        // A short read emptied the socket; new data raises a new edge, so no need for the
        // extra read that would only say WouldBlock.
        if n < scratch.len() {
            return Ok(());
        }
    }
}

/// Parses unmasked server frames from `b`; returns the bytes consumed.
fn frames(b: &[u8], now: u64, on: &mut dyn FnMut(&[u8], u64)) -> Result<usize, String> {
    let mut at = 0;
    loop {
        let rest = &b[at..];
        if rest.len() < 2 {
            return Ok(at);
        }
        if rest[1] & 0x80 != 0 {
            return Err("the server sent a masked frame".to_owned());
        }
        let (len, head) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 if rest.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&rest[2..10]);
                (
                    usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                    10,
                )
            }
            126 | 127 => return Ok(at),
            n => (n as usize, 2),
        };
        if len > MAX_FRAME {
            return Err(format!("a server frame of {len} bytes"));
        }
        if rest.len() < head + len {
            return Ok(at);
        }
        match rest[0] & 0x0f {
            1 | 2 => on(&rest[head..head + len], now),
            8 => return Err("the server sent a close frame".to_owned()),
            // No server here pings or fragments; tolerate the control frames anyway.
            9 | 10 => {}
            op => return Err(format!("unexpected server frame opcode {op}")),
        }
        at += head + len;
    }
}

fn flush(c: &mut Client) -> io::Result<()> {
    while !c.pending.is_empty() {
        match c.stream.write(&c.pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                c.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A client's text frame: FIN, masked with `key` (RFC 6455 §5.3).
fn masked_frame(out: &mut Vec<u8>, payload: &[u8], key: [u8; 4]) {
    out.push(0x81);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
}

/// The bytes right after the first occurrence of `needle` in `hay`.
fn after<'a>(hay: &'a [u8], needle: &[u8]) -> Option<&'a [u8]> {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map(|p| &hay[p + needle.len()..])
}

/// The decimal number at the front of `b` (`u64::MAX` if none).
fn digits(b: &[u8]) -> u64 {
    let n = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 {
        return u64::MAX;
    }
    b[..n].iter().fold(0u64, |acc, d| {
        acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
    })
}
