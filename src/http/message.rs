//! What a request handler sees and returns: [`Request`], [`Response`], [`RequestContext`].

use std::any::Any;
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;

use serde::Serialize;

use super::scope::own_server;
use crate::facade::Server;

/// Answers the requests of an [`HttpServer`](crate::HttpServer): one instance shared by every
/// pool thread, so `&self`. A closure `Fn(&Request, &mut RequestContext) -> Response` is one.
///
/// A panic in `handle` is caught: the client gets a 500 and the thread serves on.
pub trait RequestHandler: Send + Sync + 'static {
    /// Answers one request. `ctx` holds the request-scoped push facade and per-request data.
    fn handle(&self, request: &Request, ctx: &mut RequestContext) -> Response;
}

impl<F> RequestHandler for F
where
    F: Fn(&Request, &mut RequestContext) -> Response + Send + Sync + 'static,
{
    fn handle(&self, request: &Request, ctx: &mut RequestContext) -> Response {
        self(request, ctx)
    }
}

/// One HTTP/1.x request, with its whole body.
///
/// The head is kept as one string with the positions of its parts, so a request costs a few
/// allocations however many headers it has. Header values that are not UTF-8 are converted
/// lossily.
pub struct Request {
    pub(crate) text: String,
    pub(crate) method: Range<usize>,
    pub(crate) uri: Range<usize>,
    pub(crate) headers: Vec<(Range<usize>, Range<usize>)>,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(crate) minor_version: u8,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The method, e.g. `GET`.
    pub fn method(&self) -> &str {
        &self.text[self.method.clone()]
    }

    /// The request target as sent, e.g. `/hello?name=x`.
    pub fn uri(&self) -> &str {
        &self.text[self.uri.clone()]
    }

    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        let uri = self.uri();
        uri.split_once('?').map_or(uri, |(p, _)| p)
    }

    /// The query part of the target, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri().split_once('?').map(|(_, q)| q)
    }

    /// The first query parameter of that name, percent-decoded (`+` is a space), if any.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k) == name).then(|| percent_decode(v).into_owned())
        })
    }

    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub fn version(&self) -> &'static str {
        if self.minor_version == 0 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        }
    }

    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Every header as `(name, value)`, in order.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|(k, v)| (&self.text[k.clone()], &self.text[v.clone()]))
    }

    /// The body (empty when there is none), de-chunked.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text, if it is UTF-8.
    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method())
            .field("uri", &self.uri())
            .field("version", &self.version())
            .field("headers", &self.headers().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Decodes `%XX` escapes and `+`; malformed escapes are kept as they are.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// What a handler answers: a status, headers and a body.
///
/// The server adds `Content-Length`, `Date` and `Connection` itself; a handler's own
/// `Content-Length` and `Transfer-Encoding` headers are ignored, and a `Connection: close`
/// closes the connection after this response. A header name or value that cannot be sent
/// (a control character, a name that is not a token) turns the response into a 500.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The status code, 200 to 999.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body. Not sent for `HEAD` requests and 204 or 304 answers.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with this status, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A 200 with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Self {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(body.into())
    }

    /// A 200 with `value` encoded as JSON (`application/json`). A value that cannot be encoded
    /// (a map with non-string keys, a failing `Serialize`) gives a 500 and an error log line.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200)
                .header("Content-Type", "application/json")
                .body(body),
            Err(e) => {
                log::error!("response not encodable as JSON: {e}");
                Response::new(500)
            }
        }
    }

    /// Sets [`status`](Response::status).
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`body`](Response::body).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// The request-scoped context handed to a [`RequestHandler`] with each request (imi's
/// `RequestContext`): the push facade named after the HTTP server, and typed per-request data
/// that is dropped when the response has been written.
pub struct RequestContext {
    /// The HTTP server's own handle, on the Fpm backend.
    own: Server,
    /// What [`server`](Self::server) answers, looked up on its first call.
    server: OnceCell<Server>,
    peer_addr: SocketAddr,
    data: HashMap<String, Box<dyn Any>>,
}

impl RequestContext {
    pub(crate) fn new(own: Server, peer_addr: SocketAddr) -> Self {
        RequestContext {
            own,
            server: OnceCell::new(),
            peer_addr,
            data: HashMap::new(),
        }
    }

    /// The push facade named after the HTTP server ([`HttpConfig::name`](crate::HttpConfig::name)),
    /// as [`get_server`](crate::get_server) with no name answers it here: the push server of
    /// that name if one runs in this process, so the request pushes to its clients; else the
    /// HTTP server's own handle on the Fpm backend, where every send answers 0, `exists` false
    /// and every list is empty, so code written for the push server runs unchanged. Looked up
    /// once per request.
    pub fn server(&self) -> &Server {
        self.server.get_or_init(|| own_server(&self.own))
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// Stores a value for the rest of this request.
    pub fn set<T: Any>(&mut self, key: &str, value: T) {
        self.data.insert(key.to_owned(), Box::new(value));
    }

    /// Reads a value stored for this request, if it is there and of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.data.get(key)?.downcast_ref::<T>().cloned()
    }

    /// Removes a stored value; returns whether one was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.data.remove(key).is_some()
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("server", &self.own.name())
            .field("peer_addr", &self.peer_addr)
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str) -> Request {
        let text = format!("GET{uri}");
        Request {
            method: 0..3,
            uri: 3..text.len(),
            text,
            headers: Vec::new(),
            minor_version: 1,
            body: Vec::new(),
        }
    }

    #[test]
    fn path_query_and_params() {
        let r = request("/hello?name=a%20b+c&x&name=second&bad=%zz%4");
        assert_eq!(r.path(), "/hello");
        assert_eq!(r.query(), Some("name=a%20b+c&x&name=second&bad=%zz%4"));
        assert_eq!(r.query_param("name").as_deref(), Some("a b c"));
        assert_eq!(r.query_param("x").as_deref(), Some(""));
        assert_eq!(r.query_param("bad").as_deref(), Some("%zz%4"));
        assert_eq!(r.query_param("missing"), None);
        let r = request("/plain");
        assert_eq!((r.path(), r.query()), ("/plain", None));
        assert_eq!(r.query_param("name"), None);
        assert_eq!(percent_decode("%E2%82%AC%ff"), "€\u{fffd}");
    }

    #[test]
    fn context_data_is_typed() {
        let mut ctx = RequestContext::new(Server::fpm("t"), "127.0.0.1:1".parse().unwrap());
        ctx.set("n", 5u32);
        assert_eq!(ctx.get::<u32>("n"), Some(5));
        assert_eq!(ctx.get::<u64>("n"), None);
        assert!(ctx.remove("n"));
        assert!(!ctx.remove("n"));
        assert_eq!(ctx.server().name(), "t");
    }
}
