//! The floor: the least a server can do to speak the shootout protocol, as a baseline for
//! corepush. No library, no registries, no handler API: one mio loop per worker on its own
//! SO_REUSEPORT listener, a blocking tungstenite handshake on accept, and a broadcast framed
//! once and handed to every worker as one shared buffer over a crossbeam channel plus a waker.
//! Each socket gets at most one (vectored) write per loop turn, carrying everything pending.
//!
//! Deliberately minimal: no fragmentation, no ping/pong, no close handshake (a close frame or
//! an error just drops the socket), no backpressure beyond the socket's own buffer.

use std::error::Error;
use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use serde::Deserialize;
use serde_json::value::RawValue;
use socket2::{Domain, Socket, Type};

const WAKER: Token = Token(usize::MAX);
const LISTENER: Token = Token(usize::MAX - 1);

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The door into one worker.
struct Peer {
    tx: Sender<Arc<Vec<u8>>>,
    waker: Arc<Waker>,
}

struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    out: Vec<u8>,
}

struct Worker {
    poll: Poll,
    listener: TcpListener,
    rx: Receiver<Arc<Vec<u8>>>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    ctx: Ctx,
}

/// What answering a request needs besides the connection.
struct Ctx {
    me: usize,
    peers: Arc<Vec<Peer>>,
    /// Connections of all workers: the broadcastResult's listenerCount.
    count: Arc<AtomicUsize>,
}

/// Runs the floor server on 127.0.0.1:`port` (0: any) with `workers` threads; prints
/// `listening on ws://ADDR/ (workers=N, floor)` once every listener is bound.
pub(crate) fn serve(port: u16, workers: usize) -> Result<(), Box<dyn Error>> {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (mut parts, mut peers) = (Vec::new(), Vec::new());
    for _ in 0..workers.max(1) {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        socket.set_nonblocking(true)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?; // port 0: the others join the port the first one got
        let poll = Poll::new()?;
        let (tx, rx) = unbounded();
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        peers.push(Peer { tx, waker });
        parts.push((poll, TcpListener::from_std(listener), rx));
    }
    let (peers, count) = (Arc::new(peers), Arc::new(AtomicUsize::new(0)));
    println!("listening on ws://{addr}/ (workers={workers}, floor)");
    let threads: Vec<_> = (parts.into_iter().enumerate())
        .map(|(me, (poll, listener, rx))| {
            let ctx = Ctx {
                me,
                peers: peers.clone(),
                count: count.clone(),
            };
            let (conns, free) = (Vec::new(), Vec::new());
            let w = Worker {
                poll,
                listener,
                rx,
                conns,
                free,
                ctx,
            };
            std::thread::spawn(move || w.run())
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "a floor worker panicked")??;
    }
    Ok(())
}

impl Worker {
    fn run(mut self) -> io::Result<()> {
        let registry = self.poll.registry();
        registry.register(&mut self.listener, LISTENER, Interest::READABLE)?;
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; 64 * 1024];
        let (mut batch, mut dirty, mut all) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            match self.poll.poll(&mut events, None) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                result => result?,
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    LISTENER => self.accept(),
                    Token(slot) => {
                        let c = self.conns[slot].as_mut();
                        if c.is_some_and(|c| self.ctx.answer(c, &mut scratch).is_err()) {
                            self.close(slot);
                        }
                        dirty.push(slot);
                    }
                }
            }
            batch.clear();
            while let Ok(frame) = self.rx.try_recv() {
                batch.extend_from_slice(&frame);
            }
            // A broadcast goes to every socket; otherwise only those that had events.
            let slots = if batch.is_empty() {
                &dirty
            } else {
                all.clear();
                all.extend(0..self.conns.len());
                &all
            };
            for &slot in slots {
                if self.conns[slot]
                    .as_mut()
                    .is_some_and(|c| flush(c, &batch).is_err())
                {
                    self.close(slot);
                }
            }
            dirty.clear();
        }
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            let Ok(mut stream) = handshake(stream) else {
                continue;
            };
            let slot = self.free.pop().unwrap_or(self.conns.len());
            let interest = Interest::READABLE | Interest::WRITABLE;
            if self
                .poll
                .registry()
                .register(&mut stream, Token(slot), interest)
                .is_err()
            {
                continue;
            }
            let conn = Some(Conn {
                stream,
                input: Vec::new(),
                out: Vec::new(),
            });
            match self.conns.get_mut(slot) {
                Some(c) => *c = conn,
                None => self.conns.push(conn),
            }
            self.ctx.count.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn close(&mut self, slot: usize) {
        if self.conns[slot].take().is_some() {
            self.ctx.count.fetch_sub(1, Ordering::Relaxed);
            self.free.push(slot);
        }
    }
}

impl Ctx {
    /// Reads what is there and answers each complete frame. An error drops the connection.
    fn answer(&self, c: &mut Conn, scratch: &mut [u8]) -> io::Result<()> {
        loop {
            match c.stream.read(scratch) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => c.input.extend_from_slice(&scratch[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let mut at = 0;
        while let Some((op, body, len)) = header(&c.input[at..])? {
            let (body, end) = (at + body, at + body + len);
            let key: [u8; 4] = c.input[body - 4..body].try_into().unwrap_or_default();
            let message = &mut c.input[body..end];
            message
                .iter_mut()
                .zip(key.iter().cycle())
                .for_each(|(b, k)| *b ^= k);
            match op {
                8 => return Err(ErrorKind::ConnectionAborted.into()),
                1 | 2 => self.request(message, &mut c.out),
                _ => {} // ping, pong, continuation: not in this protocol's traffic
            }
            at = end;
        }
        c.input.drain(..at);
        Ok(())
    }

    fn request(&self, message: &[u8], out: &mut Vec<u8>) {
        let Ok(req) = serde_json::from_slice::<Request<'_>>(message) else {
            return;
        };
        let payload = req.payload.get().as_bytes();
        match req.kind {
            "echo" => frame(out, &[br#"{"type":"echo","payload":"#, payload, b"}"]),
            "broadcast" => {
                let mut f = Vec::new();
                frame(
                    &mut f,
                    &[br#"{"type":"broadcast","payload":"#, payload, b"}"],
                );
                let f = Arc::new(f);
                for (i, peer) in self.peers.iter().enumerate() {
                    if peer.tx.send(f.clone()).is_ok() && i != self.me {
                        let _ = peer.waker.wake();
                    }
                }
                let n = self.count.load(Ordering::Relaxed).to_string();
                let head = br#"{"type":"broadcastResult","payload":"#;
                frame(
                    out,
                    &[head, payload, br#","listenerCount":"#, n.as_bytes(), b"}"],
                );
            }
            _ => {}
        }
    }
}

/// The upgrade, blocking (the loop stalls meanwhile: acceptable for a floor). Clients here
/// send nothing before the 101 answer, so tungstenite's read buffer holds nothing to lose.
fn handshake(stream: TcpStream) -> Result<TcpStream, Box<dyn Error>> {
    let stream = std::net::TcpStream::from(stream);
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let stream = tungstenite::accept(stream)
        .map_err(|e| e.to_string())?
        .into_inner();
    stream.set_read_timeout(None)?;
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    Ok(TcpStream::from_std(stream))
}

/// A masked client frame at the front of `b`: (opcode, payload offset, payload length).
fn header(b: &[u8]) -> io::Result<Option<(u8, usize, usize)>> {
    let (len, at) = match b {
        [_, l, ..] if l & 0x80 == 0 => return Err(ErrorKind::InvalidData.into()), // unmasked
        [_, l, x, y, ..] if l & 0x7f == 126 => (u16::from_be_bytes([*x, *y]) as u64, 4),
        [_, l, rest @ ..] if l & 0x7f == 127 && rest.len() >= 8 => (
            u64::from_be_bytes(rest[..8].try_into().unwrap_or([0xff; 8])),
            10,
        ),
        [_, l, ..] if l & 0x7f < 126 => (u64::from(l & 0x7f), 2),
        _ => return Ok(None),
    };
    let len = usize::try_from(len).ok().filter(|&l| l <= 1 << 20);
    let len = len.ok_or(ErrorKind::InvalidData)?;
    Ok((b.len() >= at + 4 + len).then_some((b[0] & 0x0f, at + 4, len)))
}

/// An unmasked text frame made of `parts`.
fn frame(out: &mut Vec<u8>, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(0x81);
    match len {
        0..126 => out.push(len as u8),
        126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    parts.iter().for_each(|p| out.extend_from_slice(p));
}

/// One write: the socket's own pending bytes, then this turn's broadcasts. What does not fit
/// waits in `out` for the next writable event.
fn flush(c: &mut Conn, batch: &[u8]) -> io::Result<()> {
    if c.out.is_empty() && batch.is_empty() {
        return Ok(());
    }
    let written = loop {
        match c
            .stream
            .write_vectored(&[IoSlice::new(&c.out), IoSlice::new(batch)])
        {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break 0,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    let own = written.min(c.out.len());
    c.out.drain(..own);
    c.out.extend_from_slice(&batch[written - own..]);
    Ok(())
}
