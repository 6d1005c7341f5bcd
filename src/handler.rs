//! The application's side: the [`Handler`] trait and the [`Context`] of a connection.

use std::any::Any;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Message;
use crate::conn::ConnIo;
use crate::conn::handshake::HandshakeRequest;
use crate::error::{Error, Result};
use crate::facade::Server;
use crate::id::{ClientId, WorkerId};
use crate::parser::{DataParser, encode_with};
use crate::shared::ServerShared;
use crate::target::Raw;

/// The application logic of one server. The runtime builds one handler per core loop (with
/// the factory given to [`ServerConfig::handler`](crate::ServerConfig::handler)), and calls it
/// only from that core loop's thread: `&mut self`, no locks, no `Send` needed.
///
/// Every method has a default except [`on_message`](Handler::on_message).
pub trait Handler: 'static {
    /// A client connected (for WebSocket: after its handshake completed).
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// A complete message arrived from the client.
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>);

    /// The connection is closing (by the client, the server, an error or shutdown). Its flag,
    /// groups and data are still readable here and released right after; sends are ignored.
    fn on_close(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// A worker message ([`Server::send_message`]) whose action has no callback registered
    /// with [`ServerSpec::action`](crate::ServerSpec::action). Defaults to logging it.
    fn on_worker_message(&mut self, ctx: &mut WorkerContext<'_>, message: &WorkerMessage<'_>) {
        log::debug!(
            "core loop {}: no callback for worker message action {:?}",
            ctx.worker(),
            message.action()
        );
    }

    /// A raw worker message ([`Server::send_message_raw`]). Defaults to logging it.
    fn on_worker_message_raw(&mut self, ctx: &mut WorkerContext<'_>, data: &[u8]) {
        log::debug!(
            "core loop {}: raw worker message of {} bytes ignored",
            ctx.worker(),
            data.len()
        );
    }
}

/// The connection a handler call is about, with the calls imi makes on "the current
/// connection": send to it, bind a flag, join groups, keep data on it, close it.
pub struct Context<'a> {
    pub(crate) io: &'a mut ConnIo,
    pub(crate) shared: &'a ServerShared,
    pub(crate) server: &'a Server,
    pub(crate) worker: WorkerId,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("client_id", &self.io.id)
            .field("worker", &self.worker)
            .field("server", &self.shared.config.name)
            .finish()
    }
}

impl Context<'_> {
    /// This connection's id.
    pub fn client_id(&self) -> ClientId {
        self.io.id
    }

    /// The core loop that owns this connection.
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// The facade of this connection's server, to push to others.
    pub fn server(&self) -> &Server {
        self.server
    }

    /// The WebSocket upgrade request (path, query, headers): in `on_open`, and later only with
    /// [`ServerConfig::keep_request`](crate::ServerConfig::keep_request). `None` on TCP servers.
    pub fn request(&self) -> Option<&HandshakeRequest> {
        self.io.request.as_deref()
    }

    /// Encodes `data` with the server's parser and queues it to this connection.
    /// Ignored once the connection is closing.
    pub fn send<T: Serialize + ?Sized>(&mut self, data: &T) -> Result<()> {
        let parser = &*self.shared.config.parser;
        let bytes = encode_with(parser, data)?;
        self.io.queue_payload(
            parser.is_text(),
            &bytes,
            self.shared.config.max_outbound_bytes,
        )
    }

    /// Queues bytes or text as they are to this connection. Ignored once it is closing.
    pub fn send_raw<'r>(&mut self, raw: impl Into<Raw<'r>>) -> Result<()> {
        let raw = raw.into();
        let limit = self.shared.config.max_outbound_bytes;
        self.io.queue_payload(raw.is_text(), raw.as_bytes(), limit)
    }

    /// Binds this connection to a flag (a user id), replacing any flag it had. Several
    /// connections may share a flag.
    pub fn bind(&mut self, flag: &str) {
        self.shared.registry.bind(self.io.id, flag, false);
    }

    /// Binds the flag only if no other connection holds it. Returns whether it is bound.
    pub fn bind_nx(&mut self, flag: &str) -> bool {
        self.shared.registry.bind(self.io.id, flag, true)
    }

    /// Unbinds this connection's flag; returns the flag it held.
    pub fn unbind(&mut self) -> Option<String> {
        self.shared
            .registry
            .unbind(self.io.id)
            .map(|f| f.to_string())
    }

    /// The flag this connection is bound to.
    pub fn flag(&self) -> Option<String> {
        self.shared
            .registry
            .flag_of(self.io.id, true)
            .map(|f| f.to_string())
    }

    /// Joins a group (a room). False if this connection is already in
    /// [`max_groups_per_connection`](crate::ServerConfig::max_groups_per_connection) groups.
    pub fn join(&mut self, group: &str) -> bool {
        self.shared.registry.join(
            self.io.id,
            group,
            self.shared.config.max_groups_per_connection,
        )
    }

    /// Leaves a group; returns whether this connection was a member.
    pub fn leave(&mut self, group: &str) -> bool {
        self.shared.registry.leave(self.io.id, group)
    }

    /// The groups this connection is in.
    pub fn groups(&self) -> Vec<String> {
        self.shared
            .registry
            .groups_of(self.io.id, true)
            .iter()
            .map(|g| g.to_string())
            .collect()
    }

    /// Stores a value on this connection (readable through the facade too).
    pub fn set<T: Any + Send + Sync>(&mut self, key: &str, value: T) {
        self.shared
            .registry
            .set_data(self.io.id, key, Arc::new(value));
    }

    /// Reads a value stored on this connection, if it is there and of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        self.shared
            .registry
            .data(self.io.id, key, true)
            .and_then(|v| v.downcast_ref::<T>().cloned())
    }

    /// Removes a stored value; returns whether one was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.shared.registry.remove_data(self.io.id, key)
    }

    /// Closes this connection (code 1000) once what is queued has been written.
    pub fn close(&mut self) {
        self.close_with(1000, "");
    }

    /// Closes this connection with a WebSocket close code and reason (ignored on TCP).
    pub fn close_with(&mut self, code: u16, reason: &str) {
        if self.io.close_request.is_none() {
            self.io.close_request = Some((code, reason.to_owned()));
        }
    }
}

/// The core loop a worker message is delivered on.
pub struct WorkerContext<'a> {
    pub(crate) server: &'a Server,
    pub(crate) worker: WorkerId,
}

impl std::fmt::Debug for WorkerContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("worker", &self.worker)
            .field("server", &self.server.name())
            .finish()
    }
}

impl WorkerContext<'_> {
    /// The core loop running this callback.
    pub fn worker(&self) -> WorkerId {
        self.worker
    }

    /// The server's facade.
    pub fn server(&self) -> &Server {
        self.server
    }

    /// The facade confined to this core loop's connections.
    pub fn this_worker(&self) -> Server {
        self.server.worker(self.worker)
    }
}

/// A message from [`Server::send_message`].
#[derive(Debug, Clone, Copy)]
pub struct WorkerMessage<'a> {
    pub(crate) action: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) parser: &'a dyn DataParser,
}

impl<'a> WorkerMessage<'a> {
    /// The action name.
    pub fn action(&self) -> &'a str {
        self.action
    }

    /// The encoded data.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Decodes the data with the server's parser.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        if self.parser.is_json() {
            serde_json::from_slice(self.data).map_err(Error::from)
        } else {
            serde_json::from_value(self.parser.decode(self.data)?).map_err(Error::from)
        }
    }
}
