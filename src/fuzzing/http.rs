//! The HTTP parsers' targets: the request-scoped server's (heads, then bodies of either
//! framing, requests one after another on a connection) and the push port's (the WebSocket
//! upgrade, or a plain request in its place).

use super::input::{Input, cut};
use crate::conn::handshake::{Handshake, MAX_HEAD, Step};
use crate::edge::request::{Plain, classify};
use crate::http::Request;
use crate::http::parse::{ChunkedDecoder, Framing, Limits, head_step};

/// What the request-scoped server made of a connection's bytes, request by request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpItem {
    /// A whole request: method, target, headers and body.
    Request {
        /// `GET`, `POST` …
        method: String,
        /// The request target.
        uri: String,
        /// The headers, in order.
        headers: Vec<(String, String)>,
        /// The body, de-chunked.
        body: Vec<u8>,
    },
    /// Refused with this status; the connection closes.
    Refused(u16),
    /// The bytes ended inside a request (this many of them unconsumed).
    Incomplete(usize),
}

/// Runs the request-scoped server's target: limits and a cut pattern from the front of
/// `data`, the rest as what a client sends on one connection, parsed whole and parsed as cut
/// into reads — which must give the same requests. Panics if an invariant breaks.
pub fn http_request(data: &[u8]) {
    let mut input = Input::new(data);
    let limits = Limits {
        max_header_bytes: input.limit(),
        max_body_bytes: input.limit(),
    };
    let pattern = input.pattern();
    let stream = input.rest();
    let (h, b) = (limits.max_header_bytes, limits.max_body_bytes);
    let whole = parse_requests(&[stream], h, b);
    let pieces = parse_requests(&cut(stream, pattern), h, b);
    assert_eq!(
        whole,
        pieces,
        "the cut changed the requests: {:?} cut {pattern:?}",
        String::from_utf8_lossy(stream)
    );
    for item in &whole {
        if let HttpItem::Request { body, .. } = item {
            assert!(body.len() <= limits.max_body_bytes, "a body over the limit");
        }
    }
}

/// Parses the requests in `chunks` (the reads of one connection) as the request-scoped server
/// does: each head once its end has arrived, then its body, then the next request while the
/// connection is kept alive; under these limits of head and body size.
pub fn parse_requests(
    chunks: &[&[u8]],
    max_header_bytes: usize,
    max_body_bytes: usize,
) -> Vec<HttpItem> {
    let limits = Limits {
        max_header_bytes,
        max_body_bytes,
    };
    enum At {
        Head {
            scanned: usize,
        },
        Body(
            Box<crate::http::parse::Head>,
            Option<ChunkedDecoder>,
            Vec<u8>,
        ),
    }
    let mut items = Vec::new();
    let mut buf = Vec::new();
    let mut pos = 0;
    let mut at = At::Head { scanned: 0 };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let unread = &buf[pos..];
            match &mut at {
                At::Head { scanned } => match head_step(unread, *scanned, limits) {
                    Ok(Some(head)) => {
                        assert!(head.len <= limits.max_header_bytes, "a head over the limit");
                        let decoder = (head.framing == Framing::Chunked).then(ChunkedDecoder::new);
                        at = At::Body(Box::new(head), decoder, Vec::new());
                    }
                    Ok(None) => {
                        *scanned = unread.len();
                        break;
                    }
                    Err(reject) => {
                        items.push(HttpItem::Refused(reject.status()));
                        return items;
                    }
                },
                At::Body(head, decoder, body) => {
                    let input = &unread[head.len..];
                    let used = match (head.framing, decoder) {
                        (Framing::Empty, _) => Some(0),
                        (Framing::Length(n), _) if input.len() >= n => {
                            body.extend_from_slice(&input[..n]);
                            Some(n)
                        }
                        (Framing::Length(_), _) => None,
                        (Framing::Chunked, Some(d)) => match d.decode(input, body, limits) {
                            Ok(used) => used,
                            Err(reject) => {
                                items.push(HttpItem::Refused(reject.status()));
                                return items;
                            }
                        },
                        (Framing::Chunked, None) => unreachable!("a chunked body has a decoder"),
                    };
                    let Some(used) = used else { break };
                    pos += head.len + used;
                    let keep_alive = head.keep_alive;
                    let At::Body(head, _, body) =
                        std::mem::replace(&mut at, At::Head { scanned: 0 })
                    else {
                        unreachable!()
                    };
                    items.push(request_item(&head.request, body));
                    if !keep_alive || items.len() >= 64 {
                        return items;
                    }
                }
            }
        }
    }
    if pos < buf.len() || matches!(at, At::Body(..)) {
        items.push(HttpItem::Incomplete(buf.len() - pos));
    }
    items
}

fn request_item(request: &Request, body: Vec<u8>) -> HttpItem {
    HttpItem::Request {
        method: request.method().to_owned(),
        uri: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        body,
    }
}

/// What the push port made of the bytes a client sent before its connection opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortItem {
    /// Still waiting for the rest of the head.
    Pending,
    /// A valid upgrade: its target and the answer.
    Upgrade {
        /// The request target.
        uri: String,
        /// The answer's head (101).
        response: Vec<u8>,
    },
    /// A plain request to answer: method and target.
    Plain(String, String),
    /// An invalid upgrade, or garbage: 400.
    Failed,
    /// A plain request refused with this status.
    Refused(u16),
    /// A head over the limit: 431.
    TooLarge,
}

/// Runs the push port's target: a cut pattern from the front of `data`, the rest as what a
/// client sends before its connection opens, read whole and as cut into reads — which must
/// come to the same thing. Panics if an invariant breaks.
pub fn plain_request(data: &[u8]) {
    let mut input = Input::new(data);
    let pattern = input.pattern();
    let stream = input.rest();
    let whole = read_port(&[stream]);
    let pieces = read_port(&cut(stream, pattern));
    assert_eq!(
        whole,
        pieces,
        "the cut changed the outcome: {:?} cut {pattern:?}",
        String::from_utf8_lossy(stream)
    );
}

/// Feeds `chunks` to a push port's handshake as reads, and classifies the head once it is
/// done, as the core loop does.
pub fn read_port(chunks: &[&[u8]]) -> PortItem {
    let mut handshake = Handshake::new(None, std::sync::Arc::from([]), None);
    for chunk in chunks {
        let step = handshake.feed(chunk);
        match step {
            Step::Pending => {}
            Step::Done {
                request, response, ..
            } => {
                return PortItem::Upgrade {
                    uri: request.uri().to_owned(),
                    response,
                };
            }
            Step::NotUpgrade(head, _) => {
                return match classify(&head) {
                    Plain::Request(r) => {
                        assert!(r.header("upgrade").is_none());
                        PortItem::Plain(r.method().to_owned(), r.uri().to_owned())
                    }
                    Plain::BadUpgrade | Plain::Malformed(_) => PortItem::Failed,
                    Plain::Refused(status, _) => PortItem::Refused(status),
                };
            }
            Step::TooLarge => return PortItem::TooLarge,
            other => panic!("a handshake without a hook or a socket came to {other:?}"),
        }
    }
    let fed: usize = chunks.iter().map(|c| c.len()).sum();
    assert!(fed <= MAX_HEAD, "still pending past the limit");
    PortItem::Pending
}
