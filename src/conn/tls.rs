//! A connection's TLS session (feature `tls`). rustls does no I/O of its own: the core loop
//! hands it the bytes it reads (`read_tls`, `process_new_packets`) and takes the bytes it must
//! send (`write_tls`), on the same non-blocking socket and edge-triggered registration as a
//! plain connection. So the rules of the plain path hold: reads go on until the socket says
//! `WouldBlock` (no later edge would announce what is left), and whatever rustls wants to send
//! is written as far as the socket takes it, the rest when the writable edge comes.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::{ConnIo, Flushed, MAX_IOVECS, fill_slices};

/// One connection's TLS state.
pub(crate) struct TlsSession {
    conn: ServerConnection,
    /// The peer's end of stream has been read (with or without its close_notify).
    eof: bool,
    /// Our close_notify has been queued.
    notified: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("eof", &self.eof)
            .finish()
    }
}

impl TlsSession {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>) -> Result<Self, rustls::Error> {
        Ok(TlsSession {
            conn: ServerConnection::new(config)?,
            eof: false,
            notified: false,
        })
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether encrypted bytes wait to be written.
    pub(crate) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Drives the handshake as far as the socket allows: true once it is complete. An error
    /// is a peer that does not speak TLS, fails it, or went away.
    pub(crate) fn advance(&mut self, socket: &TcpStream) -> io::Result<bool> {
        loop {
            self.send_pending(socket)?;
            if !self.conn.is_handshaking() {
                return Ok(true);
            }
            if !self.receive(socket)? {
                return Ok(false);
            }
            if self.eof && self.conn.is_handshaking() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads decrypted bytes, as a socket read would: `Ok(0)` at the peer's end of stream,
    /// `WouldBlock` once the socket is drained. Handshake messages met on the way are
    /// answered.
    pub(crate) fn read(&mut self, socket: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // The peer closed without its close_notify: for a push server that is an end
                // of stream like any other (the messages have their own framing).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.eof {
                return Ok(0);
            }
            self.send_pending(socket)?;
            if !self.receive(socket)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            // Answers the handshake (or a key update) the records just read called for.
            self.send_pending(socket)?;
        }
    }

    /// Encrypts what it can of `slices` (rustls keeps at most its buffer limit of records
    /// unwritten): the plaintext bytes taken, which may be 0 while records wait.
    pub(crate) fn encrypt(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        self.conn.writer().write_vectored(slices)
    }

    /// Writes encrypted records until none is left (true) or the socket is full (false);
    /// `writes` counts the write calls.
    pub(crate) fn write_out(&mut self, socket: &TcpStream, writes: &mut usize) -> io::Result<bool> {
        let mut socket = socket;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut socket) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => *writes += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Queues the close_notify alert once (after the last message).
    pub(crate) fn close_notify(&mut self) {
        if !self.notified {
            self.notified = true;
            self.conn.send_close_notify();
        }
    }

    /// Whether the close_notify has been queued.
    pub(crate) fn is_notified(&self) -> bool {
        self.notified
    }

    /// Best effort for a connection about to be dropped: `bytes` (encrypted, when the
    /// handshake is done; a peer still in its handshake gets nothing readable), the
    /// close_notify, and what the socket takes of them now.
    pub(crate) fn write_last(&mut self, socket: &TcpStream, bytes: &[u8]) {
        if !self.conn.is_handshaking() && !bytes.is_empty() {
            let _ = self.conn.writer().write_all(bytes);
        }
        self.close_notify();
        let _ = self.write_out(socket, &mut 0);
    }

    /// Writes what rustls wants to send, as far as the socket takes it.
    fn send_pending(&mut self, socket: &TcpStream) -> io::Result<()> {
        self.write_out(socket, &mut 0).map(|_| ())
    }

    /// Reads records from the socket and processes them: false when the socket had nothing.
    /// A protocol error queues rustls's alert, writes it as far as it goes, and is returned.
    fn receive(&mut self, socket: &TcpStream) -> io::Result<bool> {
        let mut socket = socket;
        let n = loop {
            match self.conn.read_tls(&mut socket) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            self.eof = true;
        }
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.send_pending(socket);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(true)
    }
}

impl ConnIo {
    /// [`flush`](ConnIo::flush) through TLS: the queued frames, shared in clear with other
    /// connections, are encrypted here — up to 64 per vectored call, which packs small frames
    /// into full records — and the records written as far as the socket takes them. rustls
    /// holds at most its buffer limit (64 KiB) of records; the rest of the queue stays in
    /// clear until the writable edge. Bytes count as written once encrypted.
    pub(super) fn flush_tls(&mut self) -> io::Result<Flushed> {
        // Out of `self` while the queue is worked on (a move of the box).
        let Some(mut tls) = self.tls.take() else {
            return Ok(Flushed::default());
        };
        let result = self.flush_through(&mut tls);
        self.tls = Some(tls);
        result
    }

    fn flush_through(&mut self, tls: &mut TlsSession) -> io::Result<Flushed> {
        let mut done = Flushed::default();
        loop {
            if !tls.write_out(&self.socket, &mut done.writes)? {
                return Ok(done);
            }
            if self.out.is_empty() || tls.is_handshaking() {
                break;
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let n = fill_slices(&mut slices, &self.out, self.head_written);
            let taken = tls.encrypt(&slices[..n])?;
            if taken == 0 && !tls.wants_write() {
                break;
            }
            done.bytes += self.taken(taken);
            self.consume(taken);
        }
        if self.output_closed && !tls.is_notified() {
            // The close frame (or, on TCP, the last message) is out: then the close_notify.
            tls.close_notify();
            tls.write_out(&self.socket, &mut done.writes)?;
        }
        self.drained();
        Ok(done)
    }
}
