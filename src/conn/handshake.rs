//! The WebSocket upgrade, driven by tungstenite's resumable server handshake over a
//! non-blocking socket: each readable or writable event resumes it where it stopped.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Arc;

use mio::net::TcpStream;
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::StatusCode;

use crate::handler::{HandshakeHook, HandshakeRequest, Rejection};

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

/// Keeps the upgrade request for the handler's [`Context::request`](crate::Context::request),
/// and asks the application's handshake hook, if any, whether to accept it.
pub(crate) struct Capture {
    request: Rc<RefCell<Option<HandshakeRequest>>>,
    hook: Option<Arc<HandshakeHook>>,
    rejected: Rc<Cell<bool>>,
    panicked: Rc<Cell<bool>>,
}

impl Callback for Capture {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let request = HandshakeRequest {
            uri: request.uri().to_string(),
            headers,
        };
        if let Some(hook) = &self.hook {
            // The hook is application code: a panic refuses this client (500) instead of
            // unwinding through the core loop.
            let verdict = catch_unwind(AssertUnwindSafe(|| hook(&request))).unwrap_or_else(|_| {
                self.panicked.set(true);
                Err(Rejection::new(500))
            });
            if let Err(rejection) = verdict {
                self.rejected.set(true);
                let mut answer = ErrorResponse::new(Some(rejection.body));
                *answer.status_mut() =
                    StatusCode::from_u16(rejection.status).unwrap_or(StatusCode::FORBIDDEN);
                return Err(answer);
            }
        }
        *self.request.borrow_mut() = Some(request);
        Ok(response)
    }
}

type Mid = MidHandshake<ServerHandshake<SockRef, Capture>>;

/// A handshake in progress.
pub(crate) struct Handshake {
    state: Option<HsState>,
    request: Rc<RefCell<Option<HandshakeRequest>>>,
    hook: Option<Arc<HandshakeHook>>,
    rejected: Rc<Cell<bool>>,
    panicked: Rc<Cell<bool>>,
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
    /// The handshake hook refused it; its answer has been written.
    Rejected,
    /// The handshake hook panicked; a 500 answer has been written.
    HookPanicked,
    /// Failed; the connection must be dropped (a 400 answer has been attempted).
    Failed(String),
}

impl Handshake {
    pub(crate) fn new(socket: Rc<TcpStream>, hook: Option<Arc<HandshakeHook>>) -> Self {
        Handshake {
            state: Some(HsState::Fresh(SockRef(socket))),
            request: Rc::default(),
            hook,
            rejected: Rc::default(),
            panicked: Rc::default(),
        }
    }

    /// Advances the handshake as far as the socket allows.
    pub(crate) fn step(&mut self) -> Step {
        let result = match self.state.take() {
            Some(HsState::Fresh(sock)) => {
                let capture = Capture {
                    request: self.request.clone(),
                    hook: self.hook.take(),
                    rejected: self.rejected.clone(),
                    panicked: self.panicked.clone(),
                };
                ServerHandshake::start(sock, capture, None).handshake()
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
            Err(HandshakeError::Failure(_)) if self.panicked.get() => Step::HookPanicked,
            Err(HandshakeError::Failure(_)) if self.rejected.get() => Step::Rejected,
            Err(HandshakeError::Failure(e)) => Step::Failed(e.to_string()),
        }
    }
}

/// The answer to a request that is not a valid WebSocket upgrade.
pub(crate) const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
