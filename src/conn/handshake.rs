//! The WebSocket upgrade over a non-blocking socket: the request head is read as it arrives
//! and parsed and checked with tungstenite's server handshake functions; the answer is
//! *returned*, not written. The core loop opens the connection first — registers it and runs
//! `on_open` — and queues the 101 ahead of anything `on_open` sends, so a client that holds
//! its 101 is already counted, bound and reachable.

use std::fmt;
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use log::warn;
use tungstenite::handshake::machine::TryParse;
use tungstenite::handshake::server::{Request, Response, create_response, write_response};
use tungstenite::http::{HeaderName, HeaderValue};

use super::accept::{Accept, HandshakeHook, choose, is_own_header};
use super::extension::{self, Agreement};
pub(crate) use super::request::{HandshakeRequest, Rejection};
use crate::compression::DeflateConfig;

/// The longest request head accepted (tungstenite's own limit).
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Bytes read per call while the head is incomplete.
const READ_CHUNK: usize = 4096;

/// A handshake in progress: the bytes of the request head so far.
pub(crate) struct Handshake {
    buf: Vec<u8>,
    hook: Option<Arc<HandshakeHook>>,
    /// The server's subprotocols, in its order of preference.
    subprotocols: Arc<[String]>,
    /// A complete request waiting for a deferred hook's answer.
    parked: Option<Box<Parked>>,
    /// permessage-deflate, where the server offers it.
    deflate: Option<DeflateConfig>,
}

/// A request whose hook answers later: what the answer needs to be written.
struct Parked {
    request: Box<HandshakeRequest>,
    response: Response,
    rest: Vec<u8>,
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("buffered", &self.buf.len())
            .field("parked", &self.parked.is_some())
            .finish()
    }
}

/// What a step of the handshake came to.
#[derive(Debug)]
pub(crate) enum Step {
    /// Waiting for more of the request.
    Pending,
    /// Accepted: the request, the 101 answer to queue first, any bytes the client sent
    /// after the request (its first frames), what the hook settled on (with the
    /// subprotocol answered), and the permessage-deflate agreed on, if any.
    Done {
        request: Box<HandshakeRequest>,
        response: Vec<u8>,
        rest: Vec<u8>,
        accept: Box<Accept>,
        deflate: Option<Box<Agreement>>,
    },
    /// The request is complete and this deferred hook decides: the caller runs it with the
    /// [`parked_request`](Handshake::parked_request) and a reply whose answer comes back
    /// through [`complete`](Handshake::complete).
    Deferred(Arc<HandshakeHook>),
    /// The handshake hook refused it: the answer to write before closing.
    Rejected(Vec<u8>),
    /// The handshake hook panicked: a 500 answer to write before closing.
    HookPanicked(Vec<u8>),
    /// The request head (or what stands in its place) is not a valid upgrade, for this
    /// reason: it may be a plain HTTP request, else answer [`BAD_REQUEST`] and drop it. The
    /// bytes read so far come with it.
    NotUpgrade(Vec<u8>, String),
    /// The head grew past [`MAX_HEAD`] bytes unfinished: answer [`HEAD_TOO_LARGE`], drop it.
    TooLarge,
    /// The peer went away or the socket failed: drop it.
    Failed(String),
}

impl Handshake {
    pub(crate) fn new(
        hook: Option<Arc<HandshakeHook>>,
        subprotocols: Arc<[String]>,
        deflate: Option<DeflateConfig>,
    ) -> Self {
        Handshake {
            buf: Vec::new(),
            hook,
            subprotocols,
            parked: None,
            deflate,
        }
    }

    /// The request waiting for a deferred hook's answer.
    pub(crate) fn parked_request(&self) -> Option<&HandshakeRequest> {
        self.parked.as_ref().map(|p| &*p.request)
    }

    /// Takes a deferred hook's answer: [`Step::Done`] or [`Step::Rejected`] (or
    /// [`Step::Pending`] if no answer was awaited).
    pub(crate) fn complete(&mut self, answer: std::result::Result<Accept, Rejection>) -> Step {
        let Some(parked) = self.parked.take() else {
            return Step::Pending;
        };
        let Parked {
            request,
            response,
            rest,
        } = *parked;
        match answer {
            Ok(accept) => self.respond(request, response, accept, rest),
            Err(rejection) => Step::Rejected(refusal(&rejection)),
        }
    }

    /// Reads what the socket has (decrypted, under TLS) and advances the handshake as far as
    /// it allows.
    pub(crate) fn step(&mut self, socket: impl Read) -> Step {
        // Waiting for a hook: what the client sends meanwhile stays in the socket, read once
        // the connection opens.
        if self.parked.is_some() {
            return Step::Pending;
        }
        let mut socket = socket;
        loop {
            let at = self.buf.len();
            self.buf.resize(at + READ_CHUNK, 0);
            let read = socket.read(&mut self.buf[at..]);
            let n = match read {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(at);
                    match e.kind() {
                        io::ErrorKind::WouldBlock => return Step::Pending,
                        io::ErrorKind::Interrupted => continue,
                        _ => return Step::Failed(format!("read failed: {e}")),
                    }
                }
            };
            self.buf.truncate(at + n);
            if n == 0 {
                return Step::Failed("the client closed during the handshake".into());
            }
            match self.advance() {
                Step::Pending => {}
                step => return step,
            }
        }
    }

    /// Takes bytes as if read from the socket (sans-IO, for the fuzz targets): what the
    /// handshake came to once they are in.
    #[cfg(feature = "fuzzing")]
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Step {
        self.buf.extend_from_slice(bytes);
        self.advance()
    }

    /// Looks at the bytes read so far: only the first [`MAX_HEAD`] of them, so that how they
    /// were cut into reads never changes the outcome.
    fn advance(&mut self) -> Step {
        let window = &self.buf[..self.buf.len().min(MAX_HEAD)];
        match Request::try_parse(window) {
            Ok(Some((size, request))) => self.answer(size, &request),
            Ok(None) if self.buf.len() > MAX_HEAD => Step::TooLarge,
            Ok(None) => Step::Pending,
            Err(e) => Step::NotUpgrade(std::mem::take(&mut self.buf), e.to_string()),
        }
    }

    fn answer(&mut self, size: usize, request: &Request) -> Step {
        let response = match create_response(request) {
            Ok(r) => r,
            Err(e) => return Step::NotUpgrade(std::mem::take(&mut self.buf), e.to_string()),
        };
        let headers = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let captured = HandshakeRequest {
            uri: request.uri().to_string(),
            headers,
        };
        let rest = self.buf.split_off(size);
        self.buf = Vec::new();
        let hook = self.hook.take();
        let accept = match hook.as_deref() {
            None => Accept::new(),
            // The hook is application code: a panic refuses this client (500) instead of
            // unwinding through the core loop.
            Some(HandshakeHook::Now(hook)) => {
                match catch_unwind(AssertUnwindSafe(|| hook(&captured))) {
                    Ok(Ok(accept)) => accept,
                    Ok(Err(rejection)) => return Step::Rejected(refusal(&rejection)),
                    Err(_) => return Step::HookPanicked(refusal(&Rejection::new(500))),
                }
            }
            Some(HandshakeHook::Later(_)) => {
                self.parked = Some(Box::new(Parked {
                    request: Box::new(captured),
                    response,
                    rest,
                }));
                return match &hook {
                    Some(hook) => Step::Deferred(Arc::clone(hook)),
                    None => Step::Failed("the handshake hook is gone".into()),
                };
            }
        };
        self.respond(Box::new(captured), response, accept, rest)
    }

    /// The 101 answer for an accepted request: the subprotocol chosen and the hook's headers.
    fn respond(
        &mut self,
        request: Box<HandshakeRequest>,
        mut response: Response,
        mut accept: Accept,
        rest: Vec<u8>,
    ) -> Step {
        accept.subprotocol = choose(&request, accept.subprotocol.as_deref(), &self.subprotocols);
        let deflate = self.deflate.as_ref().and_then(|config| {
            let offers = request
                .headers
                .iter()
                .filter(|(name, _)| name == extension::HEADER);
            extension::negotiate(offers.map(|(_, value)| value.as_str()), config)
        });
        let headers = response.headers_mut();
        if let Some(agreed) = &deflate {
            // Made of fixed words only: always a valid header value.
            if let Ok(value) = HeaderValue::from_str(&agreed.answer) {
                headers.insert(extension::HEADER, value);
            }
        }
        if let Some(protocol) = accept.subprotocol.as_deref() {
            // Offered by the client, so already a valid header value; checked all the same.
            if let Ok(value) = HeaderValue::from_str(protocol) {
                headers.insert("sec-websocket-protocol", value);
            }
        }
        for (name, value) in std::mem::take(&mut accept.headers) {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(n), Ok(v)) if is_own_header(&name) => {
                    headers.append(n, v);
                }
                _ => warn!("the handshake hook's header {name:?} is left out of the answer"),
            }
        }
        let mut head = Vec::with_capacity(160);
        if let Err(e) = write_response(&mut head, &response) {
            return Step::Failed(e.to_string());
        }
        Step::Done {
            request,
            response: head,
            rest,
            accept: Box::new(accept),
            deflate: deflate.map(Box::new),
        }
    }
}

/// The HTTP answer to a refused upgrade.
fn refusal(rejection: &Rejection) -> Vec<u8> {
    let status = tungstenite::http::StatusCode::from_u16(rejection.status)
        .unwrap_or(tungstenite::http::StatusCode::FORBIDDEN);
    format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{}",
        rejection.body.len(),
        rejection.body
    )
    .into_bytes()
}

/// The answer to a request that is not a valid WebSocket upgrade.
pub(crate) const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// The answer to a request head over [`MAX_HEAD`].
pub(crate) const HEAD_TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// The answer to an upgrade while the runtime shuts down.
pub(crate) const SHUTTING_DOWN: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
