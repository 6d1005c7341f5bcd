//! Serving one connection on a pool thread: read a request, hand it to the handler, write the
//! response, and again while the connection is kept alive.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log::{debug, error};

use super::message::RequestContext;
use super::parse::{ChunkedDecoder, Framing, Limits, Reject, head_step};
use super::pool::{BUSY, FRESH, IDLE, Shared, Slot};
use super::write::{self, CONTINUE, asks_close, check, error_response, write_two};

/// The smallest free space a read is given.
const MIN_READ: usize = 4096;
/// A pool thread's buffer is shrunk back to this between connections if a large request grew it.
const BUF_START: usize = 8 << 10;
const BUF_KEEP: usize = 64 << 10;
/// After refusing a request, how long (and how much) the client's unread bytes are drained
/// before closing, so that closing with unread data (a TCP reset) cannot destroy the answer
/// before the client has read it.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// A pool thread's buffers, reused from connection to connection.
#[derive(Debug)]
pub(crate) struct Scratch {
    /// Read buffer: bytes `start..end` are received and not yet consumed.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// A response head being written.
    out: Vec<u8>,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch {
            buf: vec![0; BUF_START],
            start: 0,
            end: 0,
            out: Vec::with_capacity(512),
        }
    }

    fn reset(&mut self) {
        (self.start, self.end) = (0, 0);
        if self.buf.len() > BUF_KEEP {
            self.buf = vec![0; BUF_START];
        }
    }

    fn unread(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.end {
            (self.start, self.end) = (0, 0);
        }
    }

    /// One read into the free space, made at least [`MIN_READ`] by compacting or growing.
    fn read_from(&mut self, mut stream: &TcpStream) -> io::Result<usize> {
        if self.buf.len() - self.end < MIN_READ {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            if self.buf.len() - self.end < MIN_READ {
                let len = (self.buf.len() * 2).max(self.end + MIN_READ);
                self.buf.resize(len, 0);
            }
        }
        loop {
            match stream.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// Serves the connection until it closes, times out, or shutdown takes it.
pub(crate) fn serve(
    stream: &TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    slot: &Slot,
    scratch: &mut Scratch,
) {
    // Accepted from a non-blocking listener: this thread blocks, with timeouts.
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_nodelay(true))
        .and_then(|()| stream.set_write_timeout(Some(shared.config.write_timeout)));
    if let Err(e) = setup {
        debug!("http: {peer}: socket setup failed: {e}");
        return;
    }
    scratch.reset();
    let mut conn = Conn {
        stream,
        peer,
        shared,
        slot,
        scratch,
        read_timeout: None,
        deadline: None,
        served: 0,
    };
    loop {
        match conn.one_request() {
            Next::KeepAlive => {}
            Next::Close => return,
            Next::Linger => return linger(stream),
        }
    }
}

enum Next {
    KeepAlive,
    Close,
    /// Close after draining what the client still sends.
    Linger,
}

enum Got {
    Data,
    Closed,
    TimedOut,
}

struct Conn<'a> {
    stream: &'a TcpStream,
    peer: SocketAddr,
    shared: &'a Shared,
    slot: &'a Slot,
    scratch: &'a mut Scratch,
    /// The read timeout set on the socket, to skip setting it again.
    read_timeout: Option<Duration>,
    /// When the request being read must have arrived whole.
    deadline: Option<Instant>,
    /// Requests answered on this connection.
    served: u64,
}

impl Conn<'_> {
    fn limits(&self) -> Limits {
        Limits {
            max_header_bytes: self.shared.config.max_header_bytes,
            max_body_bytes: self.shared.config.max_body_bytes,
        }
    }

    fn one_request(&mut self) -> Next {
        let limits = self.limits();
        self.deadline = None;

        // The head: parsed once a blank line has arrived, not on every read.
        let mut scanned = 0;
        let head = loop {
            let unread = self.scratch.unread();
            match head_step(unread, scanned, limits) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(reject) => return self.reject(reject),
            }
            scanned = unread.len();
            let got = if unread.is_empty() {
                self.read_idle()
            } else {
                self.read_more()
            };
            match got {
                Got::Data => {}
                Got::Closed => return Next::Close,
                Got::TimedOut if self.scratch.unread().is_empty() => return Next::Close,
                Got::TimedOut => return self.reject(Reject::Timeout),
            }
        };

        // The body, with a `100 Continue` first if the client waits for one.
        let continue_first = head.expect_continue && self.scratch.unread().len() == head.len;
        if continue_first && head.framing != Framing::Empty {
            if let Err(e) = write_two(self.stream, CONTINUE, &[]) {
                debug!("http: {}: write failed: {e}", self.peer);
                return Next::Close;
            }
        }
        let (body, consumed) = match head.framing {
            Framing::Empty => (Vec::new(), head.len),
            Framing::Length(n) => {
                while self.scratch.unread().len() < head.len + n {
                    if let Some(next) = self.read_body() {
                        return next;
                    }
                }
                let unread = self.scratch.unread();
                (unread[head.len..head.len + n].to_vec(), head.len + n)
            }
            Framing::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                let mut body = Vec::new();
                loop {
                    let input = &self.scratch.unread()[head.len..];
                    match decoder.decode(input, &mut body, limits) {
                        Ok(Some(n)) => break (body, head.len + n),
                        Ok(None) => {}
                        Err(reject) => return self.reject(reject),
                    }
                    if let Some(next) = self.read_body() {
                        return next;
                    }
                }
            }
        };
        self.scratch.consume(consumed);

        // The handler, with a panic costing only this request.
        let mut request = head.request;
        request.body = body;
        let shared = self.shared;
        let peer = self.peer;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            // Dropped with the closure: per-request data never outlives its request.
            let mut ctx = RequestContext::new(shared.server.clone(), peer);
            shared.handler.handle(&request, &mut ctx)
        }));
        let what = || format!("{} {}", request.method(), request.uri());
        let response = match outcome {
            Ok(response) => match check(&response) {
                Ok(()) => response,
                Err(why) => {
                    error!("http: handler answer to {} cannot be sent: {why}", what());
                    error_response(500, "the handler's answer cannot be sent")
                }
            },
            Err(_) => {
                error!("http: handler panicked on {}", what());
                error_response(500, "the handler failed")
            }
        };

        let keep_alive = head.keep_alive && !asks_close(&response) && !shared.is_stopping();
        let framing = write::Framing {
            keep_alive,
            http10: request.minor_version == 0,
            head_only: head.is_head_method,
        };
        let out = &mut self.scratch.out;
        out.clear();
        let has_body = write::head(out, &response, framing);
        let body = if has_body { &response.body[..] } else { &[] };
        if let Err(e) = write_two(self.stream, out, body) {
            debug!("http: {}: write failed: {e}", self.peer);
            return Next::Close;
        }
        self.served += 1;
        match (keep_alive, self.scratch.unread().is_empty()) {
            (true, _) => Next::KeepAlive,
            (false, true) => Next::Close,
            // Pipelined requests that will not be answered: drain them before closing.
            (false, false) => Next::Linger,
        }
    }

    /// Reads more of a body; `Some` when the connection is done instead.
    fn read_body(&mut self) -> Option<Next> {
        match self.read_more() {
            Got::Data => None,
            Got::Closed => Some(Next::Close),
            Got::TimedOut => Some(self.reject(Reject::Timeout)),
        }
    }

    /// Waits for the first bytes of the next request, as an idle connection that shutdown or a
    /// waiting client may close (see [`Slot`]).
    fn read_idle(&mut self) -> Got {
        let waiting = if self.served == 0 { FRESH } else { IDLE };
        self.slot.state.store(waiting, Ordering::SeqCst);
        // Checked after IDLE is visible: a shutdown (or the acceptor, for a newcomer) either
        // sees IDLE and closes the socket, or is seen here. Then only a request that has
        // already arrived is served: shutting down, or (between requests, a newly taken
        // connection having waited its turn already) with clients waiting for a thread.
        let yielding = self.served > 0 && self.shared.is_short_of_threads();
        let result = if self.shared.is_stopping() || yielding {
            match self.stream.set_nonblocking(true) {
                Ok(()) => {
                    let r = self.scratch.read_from(self.stream);
                    let _ = self.stream.set_nonblocking(false);
                    r
                }
                Err(e) => Err(e),
            }
        } else {
            let timeout = self.shared.config.keep_alive_timeout;
            match self.set_read_timeout(timeout) {
                Ok(()) => self.scratch.read_from(self.stream),
                Err(e) => Err(e),
            }
        };
        let ours = self
            .slot
            .state
            .compare_exchange(waiting, BUSY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok();
        if !ours {
            // Closed from outside between requests: what may have arrived goes unanswered,
            // as with any server closing an idle keep-alive connection.
            return Got::Closed;
        }
        self.deadline = Some(Instant::now() + self.shared.config.request_timeout);
        classify(result)
    }

    /// Reads more of a request that has started, within the request deadline.
    fn read_more(&mut self) -> Got {
        let deadline = *self
            .deadline
            .get_or_insert_with(|| Instant::now() + self.shared.config.request_timeout);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Got::TimedOut;
        }
        if let Err(e) = self.set_read_timeout(left) {
            debug!("http: {}: {e}", self.peer);
            return Got::Closed;
        }
        classify(self.scratch.read_from(self.stream))
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.read_timeout != Some(timeout) {
            self.stream.set_read_timeout(Some(timeout))?;
            self.read_timeout = Some(timeout);
        }
        Ok(())
    }

    /// Answers a refused request and ends the connection.
    fn reject(&mut self, reject: Reject) -> Next {
        let status = reject.status();
        debug!("http: {}: {status}: {}", self.peer, reject.reason());
        let response = error_response(status, reject.reason());
        let framing = write::Framing {
            keep_alive: false,
            http10: false,
            head_only: false,
        };
        let out = &mut self.scratch.out;
        out.clear();
        write::head(out, &response, framing);
        match write_two(self.stream, out, &response.body) {
            Ok(()) => Next::Linger,
            Err(_) => Next::Close,
        }
    }
}

fn classify(result: io::Result<usize>) -> Got {
    match result {
        Ok(0) => Got::Closed,
        Ok(_) => Got::Data,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Got::TimedOut
        }
        Err(_) => Got::Closed,
    }
}

/// Half-closes, then drains what the client still sends for a bounded time, so the answer
/// already written is not destroyed by a reset; then the caller drops the socket.
fn linger(mut stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 4096];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
