//! The WebSocket upgrade, driven by tungstenite's resumable server handshake over a
//! non-blocking socket: each readable or writable event resumes it where it stopped.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::rc::Rc;

use mio::net::TcpStream;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};

use crate::handler::HandshakeRequest;

/// The socket as tungstenite sees it during the handshake; the connection keeps another
/// reference for polling.
#[derive(Debug)]
pub(crate) struct SockRef(Rc<TcpStream>);

impl Read for SockRef {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for SockRef {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// Keeps the upgrade request for the handler's [`Context::request`](crate::Context::request).
#[derive(Debug)]
pub(crate) struct Capture(Rc<RefCell<Option<HandshakeRequest>>>);

impl Callback for Capture {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        *self.0.borrow_mut() = Some(HandshakeRequest {
            uri: request.uri().to_string(),
            headers,
        });
        Ok(response)
    }
}

type Mid = MidHandshake<ServerHandshake<SockRef, Capture>>;

/// A handshake in progress.
pub(crate) struct Handshake {
    state: Option<HsState>,
    request: Rc<RefCell<Option<HandshakeRequest>>>,
}

// The whole `Handshake` is boxed inside the connection's phase, so the size is paid once,
// during the handshake only.
#[allow(clippy::large_enum_variant)]
enum HsState {
    Fresh(SockRef),
    Mid(Mid),
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handshake")
    }
}

/// What a step of the handshake came to.
#[derive(Debug)]
pub(crate) enum Step {
    /// Waiting for the socket.
    Pending,
    /// Upgraded: the request the client sent.
    Done(Box<HandshakeRequest>),
    /// Failed; the connection must be dropped (a 400 answer has been attempted).
    Failed(String),
}

impl Handshake {
    pub(crate) fn new(socket: Rc<TcpStream>) -> Self {
        Handshake {
            state: Some(HsState::Fresh(SockRef(socket))),
            request: Rc::default(),
        }
    }

    /// Advances the handshake as far as the socket allows.
    pub(crate) fn step(&mut self) -> Step {
        let result = match self.state.take() {
            Some(HsState::Fresh(sock)) => {
                ServerHandshake::start(sock, Capture(self.request.clone()), None).handshake()
            }
            Some(HsState::Mid(mid)) => mid.handshake(),
            None => return Step::Failed("handshake already finished".into()),
        };
        match result {
            Ok(_websocket) => {
                // tungstenite refuses bytes after the request (JunkAfterRequest), so nothing
                // read from the socket is lost when its WebSocket is dropped here.
                let request = self.request.borrow_mut().take().unwrap_or_default();
                Step::Done(Box::new(request))
            }
            Err(HandshakeError::Interrupted(mid)) => {
                self.state = Some(HsState::Mid(mid));
                Step::Pending
            }
            Err(HandshakeError::Failure(e)) => Step::Failed(e.to_string()),
        }
    }
}

/// The answer to a request that is not a valid WebSocket upgrade.
pub(crate) const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
