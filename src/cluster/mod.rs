//! Cluster backends: several instances act as one server. What every cluster backend shares
//! lives here — routing, the answers to other instances, liveness, the wait for answers —
//! and a [`Transport`] carries the encoded messages ([`wire`]) between instances: Redis
//! pub/sub ([`redis`]) or the channel broker ([`channel`]).
//!
//! # Rules
//!
//! * **Routing.** A push or close to ids goes only to the instances that own them (the id
//!   says which); by flag, to groups and to everyone it goes to every other instance, each
//!   delivering to its own members; the exclusions travel with it; a handle confined to one
//!   core loop (`this_worker()`, `worker(n)`) never leaves this instance. The message is
//!   handed to the transport first, then delivered here, so that remote clients are not
//!   served after local ones.
//! * **One door.** What arrives from another instance is framed once and enters the core
//!   loops through [`Delivery`], like a local push.
//! * **Never block a core loop.** Sending hands the message to the transport's thread.
//!   Cluster-wide answers wait for other instances, so on a core loop they fail with
//!   [`Error::WouldBlock`] unless this instance alone can answer.
//! * **Answers.** A query asks only the instances that can know (the owner of an id, or every
//!   live instance), replies go to the asker alone, the wait ends at the deadline, and the
//!   answer says whether every instance asked answered.
//!
//! The backend itself — routing the facade's calls — is
//! [`ClusterBackend`](crate::backend::cluster::ClusterBackend).

pub(crate) mod answer;
pub(crate) mod ask;
pub(crate) mod channel;
pub(crate) mod kept;
pub(crate) mod peers;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
pub(crate) mod redis_kept;
pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use log::debug;

use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::target::{Payload, Scope, Target, Workers};
use ask::Value;
use peers::Peers;
use wire::{Body, Envelope, WireTarget};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// One instance.
    To(u16),
    /// Every other instance.
    Others,
}

/// Carries encoded messages between the instances of a cluster.
///
/// # Contract
///
/// * `send` may be called from any thread, core loops included, and never blocks: it hands
///   the message to the transport's own thread. It fails with [`Error::Backend`] when the
///   engine is unreachable (the message is then not sent); a message accepted may still be
///   lost if the engine goes away before it is written — that is logged, and later sends
///   fail.
/// * What arrives from other instances is handed to [`Node::receive`] on the transport's
///   receiving thread, in the order each sender sent it.
/// * The transport says hello ([`Body::Hello`]) to every other instance when it starts and at
///   least every second, and goodbye when it stops, so that [`Peers`] knows who is live.
pub(crate) trait Transport: Send + Sync + fmt::Debug {
    fn send(&self, to: Route, message: Vec<u8>) -> Result<()>;
    /// Fails with [`Error::Backend`] while the engine is unreachable:
    /// a cluster-wide answer then cannot be had, even where no other instance is known.
    fn check(&self) -> Result<()>;
}

/// Whether a transport's link to its engine is up: set by the transport's threads, read by
/// every sender; while it is down, sends and cluster-wide answers fail with
/// [`Error::Backend`].
#[derive(Debug)]
pub(crate) struct LinkUp {
    up: AtomicBool,
    /// What is unreachable, for the error: "Redis", "the channel broker".
    engine: &'static str,
}

impl LinkUp {
    pub(crate) fn new(engine: &'static str) -> Self {
        LinkUp {
            up: AtomicBool::new(true),
            engine,
        }
    }

    pub(crate) fn set(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// `Err(Error::Backend)` while the link is down.
    pub(crate) fn check(&self) -> Result<()> {
        if self.is_up() {
            Ok(())
        } else {
            Err(Error::Backend(Box::new(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                format!("{} is unreachable", self.engine),
            ))))
        }
    }
}

/// One instance of a cluster, as its transport's threads see it.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) delivery: Arc<Delivery>,
    pub(crate) peers: Peers,
    pub(crate) me: u16,
}

impl Node {
    pub(crate) fn new(delivery: Arc<Delivery>, me: u16) -> Self {
        Node {
            delivery,
            peers: Peers::default(),
            me,
        }
    }

    /// Handles one message from another instance; answers go back through `transport`.
    /// True when it was the hello of an instance not live until now (the transport answers
    /// it with a hello, so that the newcomer counts this instance at once).
    pub(crate) fn receive(&self, bytes: &[u8], transport: &dyn Transport) -> bool {
        let env = match wire::decode(bytes) {
            Ok(env) => env,
            Err(e) => {
                debug!("cluster: a message that does not decode ({e}); skipped");
                return false;
            }
        };
        if env.origin == self.me {
            return false;
        }
        let from = env.origin;
        let fresh = self.peers.heard(from) && matches!(env.body, Body::Hello { up: true });
        let reply = |id: u64, value: &Value| {
            let mut out = Vec::new();
            let body = Body::Reply {
                id,
                answer: value.to_wire(),
            };
            wire::encode(
                &Envelope {
                    origin: self.me,
                    body,
                },
                &mut out,
            );
            if let Err(e) = transport.send(Route::To(from), out) {
                debug!("cluster: an answer to instance {from} was not sent: {e}");
            }
        };
        match env.body {
            Body::Push {
                target,
                except,
                worker,
                is_text,
                reply: wanted,
                payload,
            } => {
                let scope = Scope {
                    worker: worker.map(crate::id::WorkerId),
                    except: &except,
                };
                let payload = Payload {
                    is_text,
                    bytes: payload,
                };
                let n = settle(self.delivery.push(target_of(&target), payload, scope));
                if let Some(id) = wanted {
                    reply(id, &Value::Count(n as u64));
                }
            }
            Body::Close {
                target,
                except,
                worker,
                reply: wanted,
            } => {
                let scope = Scope {
                    worker: worker.map(crate::id::WorkerId),
                    except: &except,
                };
                let n = settle(self.delivery.close(target_of(&target), scope));
                if let Some(id) = wanted {
                    reply(id, &Value::Count(n as u64));
                }
            }
            Body::Message {
                action,
                workers,
                reply: wanted,
                payload,
            } => {
                let workers = match workers {
                    None => Workers::All,
                    Some(list) => {
                        Workers::Some(list.into_iter().map(crate::id::WorkerId).collect())
                    }
                };
                let scope = Scope {
                    worker: None,
                    except: &[],
                };
                let n = settle(self.delivery.send_message(action, payload, &workers, scope));
                if let Some(id) = wanted {
                    reply(id, &Value::Count(n as u64));
                }
            }
            Body::Query {
                id,
                except,
                worker,
                query,
            } => {
                let scope = Scope {
                    worker: worker.map(crate::id::WorkerId),
                    except: &except,
                };
                reply(id, &answer::answer(&self.delivery, &query, scope));
            }
            Body::Reply { id, answer } => self.peers.answer(id, from, Value::from_wire(&answer)),
            Body::Hello { up: true } => {}
            Body::Hello { up: false } => self.peers.gone(from),
        }
        fresh
    }
}

/// What a delivery of another instance's call came to, as a count.
fn settle(outcome: Result<usize>) -> usize {
    match outcome {
        Ok(n) => n,
        Err(Error::MailboxFull { queued }) => queued,
        Err(e) => {
            debug!("cluster: a call from another instance was not delivered: {e}");
            0
        }
    }
}

fn target_of(target: &WireTarget<'_>) -> Target {
    match target {
        WireTarget::Clients(ids) => Target::Clients(ids.clone()),
        WireTarget::Flags(names) => Target::Flags(names.iter().map(|n| (*n).to_owned()).collect()),
        WireTarget::Groups(names) => {
            Target::Groups(names.iter().map(|n| (*n).to_owned()).collect())
        }
        WireTarget::All => Target::All,
    }
}

/// A hello (`up`) or goodbye from instance `me`, encoded.
pub(crate) fn hello(me: u16, up: bool) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(
        &Envelope {
            origin: me,
            body: Body::Hello { up },
        },
        &mut out,
    );
    out
}
