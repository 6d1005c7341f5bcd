//! The channel broker: a tiny pub/sub server that the instances of a cluster connect to, so
//! that a small deployment pushes across processes with nothing else installed (Workerman's
//! Channel). Run it on a thread of any program with [`ChannelServer::start`], or alone with
//! `examples/channel_server.rs`; instances reach it through
//! [`BackendConfig::Channel`](crate::BackendConfig::Channel).
//!
//! * **One thread.** The broker is one `mio` event loop; it never decodes the messages it
//!   carries, it only routes frames between the members of one cluster (a prefix) and one
//!   server within it.
//! * **Identity.** Each member holds an instance number, unique within its prefix while it is
//!   connected: a second claim is refused, and number 0 asks for the lowest free one. A
//!   number whose holder went away without saying goodbye stays reserved for that holder's
//!   runtime for a few seconds, so that it can reconnect.
//! * **Limits.** A frame larger than [`ChannelConfig::max_frame`], anything that is not the
//!   protocol, a client that does not finish its handshake in time or falls silent, and a
//!   subscriber whose queue passes [`ChannelConfig::max_outbound`] are each cut off with a
//!   log line; the others never notice.

mod broker;
pub(crate) mod proto;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::signal::{SignalTarget, install_signal_handler};

/// Settings of a [`ChannelServer`]: `ChannelConfig::default()` and the setters, named after
/// the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelConfig {
    /// Where the broker listens. Port 0 picks a free port (see
    /// [`ChannelServer::local_addr`]). Defaults to `127.0.0.1:13005`.
    pub addr: SocketAddr,
    /// The secret every client must present in its handshake; a client with another one is
    /// refused and logged. `None` admits every client. Defaults to `None`.
    pub token: Option<String>,
    /// The largest frame a client may send, in bytes; a larger one cuts that client off.
    /// Defaults to 16 MiB.
    pub max_frame: usize,
    /// How many bytes may wait to be written to one client; past it the client (a subscriber
    /// that does not keep up) is cut off. Defaults to 64 MiB.
    pub max_outbound: usize,
    /// How long a new connection has to send its handshake. Defaults to 5 s.
    pub handshake_timeout: Duration,
    /// How long a member may stay silent before it is taken for gone and cut off (corepush
    /// instances say hello every second); `None` keeps silent members. Defaults to 10 s.
    pub idle_timeout: Option<Duration>,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        ChannelConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 13005)),
            token: None,
            max_frame: 16 << 20,
            max_outbound: 64 << 20,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(10)),
        }
    }
}

impl ChannelConfig {
    /// Sets [`addr`](ChannelConfig::addr).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Sets [`token`](ChannelConfig::token).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Sets [`max_frame`](ChannelConfig::max_frame).
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Sets [`max_outbound`](ChannelConfig::max_outbound).
    pub fn max_outbound(mut self, bytes: usize) -> Self {
        self.max_outbound = bytes;
        self
    }

    /// Sets [`handshake_timeout`](ChannelConfig::handshake_timeout).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`idle_timeout`](ChannelConfig::idle_timeout).
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

/// A running channel broker, on a thread of its own.
///
/// ```no_run
/// use corepush::{ChannelConfig, ChannelServer};
///
/// let broker = ChannelServer::start(ChannelConfig::default().token("secret"))?;
/// println!("listening on {}", broker.local_addr());
/// broker.run() // until Ctrl-C
/// # ; Ok::<(), corepush::Error>(())
/// ```
///
/// Dropping it stops the broker and waits for its thread.
///
/// # Testing a cluster in one process
///
/// Embedded on `127.0.0.1:0`, a broker joins N runtimes of one test process, so that a test
/// checks cross-instance behaviour in milliseconds with nothing installed: start them, wait
/// until each lists the others in [`Cluster::instances`](crate::Cluster::instances), act on one
/// and observe a client of another.
///
/// ```rust
/// use std::net::TcpStream;
/// use std::time::{Duration, Instant};
///
/// use corepush::{
///     BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer, Context, Handler, Message,
///     Runtime, ServerConfig,
/// };
///
/// struct Quiet;
///
/// impl Handler for Quiet {
///     fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
/// }
///
/// fn main() -> corepush::Result<()> {
///     // The broker, on a free port of the loopback.
///     let broker = ChannelServer::start(ChannelConfig::default().addr(([127, 0, 0, 1], 0).into()))?;
///     let instance = || {
///         let backend = BackendConfig::Channel(
///             ChannelBackendConfig::default().addr(broker.local_addr().to_string()),
///         );
///         Runtime::builder()
///             .workers(1)
///             .server(
///                 ServerConfig::websocket("ws", ([127, 0, 0, 1], 0).into())
///                     .backend(backend)
///                     .handler(|_| Quiet),
///             )
///             .start() // the broker assigns numbers 1, 2, …
///     };
///     let (a, b) = (instance()?, instance()?);
///     let (on_a, on_b) = (a.server("ws").unwrap(), b.server("ws").unwrap());
///
///     // Joined once each lists both.
///     let deadline = Instant::now() + Duration::from_secs(5);
///     while on_a.cluster().instances().len() < 2 || on_b.cluster().instances().len() < 2 {
///         assert!(Instant::now() < deadline, "the instances never met");
///         std::thread::sleep(Duration::from_millis(5));
///     }
///
///     // A client of B (counted as connected once its handshake is answered) …
///     let addr = b.local_addr("ws").unwrap();
///     let stream = TcpStream::connect(addr)?;
///     stream.set_read_timeout(Some(Duration::from_secs(5)))?;
///     let (mut client, _) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
///
///     // … receives a push made on A, which counts its own part: none of its clients.
///     assert_eq!(on_a.send_raw_to_all("hello from A")?, 0);
///     assert_eq!(client.read().unwrap().into_text().unwrap().as_str(), "hello from A");
///     // The counted form waits for every instance: call it off the core loops, as here.
///     assert_eq!(on_a.cluster().connection_count()?.value, 1);
///
///     drop(client);
///     a.shutdown()?;
///     b.shutdown()?;
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct ChannelServer {
    addr: SocketAddr,
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Stop {
    flag: AtomicBool,
    waker: mio::Waker,
}

impl Stop {
    fn stop(&self) {
        self.flag.store(true, Ordering::Release);
        // A broker whose loop already ended has nothing to wake.
        let _ = self.waker.wake();
    }
}

impl ChannelServer {
    /// Binds `config.addr` and starts the broker's thread. Fails on an address that cannot
    /// be bound ([`Error::Io`]) or an invalid setting ([`Error::Config`]).
    pub fn start(config: ChannelConfig) -> Result<ChannelServer> {
        if config.max_frame == 0 || config.max_outbound == 0 {
            return Err(Error::Config(
                "channel broker: max_frame and max_outbound must be > 0".into(),
            ));
        }
        let (broker, waker) = broker::Broker::bind(config)?;
        let addr = broker.local_addr()?;
        let stop = Arc::new(Stop {
            flag: AtomicBool::new(false),
            waker,
        });
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("corepush-channel".into())
            .spawn(move || broker.run(|| flag.flag.load(Ordering::Acquire)))?;
        Ok(ChannelServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address the broker listens on (with the port resolved, where 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts stopping the broker: it closes every connection and its thread ends. Returns at
    /// once; [`join`](ChannelServer::join) waits.
    pub fn shutdown(&self) {
        self.stop.stop();
    }

    /// Waits until the broker's thread has ended (after [`shutdown`](ChannelServer::shutdown),
    /// Ctrl-C under [`run`](ChannelServer::run), or a failure of its event loop).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Blocks until Ctrl-C or SIGTERM (or [`shutdown`](ChannelServer::shutdown) from another
    /// thread), then stops the broker. Fails if the signal handler cannot be installed.
    pub fn run(self) -> Result<()> {
        install_signal_handler(Box::new(SignalStop(self.stop.clone())))?;
        self.join();
        Ok(())
    }
}

impl Drop for ChannelServer {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct SignalStop(Arc<Stop>);

impl SignalTarget for SignalStop {
    fn stop(&self) {
        self.0.stop();
    }

    fn is_stopping(&self) -> bool {
        self.0.flag.load(Ordering::Acquire)
    }
}
