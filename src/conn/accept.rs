//! What an accepted WebSocket upgrade settles on ([`Accept`]: a flag, data, a subprotocol,
//! extra response headers), the reply a deferred handshake hook completes later
//! ([`HandshakeReply`]), and the choice of a subprotocol among those the client offered.

use std::any::Any;
use std::fmt;

use super::request::{HandshakeRequest, Rejection};
use crate::registry::DataValue;

/// What an accepted WebSocket upgrade settles on, returned by a handshake hook
/// ([`ServerSpec::on_handshake_accept`](crate::ServerSpec::on_handshake_accept)) or given to
/// [`HandshakeReply::accept`]. All of it is in place when `on_open` runs, and the flag and data
/// are visible to every thread's queries before the 101 answer leaves.
///
/// ```
/// use corepush::Accept;
///
/// let accept = Accept::new()
///     .flag("alice")
///     .data("role", String::from("admin"))
///     .subprotocol("chat.v2")
///     .header("X-Served-By", "edge-1");
/// assert_eq!(accept.flag_name(), Some("alice"));
/// ```
#[derive(Default)]
pub struct Accept {
    pub(crate) flag: Option<String>,
    pub(crate) data: Vec<(String, DataValue)>,
    pub(crate) subprotocol: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
}

impl fmt::Debug for Accept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept")
            .field("flag", &self.flag)
            .field(
                "data",
                &self
                    .data
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("subprotocol", &self.subprotocol)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Accept {
    /// Accepts the client with nothing settled: the same as a hook answering `Ok(())`.
    pub fn new() -> Self {
        Accept::default()
    }

    /// Binds the client to this flag (a user id) as it opens, as
    /// [`Context::bind`](crate::Context::bind) would.
    pub fn flag(mut self, flag: impl Into<String>) -> Self {
        self.flag = Some(flag.into());
        self
    }

    /// Keeps a value on the client as it opens, as [`Context::set`](crate::Context::set) would
    /// (read back with [`Context::get`](crate::Context::get) and the facade).
    pub fn data<T: Any + Send + Sync>(mut self, key: impl Into<String>, value: T) -> Self {
        self.data.push((key.into(), std::sync::Arc::new(value)));
        self
    }

    /// Answers with this subprotocol (`Sec-WebSocket-Protocol`). It wins over the server's
    /// [`subprotocols`](crate::ServerConfig::subprotocols); one the client did not offer is
    /// not sent (a warning is logged, and the server's own choice applies).
    pub fn subprotocol(mut self, protocol: impl Into<String>) -> Self {
        self.subprotocol = Some(protocol.into());
        self
    }

    /// Adds a header to the 101 answer. A name or value that is not valid HTTP, and the
    /// headers the upgrade itself needs (`Upgrade`, `Connection`, `Sec-WebSocket-*`), are left
    /// out with a warning.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The flag set with [`flag`](Accept::flag).
    pub fn flag_name(&self) -> Option<&str> {
        self.flag.as_deref()
    }
}

/// The answer a deferred handshake hook owes
/// ([`ServerSpec::on_handshake_deferred`](crate::ServerSpec::on_handshake_deferred)). It may
/// travel to any thread and be completed there, at once or later, by
/// [`accept`](HandshakeReply::accept) or [`reject`](HandshakeReply::reject); the answer
/// reaches the client's core loop through its mailbox.
///
/// Completed after the server's
/// [`handshake_timeout`](crate::ServerConfig::handshake_timeout), it does nothing: the client
/// was dropped at its deadline. Dropped without an answer, it refuses the client with
/// **500 Internal Server Error** (and a warning in the log).
pub struct HandshakeReply {
    complete: Option<Box<Complete>>,
}

/// Hands a deferred hook's answer to the client's core loop.
type Complete = dyn FnOnce(std::result::Result<Accept, Rejection>) + Send;

impl fmt::Debug for HandshakeReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeReply")
            .field("answered", &self.complete.is_none())
            .finish()
    }
}

impl HandshakeReply {
    /// A reply that hands its answer to `complete`, once.
    pub(crate) fn new(
        complete: impl FnOnce(std::result::Result<Accept, Rejection>) + Send + 'static,
    ) -> Self {
        HandshakeReply {
            complete: Some(Box::new(complete)),
        }
    }

    /// Accepts the client with what `accept` settles on.
    pub fn accept(mut self, accept: Accept) {
        if let Some(complete) = self.complete.take() {
            complete(Ok(accept));
        }
    }

    /// Refuses the client with this HTTP status and body.
    pub fn reject(mut self, rejection: Rejection) {
        if let Some(complete) = self.complete.take() {
            complete(Err(rejection));
        }
    }
}

impl Drop for HandshakeReply {
    fn drop(&mut self) {
        if let Some(complete) = self.complete.take() {
            log::warn!("a handshake reply was dropped unanswered; refusing the client (500)");
            complete(Err(Rejection::new(500).body("handshake not answered")));
        }
    }
}

/// The rarer facts about a connection.
#[derive(Debug, Default)]
pub(crate) struct Extras {
    /// The WebSocket subprotocol answered.
    pub(crate) subprotocol: Option<Box<str>>,
    /// The address a trusted proxy forwarded the client's request for.
    pub(crate) forwarded: Option<std::net::IpAddr>,
}

/// Decides whether a WebSocket upgrade is accepted, before the connection counts as open.
pub(crate) enum HandshakeHook {
    /// Answers on the core loop, at once.
    Now(Box<NowHook>),
    /// Gets a reply to complete later, from any thread.
    Later(Box<LaterHook>),
}

pub(crate) type NowHook =
    dyn Fn(&HandshakeRequest) -> std::result::Result<Accept, Rejection> + Send + Sync;
pub(crate) type LaterHook = dyn Fn(&HandshakeRequest, HandshakeReply) + Send + Sync;

impl fmt::Debug for HandshakeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeHook::Now(_) => "HandshakeHook::Now",
            HandshakeHook::Later(_) => "HandshakeHook::Later",
        })
    }
}

/// The subprotocols a client offered (`Sec-WebSocket-Protocol`, comma-separated, possibly
/// over several headers).
pub(crate) fn offered(request: &HandshakeRequest) -> impl Iterator<Item = &str> {
    request
        .headers()
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-protocol"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// The subprotocol to answer with: the hook's choice if the client offered it, else the first
/// of the server's (in its order of preference) that the client offered, else none.
pub(crate) fn choose(
    request: &HandshakeRequest,
    chosen: Option<&str>,
    server: &[String],
) -> Option<String> {
    if let Some(chosen) = chosen {
        if offered(request).any(|p| p == chosen) {
            return Some(chosen.to_owned());
        }
        log::warn!(
            "the handshake hook chose subprotocol {chosen:?}, which the client did not offer \
             (it offered {:?}); not sent",
            offered(request).collect::<Vec<_>>()
        );
    }
    server
        .iter()
        .find(|s| offered(request).any(|p| p == s.as_str()))
        .cloned()
}

/// Whether an application may add this header to a 101 answer.
pub(crate) fn is_own_header(name: &str) -> bool {
    let reserved = [
        "upgrade",
        "connection",
        "content-length",
        "transfer-encoding",
    ];
    !reserved.iter().any(|r| name.eq_ignore_ascii_case(r))
        && !name.to_ascii_lowercase().starts_with("sec-websocket-")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(protocols: &[&str]) -> HandshakeRequest {
        HandshakeRequest {
            uri: "/".into(),
            headers: protocols
                .iter()
                .map(|p| ("Sec-WebSocket-Protocol".to_owned(), (*p).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn the_servers_order_wins_among_offers() {
        let server = ["a".to_owned(), "b".to_owned()];
        assert_eq!(
            choose(&request(&["b, a"]), None, &server).as_deref(),
            Some("a")
        );
        assert_eq!(
            choose(&request(&["b", "c"]), None, &server).as_deref(),
            Some("b")
        );
        assert_eq!(choose(&request(&["c"]), None, &server), None);
        assert_eq!(choose(&request(&[]), None, &server), None);
    }

    #[test]
    fn a_hooks_choice_wins_if_offered() {
        let server = ["a".to_owned()];
        assert_eq!(
            choose(&request(&["a, b"]), Some("b"), &server).as_deref(),
            Some("b")
        );
        assert_eq!(
            choose(&request(&["a"]), Some("z"), &server).as_deref(),
            Some("a")
        );
        assert_eq!(choose(&request(&[" , ,"]), Some(""), &[]), None);
    }

    #[test]
    fn reserved_headers_stay_out() {
        assert!(is_own_header("X-Served-By"));
        assert!(!is_own_header("Sec-WebSocket-Accept"));
        assert!(!is_own_header("connection"));
    }

    #[test]
    fn a_dropped_reply_refuses_with_500() {
        let (tx, rx) = crossbeam_channel::unbounded();
        drop(HandshakeReply::new(move |answer| {
            let _ = tx.send(answer.err().map(|r| r.status()));
        }));
        assert_eq!(rx.recv().ok(), Some(Some(500)));
    }
}
