//! A server's application side as the runtime keeps it: its configuration with the
//! handler factory, worker-message actions and handshake hook ([`ServerSpec`]), and the
//! type-erased form each core loop holds.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::ServerConfig;
use crate::conn::accept::{Accept, HandshakeHook, HandshakeReply};
use crate::conn::handshake::{HandshakeRequest, Rejection};
use crate::edge::PlainHttp;
use crate::error::Result;
use crate::handler::{Handler, WorkerContext, WorkerMessage};
use crate::id::WorkerId;

type ActionFn<H> = dyn Fn(&mut H, &mut WorkerContext<'_>, &WorkerMessage<'_>) + Send + Sync;

/// A server's configuration together with its handler factory, worker-message actions and
/// handshake hook. Made by [`ServerConfig::handler`].
pub struct ServerSpec<H: Handler> {
    config: ServerConfig,
    factory: Arc<dyn Fn(WorkerId) -> H + Send + Sync>,
    actions: HashMap<String, Arc<ActionFn<H>>>,
    handshake_hook: Option<Arc<HandshakeHook>>,
    plain_http: Arc<PlainHttp>,
}

impl<H: Handler> fmt::Debug for ServerSpec<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSpec")
            .field("config", &self.config)
            .field("actions", &self.actions.keys().collect::<Vec<_>>())
            .field("plain_http", &self.plain_http)
            .finish()
    }
}

impl ServerConfig {
    /// Pairs this configuration with the factory that builds its handler, once per core loop.
    pub fn handler<H: Handler>(
        self,
        factory: impl Fn(WorkerId) -> H + Send + Sync + 'static,
    ) -> ServerSpec<H> {
        ServerSpec {
            config: self,
            factory: Arc::new(factory),
            actions: HashMap::new(),
            handshake_hook: None,
            plain_http: Arc::default(),
        }
    }
}

impl<H: Handler> ServerSpec<H> {
    /// Registers the callback for worker messages ([`Server::send_message`](crate::Server::send_message)) with this action
    /// name. Actions with no callback go to [`Handler::on_worker_message`].
    pub fn action(
        mut self,
        name: &str,
        callback: impl Fn(&mut H, &mut WorkerContext<'_>, &WorkerMessage<'_>) + Send + Sync + 'static,
    ) -> Self {
        self.actions.insert(name.to_owned(), Arc::new(callback));
        self
    }

    /// Decides whether each WebSocket upgrade is accepted — by path, query (a token),
    /// headers or origin — before the connection counts as open. A refused client gets the
    /// [`Rejection`]'s HTTP status and body, and never appears in connections or counts
    /// (it is counted in [`Stats::rejected`](crate::Stats)). Runs on the core loop that
    /// accepted the client: keep it quick. One hook per server: this replaces any set
    /// before by [`on_handshake_accept`](Self::on_handshake_accept) or
    /// [`on_handshake_deferred`](Self::on_handshake_deferred).
    pub fn on_handshake(
        self,
        hook: impl Fn(&HandshakeRequest) -> Result<(), Rejection> + Send + Sync + 'static,
    ) -> Self {
        self.on_handshake_accept(move |request| hook(request).map(|()| Accept::new()))
    }

    /// As [`on_handshake`](Self::on_handshake), and an accepted client may come with what
    /// the hook settled on: a flag and data, in place when `on_open` runs and visible to
    /// every thread before the 101 leaves; a subprotocol; headers for the 101.
    ///
    /// ```
    /// use corepush::{Accept, Context, Handler, Message, Rejection, ServerConfig};
    ///
    /// struct App;
    /// impl Handler for App {
    ///     fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
    /// }
    ///
    /// let spec = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
    ///     .handler(|_| App)
    ///     .on_handshake_accept(|request| match request.query() {
    ///         Some("token=alice-secret") => Ok(Accept::new()
    ///             .flag("alice")
    ///             .data("role", "admin".to_owned())
    ///             .header("X-Served-By", "edge-1")),
    ///         _ => Err(Rejection::unauthorized()),
    ///     });
    /// # drop(spec);
    /// ```
    pub fn on_handshake_accept(
        mut self,
        hook: impl Fn(&HandshakeRequest) -> Result<Accept, Rejection> + Send + Sync + 'static,
    ) -> Self {
        self.handshake_hook = Some(Arc::new(HandshakeHook::Now(Box::new(hook))));
        self
    }

    /// A handshake hook that may decide later — after asking an authentication service, say.
    /// It gets the request and a [`HandshakeReply`], which it may send to any thread and
    /// complete there, at once or later, with [`HandshakeReply::accept`] or
    /// [`HandshakeReply::reject`]. The core loop goes on serving its other clients
    /// meanwhile; the answer reaches it through its mailbox.
    ///
    /// The server's [`handshake_timeout`](ServerConfig::handshake_timeout) still applies:
    /// a client with no answer by then is dropped (counted in
    /// [`Stats::handshake_failures`](crate::Stats)) and a later answer does nothing. A reply
    /// dropped unanswered refuses the client with 500. The hook itself runs on the core
    /// loop: hand the work over and return.
    ///
    /// ```
    /// use corepush::{Accept, Context, Handler, Message, Rejection, ServerConfig};
    ///
    /// struct App;
    /// impl Handler for App {
    ///     fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
    /// }
    ///
    /// let spec = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
    ///     .handler(|_| App)
    ///     .on_handshake_deferred(|request, reply| {
    ///         let token = request.query().unwrap_or("").to_owned();
    ///         std::thread::spawn(move || {
    ///             // Ask the authentication service (blocking is fine here) ...
    ///             match token.strip_prefix("token=") {
    ///                 Some(user) if !user.is_empty() => reply.accept(Accept::new().flag(user)),
    ///                 _ => reply.reject(Rejection::unauthorized()),
    ///             }
    ///         });
    ///     });
    /// # drop(spec);
    /// ```
    pub fn on_handshake_deferred(
        mut self,
        hook: impl Fn(&HandshakeRequest, HandshakeReply) + Send + Sync + 'static,
    ) -> Self {
        self.handshake_hook = Some(Arc::new(HandshakeHook::Later(Box::new(hook))));
        self
    }

    /// Sets how plain HTTP requests on the server's port (a `GET` that is not a WebSocket
    /// upgrade) are answered. Defaults to [`PlainHttp::default()`]: `/metrics` and `/health`
    /// answer, anything else is 404; [`PlainHttp::off`] answers none (400).
    pub fn plain_http(mut self, plain: PlainHttp) -> Self {
        self.plain_http = Arc::new(plain);
        self
    }
}

/// A server spec with its handler type erased, as the runtime keeps it.
pub(crate) trait ErasedSpec: Send + Sync {
    fn config(&self) -> &ServerConfig;
    fn handshake_hook(&self) -> Option<Arc<HandshakeHook>>;
    fn plain_http(&self) -> Arc<PlainHttp>;
    fn make(&self, worker: WorkerId) -> Box<dyn HandlerBox>;
}

impl<H: Handler> ErasedSpec for ServerSpec<H> {
    fn config(&self) -> &ServerConfig {
        &self.config
    }
    fn handshake_hook(&self) -> Option<Arc<HandshakeHook>> {
        self.handshake_hook.clone()
    }
    fn plain_http(&self) -> Arc<PlainHttp> {
        self.plain_http.clone()
    }
    fn make(&self, worker: WorkerId) -> Box<dyn HandlerBox> {
        Box::new(Typed {
            handler: (self.factory)(worker),
            actions: self.actions.clone(),
        })
    }
}

/// A handler with its action callbacks, as a core loop holds it.
pub(crate) trait HandlerBox {
    fn handler(&mut self) -> &mut dyn Handler;
    /// Runs the callback registered for the message's action; false if there is none.
    fn action(&mut self, ctx: &mut WorkerContext<'_>, msg: &WorkerMessage<'_>) -> bool;
}

struct Typed<H: Handler> {
    handler: H,
    actions: HashMap<String, Arc<ActionFn<H>>>,
}

impl<H: Handler> HandlerBox for Typed<H> {
    fn handler(&mut self) -> &mut dyn Handler {
        &mut self.handler
    }
    fn action(&mut self, ctx: &mut WorkerContext<'_>, msg: &WorkerMessage<'_>) -> bool {
        match self.actions.get(msg.action()) {
            Some(f) => {
                f(&mut self.handler, ctx, msg);
                true
            }
            None => false,
        }
    }
}
