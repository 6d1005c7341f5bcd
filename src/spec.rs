//! A server's application side as the runtime keeps it: its configuration with the
//! handler factory, worker-message actions and handshake hook ([`ServerSpec`]), and the
//! type-erased form each core loop holds.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::config::ServerConfig;
use crate::conn::handshake::{HandshakeHook, HandshakeRequest, Rejection};
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
    /// accepted the client: keep it quick.
    pub fn on_handshake(
        mut self,
        hook: impl Fn(&HandshakeRequest) -> Result<(), Rejection> + Send + Sync + 'static,
    ) -> Self {
        self.handshake_hook = Some(Arc::new(hook));
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
