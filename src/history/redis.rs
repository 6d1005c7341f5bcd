//! The history of the Redis backend (feature `redis`): it lives in Redis, so that any
//! instance can recover a client that left another one.
//!
//! # Keys and the append
//!
//! Under `{prefix}:{server}:h:`, `epoch` holds the epoch (made by the first append or read
//! that finds it missing, so a Redis that lost its keys gives a new one), and each kept name
//! has a counter `{g|f}:{name}:o` and a list `{g|f}:{name}:l` of `offset:ms:` + payload
//! entries within the name's bounds. A push to kept names is one script, run by this
//! instance's appender thread: per name `INCR` the counter, `RPUSH`, trim by count and age;
//! then `PUBLISH` on `{prefix}:{server}:h:pub` the epoch, the offsets and the message. So the
//! offsets of a name reach every subscriber in order, each message once.
//!
//! # Delivery
//!
//! A push to kept names is *not* delivered at once by the instance that made it: every
//! instance, that one included, delivers it when it comes back on the history channel, on
//! its subscriber thread, in offset order. (Calls made by one thread to one connection keep
//! their order among pushes to kept names, and among other calls, but not across the two.)
//!
//! # The seam
//!
//! Each instance keeps, per name, a delivery lock with the last offset it delivered and a
//! list of recovering clients with the offset up to which they were given the history. The
//! subscriber delivers offset `o` under the name's lock, skipping the clients whose
//! recovery covered `o`. A recovery on this instance takes the lock, makes the client a
//! member, reads the epoch, the last offset `L` and the list in one script (a snapshot), queues
//! the missed entries up to `L` through the delivery door, and notes "skip this client up to
//! `L`". Every message up to `L` was published before the snapshot: it was either delivered
//! here before the client was a member (the client gets it from the history) or is still on
//! its way to the subscriber, which then skips the client; every message after `L` is
//! published after the snapshot, when the client is a member, and reaches it live, after
//! the missed ones (the lock orders the hand-over to the door).
//!
//! # Faults
//!
//! Recoveries and positions read Redis synchronously, off core loops only (on a core loop
//! they fail with [`Error::WouldBlock`]); with Redis unreachable they fail with
//! [`Error::Backend`] — never a wrong "recovered". Pushes to kept names fail with
//! [`Error::Backend`] while the appender cannot reach Redis. A message published while this
//! instance's subscription was down is not delivered live here (the subscription is made
//! again); its clients can recover it.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use log::{info, warn};
use parking_lot::Mutex;

use super::redis_script::{APPEND, READ, entry, split};
use super::wire::{Kept, decode, encode};
use super::{HistoryConfig, Keeper, Kind, Recovery, StreamPosition, covers, new_epoch};
use crate::cluster::LinkUp;
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::id::ClientId;
use crate::mailbox::current_worker_runtime;
use crate::target::{Payload, Scope, Target};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(100);
/// Appends waiting for the appender; past it a push fails rather than grow memory.
const QUEUE: usize = 64 * 1024;

/// One name's delivery state on this instance.
#[derive(Debug, Default)]
struct NameState {
    epoch: String,
    delivered: u64,
    /// Clients given the history up to an offset: the subscriber skips them up to it.
    skip: Vec<(ClientId, u64)>,
}

/// One name's delivery state, locked on its own.
type Shared = Arc<Mutex<NameState>>;

/// One append for the appender thread.
struct Append {
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
}

/// The Redis backend's history (see the module docs).
pub(crate) struct RedisKeeper {
    config: HistoryConfig,
    delivery: Arc<Delivery>,
    client: redis::Client,
    /// `{prefix}:{server}:h:`
    base: String,
    appends: Sender<Append>,
    reader: Mutex<Option<redis::Connection>>,
    states: Mutex<HashMap<(Kind, Box<str>), Shared>>,
    up: LinkUp,
}

impl std::fmt::Debug for RedisKeeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeeper")
            .field("base", &self.base)
            .finish()
    }
}

impl RedisKeeper {
    /// Connects, subscribes to the history channel and starts the appender and subscriber
    /// threads (one handle joins both); `base` is `{prefix}:{server}`.
    pub(crate) fn start(
        config: HistoryConfig,
        url: &str,
        base: &str,
        delivery: Arc<Delivery>,
    ) -> Result<(Arc<RedisKeeper>, JoinHandle<()>)> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::Config(format!("redis url {url:?}: {e}")))?;
        let appender = connect(&client)?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let keeper = Arc::new(RedisKeeper {
            config,
            delivery,
            client,
            base: format!("{base}:h:"),
            appends: tx,
            reader: Mutex::new(None),
            states: Mutex::new(HashMap::new()),
            up: LinkUp::new("Redis"),
        });
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let sub = keeper.clone();
        let subscriber = thread::Builder::new()
            .name("corepush-history-sub".into())
            .spawn(move || sub.subscribe_loop(ready_tx))?;
        ready
            .recv_timeout(CONNECT_TIMEOUT * 2)
            .map_err(|_| Error::Backend("subscribing to Redis timed out".into()))??;
        let app = keeper.clone();
        let thread = thread::Builder::new()
            .name("corepush-history-append".into())
            .spawn(move || {
                app.append_loop(appender, &rx);
                let _ = subscriber.join();
            })?;
        Ok((keeper, thread))
    }

    fn channel(&self) -> String {
        format!("{}pub", self.base)
    }

    fn keys(&self, kind: Kind, name: &str) -> (String, String) {
        let k = match kind {
            Kind::Group => "g",
            Kind::Flag => "f",
        };
        (
            format!("{}{k}:{name}:o", self.base),
            format!("{}{k}:{name}:l", self.base),
        )
    }

    fn state(&self, kind: Kind, name: &str) -> Shared {
        self.states
            .lock()
            .entry((kind, name.into()))
            .or_default()
            .clone()
    }

    /// Reads a name's epoch, last offset and entries in one script, on the reader
    /// connection (made again after an error).
    fn read(&self, kind: Kind, name: &str) -> Result<(String, u64, Vec<Vec<u8>>)> {
        if current_worker_runtime().is_some() {
            return Err(Error::WouldBlock);
        }
        let age = self
            .config
            .bound(kind, name)
            .and_then(|b| b.max_age)
            .map_or(0, |a| a.as_millis().max(1) as u64);
        let (counter, list) = self.keys(kind, name);
        let mut reader = self.reader.lock();
        let con = match reader.as_mut() {
            Some(con) => con,
            None => reader.insert(connect(&self.client)?),
        };
        let read: redis::RedisResult<Vec<Vec<u8>>> = redis::Script::new(READ)
            .key(format!("{}epoch", self.base))
            .key(counter)
            .key(list)
            .arg(new_epoch())
            .arg(age)
            .invoke(con);
        let mut out = match read {
            Ok(out) => out.into_iter(),
            Err(e) => {
                *reader = None;
                return Err(Error::Backend(Box::new(e)));
            }
        };
        let epoch = String::from_utf8_lossy(&out.next().unwrap_or_default()).into_owned();
        let last = std::str::from_utf8(&out.next().unwrap_or_default())
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok((epoch, last, out.collect()))
    }

    fn append_loop(&self, mut con: redis::Connection, rx: &Receiver<Append>) {
        let script = redis::Script::new(APPEND);
        loop {
            let job = match rx.recv_timeout(POLL) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) if self.delivery.is_stopping() => return,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let mut invocation = script.prepare_invoke();
            for k in &job.keys {
                invocation.key(k);
            }
            for a in &job.args {
                invocation.arg(a.as_slice());
            }
            let done: redis::RedisResult<String> = invocation.invoke(&mut con);
            if let Err(e) = done {
                self.up.set(false);
                let lost = 1 + rx.try_iter().count();
                warn!("history: Redis is unreachable ({e}); {lost} message(s) not kept or sent");
                let mut pause = Duration::from_millis(50);
                loop {
                    if self.delivery.is_stopping() {
                        return;
                    }
                    if let Ok(c) = connect(&self.client) {
                        con = c;
                        break;
                    }
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                self.up.set(true);
                info!("history: Redis is reachable again");
            }
        }
    }

    fn subscribe_loop(&self, ready: std::sync::mpsc::Sender<Result<()>>) {
        let mut ready = Some(ready);
        let channel = self.channel();
        loop {
            if self.delivery.is_stopping() {
                return;
            }
            let subscribed = connect(&self.client).and_then(|mut con| {
                let mut sub = con.as_pubsub();
                sub.subscribe(&channel)
                    .and_then(|()| sub.set_read_timeout(Some(POLL)))
                    .map_err(|e| Error::Backend(Box::new(e)))?;
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(()));
                }
                loop {
                    if self.delivery.is_stopping() {
                        return Ok(());
                    }
                    match sub.get_message() {
                        Ok(msg) => self.deliver(msg.get_payload_bytes()),
                        Err(e) if e.is_timeout() => {}
                        Err(e) => return Err(Error::Backend(Box::new(e))),
                    }
                }
            });
            match (subscribed, ready.take()) {
                (Ok(()), _) => return,
                (Err(e), Some(r)) => {
                    let _ = r.send(Err(e));
                    return;
                }
                (Err(e), None) => {
                    warn!("history: lost the Redis subscription ({e}); subscribing again");
                    thread::sleep(POLL);
                }
            }
        }
    }

    /// Delivers one message from the history channel to this instance's members.
    fn deliver(&self, bytes: &[u8]) {
        let Some((epoch, offsets, message)) = split(bytes) else {
            warn!("history: a message that does not decode; skipped");
            return;
        };
        let Some(kept) = decode(message) else {
            warn!("history: a message that does not decode; skipped");
            return;
        };
        let mut keyed: Vec<(&str, u64)> = kept
            .names
            .iter()
            .zip(&kept.is_kept)
            .filter(|(_, k)| **k)
            .map(|(n, _)| n.as_str())
            .zip(offsets)
            .collect();
        keyed.sort_unstable();
        keyed.dedup_by(|a, b| a.0 == b.0);
        let states: Vec<_> = keyed
            .iter()
            .map(|(n, _)| self.state(kept.kind, n))
            .collect();
        let mut guards: Vec<_> = states.iter().map(|s| s.lock()).collect();
        let mut except = kept.except.clone();
        for (st, (_, offset)) in guards.iter_mut().zip(&keyed) {
            if st.epoch != epoch {
                **st = NameState {
                    epoch: epoch.to_owned(),
                    ..NameState::default()
                };
            }
            except.extend(
                st.skip
                    .iter()
                    .filter(|(_, upto)| upto >= offset)
                    .map(|(id, _)| *id),
            );
            st.skip.retain(|(_, upto)| upto > offset);
            st.delivered = st.delivered.max(*offset);
        }
        let target = match kept.kind {
            Kind::Group => Target::Groups(kept.names.clone()),
            Kind::Flag => Target::Flags(kept.names.clone()),
        };
        let payload = Payload {
            is_text: kept.is_text,
            bytes: &kept.payload,
        };
        let scope = Scope {
            worker: None,
            except: &except,
        };
        if let Err(e) = self.delivery.push(target, payload, scope) {
            warn!("history: delivering a kept message failed: {e}");
        }
        drop(guards);
    }
}

impl Keeper for RedisKeeper {
    fn push(
        &self,
        target: &Target,
        payload: Payload<'_>,
        scope: Scope<'_>,
    ) -> Option<Result<usize>> {
        let (kind, names) = super::kept_target(target, scope)?;
        let bounds: Vec<_> = names.iter().map(|n| self.config.bound(kind, n)).collect();
        if bounds.iter().all(Option::is_none) {
            return None;
        }
        Some((|| {
            self.delivery.check_running()?;
            self.up.check()?;
            let kept = Kept {
                kind,
                names: names.to_vec(),
                is_kept: bounds.iter().map(Option::is_some).collect(),
                except: scope.except.to_vec(),
                is_text: payload.is_text,
                payload: payload.bytes.to_vec(),
            };
            let mut keys = vec![format!("{}epoch", self.base)];
            let mut entry = vec![u8::from(payload.is_text)];
            entry.extend_from_slice(payload.bytes);
            let mut args = vec![new_epoch().into_bytes(), entry, encode(&kept)];
            args.push(self.channel().into_bytes());
            for (name, bound) in names.iter().zip(&bounds) {
                let Some(bound) = bound else { continue };
                let (counter, list) = self.keys(kind, name);
                keys.extend([counter, list]);
                args.push(bound.max_messages.to_string().into_bytes());
                let age = bound.max_age.map_or(0, |a| a.as_millis().max(1) as u64);
                args.push(age.to_string().into_bytes());
            }
            // What it will reach here, when it comes back from Redis.
            let mut reached: Vec<ClientId> = names
                .iter()
                .flat_map(|n| match kind {
                    Kind::Group => self.delivery.group_members(n, scope),
                    Kind::Flag => self.delivery.flag_members(n, scope),
                })
                .collect();
            reached.sort_unstable();
            reached.dedup();
            self.appends
                .try_send(Append { keys, args })
                .map_err(|e| Error::queue_refused(e, "the history's Redis appender"))?;
            Ok(reached.len())
        })())
    }

    fn recover(
        &self,
        id: ClientId,
        kind: Kind,
        name: &str,
        since: Option<&StreamPosition>,
        scope: Scope<'_>,
    ) -> Result<Recovery> {
        if current_worker_runtime().is_some() {
            return Err(Error::WouldBlock);
        }
        self.up.check()?;
        let state = self.state(kind, name);
        let mut st = state.lock();
        let is_member = match kind {
            Kind::Group => self.delivery.join(id, name, scope),
            Kind::Flag => self.delivery.bind(id, name, false, scope),
        };
        let (epoch, last, entries) = self.read(kind, name)?;
        let mut recovery = Recovery {
            recovered: false,
            missed: 0,
            position: StreamPosition {
                epoch: epoch.clone(),
                offset: last,
            },
            is_member,
        };
        if !is_member {
            return Ok(recovery);
        }
        if st.epoch == epoch && last > st.delivered {
            st.skip.push((id, last));
        } else if st.epoch != epoch {
            // Nothing of this epoch delivered here yet: what is on its way is skipped.
            *st = NameState {
                epoch: epoch.clone(),
                delivered: 0,
                skip: vec![(id, last)],
            };
        }
        let delivered = st.delivered;
        st.skip.retain(|(_, upto)| *upto > delivered);
        let entries: Vec<(u64, &[u8])> = entries.iter().filter_map(|e| entry(e)).collect();
        let first = entries.first().map(|(o, _)| *o);
        let Some(since) = since.filter(|s| covers(s, &epoch, last, first)) else {
            return Ok(recovery);
        };
        let to = Target::Clients(vec![id]);
        for (offset, body) in entries {
            if offset <= since.offset || offset > last {
                continue;
            }
            let Some((&is_text, bytes)) = body.split_first() else {
                continue;
            };
            let payload = Payload {
                is_text: is_text == 1,
                bytes,
            };
            self.delivery.push(to.clone(), payload, scope)?;
            recovery.missed += 1;
        }
        recovery.recovered = true;
        Ok(recovery)
    }

    fn position(&self, kind: Kind, name: &str) -> Result<StreamPosition> {
        self.up.check()?;
        let (epoch, offset, _) = self.read(kind, name)?;
        Ok(StreamPosition { epoch, offset })
    }
}

fn connect(client: &redis::Client) -> Result<redis::Connection> {
    let con = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| Error::Backend(Box::new(e)))?;
    con.set_read_timeout(Some(CONNECT_TIMEOUT))
        .and_then(|()| con.set_write_timeout(Some(CONNECT_TIMEOUT)))
        .map_err(|e| Error::Backend(Box::new(e)))?;
    Ok(con)
}
