//! Kept contexts in Redis (feature `redis`): one key per flag,
//! `{prefix}:{server}:kept:{flag}`, holding the JSON record (see [`super::kept`]) with a `PX`
//! expiry of the keep time. A close's write goes to a thread of its own (never a core loop);
//! a restore takes the key with one script (`GET` and `DEL`), so that across the cluster only
//! one restore gets it.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use log::warn;
use parking_lot::Mutex;

use super::kept::KeptStore;
use super::redis::connect;
use crate::config::RedisConfig;
use crate::delivery::Delivery;
use crate::error::{Error, Result};

/// Records waiting for the writer; past it a close's context is not copied to Redis (and a
/// warning says so) rather than grow memory.
const QUEUE: usize = 16 * 1024;
/// How often the writer looks whether the runtime is stopping.
const POLL: Duration = Duration::from_millis(100);

/// Takes a key once: its value, deleted in the same step.
const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v";

/// The Redis store of one server's kept contexts.
pub(crate) struct RedisKept {
    client: redis::Client,
    /// The connection restores take keys on (one at a time; restores are rare).
    taker: Mutex<Option<redis::Connection>>,
    prefix: String,
    tx: Sender<Write>,
}

/// A record for the writer: the key, the record, and whether it is written only where the
/// key is absent (a put-back must not replace a newer close's context).
struct Write {
    key: String,
    record: Vec<u8>,
    only_new: bool,
}

impl std::fmt::Debug for RedisKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKept")
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Starts the store of server `server` and its writer thread, which ends once the runtime
/// stops.
pub(crate) fn start(
    config: &RedisConfig,
    server: &str,
    keep: Duration,
    delivery: Arc<Delivery>,
) -> Result<(Arc<RedisKept>, JoinHandle<()>)> {
    let client = redis::Client::open(config.url.as_str())
        .map_err(|e| Error::Config(format!("redis url {:?}: {e}", config.url)))?;
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let writer_client = client.clone();
    let keep_ms = keep.as_millis().max(1) as u64;
    let writer = thread::Builder::new()
        .name(format!("corepush-redis-kept-{}", delivery.instance()))
        .spawn(move || write_loop(&writer_client, keep_ms, &rx, &delivery))?;
    let store = RedisKept {
        client,
        taker: Mutex::new(None),
        prefix: format!("{}:{server}:kept:", config.prefix),
        tx,
    };
    Ok((Arc::new(store), writer))
}

impl RedisKept {
    fn write(&self, flag: &str, record: Vec<u8>, only_new: bool) {
        let write = Write {
            key: format!("{}{flag}", self.prefix),
            record,
            only_new,
        };
        match self.tx.try_send(write) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                warn!("the Redis writer of kept contexts is behind: flag {flag:?} not kept there")
            }
        }
    }
}

impl KeptStore for RedisKept {
    fn keep(&self, flag: &str, record: Vec<u8>) {
        self.write(flag, record, false);
    }

    fn put_back(&self, flag: &str, record: Vec<u8>) {
        self.write(flag, record, true);
    }

    fn take(&self, flag: &str) -> Result<Option<Vec<u8>>> {
        let mut taker = self.taker.lock();
        let con = match &mut *taker {
            Some(con) => con,
            None => taker.insert(connect(&self.client)?),
        };
        let key = format!("{}{flag}", self.prefix);
        match redis::Script::new(TAKE).key(&key).invoke(con) {
            Ok(value) => Ok(value),
            Err(e) => {
                // Connect afresh next time.
                *taker = None;
                Err(Error::Backend(Box::new(e)))
            }
        }
    }
}

/// Writes each kept record with its expiry; reconnects on a failure (the record that failed
/// is lost, and a warning says so).
fn write_loop(client: &redis::Client, keep_ms: u64, rx: &Receiver<Write>, delivery: &Delivery) {
    let mut con = None;
    loop {
        let write = match rx.recv_timeout(POLL) {
            Ok(item) => item,
            Err(RecvTimeoutError::Timeout) if !delivery.is_stopping() => continue,
            Err(_) => return,
        };
        if con.is_none() {
            con = connect(client).ok();
        }
        let written = con.as_mut().map(|c| {
            let mut set = redis::cmd("SET");
            set.arg(&write.key).arg(write.record).arg("PX").arg(keep_ms);
            if write.only_new {
                set.arg("NX");
            }
            // `NX` answers nil where the key was there: not an error.
            set.query::<Option<String>>(c).map(drop)
        });
        if !matches!(written, Some(Ok(()))) {
            let key = &write.key;
            warn!("Redis unreachable: the context kept under {key:?} is not in Redis");
            con = None;
        }
    }
}
