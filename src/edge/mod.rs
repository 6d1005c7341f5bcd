//! Plain HTTP on a WebSocket server's port: a request head that is not an upgrade is
//! answered — `/metrics`, `/health`, a user route, static files — instead of refused.
//!
//! The core loop reads the head as it reads a handshake (the same buffer, limit and deadline);
//! once it is complete and not a valid upgrade, [`answer`] turns it into the bytes to write,
//! and the connection closes behind them. Nothing here touches a socket.

mod config;
mod files;
mod metrics;
pub(crate) mod request;

use std::panic::{AssertUnwindSafe, catch_unwind};

use log::error;

use crate::http::write::{Framing, check, error_response, head};
use crate::http::{Request, Response};
use crate::shared::RuntimeShared;
pub use config::PlainHttp;
use request::{Plain, classify};

/// What became of a plain request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered (any status a route, a path or a method earns).
    Served,
    /// Refused for its framing or size (400, 431).
    Refused,
    /// Not a plain request: garbage or a broken upgrade, a failed handshake (400).
    Failed,
}

/// The answer to write, and what it was.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) bytes: Vec<u8>,
    pub(crate) outcome: Outcome,
    /// For the log.
    pub(crate) reason: &'static str,
}

/// Answers a complete request head that is not a valid upgrade.
pub(crate) fn answer(plain: &PlainHttp, runtime: &RuntimeShared, head_bytes: &[u8]) -> Answer {
    let (response, http10, head_only, outcome, reason) = match classify(head_bytes) {
        Plain::Request(request) => {
            let response = respond(plain, runtime, &request);
            let head_only = request.method() == "HEAD";
            let http10 = request.minor_version == 0;
            (
                response,
                http10,
                head_only,
                Outcome::Served,
                "plain request",
            )
        }
        Plain::BadUpgrade => {
            let response = error_response(400, "not a valid WebSocket upgrade");
            (
                response,
                false,
                false,
                Outcome::Failed,
                "not a valid upgrade",
            )
        }
        Plain::Malformed(why) => (error_response(400, why), false, false, Outcome::Failed, why),
        Plain::Refused(status, why) => (
            error_response(status, why),
            false,
            false,
            Outcome::Refused,
            why,
        ),
    };
    Answer {
        bytes: encode(response, http10, head_only),
        outcome,
        reason,
    }
}

/// The response to a plain request (see [`PlainHttp`] for the order).
fn respond(plain: &PlainHttp, runtime: &RuntimeShared, request: &Request) -> Response {
    if let Some(route) = &plain.route {
        match catch_unwind(AssertUnwindSafe(|| route(request))) {
            Ok(Some(response)) => return response,
            Ok(None) => {}
            Err(_) => {
                error!("a plain HTTP route panicked on {}", request.path());
                return error_response(500, "the route failed");
            }
        }
    }
    let path = request.path();
    let metrics = plain.metrics && path == "/metrics";
    let health = plain.health && path == "/health";
    let file = match &plain.static_dir {
        Some(dir) if !metrics && !health => files::resolve(dir, path),
        _ => None,
    };
    if !metrics && !health && file.is_none() {
        return error_response(404, "not found");
    }
    if !matches!(request.method(), "GET" | "HEAD") {
        return error_response(405, "only GET and HEAD").header("Allow", "GET, HEAD");
    }
    if metrics {
        Response::new(200)
            .header("Content-Type", metrics::CONTENT_TYPE)
            .header("Cache-Control", "no-store")
            .body(metrics::render(runtime))
    } else if health {
        let response = if runtime.is_leaving() {
            Response::new(503).body("shutting down\n")
        } else {
            Response::new(200).body("ok\n")
        };
        response
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Cache-Control", "no-store")
    } else {
        file.map_or_else(|| Response::new(404), |f| files::serve(&f))
    }
}

/// The bytes of a response that closes its connection.
fn encode(response: Response, http10: bool, head_only: bool) -> Vec<u8> {
    let response = match check(&response) {
        Ok(()) => response,
        Err(why) => {
            error!("a plain HTTP route answered what cannot be sent: {why}");
            error_response(500, "the route failed")
        }
    };
    let framing = Framing {
        keep_alive: false,
        http10,
        head_only,
    };
    let mut out = Vec::with_capacity(256 + response.body.len());
    if head(&mut out, &response, framing) {
        out.extend_from_slice(&response.body);
    }
    out
}
