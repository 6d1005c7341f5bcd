//! Sans-IO: what a complete request head on a WebSocket port is, once it turned out not to be
//! a valid upgrade — a plain request to answer, a broken upgrade, garbage, or a request
//! refused for how it is framed.

use crate::conn::handshake::MAX_HEAD;
use crate::http::Request;
use crate::http::parse::{Framing, Limits, Reject, parse_head};

/// What a head that is not a valid upgrade is.
#[derive(Debug)]
pub(crate) enum Plain {
    /// A plain request (no `Upgrade` header, no body): answer it.
    Request(Box<Request>),
    /// It asks for an upgrade, but not a valid one (a header missing, a wrong version): a
    /// failed handshake.
    BadUpgrade,
    /// Not an HTTP request head: a failed handshake.
    Malformed(&'static str),
    /// A plain request refused for its framing or size: this status, this reason.
    Refused(u16, &'static str),
}

/// Classifies `head`: the bytes a client sent up to (at least) the end of its request head.
pub(crate) fn classify(head: &[u8]) -> Plain {
    let limits = Limits {
        max_header_bytes: MAX_HEAD,
        // Any body is refused below, by its framing, whatever its length.
        max_body_bytes: usize::MAX,
    };
    let parsed = match parse_head(head, limits) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Plain::Malformed("incomplete request head"),
        Err(Reject::BadRequest("malformed request head")) => {
            return Plain::Malformed("malformed request head");
        }
        Err(Reject::HeaderTooLarge) => return Plain::Refused(431, "request head too large"),
        // Smuggling pairs, bad lengths, bad codings, a missing Host: refused as a whole.
        Err(reject) => return Plain::Refused(400, reject.reason()),
    };
    if asks_upgrade(&parsed.request) {
        return Plain::BadUpgrade;
    }
    if parsed.framing != Framing::Empty || parsed.expect_continue {
        return Plain::Refused(400, "a request on this port has no body");
    }
    Plain::Request(Box::new(parsed.request))
}

/// Whether a request means to be a WebSocket upgrade: an `Upgrade` header, a WebSocket key,
/// or `Connection: upgrade`. A client missing one of the others gets 400, not a page.
fn asks_upgrade(request: &Request) -> bool {
    request.headers().any(|(name, value)| {
        name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("sec-websocket-key")
            || (name.eq_ignore_ascii_case("connection")
                && value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(head: &str) -> String {
        match classify(head.as_bytes()) {
            Plain::Request(r) => format!("{} {}", r.method(), r.uri()),
            Plain::BadUpgrade => "upgrade".into(),
            Plain::Malformed(_) => "malformed".into(),
            Plain::Refused(status, _) => status.to_string(),
        }
    }

    #[test]
    fn plain_requests_and_refusals() {
        assert_eq!(
            kind("GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"),
            "GET /metrics"
        );
        assert_eq!(kind("GET /health HTTP/1.0\r\n\r\n"), "GET /health");
        assert_eq!(kind("POST /x HTTP/1.1\r\nHost: a\r\n\r\n"), "POST /x");
        let upgrade = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        assert_eq!(kind(upgrade), "upgrade");
        let half = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n";
        assert_eq!(kind(half), "upgrade");
        assert_eq!(kind("\x16\x03\x01\x02\x00"), "malformed");
        let te_cl = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\
                     Transfer-Encoding: chunked\r\n\r\n";
        assert_eq!(kind(te_cl), "400");
        let two_cl = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert_eq!(kind(two_cl), "400");
        let body = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(kind(body), "400");
        let chunked = "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(kind(chunked), "400");
        assert_eq!(kind("GET / HTTP/1.1\r\n\r\n"), "400", "no Host");
        let many: String = (0..200).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            kind(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
            "431"
        );
    }
}
