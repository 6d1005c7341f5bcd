//! The application's side: the [`Handler`] trait and the [`Context`] of a connection.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Message;
use crate::conn::ConnIo;
use crate::conn::handshake::HandshakeRequest;
use crate::conn::remote::RemoteConn;
use crate::error::{Error, Result};
use crate::facade::Server;
use crate::id::{ClientId, WorkerId};
use crate::parser::{DataParser, encode_with};
use crate::shared::ServerShared;
use crate::target::Raw;

mod history;
mod restore;

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

    /// This connection took over the context of closed connection `from` (its flag, groups
    /// and data) through [`Context::restore`] or [`Server::restore`]. Called on the
    /// connection's core loop after the call that restored it returned — possibly before the
    /// closed connection's own `on_close` has run on its core loop. Defaults to nothing.
    fn on_restore(&mut self, ctx: &mut Context<'_>, from: ClientId) {
        let _ = (ctx, from);
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
///
/// The same calls work in a business process behind a gateway
/// ([`BackendConfig::Gateway`](crate::BackendConfig::Gateway)), where the connection is held
/// by the gateway: sends, closes, flags and groups go to the gateway that holds it (in call
/// order, with the handler's other pushes), and the calls that answer wait for the gateway's
/// answer (a business process's core loops hold no connections, so they may). Data kept with
/// [`set`](Context::set) stays in the business process, beside the handler: a typed value does
/// not cross the network (use [`Cluster::set_data`](crate::Cluster::set_data) for JSON on the
/// gateway).
///
/// ```
/// use corepush::{Context, Handler, Message};
///
/// struct Rooms;
///
/// impl Handler for Rooms {
///     fn on_open(&mut self, ctx: &mut Context<'_>) {
///         // The user from the upgrade request's query, e.g. `/ws?user=alice`.
///         let user = ctx
///             .request()
///             .and_then(|r| r.query())
///             .and_then(|q| q.strip_prefix("user="))
///             .map(str::to_owned);
///         if let Some(user) = user {
///             ctx.bind(&user);
///             ctx.set("user", user);
///         }
///     }
///
///     fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
///         match message.as_text() {
///             Some(room) if room.starts_with("join ") => {
///                 let joined = ctx.join(&room[5..]);
///                 let _ = ctx.send(&serde_json::json!({ "joined": joined }));
///             }
///             Some("bye") => ctx.close(),
///             _ => {
///                 let user: Option<String> = ctx.get("user");
///                 let _ = ctx.send(&serde_json::json!({ "from": user, "echo": message.as_text() }));
///             }
///         }
///     }
/// }
/// ```
pub struct Context<'a> {
    pub(crate) conn: Conn<'a>,
    pub(crate) shared: &'a ServerShared,
    pub(crate) server: &'a Server,
    pub(crate) worker: WorkerId,
}

/// Where the connection of a [`Context`] is.
pub(crate) enum Conn<'a> {
    /// Owned by this core loop.
    Local(&'a mut ConnIo),
    /// Held by a gateway; this business process serves it.
    Remote(&'a mut RemoteConn),
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("client_id", &self.client_id())
            .field("worker", &self.worker)
            .field("server", &self.shared.config.name)
            .field("remote", &matches!(self.conn, Conn::Remote(_)))
            .finish()
    }
}

impl<'a> Context<'a> {
    pub(crate) fn local(
        io: &'a mut ConnIo,
        shared: &'a ServerShared,
        server: &'a Server,
        worker: WorkerId,
    ) -> Self {
        Context {
            conn: Conn::Local(io),
            shared,
            server,
            worker,
        }
    }

    pub(crate) fn remote(
        conn: &'a mut RemoteConn,
        shared: &'a ServerShared,
        server: &'a Server,
        worker: WorkerId,
    ) -> Self {
        Context {
            conn: Conn::Remote(conn),
            shared,
            server,
            worker,
        }
    }
}

impl Context<'_> {
    /// This connection's id.
    pub fn client_id(&self) -> ClientId {
        match &self.conn {
            Conn::Local(io) => io.id,
            Conn::Remote(rc) => rc.id,
        }
    }

    /// The core loop running this handler call (for a local connection, the one that owns
    /// it).
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
        match &self.conn {
            Conn::Local(io) => io.request.as_deref(),
            Conn::Remote(rc) => rc.request.as_deref(),
        }
    }

    /// The WebSocket subprotocol the upgrade answered with (chosen by a handshake hook or from
    /// [`ServerConfig::subprotocols`](crate::ServerConfig::subprotocols)), if any. `None`
    /// on TCP servers, and behind a gateway (the gateway does not forward it).
    pub fn subprotocol(&self) -> Option<&str> {
        match &self.conn {
            Conn::Local(io) => io.extras.as_ref()?.subprotocol.as_deref(),
            Conn::Remote(_) => None,
        }
    }

    /// The address of the socket's peer: the client, or the proxy it came through. Read from
    /// the socket on each call (nothing is kept per connection). `None` if the socket no
    /// longer knows it (the peer is gone), and behind a gateway (the gateway does not forward
    /// it).
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.conn {
            Conn::Local(io) => io.socket.peer_addr().ok(),
            Conn::Remote(_) => None,
        }
    }

    /// The client's address: when the peer is one of the server's
    /// [`trusted_proxies`](crate::ServerConfig::trusted_proxies), the address the proxy
    /// forwarded the upgrade for (`Forwarded: for=`, else `X-Forwarded-For`: the nearest
    /// hop that is not itself a trusted proxy); otherwise the peer's own address. `None` where
    /// [`peer_addr`](Context::peer_addr) is.
    pub fn client_addr(&self) -> Option<IpAddr> {
        match &self.conn {
            Conn::Local(io) => io
                .extras
                .as_ref()
                .and_then(|e| e.forwarded)
                .or_else(|| self.peer_addr().map(|a| a.ip())),
            Conn::Remote(_) => None,
        }
    }

    /// Whether the connection is held by a gateway (this is a business process).
    pub fn is_remote(&self) -> bool {
        matches!(self.conn, Conn::Remote(_))
    }

    /// Encodes `data` with the server's parser and queues it to this connection.
    /// Ignored once the connection is closing.
    pub fn send<T: Serialize + ?Sized>(&mut self, data: &T) -> Result<()> {
        let parser = &*self.shared.config.parser;
        let bytes = encode_with(parser, data)?;
        self.send_bytes(parser.is_text(), &bytes)
    }

    /// Queues bytes or text as they are to this connection. Ignored once it is closing.
    pub fn send_raw<'r>(&mut self, raw: impl Into<Raw<'r>>) -> Result<()> {
        let raw = raw.into();
        self.send_bytes(raw.is_text(), raw.as_bytes())
    }

    fn send_bytes(&mut self, is_text: bool, bytes: &[u8]) -> Result<()> {
        match &mut self.conn {
            Conn::Local(io) => {
                io.queue_payload(is_text, bytes, self.shared.config.max_outbound_bytes)
            }
            Conn::Remote(rc) => {
                if rc.gone.is_some() || rc.closing {
                    return Ok(());
                }
                let raw = if is_text {
                    Raw::text(
                        std::str::from_utf8(bytes)
                            .map_err(|_| Error::Encode("text that is not UTF-8".into()))?,
                    )
                } else {
                    Raw::binary(bytes)
                };
                self.server.send_raw(raw, rc.id).map(drop)
            }
        }
    }

    /// Binds this connection to a flag (a user id), replacing any flag it had. Several
    /// connections may share a flag.
    pub fn bind(&mut self, flag: &str) {
        match &self.conn {
            Conn::Local(io) => {
                self.shared.registry.bind(io.id, flag, false);
            }
            Conn::Remote(rc) if rc.gone.is_none() => {
                let _ = self.server.cluster().bind(rc.id, flag);
            }
            Conn::Remote(_) => {}
        }
    }

    /// Binds the flag only if no other connection holds it. Returns whether it is bound.
    pub fn bind_nx(&mut self, flag: &str) -> bool {
        match &self.conn {
            Conn::Local(io) => self.shared.registry.bind(io.id, flag, true),
            Conn::Remote(rc) if rc.gone.is_none() => self
                .server
                .cluster()
                .bind_nx(rc.id, flag)
                .is_ok_and(|a| a.value),
            Conn::Remote(_) => false,
        }
    }

    /// Unbinds this connection's flag; returns the flag it held.
    pub fn unbind(&mut self) -> Option<String> {
        match &self.conn {
            Conn::Local(io) => self.shared.registry.unbind(io.id).map(|f| f.to_string()),
            Conn::Remote(rc) if rc.gone.is_none() => self
                .server
                .cluster()
                .unbind(rc.id)
                .ok()
                .and_then(|a| a.value),
            Conn::Remote(_) => None,
        }
    }

    /// The flag this connection is bound to.
    pub fn flag(&self) -> Option<String> {
        match &self.conn {
            Conn::Local(io) => self
                .shared
                .registry
                .flag_of(io.id, true)
                .map(|f| f.to_string()),
            Conn::Remote(rc) => match &rc.gone {
                Some((flag, _)) => flag.clone(),
                None => self
                    .server
                    .cluster()
                    .flag_of(rc.id)
                    .ok()
                    .and_then(|a| a.value),
            },
        }
    }

    /// Joins a group (a room). False if this connection is already in
    /// [`max_groups_per_connection`](crate::ServerConfig::max_groups_per_connection) groups.
    pub fn join(&mut self, group: &str) -> bool {
        match &self.conn {
            Conn::Local(io) => self.shared.registry.join(
                io.id,
                group,
                self.shared.config.max_groups_per_connection,
            ),
            Conn::Remote(rc) if rc.gone.is_none() => self
                .server
                .cluster()
                .join(rc.id, group)
                .is_ok_and(|a| a.value),
            Conn::Remote(_) => false,
        }
    }

    /// Leaves a group; returns whether this connection was a member.
    pub fn leave(&mut self, group: &str) -> bool {
        match &self.conn {
            Conn::Local(io) => self.shared.registry.leave(io.id, group),
            Conn::Remote(rc) if rc.gone.is_none() => self
                .server
                .cluster()
                .leave(rc.id, group)
                .is_ok_and(|a| a.value),
            Conn::Remote(_) => false,
        }
    }

    /// The groups this connection is in.
    pub fn groups(&self) -> Vec<String> {
        match &self.conn {
            Conn::Local(io) => self
                .shared
                .registry
                .groups_of(io.id, true)
                .iter()
                .map(|g| g.to_string())
                .collect(),
            Conn::Remote(rc) => match &rc.gone {
                Some((_, groups)) => groups.clone(),
                None => self
                    .server
                    .cluster()
                    .groups_of(rc.id)
                    .map(|a| a.value)
                    .unwrap_or_default(),
            },
        }
    }

    /// Stores a value on this connection (readable through the facade too; behind a gateway,
    /// in this business process only).
    pub fn set<T: Any + Send + Sync>(&mut self, key: &str, value: T) {
        match &mut self.conn {
            Conn::Local(io) => {
                self.shared.registry.set_data(io.id, key, Arc::new(value));
            }
            Conn::Remote(rc) => {
                if rc.gone.is_none() {
                    rc.data.insert(key.to_owned(), Arc::new(value));
                }
            }
        }
    }

    /// Reads a value stored on this connection, if it is there and of type `T`.
    pub fn get<T: Any + Clone>(&self, key: &str) -> Option<T> {
        let value = match &self.conn {
            Conn::Local(io) => self.shared.registry.data(io.id, key, true),
            Conn::Remote(rc) => rc.data.get(key).cloned(),
        };
        value.and_then(|v| v.downcast_ref::<T>().cloned())
    }

    /// Removes a stored value; returns whether one was there.
    pub fn remove(&mut self, key: &str) -> bool {
        match &mut self.conn {
            Conn::Local(io) => self.shared.registry.remove_data(io.id, key),
            Conn::Remote(rc) => rc.data.remove(key).is_some(),
        }
    }

    /// Closes this connection (code 1000) once what is queued has been written.
    pub fn close(&mut self) {
        self.close_with(1000, "");
    }

    /// Closes this connection with a WebSocket close code and reason (ignored on TCP). Behind
    /// a gateway the close goes to the gateway after what this handler sent, and closes with
    /// 1000.
    pub fn close_with(&mut self, code: u16, reason: &str) {
        match &mut self.conn {
            Conn::Local(io) => {
                if io.close_request.is_none() {
                    io.close_request = Some((code, reason.to_owned()));
                }
            }
            Conn::Remote(rc) => {
                if rc.gone.is_none() && !rc.closing {
                    rc.closing = true;
                    let _ = self.server.close(rc.id);
                }
            }
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
