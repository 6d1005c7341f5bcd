//! Building and running a runtime: its core loops, its named servers, shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use log::{error, info};
use mio::Poll;
use mio::net::TcpListener;
use socket2::{Domain, Socket, Type};

use crate::backend;
use crate::config::{BackendConfig, MAX_FANOUT_COALESCE, RuntimeConfig};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::facade::Server;
use crate::handler::Handler;
use crate::id::{MAX_INSTANCES, MAX_WORKERS, WorkerId};
use crate::mailbox::Mailbox;
use crate::running;
use crate::shared::{RuntimeShared, ServerShared};
use crate::signal::{SignalTarget, install_signal_handler};
use crate::spec::{ErasedSpec, ServerSpec};
use crate::worker::{ServerSlot, WAKER, Worker};

/// Builds a [`Runtime`]: its settings and its servers.
pub struct RuntimeBuilder {
    config: RuntimeConfig,
    specs: Vec<Box<dyn ErasedSpec>>,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeBuilder")
            .field("config", &self.config)
            .field(
                "servers",
                &self
                    .specs
                    .iter()
                    .map(|s| &s.config().name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl RuntimeBuilder {
    /// Replaces the runtime settings.
    pub fn config(mut self, config: RuntimeConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets [`RuntimeConfig::workers`].
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Sets [`RuntimeConfig::instance`].
    pub fn instance(mut self, instance: u16) -> Self {
        self.config.instance = instance;
        self
    }

    /// Sets [`RuntimeConfig::shutdown_timeout`].
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Adds a server. The first one added is the default server.
    pub fn server<H: Handler>(mut self, spec: ServerSpec<H>) -> Self {
        self.specs.push(Box::new(spec));
        self
    }

    fn validate(&self) -> Result<()> {
        let workers = self.config.workers;
        if workers == 0 || workers > MAX_WORKERS {
            return Err(Error::Config(format!(
                "workers must be 1..={MAX_WORKERS}, not {workers}"
            )));
        }
        let instance = self.config.instance;
        if instance >= MAX_INSTANCES {
            return Err(Error::Config(format!(
                "instance must be below {MAX_INSTANCES} (it is 12 bits of every client id), \
                 not {instance}"
            )));
        }
        if self.config.mailbox_capacity == 0 {
            return Err(Error::Config(
                "mailbox_capacity must be at least 1 command".into(),
            ));
        }
        if self.config.fanout_window.longest() > MAX_FANOUT_COALESCE {
            return Err(Error::Config(format!(
                "fanout_window (or fanout_coalesce) must be at most {MAX_FANOUT_COALESCE:?}, not {:?}",
                self.config.fanout_window.longest()
            )));
        }
        if self.specs.is_empty() {
            return Err(Error::Config("a runtime needs at least one server".into()));
        }
        if self.specs.len() > (u16::MAX as usize) {
            return Err(Error::Config("too many servers".into()));
        }
        let mut names = std::collections::HashSet::new();
        for s in &self.specs {
            let c = s.config();
            if c.name.is_empty() {
                return Err(Error::Config("a server name must not be empty".into()));
            }
            if !names.insert(c.name.as_str()) {
                return Err(Error::Config(format!("two servers are named {:?}", c.name)));
            }
            if c.role.is_some() && !c.listen {
                return Err(Error::Config(format!(
                    "server {:?}: a gateway listens for clients (listen(false) is for business processes)",
                    c.name
                )));
            }
            if c.role.is_some() && c.backend != BackendConfig::Local {
                return Err(Error::Config(format!(
                    "server {:?}: a gateway's own backend is Local (its business processes use BackendConfig::Gateway)",
                    c.name
                )));
            }
            for proxy in &c.trusted_proxies {
                if let Err(e) = proxy.parse::<crate::conn::forwarded::IpRange>() {
                    return Err(Error::Config(format!(
                        "server {:?}: trusted_proxies: {e}",
                        c.name
                    )));
                }
            }
            for protocol in &c.subprotocols {
                let token = !protocol.is_empty()
                    && protocol
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
                if !token {
                    return Err(Error::Config(format!(
                        "server {:?}: subprotocols: {protocol:?} is not an HTTP token",
                        c.name
                    )));
                }
            }
            if c.permessage_deflate.is_some_and(|d| d.level > 9) {
                return Err(Error::Config(format!(
                    "server {:?}: permessage_deflate: the level is 0 to 9",
                    c.name
                )));
            }
            if c.max_message_size == 0 {
                return Err(Error::Config(format!(
                    "server {:?}: max_message_size must be > 0",
                    c.name
                )));
            }
        }
        Ok(())
    }

    /// Binds every server's listeners (one per core loop, with SO_REUSEPORT), starts the core
    /// loops, and returns the running runtime. Fails on an invalid configuration or an address
    /// that cannot be bound.
    pub fn start(self) -> Result<Runtime> {
        self.validate()?;
        let workers = self.config.workers;
        let runtime_id = NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed);
        let instance = backend::instance(
            self.specs.iter().map(|s| &s.config().backend),
            self.config.instance,
            runtime_id,
        )?;

        // Listeners: [server][worker]. Port 0 is resolved by the first bind and reused.
        let mut listeners: Vec<Vec<Option<TcpListener>>> = Vec::new();
        let mut addrs = Vec::new();
        for spec in &self.specs {
            let mut addr = spec.config().addr;
            let mut per_worker = Vec::with_capacity(workers);
            if spec.config().listen {
                for _ in 0..workers {
                    let l = bind_reuseport(addr)?;
                    addr = l.local_addr()?;
                    per_worker.push(Some(l));
                }
                addrs.push(Some(addr));
            } else {
                per_worker.resize_with(workers, || None);
                addrs.push(None);
            }
            listeners.push(per_worker);
        }

        let mut polls = Vec::with_capacity(workers);
        let mut receivers = Vec::with_capacity(workers);
        let mut mailboxes = Vec::with_capacity(workers);
        for w in 0..workers {
            let poll = Poll::new()?;
            let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = crossbeam_channel::bounded(self.config.mailbox_capacity);
            mailboxes.push(Mailbox::new(tx, waker, runtime_id, WorkerId(w as u16)));
            polls.push(poll);
            receivers.push(rx);
        }
        let servers: Vec<Arc<ServerShared>> = self
            .specs
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let config = s.config().clone();
                Arc::new(ServerShared::new(
                    i as u16,
                    config,
                    workers,
                    s.handshake_hook(),
                ))
            })
            .collect();
        let shared = Arc::new(RuntimeShared {
            id: runtime_id,
            instance,
            mailboxes,
            servers,
            stopping: Default::default(),
            leaving: Default::default(),
            drains: Default::default(),
            mailbox_timeout: self.config.mailbox_timeout,
        });
        let mut facades: Vec<Server> = Vec::with_capacity(self.specs.len());
        let mut backend_threads = Vec::new();
        for (i, s) in self.specs.iter().enumerate() {
            let c = s.config();
            let delivery = Arc::new(Delivery::new(shared.clone(), i));
            let built = match backend::build(&c.backend, delivery.clone())
                .and_then(|b| backend::history::keep(b, c, &delivery))
            {
                Ok(built) => built,
                Err(e) => {
                    // Stops the transport threads of the servers built so far.
                    shared.begin_shutdown();
                    return Err(e);
                }
            };
            backend_threads.extend(built.threads);
            if let Some(hub) = crate::gateway::hub_of(c) {
                match hub.start(delivery) {
                    Ok(thread) => backend_threads.push(thread),
                    Err(e) => {
                        shared.begin_shutdown();
                        return Err(e);
                    }
                }
            }
            facades.push(Server::new(
                c.name.clone(),
                built.backend,
                c.parser.clone(),
                built.local,
            ));
        }

        let specs: Arc<Vec<Box<dyn ErasedSpec>>> = Arc::new(self.specs);
        let mut per_worker_listeners: Vec<Vec<Option<TcpListener>>> =
            (0..workers).map(|_| Vec::new()).collect();
        for server_listeners in listeners {
            for (w, l) in server_listeners.into_iter().enumerate() {
                per_worker_listeners[w].push(l);
            }
        }
        // Known to `get_server` before any core loop runs: a handler of the very first
        // connection finds its own server.
        running::register(runtime_id, &facades);
        let mut threads = Vec::with_capacity(workers);
        let work = polls.into_iter().zip(receivers).zip(per_worker_listeners);
        for (w, ((poll, rx), worker_listeners)) in work.enumerate() {
            let id = WorkerId(w as u16);
            let specs = specs.clone();
            let worker_facades = facades.clone();
            let worker_shared = shared.clone();
            let config = self.config.clone();
            let spawn = std::thread::Builder::new()
                .name(format!("corepush-{w}"))
                .spawn(move || {
                    let shared = worker_shared;
                    let slots = specs
                        .iter()
                        .zip(worker_facades)
                        .zip(worker_listeners)
                        .enumerate()
                        .map(|(i, ((spec, facade), listener))| ServerSlot {
                            shared: shared.servers[i].clone(),
                            facade,
                            handler: spec.make(id),
                            listener,
                            plain_http: spec.plain_http(),
                        })
                        .collect();
                    let stopper = shared.clone();
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        Worker::new(id, shared, poll, rx, slots, config).run()
                    }));
                    // A core loop that ends early takes the runtime down with it, so that
                    // `run` and `join` report it instead of serving on with a loop missing.
                    let outcome = match outcome {
                        Ok(result) => result,
                        Err(_) => Err(std::io::Error::other("panicked")),
                    };
                    if let Err(e) = &outcome {
                        error!("core loop {id} failed: {e}; shutting the runtime down");
                        stopper.begin_shutdown();
                    }
                    outcome
                });
            match spawn {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    let rt = Runtime::assemble(shared, threads, backend_threads, facades, addrs);
                    let _ = rt.shutdown();
                    return Err(Error::Io(e));
                }
            }
        }
        let runtime = Runtime::assemble(shared, threads, backend_threads, facades, addrs);
        for (s, a) in runtime.servers.iter().zip(&runtime.addrs) {
            match a {
                Some(a) => info!(
                    "server {:?} listening on {a} ({workers} core loops)",
                    s.name()
                ),
                None => info!(
                    "server {:?} running without a listener ({workers} core loops)",
                    s.name()
                ),
            }
        }
        Ok(runtime)
    }
}

fn bind_reuseport(addr: SocketAddr) -> Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// The handle of a running server by name, from any thread. With `None`, the default (first)
/// server. On a core loop thread, the servers of that core loop's runtime come first; elsewhere
/// the most recently started runtime that has the name.
///
/// On a pool thread of an [`HttpServer`](crate::HttpServer) (inside a request handler), a name
/// answers with:
/// 1. the push server of that name running in this process, if there is one (the most
///    recently started runtime that has the name), so a request can push to its clients;
/// 2. else, for the HTTP server's own name ([`HttpConfig::name`](crate::HttpConfig::name)),
///    that server's handle on the Fpm backend, as under imi's FPM mode: push code shared with
///    a push deployment runs unchanged and reaches nobody;
/// 3. else `None`.
///
/// On such a thread `None` stands for the HTTP server's own name, resolved by the same rules.
pub fn get_server<'a>(name: impl Into<Option<&'a str>>) -> Option<Server> {
    let name = name.into();
    // Request-scoped mode: a thread-local read tells a pool thread of an HTTP server, whose
    // own name and handle take part in the answer.
    if let Some(answer) = crate::http::request_scope_server(name) {
        return answer;
    }
    running::find(name)
}

/// [`get_server`], with [`Error::UnknownServer`] for `None`: for code that cannot go on
/// without the server and passes the failure up with `?`. The error names the server asked
/// for, or `(default)` when no name was given.
pub fn require_server<'a>(name: impl Into<Option<&'a str>>) -> Result<Server> {
    let name = name.into();
    get_server(name).ok_or_else(|| Error::UnknownServer(name.unwrap_or("(default)").to_owned()))
}

/// Stops a runtime from any thread: see [`Runtime::shutdown_handle`].
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    shared: Arc<RuntimeShared>,
}

impl ShutdownHandle {
    /// Starts a graceful shutdown: stop accepting, send each client what is queued and a
    /// close frame (1001), then end the core loops. Returns at once; idempotent. A business
    /// process behind gateways first handles the client events they already sent it (see
    /// [`BackendConfig::Gateway`]).
    pub fn shutdown(&self) {
        self.shared.request_shutdown();
    }

    /// Whether shutdown has started (its drains included); `GET /health` answers 503 from
    /// then on.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.is_leaving()
    }
}

/// A running runtime: its core loops and servers. Dropping it shuts it down and waits.
///
/// ```no_run
/// use corepush::{Context, Handler, Message, Runtime, ServerConfig};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
///         let _ = ctx.send_raw(message.as_bytes());
///     }
/// }
///
/// fn main() -> corepush::Result<()> {
///     let runtime = Runtime::builder()
///         .workers(2)
///         .server(ServerConfig::websocket("ws", "127.0.0.1:8080".parse().unwrap()).handler(|_| Echo))
///         .start()?;
///     println!("listening on {:?}", runtime.local_addr("ws"));
///     // Until Ctrl-C or SIGTERM; `shutdown()` from code.
///     runtime.run()
/// }
/// ```
pub struct Runtime {
    shared: Arc<RuntimeShared>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
    /// Threads of the backends (a cluster's transport), joined after the core loops.
    backend_threads: Vec<JoinHandle<()>>,
    servers: Vec<Server>,
    addrs: Vec<Option<SocketAddr>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.workers())
            .field(
                "servers",
                &self.servers.iter().map(Server::name).collect::<Vec<_>>(),
            )
            .field("addrs", &self.addrs)
            .finish()
    }
}

impl Runtime {
    /// Starts building a runtime with default settings.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            config: RuntimeConfig::default(),
            specs: Vec::new(),
        }
    }

    fn assemble(
        shared: Arc<RuntimeShared>,
        threads: Vec<JoinHandle<std::io::Result<()>>>,
        backend_threads: Vec<JoinHandle<()>>,
        servers: Vec<Server>,
        addrs: Vec<Option<SocketAddr>>,
    ) -> Self {
        Runtime {
            shared,
            threads,
            backend_threads,
            servers,
            addrs,
        }
    }

    /// The handle of a server by name.
    pub fn server(&self, name: &str) -> Option<Server> {
        self.servers.iter().find(|s| s.name() == name).cloned()
    }

    /// The handle of the default (first) server.
    pub fn default_server(&self) -> Server {
        self.servers[0].clone()
    }

    /// The address a server listens on (with the port resolved, if 0 was asked for); `None`
    /// for a server that does not listen.
    pub fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        let i = self.servers.iter().position(|s| s.name() == name)?;
        self.addrs.get(i).copied().flatten()
    }

    /// The gateway a server is (see [`ServerConfig::gateway`](crate::ServerConfig::gateway)):
    /// its internal address and its counts of business processes and client events.
    pub fn gateway(&self, name: &str) -> Option<crate::GatewayHandle> {
        let i = self.servers.iter().position(|s| s.name() == name)?;
        crate::gateway::hub_of(&self.shared.servers.get(i)?.config).map(crate::GatewayHandle::new)
    }

    /// Reloads the TLS certificate and key of a server from their files (feature `tls`; see
    /// [`TlsConfig::reload`](crate::TlsConfig::reload)): the handshakes that start from now on
    /// use them, and connected clients stay connected. Fails with [`Error::UnknownServer`]
    /// for a name no server of this runtime has, and with [`Error::Config`] for a server
    /// without TLS or a file that cannot be read (naming it; the certificate in use stays).
    #[cfg(feature = "tls")]
    pub fn reload_tls(&self, name: &str) -> Result<()> {
        let i = self
            .servers
            .iter()
            .position(|s| s.name() == name)
            .ok_or_else(|| Error::UnknownServer(name.to_owned()))?;
        let tls = self
            .shared
            .servers
            .get(i)
            .and_then(|s| s.config.tls.as_ref())
            .ok_or_else(|| Error::Config(format!("server {name:?} has no TLS to reload")))?;
        tls.reload()
    }

    /// How many core loops run.
    pub fn workers(&self) -> usize {
        self.shared.workers()
    }

    /// A handle that stops this runtime from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: self.shared.clone(),
        }
    }

    /// Blocks until Ctrl-C, SIGTERM or a [`ShutdownHandle`] stops the runtime, then returns
    /// once every core loop has finished.
    pub fn run(self) -> Result<()> {
        install_signal_handler(Box::new(self.shutdown_handle()))?;
        self.join()
    }

    /// Shuts down gracefully and waits for the core loops.
    pub fn shutdown(self) -> Result<()> {
        self.shutdown_handle().shutdown();
        self.join()
    }

    /// Waits until the runtime has stopped (after a [`ShutdownHandle::shutdown`]).
    pub fn join(mut self) -> Result<()> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> Result<()> {
        let mut result = Ok(());
        let threads = std::mem::take(&mut self.threads);
        let backend_threads = std::mem::take(&mut self.backend_threads);
        for (i, t) in threads.into_iter().enumerate() {
            let outcome = match t.join() {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => format!("core loop {i}: {e}"),
                Err(_) => format!("core loop {i} panicked"),
            };
            error!("{outcome}");
            // A failed core loop stops the others: the runtime cannot serve its clients.
            self.shutdown_handle().shutdown();
            if result.is_ok() {
                result = Err(Error::Worker(outcome));
            }
        }
        // The core loops are done, so shutdown has begun: the backends' threads end.
        self.shared.begin_shutdown();
        for t in backend_threads {
            if t.join().is_err() {
                error!("a backend thread panicked");
            }
        }
        running::unregister(self.shared.id);
        result
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown_handle().shutdown();
            let _ = self.join_threads();
        }
    }
}

impl SignalTarget for ShutdownHandle {
    fn stop(&self) {
        self.shutdown();
    }
    fn is_stopping(&self) -> bool {
        self.is_shutting_down()
    }
}
