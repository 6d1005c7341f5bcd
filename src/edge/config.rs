//! The settings of plain HTTP on a WebSocket server's port.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::http::{Request, Response};

/// A user route: answers a plain request, or `None` to let the next step (the built-in paths,
/// then the static directory, then 404) answer it.
type Route = dyn Fn(&Request) -> Option<Response> + Send + Sync;

/// Plain HTTP requests on a WebSocket server's port: a `GET` that is not an upgrade (no
/// `Upgrade`, `Sec-WebSocket-Key` or `Connection: upgrade` header) is answered instead of
/// refused, so that a health check, a Prometheus scrape and a demo page
/// share the port with the WebSocket clients.
///
/// `PlainHttp::default()` and the setters, named after the fields; set it with
/// [`ServerSpec::plain_http`](crate::ServerSpec::plain_http). Only WebSocket servers read
/// it (framed TCP has no HTTP).
///
/// A request is answered in this order: the [`route`](PlainHttp::route), then `/metrics` and
/// `/health`, then a file of [`static_dir`](PlainHttp::static_dir), else 404; a method other
/// than `GET` or `HEAD` on a path that exists is 405. Every answer closes the connection
/// (`Connection: close`; no keep-alive). A request with a body, or with the lengths that
/// smuggle one (`Content-Length` with `Transfer-Encoding`, two different `Content-Length`s),
/// is refused with 400; a head over 64 KiB gets 431; a head not complete within
/// [`ServerConfig::handshake_timeout`](crate::ServerConfig::handshake_timeout) is dropped.
/// Each is counted ([`Stats::http_requests`](crate::Stats::http_requests),
/// [`Stats::http_refused`](crate::Stats::http_refused),
/// [`Stats::handshake_failures`](crate::Stats::handshake_failures)).
///
/// All of it runs on the core loop that accepted the connection, between its other work:
/// quick things only (a metrics render is; a route must be; a file is read whole, so keep
/// the directory to a few small files, a demo page and its scripts).
///
/// With everything off ([`PlainHttp::off`]) a plain request is answered 400 and counted as a
/// failed handshake, as a port that speaks only WebSocket does.
#[derive(Clone)]
#[non_exhaustive]
pub struct PlainHttp {
    /// Whether `GET /metrics` answers every server of the runtime's counters in the
    /// Prometheus text format (see the README's "Metrics and health"). They are readable by
    /// anyone who reaches the port: switch it off where that matters. Defaults to `true`.
    pub metrics: bool,
    /// Whether `GET /health` answers 200 while the runtime runs and 503 once its shutdown has
    /// begun (its drains included). Defaults to `true`.
    pub health: bool,
    /// A directory whose files are served (`/` and directories serve their `index.html`),
    /// each read whole, up to 8 MiB (a larger one answers 500).
    /// Paths with `..`, hidden names (a leading `.`), backslashes or NUL are refused (404),
    /// and so is a file that a symbolic link takes out of the directory. Defaults to `None`.
    pub static_dir: Option<PathBuf>,
    /// Answers plain requests before everything else; `None` passes on. Runs on the core loop
    /// (quick code only); a panic answers 500. Defaults to `None`.
    pub route: Option<Arc<Route>>,
}

impl Default for PlainHttp {
    fn default() -> Self {
        PlainHttp {
            metrics: true,
            health: true,
            static_dir: None,
            route: None,
        }
    }
}

impl fmt::Debug for PlainHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainHttp")
            .field("metrics", &self.metrics)
            .field("health", &self.health)
            .field("static_dir", &self.static_dir)
            .field("has_route", &self.route.is_some())
            .finish()
    }
}

impl PlainHttp {
    /// Nothing answered: every plain request gets 400, as on a port that speaks only
    /// WebSocket.
    pub fn off() -> Self {
        PlainHttp {
            metrics: false,
            health: false,
            static_dir: None,
            route: None,
        }
    }

    /// Sets [`metrics`](PlainHttp::metrics).
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Sets [`health`](PlainHttp::health).
    pub fn health(mut self, on: bool) -> Self {
        self.health = on;
        self
    }

    /// Sets [`static_dir`](PlainHttp::static_dir).
    pub fn static_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.static_dir = Some(dir.into());
        self
    }

    /// Sets [`route`](PlainHttp::route).
    pub fn route(
        mut self,
        route: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
    ) -> Self {
        self.route = Some(Arc::new(route));
        self
    }

    /// Whether any plain request is answered at all.
    pub(crate) fn is_on(&self) -> bool {
        self.metrics || self.health || self.static_dir.is_some() || self.route.is_some()
    }
}
