//! One client connection: its socket, its decoder, and its queue of outbound frames.

pub(crate) mod accept;
pub(crate) mod deflate;
pub(crate) mod extension;
pub(crate) mod forwarded;
pub(crate) mod handshake;
pub(crate) mod remote;
pub(crate) mod request;
#[cfg(feature = "tls")]
pub(crate) mod tls;

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::codec::tcp::{LengthDecoder, LineDecoder};
use crate::codec::ws::{OpKind, WsDecoder, close_payload, encode_frame};
use crate::codec::{Frame, SharedFrame, frame};
use crate::config::Protocol;
use crate::error::Result;
use crate::id::ClientId;
use crate::mailbox::{Command, LocalTarget, Stamp, local_pending, push_behind_local};
use deflate::{Deflater, Form};
use handshake::{Handshake, HandshakeRequest};

/// How many queued frames one vectored write takes at most.
pub(crate) const MAX_IOVECS: usize = 64;
/// Up to this many queued frames, a flush uses a small array of slices.
const FEW: usize = 4;
/// The capacity (in frames) above which a drained outbound queue is freed.
const SHRINK_ABOVE: usize = 32;

/// What a flush wrote: bytes, and the write calls that took them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Flushed {
    pub(crate) bytes: usize,
    pub(crate) writes: usize,
}

/// A queued piece of output: a frame shared with other connections (plain, or its shared
/// compressed form), or one of its own.
#[derive(Debug)]
pub(crate) enum Chunk {
    Shared(SharedFrame),
    /// Queued only once the compressed form exists.
    Deflated(SharedFrame),
    Owned(Vec<u8>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(f) => f.bytes(),
            Chunk::Deflated(f) => f.deflated_bytes().unwrap_or(f.bytes()),
            Chunk::Owned(v) => v,
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// The handshakes are under way, until the deadline: TLS first where the server has it,
    /// then the WebSocket upgrade (`None` for a TCP protocol, which has none).
    Handshake(Option<Box<Handshake>>, Instant),
    /// Messages flow both ways.
    Open,
    /// Closing: unregistered at `at` in its core loop's order; the frames counted to it before
    /// are still delivered, then the close frame (`sealed`); the socket is dropped once they
    /// are out and the peer has answered, or at the deadline.
    Closing {
        deadline: Instant,
        sealed: bool,
        at: Stamp,
        /// The close code the core loop means to send (another thread's close may seal
        /// first, with this code).
        code: u16,
    },
}

/// The incoming side: one decoder per protocol.
#[derive(Debug)]
pub(crate) enum Decoder {
    Ws(WsDecoder),
    Lines(LineDecoder),
    Length(LengthDecoder),
    /// After a protocol error: input is read (to see the peer's end of stream) and dropped.
    /// The stream is out of step, so what follows would be garbage counted again, and RFC
    /// 6455 §7.1.7 forbids processing anything more, even a close frame.
    Failed,
}

impl Decoder {
    pub(crate) fn new(protocol: Protocol) -> Self {
        match protocol {
            Protocol::WebSocket => Decoder::Ws(WsDecoder::new()),
            Protocol::TcpLines => Decoder::Lines(LineDecoder::new()),
            Protocol::TcpLength => Decoder::Length(LengthDecoder::new()),
        }
    }
}

/// When a connection's queued output is due to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pending {
    /// Nothing waits to be written (or it waits for the socket to become writable).
    Clean,
    /// Only frames of messages to many clients: written in the core loop's next fan-out
    /// round, so that frames arriving meanwhile share the write.
    Held,
    /// Written at the end of this loop turn.
    Now,
}

/// The part of a connection a handler's [`Context`](crate::Context) may touch.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) socket: Rc<TcpStream>,
    pub(crate) id: ClientId,
    pub(crate) server: u16,
    pub(crate) protocol: Protocol,
    out: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head_written: usize,
    /// Bytes of the handshake's answer not yet written (see `queue_handshake_answer`).
    answer_left: usize,
    queued: usize,
    /// Set once the close frame is queued: nothing may follow it.
    pub(crate) output_closed: bool,
    /// Set when the client is unregistered: the handler's own sends are ignored from then on
    /// (pushes counted before still go out, ahead of the close frame).
    pub(crate) unregistered: bool,
    /// Frames queued since the core loop last counted them.
    pub(crate) frames_queued: u32,
    /// Compressions run for this connection's frames since the core loop last counted them.
    pub(crate) frames_compressed: u32,
    /// Outbound compression, where permessage-deflate was negotiated.
    pub(crate) deflate: Option<Box<Deflater>>,
    /// Frames refused for the outbound limit since the core loop last looked.
    pub(crate) overflow: u32,
    /// A close the handler asked for, carried out when its call returns.
    pub(crate) close_request: Option<(u16, String)>,
    /// Which of its core loop's flush lists the connection is on, if any.
    pub(crate) pending: Pending,
    pub(crate) request: Option<Box<HandshakeRequest>>,
    /// The TLS session, on a server with TLS: bytes are decrypted as they are read, and the
    /// queued frames (shared with other connections in clear) encrypted as they are flushed.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<Box<tls::TlsSession>>,
    /// What few connections have (a subprotocol, a forwarded address): one pointer for the
    /// rest, to keep idle connections small.
    pub(crate) extras: Option<Box<accept::Extras>>,
}

impl ConnIo {
    pub(crate) fn new(
        socket: Rc<TcpStream>,
        id: ClientId,
        server: u16,
        protocol: Protocol,
    ) -> Self {
        ConnIo {
            socket,
            id,
            server,
            protocol,
            out: VecDeque::new(),
            head_written: 0,
            answer_left: 0,
            queued: 0,
            output_closed: false,
            unregistered: false,
            frames_queued: 0,
            frames_compressed: 0,
            deflate: None,
            overflow: 0,
            close_request: None,
            pending: Pending::Clean,
            request: None,
            extras: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The connection with its TLS session, on a server with TLS.
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, tls: Option<Box<tls::TlsSession>>) -> Self {
        self.tls = tls;
        self
    }

    /// Whether anything waits to be written: queued frames, or encrypted records.
    pub(crate) fn has_output(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.as_ref().is_some_and(|t| t.wants_write()) {
            return true;
        }
        !self.out.is_empty()
    }

    /// Whether a read that does not fill the buffer has drained the socket (see
    /// `Worker::read_from`): not so under TLS, where a short read of decrypted bytes says
    /// nothing about the socket.
    pub(crate) fn short_read_drains(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return false;
        }
        true
    }

    /// The connection's incoming bytes, decrypted where it has TLS.
    pub(crate) fn input(&mut self) -> Input<'_> {
        Input {
            socket: &self.socket,
            #[cfg(feature = "tls")]
            tls: self.tls.as_deref_mut(),
        }
    }

    /// Best effort for a connection about to be dropped: writes `bytes` (an HTTP refusal)
    /// as far as the socket takes them now, encrypted where the connection has TLS.
    pub(crate) fn write_last(&mut self, bytes: &[u8]) {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_mut() {
            tls.write_last(&self.socket, bytes);
            return;
        }
        let _ = (&*self.socket).write(bytes);
    }

    /// Frames (or what is left of them) waiting to be written.
    pub(crate) fn frames_waiting(&self) -> usize {
        self.out.len()
    }

    /// Whether `len` more bytes fit under `limit`. A message always fits an empty queue, so a
    /// message larger than the limit still reaches a client that keeps up.
    fn admits(&mut self, len: usize, limit: usize) -> bool {
        if self.output_closed {
            return false;
        }
        // The handshake's answer is not a message: it does not count against the limit.
        let used = self.queued.saturating_sub(self.answer_left);
        if used > 0 && used + len > limit {
            self.overflow += 1;
            return false;
        }
        true
    }

    fn push(&mut self, chunk: Chunk) {
        self.queued += chunk.bytes().len();
        self.frames_queued += 1;
        self.out.push_back(chunk);
    }

    /// Queues a frame shared with other connections. False if output is closed or the queue
    /// is full (then `overflow` counts it).
    /// Where the connection compresses, the frame goes in the form its [`Deflater`] picks.
    pub(crate) fn queue_shared(&mut self, frame: &SharedFrame, limit: usize) -> bool {
        let Some(keeps_context) = self.deflate.as_ref().map(|d| d.keeps_context()) else {
            if !self.admits(frame.bytes().len(), limit) {
                return false;
            }
            self.push(Chunk::Shared(frame.clone()));
            return true;
        };
        // A message compressed with the connection's context must go out, as the client's
        // inflater follows the compressor: admission comes first, on the plain size.
        if keeps_context && !self.admits(frame.bytes().len(), limit) {
            return false;
        }
        let mut made = false;
        let form = match self.deflate.as_deref_mut() {
            Some(deflater) => deflater.form(frame, &mut made),
            None => Form::Plain,
        };
        self.frames_compressed += u32::from(made);
        let chunk = match form {
            Form::Plain => Chunk::Shared(frame.clone()),
            Form::Shared => Chunk::Deflated(frame.clone()),
            Form::Own(bytes) => Chunk::Owned(bytes),
        };
        if !keeps_context && !self.admits(chunk.bytes().len(), limit) {
            return false;
        }
        self.push(chunk);
        true
    }

    /// Queues the handshake's answer: not a message, so neither it nor a write that carries
    /// only it is counted.
    pub(crate) fn queue_handshake_answer(&mut self, bytes: Vec<u8>) {
        self.queued += bytes.len();
        self.answer_left = bytes.len();
        self.out.push_back(Chunk::Owned(bytes));
    }

    /// Queues bytes of this connection's own, under the same rules.
    pub(crate) fn queue_owned(&mut self, bytes: Vec<u8>, limit: usize) -> bool {
        if bytes.is_empty() || !self.admits(bytes.len(), limit) {
            return false;
        }
        self.push(Chunk::Owned(bytes));
        true
    }

    /// Frames and queues a payload the handler sends to this connection: behind the commands
    /// its thread queued before, if any wait (so one thread's messages keep the order of the
    /// calls), else at once. Ignored once the connection is unregistered.
    pub(crate) fn queue_payload(
        &mut self,
        is_text: bool,
        bytes: &[u8],
        limit: usize,
    ) -> Result<()> {
        if self.unregistered || self.output_closed {
            return Ok(());
        }
        let framed = frame(self.protocol, is_text, bytes)?;
        if local_pending() {
            push_behind_local(Command::Push {
                server: self.server,
                frame: Arc::new(Frame::new(framed)),
                target: LocalTarget::Ids(vec![self.id]),
            });
        } else if self.deflate.is_some() {
            self.queue_shared(&Arc::new(Frame::new(framed)), limit);
        } else {
            self.queue_owned(framed, limit);
        }
        Ok(())
    }

    /// Queues a WebSocket control frame (ignored on TCP).
    pub(crate) fn queue_control(&mut self, op: OpKind, payload: &[u8], limit: usize) {
        if self.protocol == Protocol::WebSocket {
            let mut out = Vec::with_capacity(payload.len() + 2);
            encode_frame(&mut out, op, payload);
            self.queue_owned(out, limit);
        }
    }

    /// Queues the close frame (WebSocket) and closes output.
    pub(crate) fn queue_close(&mut self, code: u16, reason: &str) {
        if self.output_closed {
            return;
        }
        // The close frame goes whatever the limit: it is small, and it is the last.
        self.queue_control(OpKind::Close, &close_payload(code, reason), usize::MAX);
        self.output_closed = true;
    }

    /// Writes what the socket takes, in vectored writes of up to 64 frames. Returns the bytes
    /// written and the writes they took; the queue is empty afterwards unless the socket
    /// filled up (a writable event follows then).
    pub(crate) fn flush(&mut self) -> io::Result<Flushed> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.flush_tls();
        }
        let mut done = Flushed::default();
        while !self.out.is_empty() {
            // Most flushes carry a few frames: a small array spares zeroing 64 slots.
            let result = if self.out.len() <= FEW {
                write_queued::<FEW>(&self.socket, &self.out, self.head_written)
            } else {
                write_queued::<MAX_IOVECS>(&self.socket, &self.out, self.head_written)
            };
            match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => {
                    let taken = self.taken(written);
                    if taken > 0 {
                        done.writes += 1;
                    }
                    done.bytes += taken;
                    self.consume(written);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(done),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.drained();
        Ok(done)
    }

    /// The bytes of `written` that were messages, not the handshake's answer; takes them off
    /// the answer's count.
    fn taken(&mut self, written: usize) -> usize {
        let answer = written.min(self.answer_left);
        self.answer_left -= answer;
        written - answer
    }

    /// A burst leaves a large queue behind; give it back once drained, so that a connection
    /// that was once behind does not keep the memory while idle. Small queues stay, so the
    /// steady state allocates nothing per message.
    fn drained(&mut self) {
        if self.out.is_empty() && self.out.capacity() > SHRINK_ABOVE {
            self.out = VecDeque::new();
        }
    }

    fn consume(&mut self, mut written: usize) {
        self.queued -= written.min(self.queued);
        while written > 0 {
            let Some(front) = self.out.front() else {
                break;
            };
            let rest = front.bytes().len() - self.head_written;
            if written >= rest {
                written -= rest;
                self.head_written = 0;
                self.out.pop_front();
            } else {
                self.head_written += written;
                written = 0;
            }
        }
    }
}

/// One vectored write of up to `N` queued frames, the first from `head_written` on.
fn write_queued<const N: usize>(
    socket: &TcpStream,
    out: &VecDeque<Chunk>,
    head_written: usize,
) -> io::Result<usize> {
    let mut slices = [IoSlice::new(&[]); N];
    let n = fill_slices(&mut slices, out, head_written);
    let mut socket = socket;
    socket.write_vectored(&slices[..n])
}

/// Points `slices` at the queued frames, the first from `head_written` on; how many it set.
fn fill_slices<'a>(
    slices: &mut [IoSlice<'a>],
    out: &'a VecDeque<Chunk>,
    head_written: usize,
) -> usize {
    let mut n = 0;
    for (slot, chunk) in slices.iter_mut().zip(out) {
        let bytes = chunk.bytes();
        *slot = IoSlice::new(if n == 0 {
            &bytes[head_written..]
        } else {
            bytes
        });
        n += 1;
    }
    n
}

/// A connection's incoming bytes, read as from a socket: decrypted where it has TLS.
pub(crate) struct Input<'a> {
    socket: &'a TcpStream,
    #[cfg(feature = "tls")]
    tls: Option<&'a mut tls::TlsSession>,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Some(tls) = self.tls.as_deref_mut() {
            return tls.read(self.socket, buf);
        }
        let mut socket = self.socket;
        socket.read(buf)
    }
}

/// A connection as its core loop holds it.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) io: ConnIo,
    pub(crate) decoder: Decoder,
    pub(crate) phase: Phase,
    /// The peer sent its close frame or its FIN.
    pub(crate) peer_closed: bool,
    /// Our FIN has been sent.
    pub(crate) write_shut: bool,
    /// When bytes last came in, in milliseconds of the core loop's clock (wrapping).
    pub(crate) last_seen: u32,
    /// A keepalive ping is out and unanswered.
    pub(crate) pinged: bool,
    /// The slow-consumer policy has been logged for this connection.
    pub(crate) slow_logged: bool,
    /// The peer's address, kept only when a per-address limit needs it at close.
    pub(crate) peer: Option<std::net::IpAddr>,
    /// Where the connection opened in its core loop's order: commands to many clients
    /// stamped after this reach it (see [`crate::mailbox`]).
    pub(crate) opened: Stamp,
}

impl Conn {
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// Whether pushes still reach it: open, or closing with its close frame not yet queued.
    pub(crate) fn takes_pushes(&self) -> bool {
        matches!(
            self.phase,
            Phase::Open | Phase::Closing { sealed: false, .. }
        )
    }

    /// Whether a push to everyone stamped `at` counted it: stamped after it opened and before
    /// it closed.
    pub(crate) fn counted_by(&self, at: Stamp) -> bool {
        self.opened < at
            && match self.phase {
                Phase::Open => true,
                Phase::Closing {
                    sealed: false,
                    at: closed,
                    ..
                } => at < closed,
                _ => false,
            }
    }
}
