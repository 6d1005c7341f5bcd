//! The Redis transport (feature `redis`): instances of one server talk over Redis pub/sub,
//! with the synchronous `redis` client on two threads of their own — no async runtime, and
//! nothing on a core loop.
//!
//! * **Channels.** `{prefix}:{server}:all` carries what every instance must see (pushes by
//!   flag, to groups, to everyone; hellos; queries to all); `{prefix}:{server}:i:{n}` what
//!   only instance `n` must see (pushes and closes to its clients, queries by id, answers).
//!   Two services with two prefixes never see each other.
//! * **Identity.** The instance number is claimed as the key `{prefix}:instance:{n}` (`SET NX`
//!   with a lease, renewed every second by a script that checks the value is still ours): a
//!   second instance with the same number fails at start. After a Redis restart the key is
//!   claimed again.
//! * **Publishing** never blocks the caller: messages go to the publisher thread, which
//!   writes everything pending as one pipeline of `PUBLISH` commands.
//! * **Faults.** Unreachable at start: [`Error::Backend`]. Going away later: sends fail with
//!   [`Error::Backend`] until it is back; both threads reconnect with backoff, the subscriber
//!   subscribes again and the lease is claimed again; each transition is logged once. Local
//!   delivery goes on meanwhile.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{error, info, warn};

use super::{LinkUp, Node, Route, Transport, hello};
use crate::config::RedisConfig;
use crate::error::{Error, Result};
use crate::id::MAX_INSTANCES;

/// How often the lease is renewed and a hello is said.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a claimed instance number stays claimed without renewal.
const LEASE: Duration = Duration::from_secs(5);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the threads look whether the runtime is stopping.
const POLL: Duration = Duration::from_millis(100);
/// Messages waiting for the publisher; past it a send fails rather than grow memory.
const QUEUE: usize = 64 * 1024;
/// Messages written in one pipeline at most.
const BATCH: usize = 1024;
/// The longest pause between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Renews the lease if it is still ours, claims it again if it is gone (Redis restarted),
/// and answers the holder otherwise.
const RENEW: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return ARGV[1]
elseif not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return v";

/// Deletes the lease if it is ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";

struct Outgoing {
    channel: String,
    bytes: Vec<u8>,
}

/// The sending half, shared by the facade's threads and the subscriber.
pub(crate) struct RedisTransport {
    tx: Sender<Outgoing>,
    connected: LinkUp,
    all: String,
    direct: String,
}

impl std::fmt::Debug for RedisTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTransport")
            .field("all", &self.all)
            .field("connected", &self.connected.is_up())
            .finish()
    }
}

impl Transport for RedisTransport {
    fn check(&self) -> Result<()> {
        self.connected.check()
    }

    fn send(&self, to: Route, message: Vec<u8>) -> Result<()> {
        self.connected.check()?;
        let channel = match to {
            Route::Others => self.all.clone(),
            Route::To(n) => format!("{}{n}", self.direct),
        };
        self.tx
            .try_send(Outgoing {
                channel,
                bytes: message,
            })
            .map_err(|e| Error::queue_refused(e, "the Redis publisher"))
    }
}

/// What both threads know of their link.
struct Link {
    client: redis::Client,
    /// Another instance holds this one's number (see `renew`).
    clashed: AtomicBool,
    node: Arc<Node>,
    lease_key: String,
    token: String,
    url: String,
}

/// Connects to Redis, claims the instance number, subscribes, and starts the publisher and
/// subscriber threads of one server's cluster backend.
/// Returns the transport and its two threads, which end once the runtime stops (the
/// publisher after saying goodbye and releasing the lease).
pub(crate) fn start(
    config: &RedisConfig,
    server: &str,
    node: Arc<Node>,
) -> Result<(Arc<RedisTransport>, Vec<JoinHandle<()>>)> {
    let client = redis::Client::open(config.url.as_str())
        .map_err(|e| Error::Config(format!("redis url {:?}: {e}", config.url)))?;
    let me = node.me;
    let link = Arc::new(Link {
        client,
        clashed: AtomicBool::new(false),
        lease_key: format!("{}:instance:{me}", config.prefix),
        token: token(config, node.delivery.runtime_id()),
        url: config.url.clone(),
        node,
    });
    let mut publisher = connect(&link.client)?;
    claim(&link, &mut publisher)?;
    let all = format!("{}:{server}:all", config.prefix);
    let direct = format!("{}:{server}:i:", config.prefix);
    let mine = format!("{direct}{me}");
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let transport = Arc::new(RedisTransport {
        tx,
        connected: LinkUp::new("Redis"),
        all: all.clone(),
        direct,
    });
    // Subscribed before serving, so that nothing sent to this instance from now on is missed.
    let channels = [all, mine];
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (sub_link, sub_transport) = (link.clone(), transport.clone());
    let subscriber = thread::Builder::new()
        .name(format!("corepush-redis-sub-{me}"))
        .spawn(move || subscribe_loop(&sub_link, &sub_transport, &channels, ready_tx))?;
    ready
        .recv_timeout(CONNECT_TIMEOUT * 2)
        .map_err(|_| Error::Backend("subscribing to Redis timed out".into()))??;
    // Hello before serving, so that the others count this instance at once.
    transport.send(Route::Others, hello(me, true))?;
    let pub_transport = transport.clone();
    let publisher = thread::Builder::new()
        .name(format!("corepush-redis-pub-{me}"))
        .spawn(move || publish_loop(&link, &pub_transport, publisher, &rx))?;
    info!(
        "instance {me}: on Redis at {} (prefix {:?})",
        config.url, config.prefix
    );
    Ok((transport, vec![subscriber, publisher]))
}

/// A value unique to this runtime, stored in the lease so that it knows its own claim.
/// The same for every call in one runtime: the number a runtime claimed before it started
/// is found to be its own by its transports.
fn token(config: &RedisConfig, runtime: u64) -> String {
    static BOOT: OnceLock<u128> = OnceLock::new();
    let nanos = BOOT.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    let name = config.name.as_deref().unwrap_or("corepush");
    format!("{name}/{}/{runtime}/{nanos}", std::process::id())
}

/// Claims the lowest instance number that no live instance of the cluster holds, for a
/// runtime that left the number to the cluster.
pub(crate) fn claim_free(config: &RedisConfig, runtime: u64) -> Result<u16> {
    let client = redis::Client::open(config.url.as_str())
        .map_err(|e| Error::Config(format!("redis url {:?}: {e}", config.url)))?;
    let mut con = connect(&client)?;
    let token = token(config, runtime);
    for n in 1..MAX_INSTANCES {
        let key = format!("{}:instance:{n}", config.prefix);
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .query(&mut con)
            .map_err(|e| Error::Backend(Box::new(e)))?;
        if set.is_some() {
            return Ok(n);
        }
    }
    Err(Error::Config(format!(
        "every instance number of {:?} is claimed",
        config.prefix
    )))
}

pub(crate) fn connect(client: &redis::Client) -> Result<redis::Connection> {
    let con = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| Error::Backend(Box::new(e)))?;
    con.set_write_timeout(Some(CONNECT_TIMEOUT))
        .map_err(|e| Error::Backend(Box::new(e)))?;
    con.set_read_timeout(Some(CONNECT_TIMEOUT))
        .map_err(|e| Error::Backend(Box::new(e)))?;
    Ok(con)
}

/// Claims (or renews) the instance number; a clash is a configuration error.
fn claim(link: &Link, con: &mut redis::Connection) -> Result<()> {
    let holder: String = redis::Script::new(RENEW)
        .key(&link.lease_key)
        .arg(&link.token)
        .arg(LEASE.as_millis() as u64)
        .invoke(con)
        .map_err(|e| Error::Backend(Box::new(e)))?;
    if holder == link.token {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "instance {} is already claimed on {} by {holder:?} (key {:?}): give every \
             instance its own RuntimeConfig::instance",
            link.node.me, link.url, link.lease_key
        )))
    }
}

fn publish_loop(
    link: &Link,
    transport: &RedisTransport,
    mut con: redis::Connection,
    rx: &Receiver<Outgoing>,
) {
    let me = link.node.me;
    let mut beat = Instant::now() + HEARTBEAT;
    let mut batch: Vec<Outgoing> = Vec::new();
    loop {
        if link.node.delivery.is_stopping() {
            // Goodbye: the others stop waiting for this instance at once.
            let mut pipe = redis::pipe();
            pipe.cmd("PUBLISH")
                .arg(&transport.all)
                .arg(hello(me, false))
                .ignore();
            let _: redis::RedisResult<()> = pipe.query(&mut con);
            let _: redis::RedisResult<i64> = redis::Script::new(RELEASE)
                .key(&link.lease_key)
                .arg(&link.token)
                .invoke(&mut con);
            transport.connected.set(false);
            return;
        }
        match rx.recv_timeout(POLL.min(beat.saturating_duration_since(Instant::now()))) {
            Ok(first) => {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(m) => batch.push(m),
                        Err(_) => break,
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let heartbeat = Instant::now() >= beat;
        if batch.is_empty() && !heartbeat {
            continue;
        }
        let mut pipe = redis::pipe();
        for m in &batch {
            pipe.cmd("PUBLISH").arg(&m.channel).arg(&m.bytes).ignore();
        }
        if heartbeat {
            beat = Instant::now() + HEARTBEAT;
            pipe.cmd("PUBLISH")
                .arg(&transport.all)
                .arg(hello(me, true))
                .ignore();
        }
        let written: redis::RedisResult<()> = pipe.query(&mut con);
        let lost = batch.len();
        batch.clear();
        let renewed = if heartbeat && written.is_ok() {
            renew(link, &mut con)
        } else {
            written.map_err(|e| Error::Backend(Box::new(e)))
        };
        if let Err(e) = renewed {
            transport.connected.set(false);
            error!(
                "instance {me}: Redis at {} is unreachable ({e}); {lost} message(s) lost; reconnecting",
                link.url
            );
            match reconnect(link, || {
                connect(&link.client).and_then(|mut c| renew(link, &mut c).map(|()| c))
            }) {
                Some(c) => con = c,
                None => return,
            }
            // What piled up while unreachable was refused at the door, but drop stragglers.
            let dropped = rx.try_iter().count();
            if dropped > 0 {
                warn!(
                    "instance {me}: {dropped} message(s) queued before Redis went away were not sent"
                );
            }
            transport.connected.set(true);
            info!("instance {me}: Redis at {} is reachable again", link.url);
        }
    }
}

/// Renews the lease. When another instance holds it (it claimed the number while Redis had
/// forgotten this one's claim, after a restart), this instance serves on — its clients' ids
/// cannot change — and says so once per clash: ids may then collide, and one of the two
/// should be restarted.
fn renew(link: &Link, con: &mut redis::Connection) -> Result<()> {
    match claim(link, con) {
        Err(Error::Config(m)) => {
            if !link.clashed.swap(true, Ordering::AcqRel) {
                error!("{m}; client ids may collide: restart one of the two instances");
            }
            Ok(())
        }
        Ok(()) => {
            if link.clashed.swap(false, Ordering::AcqRel) {
                info!("instance {}: holds its number again", link.node.me);
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Tries `attempt` with growing pauses until it works or the runtime stops.
fn reconnect<T>(link: &Link, mut attempt: impl FnMut() -> Result<T>) -> Option<T> {
    let mut pause = Duration::from_millis(50);
    loop {
        if link.node.delivery.is_stopping() {
            return None;
        }
        match attempt() {
            Ok(v) => return Some(v),
            Err(_) => {
                thread::sleep(pause);
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Subscribes to this instance's channels and hands what arrives to the node, until the
/// runtime stops; on a lost connection, connects and subscribes again. `ready` hears once
/// whether the first subscription worked.
fn subscribe_loop(
    link: &Link,
    transport: &RedisTransport,
    channels: &[String; 2],
    ready: std::sync::mpsc::Sender<Result<()>>,
) {
    let me = link.node.me;
    let mut ready = Some(ready);
    loop {
        let con = match ready.as_ref() {
            Some(_) => connect(&link.client),
            None => match reconnect(link, || connect(&link.client)) {
                Some(c) => Ok(c),
                None => return,
            },
        };
        let mut con = match con {
            Ok(c) => c,
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                    return;
                }
                continue;
            }
        };
        // The subscription lives as long as this `PubSub`: dropping it unsubscribes.
        let mut sub = con.as_pubsub();
        let subscribed = sub
            .subscribe(&channels[..])
            .and_then(|()| sub.set_read_timeout(Some(POLL)));
        match (subscribed, ready.take()) {
            (Ok(()), Some(r)) => {
                let _ = r.send(Ok(()));
            }
            (Ok(()), None) => info!("instance {me}: subscribed to Redis again"),
            (Err(e), Some(r)) => {
                let _ = r.send(Err(Error::Backend(Box::new(e))));
                return;
            }
            (Err(e), None) => {
                warn!("instance {me}: subscribing to Redis failed ({e}); trying again");
                thread::sleep(POLL);
                continue;
            }
        }
        loop {
            if link.node.delivery.is_stopping() {
                return;
            }
            match sub.get_message() {
                Ok(msg) => {
                    if link.node.receive(msg.get_payload_bytes(), transport) {
                        // A newcomer: answer its hello at once, so that it counts this
                        // instance without waiting for the next heartbeat.
                        let _ = transport.send(Route::Others, hello(me, true));
                    }
                }
                Err(e) if e.is_timeout() => {}
                Err(e) => {
                    warn!("instance {me}: lost the Redis subscription ({e}); subscribing again");
                    break;
                }
            }
        }
    }
}
