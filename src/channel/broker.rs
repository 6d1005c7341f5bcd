//! The broker's event loop: accepts members, reads their frames, routes what they publish
//! and writes each member's bounded queue.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use super::ChannelConfig;
use super::proto::{self, Refusal};
use crate::id::MAX_INSTANCES;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST: usize = 2;
/// How long a number left without a goodbye stays its session's, so that it can reconnect.
const RESERVE: Duration = Duration::from_secs(5);
/// How often timeouts are looked at.
const TICK: Duration = Duration::from_millis(100);
/// Read buffer of the loop, shared by every connection.
const READ_CHUNK: usize = 64 * 1024;
/// Reads from one connection per readiness event at most, so one flood cannot starve others.
const READS_PER_EVENT: usize = 16;

struct Member {
    prefix: String,
    server: String,
    session: String,
    number: u16,
    left: bool,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    input: Vec<u8>,
    out: VecDeque<Arc<[u8]>>,
    /// Bytes of `out.front()` already written.
    written: usize,
    queued: usize,
    member: Option<Member>,
    opened: Instant,
    heard: Instant,
    writable: bool,
    /// Read until WouldBlock was not reached: read again next turn.
    unread: bool,
}

/// What handling a frame came to.
enum Next {
    Go,
    /// Close the connection; the reason is logged by whoever decided.
    Close,
}

pub(super) struct Broker {
    poll: Poll,
    listener: TcpListener,
    conns: HashMap<Token, Conn>,
    next: usize,
    reserved: HashMap<(String, u16), (String, Instant)>,
    config: ChannelConfig,
    scratch: Vec<u8>,
}

impl Broker {
    pub(super) fn bind(config: ChannelConfig) -> io::Result<(Broker, mio::Waker)> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        Ok((
            Broker {
                poll,
                listener,
                conns: HashMap::new(),
                next: FIRST,
                reserved: HashMap::new(),
                config,
                scratch: vec![0; READ_CHUNK],
            },
            waker,
        ))
    }

    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stopping` says so or the poll fails.
    pub(super) fn run(mut self, stopping: impl Fn() -> bool) {
        let addr = self
            .local_addr()
            .map_or_else(|e| format!("? ({e})"), |a| a.to_string());
        info!("channel broker: listening on {addr}");
        let mut events = Events::with_capacity(256);
        while !stopping() {
            let busy = self.conns.values().any(|c| c.unread);
            let timeout = if busy { Duration::ZERO } else { TICK };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                error!("channel broker: poll failed ({e}); stopping");
                break;
            }
            let mut ready: Vec<(Token, bool, bool)> = events
                .iter()
                .map(|e| {
                    let read = e.is_readable() || e.is_read_closed() || e.is_error();
                    (e.token(), read, e.is_writable())
                })
                .collect();
            for (t, c) in &self.conns {
                if c.unread && !ready.iter().any(|r| r.0 == *t) {
                    ready.push((*t, true, false));
                }
            }
            for (token, read, write) in ready {
                match token {
                    LISTENER => self.accept(),
                    WAKER => {}
                    t => {
                        if write {
                            self.flush(t);
                        }
                        if read {
                            self.read(t);
                        }
                    }
                }
            }
            self.expire();
        }
        info!(
            "channel broker on {addr}: stopped ({} connection(s) closed)",
            self.conns.len()
        );
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let token = Token(self.next);
                    self.next += 1;
                    if let Err(e) =
                        self.poll
                            .registry()
                            .register(&mut stream, token, Interest::READABLE)
                    {
                        warn!("channel broker: {peer}: cannot register ({e}); dropped");
                        continue;
                    }
                    let now = Instant::now();
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            peer,
                            input: Vec::new(),
                            out: VecDeque::new(),
                            written: 0,
                            queued: 0,
                            member: None,
                            opened: now,
                            heard: now,
                            writable: false,
                            unread: false,
                        },
                    );
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("channel broker: accept failed ({e})");
                    return;
                }
            }
        }
    }

    fn read(&mut self, t: Token) {
        for _ in 0..READS_PER_EVENT {
            let Some(conn) = self.conns.get_mut(&t) else {
                return;
            };
            // Until WouldBlock is seen, the socket may hold more: read it again next turn.
            conn.unread = true;
            match conn.stream.read(&mut self.scratch) {
                Ok(0) => {
                    debug!("channel broker: {} closed the connection", conn.peer);
                    self.close(t);
                    return;
                }
                Ok(n) => {
                    conn.input.extend_from_slice(&self.scratch[..n]);
                    conn.heard = Instant::now();
                    if conn.input.len() >= 4 {
                        if let Next::Close = self.frames(t) {
                            self.close(t);
                            return;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    conn.unread = false;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("channel broker: {}: read failed ({e})", conn.peer);
                    self.close(t);
                    return;
                }
            }
        }
    }

    /// Handles every whole frame in a connection's input.
    fn frames(&mut self, t: Token) -> Next {
        let Some(conn) = self.conns.get_mut(&t) else {
            return Next::Close;
        };
        let input = std::mem::take(&mut conn.input);
        let mut at = 0;
        let mut next = Next::Go;
        while let Some(head) = input.get(at..at + 4) {
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > self.config.max_frame {
                if let Some(c) = self.conns.get(&t) {
                    warn!(
                        "channel broker: {}: a frame of {len} bytes, past the limit of {}; cut off",
                        c.peer, self.config.max_frame
                    );
                }
                next = Next::Close;
                break;
            }
            let Some(body) = input.get(at + 4..at + 4 + len) else {
                break;
            };
            at += 4 + len;
            if let Next::Close = self.handle(t, body) {
                next = Next::Close;
                break;
            }
        }
        if let (Next::Go, Some(conn)) = (&next, self.conns.get_mut(&t)) {
            conn.input = input;
            conn.input.drain(..at);
        }
        next
    }

    fn handle(&mut self, t: Token, body: &[u8]) -> Next {
        let Some(conn) = self.conns.get_mut(&t) else {
            return Next::Close;
        };
        let Some(member) = conn.member.as_mut() else {
            return self.handshake(t, body);
        };
        match body.split_first() {
            Some((&proto::TO_ALL, message)) => self.route(t, None, message),
            Some((&proto::TO_ONE, rest)) => match proto::split_u16(rest) {
                Some((to, message)) => self.route(t, Some(to), message),
                None => {
                    warn!("channel broker: {}: a truncated frame; cut off", conn.peer);
                    Next::Close
                }
            },
            Some((&proto::LEAVE, _)) => {
                member.left = true;
                Next::Close
            }
            _ => {
                warn!(
                    "channel broker: {}: a frame of an unknown kind; cut off",
                    conn.peer
                );
                Next::Close
            }
        }
    }

    fn handshake(&mut self, t: Token, body: &[u8]) -> Next {
        let Some(peer) = self.conns.get(&t).map(|c| c.peer) else {
            return Next::Close;
        };
        let h = match proto::decode_handshake(body) {
            Ok(h) => h,
            Err(why) => {
                warn!("channel broker: {peer}: not a channel handshake ({why:?}); refused");
                return self.refuse(t, why, "not a channel handshake this broker speaks");
            }
        };
        if let Some(token) = &self.config.token {
            if h.token != token {
                warn!("channel broker: {peer}: wrong token; refused");
                return self.refuse(t, Refusal::Token, "wrong token");
            }
        }
        let number = if h.number == 0 {
            (1..MAX_INSTANCES).find(|&n| !self.is_claimed(h.prefix, n, None))
        } else if h.number < MAX_INSTANCES && !self.is_claimed(h.prefix, h.number, Some(h.session))
        {
            Some(h.number)
        } else {
            None
        };
        let Some(number) = number else {
            warn!(
                "channel broker: {peer}: instance {} of {:?} is taken; refused",
                h.number, h.prefix
            );
            let message = format!("instance {} of {:?} is taken", h.number, h.prefix);
            return self.refuse(t, Refusal::Taken, &message);
        };
        info!(
            "channel broker: {peer} joined as instance {number} of {:?} (server {:?})",
            h.prefix, h.server
        );
        self.reserved.remove(&(h.prefix.to_owned(), number));
        let member = Member {
            prefix: h.prefix.to_owned(),
            server: h.server.to_owned(),
            session: h.session.to_owned(),
            number,
            left: false,
        };
        let mut ok = Vec::new();
        proto::frame(&[&[proto::OK], &number.to_be_bytes()], &mut ok);
        if let Some(c) = self.conns.get_mut(&t) {
            c.member = Some(member);
        }
        self.queue(t, ok.into());
        Next::Go
    }

    /// Whether `number` of `prefix` is held by a connection, or reserved, of another session
    /// than `session` (of any session, for `None`).
    fn is_claimed(&self, prefix: &str, number: u16, session: Option<&str>) -> bool {
        let other = |s: &str| session.is_none_or(|mine| mine != s);
        let held = self.conns.values().any(|c| {
            c.member
                .as_ref()
                .is_some_and(|m| m.prefix == prefix && m.number == number && other(&m.session))
        });
        held || self
            .reserved
            .get(&(prefix.to_owned(), number))
            .is_some_and(|(s, until)| other(s) && *until > Instant::now())
    }

    /// Writes a refusal (best effort: it is small, and the socket's buffer is empty) and
    /// closes.
    fn refuse(&mut self, t: Token, why: Refusal, message: &str) -> Next {
        if let Some(c) = self.conns.get_mut(&t) {
            let _ = c.stream.write_all(&proto::refused(why, message));
        }
        Next::Close
    }

    fn route(&mut self, from: Token, to: Option<u16>, message: &[u8]) -> Next {
        let Some(sender) = self.conns.get(&from).and_then(|c| c.member.as_ref()) else {
            return Next::Close;
        };
        let mut out = Vec::with_capacity(message.len() + 7);
        proto::frame(
            &[&[proto::FORWARD], &sender.number.to_be_bytes(), message],
            &mut out,
        );
        let frame: Arc<[u8]> = out.into();
        let targets: Vec<Token> = self
            .conns
            .iter()
            .filter(|(t, c)| {
                **t != from
                    && c.member.as_ref().is_some_and(|m| {
                        m.prefix == sender.prefix
                            && m.server == sender.server
                            && to.is_none_or(|n| n == m.number)
                    })
            })
            .map(|(t, _)| *t)
            .collect();
        for t in targets {
            self.queue(t, frame.clone());
        }
        Next::Go
    }

    /// Queues a frame for a connection and writes what it can; past the bound, cuts it off.
    fn queue(&mut self, t: Token, frame: Arc<[u8]>) {
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        if conn.queued + frame.len() > self.config.max_outbound {
            let who = conn
                .member
                .as_ref()
                .map(|m| format!(" (instance {} of {:?})", m.number, m.prefix))
                .unwrap_or_default();
            warn!(
                "channel broker: {}{who} is not keeping up: {} bytes queued, past the limit of {}; cut off",
                conn.peer, conn.queued, self.config.max_outbound
            );
            self.close(t);
            return;
        }
        conn.queued += frame.len();
        conn.out.push_back(frame);
        self.flush(t);
    }

    /// Writes what is queued until the socket is full; asks to hear when it has room again.
    fn flush(&mut self, t: Token) {
        let Some(conn) = self.conns.get_mut(&t) else {
            return;
        };
        while let Some(front) = conn.out.front() {
            match conn.stream.write(&front[conn.written..]) {
                Ok(0) => {
                    self.close(t);
                    return;
                }
                Ok(n) => {
                    conn.written += n;
                    if conn.written == front.len() {
                        conn.queued -= front.len();
                        conn.written = 0;
                        conn.out.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!("channel broker: {}: write failed ({e})", conn.peer);
                    self.close(t);
                    return;
                }
            }
        }
        let want = !conn.out.is_empty();
        if want != conn.writable {
            conn.writable = want;
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            if let Err(e) = self
                .poll
                .registry()
                .reregister(&mut conn.stream, t, interest)
            {
                warn!("channel broker: {}: cannot reregister ({e})", conn.peer);
                self.close(t);
            }
        }
    }

    fn close(&mut self, t: Token) {
        let Some(mut conn) = self.conns.remove(&t) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.stream);
        let Some(m) = conn.member else {
            return;
        };
        let others = self.conns.values().any(|c| {
            c.member
                .as_ref()
                .is_some_and(|o| o.prefix == m.prefix && o.number == m.number)
        });
        if m.left {
            info!(
                "channel broker: instance {} of {:?} ({}) left",
                m.number, m.prefix, conn.peer
            );
        } else {
            info!(
                "channel broker: instance {} of {:?} ({}) is gone",
                m.number, m.prefix, conn.peer
            );
            if !others {
                self.reserved
                    .insert((m.prefix, m.number), (m.session, Instant::now() + RESERVE));
            }
        }
    }

    /// Cuts off who did not finish a handshake in time or fell silent; forgets old
    /// reservations.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut late = Vec::new();
        for (t, c) in &self.conns {
            if c.member.is_none() && now.duration_since(c.opened) > self.config.handshake_timeout {
                warn!("channel broker: {}: no handshake in time; cut off", c.peer);
                late.push(*t);
            } else if let (Some(_), Some(idle)) = (&c.member, self.config.idle_timeout) {
                if now.duration_since(c.heard) > idle {
                    warn!("channel broker: {}: silent for {idle:?}; cut off", c.peer);
                    late.push(*t);
                }
            }
        }
        for t in late {
            self.close(t);
        }
        self.reserved.retain(|_, (_, until)| *until > now);
    }
}
