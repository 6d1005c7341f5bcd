//! A client held by a gateway, as a business process's core loop sees it: the id, the
//! upgrade request, the data the handler keeps on it here, and, once it is gone, the flag and
//! groups it had.

use std::collections::HashMap;

use super::handshake::HandshakeRequest;
use crate::id::ClientId;
use crate::registry::DataValue;

/// One client of a gateway, served by this business process.
#[derive(Debug)]
pub(crate) struct RemoteConn {
    pub(crate) id: ClientId,
    pub(crate) request: Option<Box<HandshakeRequest>>,
    /// What [`Context::set`](crate::Context::set) kept on it, in this process.
    pub(crate) data: HashMap<String, DataValue>,
    /// Set in `on_close`: the flag and groups it had when the gateway let it go.
    pub(crate) gone: Option<(Option<String>, Vec<String>)>,
    /// The handler asked to close it (once).
    pub(crate) closing: bool,
}

impl RemoteConn {
    pub(crate) fn new(id: ClientId) -> Self {
        RemoteConn {
            id,
            request: None,
            data: HashMap::new(),
            gone: None,
            closing: false,
        }
    }
}
