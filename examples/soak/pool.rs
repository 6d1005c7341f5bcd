//! The soak's clients: connected sockets (handshakes by the load example's `client::connect`)
//! on one mio loop, each checking that every pushed sequence reaches it without a gap or a
//! duplicate, answering pings, and closing when churn picks it — half with a close handshake,
//! half with a reset.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::wire::{masked_frame, next_frame};

/// The three pushed sequences: to all, to groups, to flags.
pub(crate) const STREAMS: [u8; 3] = [b'a', b'g', b'f'];
/// How long a client that sent its close frame waits for the server's before it resets.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Problems kept word for word; beyond this only counted.
const KEEP_PROBLEMS: usize = 20;

/// The last numbers pushed, from the server's `end:` message.
pub(crate) type Ends = [u64; 3];

/// What the clients saw, summed.
#[derive(Debug, Default, Clone)]
pub(crate) struct Totals {
    /// Pushed messages received (all three sequences).
    pub(crate) deliveries: u64,
    /// Connections opened and handed to the pool.
    pub(crate) opened: u64,
    /// Connections closed by churn or at the end.
    pub(crate) closed: u64,
    /// Pings received (and answered).
    pub(crate) pings: u64,
    /// Numbers skipped inside a sequence: lost messages.
    pub(crate) lost: u64,
    /// Numbers received twice or going backwards.
    pub(crate) duplicates: u64,
    /// Connections the server closed or broke without being asked to.
    pub(crate) unexpected_closes: u64,
    /// Messages that were not `a:N`, `g:N`, `f:N` or `end:…`.
    pub(crate) garbled: u64,
    /// Batches of new clients that failed to connect.
    pub(crate) connect_failures: u64,
    /// Everything above that is a failure, described (the first [`KEEP_PROBLEMS`]).
    pub(crate) problems: Vec<String>,
    /// Problems in all.
    pub(crate) problem_count: u64,
}

impl Totals {
    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < KEEP_PROBLEMS {
            self.problems.push(what);
        }
    }
}

struct Conn {
    stream: TcpStream,
    /// The global index it was connected with (for messages).
    index: usize,
    /// A partial frame carried over to the next read.
    input: Vec<u8>,
    /// Bytes the socket did not take yet (pongs, the close frame).
    output: Vec<u8>,
    /// Last number received per sequence.
    last: [Option<u64>; 3],
    /// The `end:` message, once it came.
    end: Option<Ends>,
    /// Set when this client sent its close frame: what arrives now is not checked.
    closing: Option<Instant>,
}

/// The clients, on one mio loop.
pub(crate) struct Pool {
    poll: Poll,
    events: Events,
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// Connected and not closing.
    live: usize,
    scratch: Vec<u8>,
    rng: u64,
    pub(crate) totals: Totals,
}

impl Pool {
    pub(crate) fn new() -> Result<Self, String> {
        Ok(Pool {
            poll: Poll::new().map_err(|e| format!("mio poll: {e}"))?,
            events: Events::with_capacity(4096),
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
            scratch: vec![0; 256 * 1024],
            rng: 0x9e37_79b9_7f4a_7c15,
            totals: Totals::default(),
        })
    }

    /// Records a batch of clients that could not connect.
    pub(crate) fn connect_failed(&mut self, why: String) {
        self.totals.connect_failures += 1;
        self.totals.problem(why);
    }

    /// Clients connected and not closing.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// Takes a connected client (`index` is its global number, for messages).
    pub(crate) fn add(&mut self, mut stream: TcpStream, index: usize) -> Result<(), String> {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(slot),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("registering client {index}: {e}"))?;
        let conn = Conn {
            stream,
            index,
            input: Vec::new(),
            output: Vec::new(),
            last: [None; 3],
            end: None,
            closing: None,
        };
        if slot == self.slots.len() {
            self.slots.push(Some(conn));
        } else {
            self.slots[slot] = Some(conn);
        }
        self.live += 1;
        self.totals.opened += 1;
        Ok(())
    }

    /// Closes `count` live clients picked at random: every other one sends a close frame and
    /// waits for the server's (at most [`CLOSE_WAIT`]), the rest reset the connection at once.
    pub(crate) fn churn(&mut self, count: usize) {
        let live: Vec<usize> = (0..self.slots.len())
            .filter(|&i| matches!(&self.slots[i], Some(c) if c.closing.is_none()))
            .collect();
        let mut picked = live;
        let count = count.min(picked.len());
        // A partial Fisher–Yates shuffle: the first `count` are a uniform pick.
        for k in 0..count {
            let j = k + (self.next_random() as usize) % (picked.len() - k);
            picked.swap(k, j);
        }
        for (k, &slot) in picked[..count].iter().enumerate() {
            if k % 2 == 0 {
                self.start_close(slot);
            } else {
                self.remove(slot);
            }
        }
    }

    /// Closes every client at once (resets), closing ones included.
    pub(crate) fn close_all(&mut self) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].is_some() {
                self.remove(slot);
            }
        }
    }

    /// The fewest pushes (all three sequences together) any live client has received up to
    /// now, counting only clients that have seen all three: how far behind the slowest is.
    pub(crate) fn slowest(&self) -> Option<u64> {
        self.slots
            .iter()
            .flatten()
            .filter(|c| c.closing.is_none())
            .filter_map(|c| c.last.iter().try_fold(0, |sum, n| n.map(|n| sum + n)))
            .min()
    }

    /// How many live clients have not received the `end:` message yet.
    pub(crate) fn waiting_for_end(&self) -> usize {
        self.slots
            .iter()
            .flatten()
            .filter(|c| c.closing.is_none() && c.end.is_none())
            .count()
    }

    /// Checks that every live client's last number of each sequence is the last one pushed
    /// (a client that joined after a sequence's last push has none of it). Returns how many
    /// clients were checked.
    pub(crate) fn check_ends(&mut self, ends: Ends) -> usize {
        let mut checked = 0;
        let mut problems = Vec::new();
        for c in self.slots.iter().flatten() {
            if c.closing.is_some() {
                continue;
            }
            checked += 1;
            match c.end {
                None => problems.push(format!("client {}: no end message", c.index)),
                Some(e) if e != ends => problems.push(format!(
                    "client {}: end {e:?}, the server said {ends:?}",
                    c.index
                )),
                Some(_) => {}
            }
            for (k, last) in c.last.iter().enumerate() {
                if let Some(n) = *last
                    && n != ends[k]
                {
                    problems.push(format!(
                        "client {}: sequence {} ended at {n}, last pushed {}",
                        c.index, STREAMS[k] as char, ends[k]
                    ));
                    self.totals.lost += ends[k].saturating_sub(n);
                }
            }
        }
        for p in problems {
            self.totals.problem(p);
        }
        checked
    }

    /// Waits up to `timeout` for socket events and handles them; then resets clients whose
    /// close handshake has taken longer than [`CLOSE_WAIT`].
    pub(crate) fn pump(&mut self, timeout: Duration) -> Result<(), String> {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(format!("client poll: {e}"));
        }
        let ready: Vec<(usize, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                let readable = e.is_readable() || e.is_read_closed() || e.is_error();
                (e.token().0, readable, e.is_writable())
            })
            .collect();
        for (slot, readable, writable) in ready {
            if writable {
                self.flush(slot);
            }
            if readable {
                self.read(slot);
            }
        }
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            if let Some(Some(c)) = self.slots.get(slot)
                && c.closing.is_some_and(|t| now - t > CLOSE_WAIT)
            {
                self.remove(slot);
            }
        }
        Ok(())
    }

    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn start_close(&mut self, slot: usize) {
        let key = (self.next_random() as u32).to_be_bytes();
        let Some(Some(c)) = self.slots.get_mut(slot) else {
            return;
        };
        masked_frame(&mut c.output, 0x8, &1000u16.to_be_bytes(), key);
        c.closing = Some(Instant::now());
        self.live -= 1;
        self.flush(slot);
    }

    /// Drops a client: the socket's zero linger turns the close into a reset.
    fn remove(&mut self, slot: usize) {
        let Some(mut c) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut c.stream);
        if c.closing.is_none() {
            self.live -= 1;
        }
        self.totals.closed += 1;
        self.free.push(slot);
    }

    /// The server ended a connection this client did not close.
    fn broken(&mut self, slot: usize, why: String) {
        let Some(Some(c)) = self.slots.get(slot) else {
            return;
        };
        if c.closing.is_some() {
            // The end of our own close handshake.
            self.remove(slot);
            return;
        }
        let index = c.index;
        self.totals.unexpected_closes += 1;
        self.totals.problem(format!("client {index}: {why}"));
        self.remove(slot);
    }

    fn flush(&mut self, slot: usize) {
        let Some(Some(c)) = self.slots.get_mut(slot) else {
            return;
        };
        while !c.output.is_empty() {
            match c.stream.write(&c.output) {
                Ok(0) => break,
                Ok(n) => {
                    c.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let why = format!("write: {e}");
                    self.broken(slot, why);
                    return;
                }
            }
        }
    }

    /// Reads until the socket is drained, handling each complete frame.
    fn read(&mut self, slot: usize) {
        // Bounded: a socket gives at most what the server queued meanwhile; 4096 reads of
        // 256 KiB is far past what one loop turn can bring.
        for _ in 0..4096 {
            let Some(Some(c)) = self.slots.get_mut(slot) else {
                return;
            };
            let n = match c.stream.read(&mut self.scratch) {
                Ok(0) => return self.broken(slot, "the server closed the connection".into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.broken(slot, format!("read: {e}")),
            };
            let mut input = std::mem::take(&mut c.input);
            input.extend_from_slice(&self.scratch[..n]);
            let mut at = 0;
            loop {
                match next_frame(&input[at..]) {
                    Ok(Some((op, head, len))) => {
                        let payload = &input[at + head..at + head + len];
                        at += head + len;
                        if !self.frame(slot, op, payload) {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return self.broken(slot, e),
                }
            }
            input.drain(..at);
            if let Some(Some(c)) = self.slots.get_mut(slot) {
                c.input = input;
            }
            if n < self.scratch.len() {
                return;
            }
        }
    }

    /// Handles one server frame; false once the client is gone.
    fn frame(&mut self, slot: usize, op: u8, payload: &[u8]) -> bool {
        let key = (self.next_random() as u32).to_be_bytes();
        let Some(Some(c)) = self.slots.get_mut(slot) else {
            return false;
        };
        match op {
            0x1 if c.closing.is_some() => {}
            0x1 => {
                if let Err(why) = check(c, payload, &mut self.totals) {
                    let index = c.index;
                    self.totals.problem(format!("client {index}: {why}"));
                }
            }
            0x9 => {
                self.totals.pings += 1;
                masked_frame(&mut c.output, 0xA, payload, key);
                self.flush(slot);
            }
            0xA => {}
            0x8 => {
                let code = payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]]));
                self.broken(slot, format!("the server sent close {code:?}"));
                return false;
            }
            other => {
                self.broken(slot, format!("unexpected opcode {other}"));
                return false;
            }
        }
        true
    }
}

/// Checks one pushed message against the client's sequences.
fn check(c: &mut Conn, text: &[u8], totals: &mut Totals) -> Result<(), String> {
    let text = std::str::from_utf8(text).map_err(|_| "a text frame that is not UTF-8")?;
    if let Some(rest) = text.strip_prefix("end:") {
        let mut ends = [0u64; 3];
        for part in rest.split(',') {
            let (name, value) = part.split_once('=').ok_or("a malformed end message")?;
            let k = STREAMS
                .iter()
                .position(|s| name.as_bytes() == [*s])
                .ok_or("a malformed end message")?;
            ends[k] = value.parse().map_err(|_| "a malformed end message")?;
        }
        if c.end.replace(ends).is_some() {
            totals.duplicates += 1;
            return Err("two end messages".into());
        }
        return Ok(());
    }
    let parsed = text.split_once(':').and_then(|(name, n)| {
        let k = STREAMS.iter().position(|s| name.as_bytes() == [*s])?;
        Some((k, n.parse::<u64>().ok()?))
    });
    let Some((k, n)) = parsed else {
        totals.garbled += 1;
        return Err(format!("unexpected message {text:?}"));
    };
    if c.end.is_some() {
        return Err(format!("{text} after the end message"));
    }
    totals.deliveries += 1;
    let name = STREAMS[k] as char;
    let result = match c.last[k] {
        Some(last) if n == last + 1 => Ok(()),
        Some(last) if n <= last => {
            totals.duplicates += 1;
            Err(format!("{name}:{n} after {name}:{last}"))
        }
        Some(last) => {
            totals.lost += n - last - 1;
            Err(format!(
                "{name}:{n} after {name}:{last}: {} lost",
                n - last - 1
            ))
        }
        None => Ok(()),
    };
    if c.last[k].is_none_or(|last| n > last) {
        c.last[k] = Some(n);
    }
    result
}
