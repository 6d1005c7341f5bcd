//! One client connection: its socket, its decoder, and its queue of outbound frames.

pub(crate) mod handshake;

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;
use std::time::Instant;

use mio::net::TcpStream;

use crate::codec::tcp::{LengthDecoder, LineDecoder, encode_length, encode_line};
use crate::codec::ws::{OpKind, WsDecoder, close_payload, encode_frame};
use crate::config::Protocol;
use crate::error::{Error, Result};
use crate::handler::HandshakeRequest;
use crate::id::ClientId;
use crate::worker::shared::SharedFrame;
use handshake::Handshake;

/// How many queued frames one vectored write takes at most.
const MAX_IOVECS: usize = 64;

/// Frames a payload for the wire of `protocol`. WebSocket frames from a server are unmasked,
/// so every receiver gets the same bytes: a broadcast calls this once.
pub(crate) fn frame(protocol: Protocol, is_text: bool, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 10);
    match protocol {
        Protocol::WebSocket => {
            let op = if is_text {
                OpKind::Text
            } else {
                OpKind::Binary
            };
            encode_frame(&mut out, op, bytes);
        }
        Protocol::TcpLines => {
            encode_line(&mut out, bytes).map_err(|e| Error::Frame(e.reason.to_owned()))?
        }
        Protocol::TcpLength => {
            encode_length(&mut out, bytes).map_err(|e| Error::Frame(e.reason.to_owned()))?
        }
    }
    Ok(out)
}

/// A queued piece of output: a frame shared with other connections, or one of its own.
#[derive(Debug)]
pub(crate) enum Chunk {
    Shared(SharedFrame),
    Owned(Vec<u8>),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Shared(f) => f,
            Chunk::Owned(v) => v,
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug)]
pub(crate) enum Phase {
    /// The WebSocket upgrade is under way.
    Handshake(Box<Handshake>, Instant),
    /// Messages flow both ways.
    Open,
    /// Closing: the last frames (and a close frame) are being written; the socket is dropped
    /// once they are out and the peer has answered, or at the deadline.
    Closing(Instant),
}

/// The incoming side: one decoder per protocol.
#[derive(Debug)]
pub(crate) enum Decoder {
    Ws(WsDecoder),
    Lines(LineDecoder),
    Length(LengthDecoder),
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
    queued: usize,
    /// Set once the close frame is queued: nothing may follow it.
    pub(crate) output_closed: bool,
    /// A close the handler asked for, carried out when its call returns.
    pub(crate) close_request: Option<(u16, String)>,
    /// Whether the connection is on its core loop's list of connections to flush.
    pub(crate) is_dirty: bool,
    pub(crate) request: Option<Box<HandshakeRequest>>,
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
            queued: 0,
            output_closed: false,
            close_request: None,
            is_dirty: false,
            request: None,
        }
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty()
    }

    /// Queues a frame shared with other connections. False if output is closed.
    pub(crate) fn queue_shared(&mut self, frame: &SharedFrame) -> bool {
        if self.output_closed {
            return false;
        }
        self.queued += frame.len();
        self.out.push_back(Chunk::Shared(frame.clone()));
        true
    }

    /// Queues bytes of this connection's own.
    pub(crate) fn queue_owned(&mut self, bytes: Vec<u8>) -> bool {
        if self.output_closed || bytes.is_empty() {
            return false;
        }
        self.queued += bytes.len();
        self.out.push_back(Chunk::Owned(bytes));
        true
    }

    /// Frames and queues a payload for this connection alone.
    pub(crate) fn queue_payload(&mut self, is_text: bool, bytes: &[u8]) -> Result<()> {
        if !self.output_closed {
            let framed = frame(self.protocol, is_text, bytes)?;
            self.queue_owned(framed);
        }
        Ok(())
    }

    /// Queues a WebSocket control frame (ignored on TCP).
    pub(crate) fn queue_control(&mut self, op: OpKind, payload: &[u8]) {
        if self.protocol == Protocol::WebSocket {
            let mut out = Vec::with_capacity(payload.len() + 2);
            encode_frame(&mut out, op, payload);
            self.queue_owned(out);
        }
    }

    /// Queues the close frame (WebSocket) and closes output.
    pub(crate) fn queue_close(&mut self, code: u16, reason: &str) {
        if self.output_closed {
            return;
        }
        self.queue_control(OpKind::Close, &close_payload(code, reason));
        self.output_closed = true;
    }

    /// Writes what the socket takes, in vectored writes of up to 64 frames. `Ok(true)` once
    /// the queue is empty, `Ok(false)` when the socket is full (a writable event follows).
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, chunk) in self.out.iter().take(MAX_IOVECS).enumerate() {
                let bytes = chunk.bytes();
                slices[i] = IoSlice::new(if i == 0 {
                    &bytes[self.head_written..]
                } else {
                    bytes
                });
                n += 1;
            }
            match (&*self.socket).write_vectored(&slices[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => self.consume(written),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
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
}

impl Conn {
    pub(crate) fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }
}
