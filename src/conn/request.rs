//! What a handshake hook sees of an upgrade request, and how it refuses one.

/// The HTTP request that opened a WebSocket connection.
#[derive(Debug, Clone, Default)]
pub struct HandshakeRequest {
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, String)>,
}

impl HandshakeRequest {
    /// The request target as sent, e.g. `/chat?token=abc`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The path part of the target.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    /// The query part of the target, without `?`.
    pub fn query(&self) -> Option<&str> {
        self.uri.split_once('?').map(|(_, q)| q)
    }

    /// The first header of that name (case-insensitive), if it is valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

/// The answer to a refused WebSocket upgrade: an HTTP error status and a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Rejection {
    /// A rejection with this HTTP status (400..=599; anything else becomes 403) and no body.
    pub fn new(status: u16) -> Self {
        Rejection {
            status: if (400..=599).contains(&status) {
                status
            } else {
                403
            },
            body: String::new(),
        }
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401)
    }

    /// 403 Forbidden.
    pub fn forbidden() -> Self {
        Self::new(403)
    }

    /// Sets the response body.
    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.status
    }
}
