//! The HTTP server's threads: one acceptor, a pool that serves connections, and shutdown.

use std::fmt;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use log::{error, info, warn};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use parking_lot::Mutex;
use socket2::{Domain, Socket, Type};

use super::config::HttpConfig;
use super::conn::{Scratch, serve};
use super::message::RequestHandler;
use super::pool::{Accepted, BUSY, FRESH, IDLE, Shared, Slot};
use super::scope::enter_request_scope;
use crate::error::{Error, Result};
use crate::facade::Server;
use crate::signal::{SignalTarget, install_signal_handler};

const LISTENER: Token = Token(0);
const WAKE: Token = Token(1);
/// How long a thread started beyond [`HttpConfig::threads`] waits for work before it ends.
const SPARE_IDLE: Duration = Duration::from_secs(60);

/// A running request-scoped HTTP/1.1 server: an acceptor thread and a pool of threads that
/// each serve one connection at a time. Dropping it shuts it down and waits.
///
/// Inside its handler, [`get_server`](crate::get_server) finds the push servers running in the
/// process, so a request can push to their clients; the server's own name (and `None`, and
/// [`RequestContext::server`](crate::RequestContext::server)) answers with its own [`Server`]
/// on the Fpm backend when no push server has that name: push code runs and reaches nobody.
///
/// ```no_run
/// use corepush::{HttpConfig, HttpServer, Request, RequestContext, Response};
///
/// # fn main() -> corepush::Result<()> {
/// let server = HttpServer::start(
///     HttpConfig::new("api", "127.0.0.1:8081".parse().unwrap()),
///     |request: &Request, ctx: &mut RequestContext| {
///         // The same push code as in the push server; here it reaches the push server
///         // named "ws" when one runs in this process, and nobody otherwise.
///         let sent = ctx.server().send_raw_to_all("ping").unwrap_or(0);
///         Response::text(format!("{} {}: pushed to {sent}\n", request.method(), request.path()))
///     },
/// )?;
/// println!("HTTP on {}", server.local_addr());
/// # server.shutdown()
/// # }
/// ```
pub struct HttpServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
    pool: Vec<JoinHandle<()>>,
}

impl fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpServer")
            .field("name", &self.shared.config.name)
            .field("addr", &self.addr)
            .field("threads", &self.pool.len())
            .field("max_threads", &self.shared.slots.len())
            .finish()
    }
}

impl HttpServer {
    /// Validates the configuration, binds the address, starts the acceptor and the pool, and
    /// returns the running server. Fails on an invalid configuration or an address that
    /// cannot be bound.
    pub fn start(config: HttpConfig, handler: impl RequestHandler) -> Result<HttpServer> {
        validate(&config)?;
        let listener = bind(config.addr)?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKE)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let max_threads = config.max_threads.max(config.threads);
        let shared = Arc::new(Shared {
            server: Server::fpm(config.name.clone()),
            slots: (0..max_threads).map(|_| Slot::default()).collect(),
            free_slots: Mutex::new((config.threads..max_threads).rev().collect()),
            spares: Mutex::new(Vec::new()),
            handler: Box::new(handler),
            stopping: AtomicBool::new(false),
            // Counted from their start, so a burst right after start is not taken for a shortage.
            waiting: AtomicUsize::new(config.threads),
            queued: AtomicUsize::new(0),
            queue: rx,
            waker,
            config,
        });
        let mut server = HttpServer {
            shared: shared.clone(),
            addr,
            acceptor: None,
            pool: Vec::with_capacity(shared.config.threads),
        };
        for i in 0..shared.config.threads {
            // On failure, dropping `server` stops the threads already started.
            server.pool.push(spawn_pool_thread(&shared, i, false)?);
        }
        let accept_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("corepush-http-accept".to_owned())
            .spawn(move || accept_thread(poll, listener, tx, accept_shared));
        server.acceptor = Some(spawned?);
        info!(
            "http server {:?} listening on {addr} ({} threads)",
            shared.config.name, shared.config.threads
        );
        Ok(server)
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    /// The address the server listens on (with the port resolved, if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's own push facade, on the Fpm backend and named after it: what its handlers
    /// reach by its name when no push server of that name runs in the process.
    pub fn server(&self) -> Server {
        self.shared.server.clone()
    }

    /// A handle that stops this server from any thread.
    pub fn shutdown_handle(&self) -> HttpShutdownHandle {
        HttpShutdownHandle {
            shared: self.shared.clone(),
        }
    }

    /// Blocks until Ctrl-C, SIGTERM or an [`HttpShutdownHandle`] stops the server, then
    /// returns once every thread has finished.
    pub fn run(self) -> Result<()> {
        install_signal_handler(Box::new(self.shutdown_handle()))?;
        self.join()
    }

    /// Shuts down gracefully and waits: see [`HttpShutdownHandle::shutdown`].
    pub fn shutdown(self) -> Result<()> {
        self.shutdown_handle().shutdown();
        self.join()
    }

    /// Waits until the server has stopped (after an [`HttpShutdownHandle::shutdown`]).
    pub fn join(mut self) -> Result<()> {
        self.join_threads()
    }

    fn join_threads(&mut self) -> Result<()> {
        let mut result = Ok(());
        // The acceptor first: once it has ended, no thread is started any more.
        let mut threads: Vec<JoinHandle<()>> = self.acceptor.take().into_iter().collect();
        threads.append(&mut self.pool);
        let mut spares = Vec::new();
        for t in threads.into_iter().chain(std::iter::from_fn(|| {
            if spares.is_empty() {
                spares = std::mem::take(&mut *self.shared.spares.lock());
            }
            spares.pop()
        })) {
            let name = t.thread().name().unwrap_or("corepush-http").to_owned();
            if t.join().is_err() {
                let outcome = format!("{name} panicked");
                error!("{outcome}");
                // The server cannot serve without it: stop the others.
                self.shutdown_handle().shutdown();
                if result.is_ok() {
                    result = Err(Error::Worker(outcome));
                }
            }
        }
        result
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if self.acceptor.is_some() || !self.pool.is_empty() {
            self.shutdown_handle().shutdown();
            let _ = self.join_threads();
        }
    }
}

/// Stops an [`HttpServer`] from any thread.
#[derive(Clone)]
pub struct HttpShutdownHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for HttpShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpShutdownHandle")
            .field("name", &self.shared.config.name)
            .field("is_shutting_down", &self.is_shutting_down())
            .finish()
    }
}

impl HttpShutdownHandle {
    /// Starts a graceful shutdown and returns at once; idempotent. The listener closes, so new
    /// connections are refused; idle keep-alive connections close; a request already arriving
    /// or being handled is finished and answered with `Connection: close`; then the threads
    /// end.
    pub fn shutdown(&self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        info!("http server {:?} shutting down", self.shared.config.name);
        if let Err(e) = self.shared.waker.wake() {
            error!("waking the http acceptor failed: {e}");
        }
        for slot in &self.shared.slots {
            slot.close_if(FRESH);
            slot.close_if(IDLE);
        }
    }

    /// Whether shutdown has started.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }
}

impl SignalTarget for HttpShutdownHandle {
    fn stop(&self) {
        self.shutdown();
    }
    fn is_stopping(&self) -> bool {
        self.is_shutting_down()
    }
}

fn validate(c: &HttpConfig) -> Result<()> {
    let bad = |what: &str| Err(Error::Config(format!("http server {:?}: {what}", c.name)));
    if c.name.is_empty() {
        return Err(Error::Config(
            "an http server name must not be empty".into(),
        ));
    }
    if c.threads == 0 {
        return bad("threads must be > 0");
    }
    if c.max_header_bytes < 64 {
        return bad("max_header_bytes must be at least 64");
    }
    let timeouts = [c.keep_alive_timeout, c.request_timeout, c.write_timeout];
    if timeouts.contains(&Duration::ZERO) {
        return bad("timeouts must be > 0");
    }
    Ok(())
}

fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Accepts connections and queues them for the pool until shutdown, then closes the listener
/// (refusing new connections) and the queue (ending the pool once it has drained it).
fn accept_thread(
    mut poll: Poll,
    mut listener: TcpListener,
    tx: Sender<Accepted>,
    shared: Arc<Shared>,
) {
    if let Err(e) = poll
        .registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
    {
        error!("http acceptor: cannot register the listener: {e}");
        return;
    }
    let mut events = Events::with_capacity(64);
    // After a failed accept (say, out of file descriptors) look again soon: edge-triggered
    // readiness will not tell about connections already waiting.
    let mut retry: Option<Duration> = None;
    let mut acceptor = Acceptor {
        listener: &listener,
        tx: &tx,
        shared: &shared,
        next_evict: 0,
        failing: false,
    };
    while !shared.is_stopping() {
        if let Err(e) = poll.poll(&mut events, retry) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            error!("http acceptor: poll failed: {e}");
            break;
        }
        retry = (!acceptor.accept_ready()).then_some(Duration::from_millis(50));
    }
    // Connections the kernel completed before the listener closes: the client may have sent
    // its request already, and the pool answers such a request before closing.
    acceptor.accept_ready();
    drop(listener);
    drop(tx);
}

struct Acceptor<'a> {
    listener: &'a TcpListener,
    tx: &'a Sender<Accepted>,
    shared: &'a Arc<Shared>,
    /// Where to look first for an idle connection to close.
    next_evict: usize,
    /// Accepts are failing (say, out of file descriptors): logged once until they succeed.
    failing: bool,
}

impl Acceptor<'_> {
    /// Accepts and queues every connection ready; false after a failure worth a retry.
    fn accept_ready(&mut self) -> bool {
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => {
                    if self.tx.len() >= self.shared.config.max_pending {
                        refuse(stream, peer);
                        continue;
                    }
                    self.shared.queued.fetch_add(1, Ordering::SeqCst);
                    if self.tx.send((stream.into(), peer)).is_err() {
                        return true;
                    }
                    if self.shared.is_short_of_threads() && !start_spare(self.shared) {
                        self.next_evict = evict_one(self.shared, self.next_evict);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if std::mem::take(&mut self.failing) {
                        info!("http acceptor: accepting connections again");
                    }
                    return true;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) => {}
                Err(e) => {
                    if !self.failing {
                        self.failing = true;
                        warn!(
                            "http acceptor: accept failed: {e}; waiting connections are \
                             accepted once resources free up"
                        );
                    }
                    return false;
                }
            }
        }
    }
}

/// A connection the pool has no room for: a 503, sent without blocking, then closed.
fn refuse(stream: mio::net::TcpStream, peer: SocketAddr) {
    warn!("http: {peer} refused, too many connections waiting for a thread");
    let mut stream: TcpStream = stream.into();
    let _ = stream.write(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

/// Closes one idle connection, searching from `from`; returns where to search next time.
fn evict_one(shared: &Shared, from: usize) -> usize {
    let n = shared.slots.len();
    for k in 0..n {
        let i = (from + k) % n;
        if shared.slots[i].close_if(IDLE) {
            return i + 1;
        }
    }
    from
}

/// Starts a pool thread beyond `threads`, if there is room; whether it did.
fn start_spare(shared: &Arc<Shared>) -> bool {
    let Some(index) = shared.free_slots.lock().pop() else {
        return false;
    };
    // Counted as waiting from now, so that nobody else sees a shortage it will fill.
    shared.waiting.fetch_add(1, Ordering::SeqCst);
    match spawn_pool_thread(shared, index, true) {
        Ok(handle) => {
            let mut spares = shared.spares.lock();
            // Those that have ended need no join: dropping their handles detaches nothing.
            spares.retain(|h| !h.is_finished());
            spares.push(handle);
            true
        }
        Err(e) => {
            warn!("http: cannot start another pool thread: {e}");
            shared.waiting.fetch_sub(1, Ordering::SeqCst);
            shared.free_slots.lock().push(index);
            false
        }
    }
}

fn spawn_pool_thread(
    shared: &Arc<Shared>,
    index: usize,
    spare: bool,
) -> io::Result<JoinHandle<()>> {
    let shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("corepush-http-{index}"))
        .spawn(move || pool_thread(index, &shared, spare))
}

/// Serves connections from the queue until it closes; a spare thread also ends after
/// [`SPARE_IDLE`] without work. Counted in `waiting` whenever it is not serving.
fn pool_thread(index: usize, shared: &Shared, spare: bool) {
    enter_request_scope(shared.server.clone());
    let slot = &shared.slots[index];
    let mut scratch = Scratch::new();
    loop {
        let next = if spare {
            shared.queue.recv_timeout(SPARE_IDLE)
        } else {
            shared
                .queue
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected)
        };
        let (stream, peer) = match next {
            Ok(accepted) => {
                shared.queued.fetch_sub(1, Ordering::SeqCst);
                shared.waiting.fetch_sub(1, Ordering::SeqCst);
                accepted
            }
            Err(RecvTimeoutError::Timeout) => {
                shared.waiting.fetch_sub(1, Ordering::SeqCst);
                // Checked after leaving `waiting`: a connection queued meanwhile either saw
                // this thread gone (and started or freed another), or is seen here.
                if shared.is_short_of_threads() {
                    shared.waiting.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                shared.free_slots.lock().push(index);
                return;
            }
            Err(RecvTimeoutError::Disconnected) => {
                shared.waiting.fetch_sub(1, Ordering::SeqCst);
                return;
            }
        };
        let stream = Arc::new(stream);
        *slot.stream.lock() = Some(stream.clone());
        serve(&stream, peer, shared, slot, &mut scratch);
        slot.state.store(BUSY, Ordering::SeqCst);
        *slot.stream.lock() = None;
        shared.waiting.fetch_add(1, Ordering::SeqCst);
    }
}
