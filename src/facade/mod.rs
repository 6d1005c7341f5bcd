//! The push facade: [`Server`], a cheap handle that any thread may clone and push through,
//! and its cluster-wide calls ([`Cluster`]).

mod cluster;
mod history;

pub use cluster::{Answer, Cluster};

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::backend::Backend;
use crate::backend::fpm::FpmBackend;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::id::{ClientId, WorkerId};
use crate::mailbox::current_worker;
use crate::parser::{DataParser, JsonParser, encode_with};
use crate::restore::Restored;
use crate::stats::Stats;
use crate::target::{IntoIds, IntoNames, Payload, Raw, Scope, Target, Workers};

/// A handle on one named server: push to clients, flags, groups or everyone, close clients,
/// ask who is connected, and message the core loops.
///
/// `Clone + Send + Sync` and cheap to clone: keep one wherever you need to push from, on any
/// thread. Get one from [`Runtime::server`](crate::Runtime::server),
/// [`get_server`](crate::get_server), or a handler's [`Context`](crate::Context).
///
/// # What the counts mean
///
/// Sends return how many connections the message was **queued to**: the targets that were
/// connected to this server (on this instance, within the handle's scope, not excluded) when
/// the call was made, each counted once — exactly the connections whose queue receives it.
/// Delivery is asynchronous: a peer that goes away first gets nothing, and with
/// [`SlowConsumer::Drop`](crate::SlowConsumer::Drop) a connection over its outbound limit
/// drops it, counted in [`Stats::dropped`](crate::Stats::dropped). `close` and
/// `close_by_flag` count the connections they closed; `send_message` counts the core loops
/// reached. On the Fpm backend every count is 0.
///
/// # Scope and exclusions
///
/// A handle from [`worker`](Server::worker) or [`this_worker`](Server::this_worker) is
/// confined to one core loop; one from [`except`](Server::except) skips those clients. Every
/// method applies both: a client outside the scope, or excluded, does not exist for the
/// handle — sends and closes skip it, listings and counts leave it out, and calls that name it
/// by id answer as for a client that is not connected. Worker messages go only to core loops
/// in the scope.
///
/// # Guarantees
///
/// * A client is visible (counted, listed, bound by its `on_open`) and reachable before its
///   handshake answer leaves.
/// * Once [`close`](Server::close) returns, every thread sees the client gone and a send to it
///   answers 0.
/// * One thread's messages to one connection arrive in the order of the calls, whichever
///   method sent them, [`Context::send`](crate::Context::send) included.
/// * Everything counted to a connection before it closed is written before its close frame.
///
/// # Example
///
/// ```no_run
/// use corepush::{Context, Handler, Message, Runtime, ServerConfig};
///
/// struct Chat;
///
/// impl Handler for Chat {
///     fn on_open(&mut self, ctx: &mut Context<'_>) {
///         ctx.join("lobby");
///     }
///     fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
///         // To everyone in the lobby but the sender.
///         let me = ctx.client_id();
///         let _ = ctx.server().except(me).send_raw_to_group("lobby", message.as_bytes());
///     }
/// }
///
/// # fn main() -> corepush::Result<()> {
/// let runtime = Runtime::builder()
///     .server(ServerConfig::websocket("chat", "127.0.0.1:8080".parse().unwrap()).handler(|_| Chat))
///     .start()?;
/// // Any thread of the program may push, through a handle or by name.
/// let chat = corepush::require_server(Some("chat"))?;
/// let reached = chat.send_to_group("lobby", &serde_json::json!({"notice": "maintenance at 2"}))?;
/// println!("queued to {reached} client(s); {} connected", chat.connection_count());
/// # runtime.shutdown()
/// # }
/// ```
///
/// # Errors
///
/// Sends, closes and worker messages fail with [`Error::Shutdown`] once the runtime shuts
/// down, with [`Error::MailboxFull`] when a core loop's mailbox stays full (see
/// [`RuntimeConfig::mailbox_capacity`](crate::RuntimeConfig::mailbox_capacity)), and with
/// [`Error::Encode`] / [`Error::Frame`] for a payload that cannot be encoded or framed.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
    worker: Option<WorkerId>,
    except: Arc<[ClientId]>,
}

struct Inner {
    name: String,
    backend: Arc<dyn Backend>,
    parser: Arc<dyn DataParser>,
    /// This instance's door, for the runtime's facts (core loops, counters); `None` where
    /// there is no runtime (the Fpm backend).
    local: Option<Arc<Delivery>>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("name", &self.inner.name)
            .field("backend", &self.inner.backend)
            .field("worker", &self.worker)
            .field("except", &self.except)
            .finish()
    }
}

impl Server {
    pub(crate) fn new(
        name: String,
        backend: Arc<dyn Backend>,
        parser: Arc<dyn DataParser>,
        local: Option<Arc<Delivery>>,
    ) -> Self {
        Server {
            inner: Arc::new(Inner {
                name,
                backend,
                parser,
                local,
            }),
            worker: None,
            except: Arc::from([]),
        }
    }

    /// A handle on the request-scoped no-op backend: every push returns 0, `exists` is false,
    /// every count is 0 and every list empty. Code written for the push server runs unchanged
    /// on it.
    pub fn fpm(name: impl Into<String>) -> Self {
        Server::new(
            name.into(),
            Arc::new(FpmBackend),
            Arc::new(JsonParser),
            None,
        )
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// This instance's number in its cluster: the instance field of its clients' ids (the
    /// number claimed at start on a cluster backend; 0 on a single instance and on Fpm).
    pub fn instance(&self) -> u16 {
        self.inner.local.as_ref().map_or(0, |d| d.instance())
    }

    /// How many core loops the server runs on (0 on the Fpm backend).
    pub fn workers(&self) -> usize {
        self.inner.local.as_ref().map_or(0, |d| d.workers())
    }

    /// The server's data parser.
    pub fn parser(&self) -> &dyn DataParser {
        &*self.inner.parser
    }

    /// A handle confined to the connections of the core loop this thread runs (imi's
    /// `toAllWorkers = false`). Fails with [`Error::NotOnWorker`] off a core loop of this
    /// server's runtime; on the Fpm backend it returns the same no-op handle.
    pub fn this_worker(&self) -> Result<Server> {
        match self.inner.local.as_ref().map(|d| d.runtime_id()) {
            None => Ok(self.clone()),
            Some(rt) => match current_worker(rt) {
                Some(w) => Ok(Server {
                    worker: Some(w),
                    ..self.clone()
                }),
                None => Err(Error::NotOnWorker),
            },
        }
    }

    /// A handle confined to the connections of one core loop, from any thread.
    pub fn worker(&self, worker: WorkerId) -> Server {
        Server {
            worker: Some(worker),
            ..self.clone()
        }
    }

    /// The core loop this handle is confined to, if any.
    pub fn scope(&self) -> Option<WorkerId> {
        self.worker
    }

    /// A handle whose sends, closes and listings skip these clients (typically the sender).
    /// The exclusion travels with every call made through the returned handle.
    pub fn except(&self, ids: impl IntoIds) -> Server {
        let mut all: Vec<ClientId> = self.except.to_vec();
        all.extend(ids.into_ids());
        all.sort_unstable();
        all.dedup();
        Server {
            except: all.into(),
            ..self.clone()
        }
    }

    fn scope_ref(&self) -> Scope<'_> {
        Scope {
            worker: self.worker,
            except: &self.except,
        }
    }

    fn encode<T: Serialize + ?Sized>(&self, data: &T) -> Result<Vec<u8>> {
        encode_with(&*self.inner.parser, data)
    }

    fn push_encoded<T: Serialize + ?Sized>(&self, target: Target, data: &T) -> Result<usize> {
        let bytes = self.encode(data)?;
        let payload = Payload {
            is_text: self.inner.parser.is_text(),
            bytes: &bytes,
        };
        self.inner.backend.push(target, payload, self.scope_ref())
    }

    fn push_raw<'a>(&self, target: Target, raw: impl Into<Raw<'a>>) -> Result<usize> {
        let raw = raw.into();
        let payload = Payload {
            is_text: raw.is_text(),
            bytes: raw.as_bytes(),
        };
        self.inner.backend.push(target, payload, self.scope_ref())
    }

    /// Encodes `data` with the server's parser and sends it to one or more clients.
    pub fn send<T: Serialize + ?Sized>(&self, data: &T, ids: impl IntoIds) -> Result<usize> {
        self.push_encoded(Target::Clients(ids.into_ids()), data)
    }

    /// Sends bytes or text as they are to one or more clients.
    ///
    /// On a [`TcpLines`](crate::Protocol::TcpLines) server a payload that contains `\n` or ends
    /// in `\r` cannot be framed: the call returns [`Error::Frame`] and queues nothing. The same
    /// holds for every raw send.
    pub fn send_raw<'a>(&self, raw: impl Into<Raw<'a>>, ids: impl IntoIds) -> Result<usize> {
        self.push_raw(Target::Clients(ids.into_ids()), raw)
    }

    /// Encodes `data` and sends it to every connection bound to one or more flags.
    pub fn send_by_flag<T: Serialize + ?Sized>(
        &self,
        data: &T,
        flags: impl IntoNames,
    ) -> Result<usize> {
        self.push_encoded(Target::Flags(flags.into_names()), data)
    }

    /// Sends bytes or text as they are to every connection bound to one or more flags.
    pub fn send_raw_by_flag<'a>(
        &self,
        raw: impl Into<Raw<'a>>,
        flags: impl IntoNames,
    ) -> Result<usize> {
        self.push_raw(Target::Flags(flags.into_names()), raw)
    }

    /// Encodes `data` and sends it to every member of one or more groups (once per
    /// connection, however many of the groups it is in).
    pub fn send_to_group<T: Serialize + ?Sized>(
        &self,
        groups: impl IntoNames,
        data: &T,
    ) -> Result<usize> {
        self.push_encoded(Target::Groups(groups.into_names()), data)
    }

    /// Sends bytes or text as they are to every member of one or more groups.
    pub fn send_raw_to_group<'a>(
        &self,
        groups: impl IntoNames,
        raw: impl Into<Raw<'a>>,
    ) -> Result<usize> {
        self.push_raw(Target::Groups(groups.into_names()), raw)
    }

    /// Encodes `data` and sends it to every connection of the server.
    pub fn send_to_all<T: Serialize + ?Sized>(&self, data: &T) -> Result<usize> {
        self.push_encoded(Target::All, data)
    }

    /// Sends bytes or text as they are to every connection of the server.
    pub fn send_raw_to_all<'a>(&self, raw: impl Into<Raw<'a>>) -> Result<usize> {
        self.push_raw(Target::All, raw)
    }

    /// Closes one or more clients (WebSocket close code 1000) after what is queued for them.
    pub fn close(&self, ids: impl IntoIds) -> Result<usize> {
        self.inner
            .backend
            .close(Target::Clients(ids.into_ids()), self.scope_ref())
    }

    /// Closes every connection bound to one or more flags.
    pub fn close_by_flag(&self, flags: impl IntoNames) -> Result<usize> {
        self.inner
            .backend
            .close(Target::Flags(flags.into_names()), self.scope_ref())
    }

    /// Whether the client is connected to this server.
    pub fn exists(&self, id: ClientId) -> bool {
        self.inner.backend.exists(id, self.scope_ref())
    }

    /// Whether any connection is bound to the flag.
    pub fn flag_exists(&self, flag: &str) -> bool {
        !self.flag_clients(flag).is_empty()
    }

    /// The connections bound to a flag.
    pub fn flag_clients(&self, flag: &str) -> Vec<ClientId> {
        self.inner.backend.flag_members(flag, self.scope_ref())
    }

    /// The flag a client is bound to.
    pub fn flag_of(&self, id: ClientId) -> Option<String> {
        self.inner.backend.flag_of(id, self.scope_ref())
    }

    /// Every connection of the server, sorted.
    pub fn connections(&self) -> Vec<ClientId> {
        self.inner.backend.connections(self.scope_ref())
    }

    /// How many connections the server has.
    pub fn connection_count(&self) -> usize {
        self.inner.backend.connection_count(self.scope_ref())
    }

    /// The members of a group, sorted.
    pub fn group_members(&self, group: &str) -> Vec<ClientId> {
        self.inner.backend.group_members(group, self.scope_ref())
    }

    /// How many connections a group has.
    pub fn group_count(&self, group: &str) -> usize {
        self.group_members(group).len()
    }

    /// The names of the groups that have members (in this handle's scope), sorted.
    pub fn groups(&self) -> Vec<String> {
        self.inner.backend.group_names(self.scope_ref())
    }

    /// Binds a connected client to a flag (a user id), replacing any flag it had — as
    /// [`Context::bind`](crate::Context::bind), from any thread (say, an HTTP login). Several
    /// connections may share a flag. False if the client is not connected.
    pub fn bind(&self, id: ClientId, flag: &str) -> bool {
        self.inner.backend.bind(id, flag, false, self.scope_ref())
    }

    /// Binds the flag only if no other connection holds it — as
    /// [`Context::bind_nx`](crate::Context::bind_nx). Returns whether the client holds it.
    pub fn bind_nx(&self, id: ClientId, flag: &str) -> bool {
        self.inner.backend.bind(id, flag, true, self.scope_ref())
    }

    /// Unbinds a client's flag; returns the flag it held.
    pub fn unbind(&self, id: ClientId) -> Option<String> {
        self.inner.backend.unbind(id, self.scope_ref())
    }

    /// Adds a connected client to a group — as [`Context::join`](crate::Context::join). False
    /// if it is not connected or already in
    /// [`max_groups_per_connection`](crate::ServerConfig::max_groups_per_connection) groups.
    pub fn join(&self, id: ClientId, group: &str) -> bool {
        self.inner.backend.join(id, group, self.scope_ref())
    }

    /// Takes a client out of a group; returns whether it was a member.
    pub fn leave(&self, id: ClientId, group: &str) -> bool {
        self.inner.backend.leave(id, group, self.scope_ref())
    }

    /// The groups a client is in, sorted.
    pub fn groups_of(&self, id: ClientId) -> Vec<String> {
        self.inner.backend.groups_of(id, self.scope_ref())
    }

    /// Gives connected client `id` the context kept under `flag` from a closed connection,
    /// as [`Context::restore`](crate::Context::restore) does for its own connection (same
    /// answers and errors), from any thread; the client's handler gets
    /// [`on_restore`](crate::Handler::on_restore) on its core loop.
    pub fn restore(&self, id: ClientId, flag: &str) -> Result<Restored> {
        self.inner.backend.restore(id, flag, self.scope_ref())
    }

    /// The calls that answer for every instance of a cluster: queries, calls by id on any
    /// instance, and counted sends (see [`Cluster`]). The plain methods of `Server` answer
    /// for this instance and never wait; its sends and closes reach the whole cluster.
    pub fn cluster(&self) -> Cluster<'_> {
        Cluster { server: self }
    }

    /// The server's counters (connections, messages, bytes, drops, refusals …), summed over
    /// its core loops. All zero on the Fpm backend.
    pub fn stats(&self) -> Stats {
        self.inner
            .local
            .as_ref()
            .map_or_else(Stats::default, |d| d.stats())
    }

    /// Stores a value on a connection, where its handler's [`Context`](crate::Context) can read
    /// it too. False if the client is not connected.
    pub fn set_data<T: Any + Send + Sync>(&self, id: ClientId, key: &str, value: T) -> bool {
        self.inner
            .backend
            .set_data(id, key, Arc::new(value), self.scope_ref())
    }

    /// Reads a value stored on a connection, if it is there and of type `T`.
    pub fn data<T: Any + Clone>(&self, id: ClientId, key: &str) -> Option<T> {
        self.inner
            .backend
            .data(id, key, self.scope_ref())
            .and_then(|v| v.downcast_ref::<T>().cloned())
    }

    /// Removes a value stored on a connection; returns whether one was there.
    pub fn remove_data(&self, id: ClientId, key: &str) -> bool {
        self.inner.backend.remove_data(id, key, self.scope_ref())
    }

    /// Encodes `data` and delivers it, with an action name, to the worker-message callback
    /// of the chosen core loops of this instance. Returns how many core loops it was queued
    /// to. On a cluster, [`Cluster::send_message`] reaches the core loops of every instance.
    pub fn send_message<T: Serialize + ?Sized>(
        &self,
        action: &str,
        data: &T,
        workers: impl Into<Workers>,
    ) -> Result<usize> {
        let bytes = self.encode(data)?;
        self.inner
            .backend
            .send_message(Some(action), &bytes, &workers.into(), self.scope_ref())
    }

    /// Delivers bytes or text as they are to the raw worker-message callback of the chosen
    /// core loops. Returns how many core loops it was queued to.
    pub fn send_message_raw<'a>(
        &self,
        raw: impl Into<Raw<'a>>,
        workers: impl Into<Workers>,
    ) -> Result<usize> {
        let raw = raw.into();
        self.inner
            .backend
            .send_message(None, raw.as_bytes(), &workers.into(), self.scope_ref())
    }
}
