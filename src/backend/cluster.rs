//! The cluster backend: this instance's delivery door plus a [`Transport`] to the other
//! instances; the rules it keeps are in [`crate::cluster`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod restore;

use super::Backend;
use crate::cluster::answer;
use crate::cluster::ask::{Gathered, Request, Value};
use crate::cluster::kept::KeptStore;
use crate::cluster::wire::{self, Body, Envelope, Query, WireTarget};
use crate::cluster::{Node, Route, Transport};
use crate::delivery::Delivery;
use crate::error::{Error, Result};
use crate::id::ClientId;
use crate::mailbox::current_worker_runtime;
use crate::registry::DataValue;
use crate::restore::Restored;
use crate::target::{Payload, Scope, Target, Workers};

/// A cluster backend: this instance's delivery door plus a transport to the others.
#[derive(Debug)]
pub(crate) struct ClusterBackend {
    node: Arc<Node>,
    transport: Arc<dyn Transport>,
    query_timeout: Duration,
    /// Whether answers from other instances may be waited for on a core loop: only where the
    /// core loops hold no connections (a business process behind gateways).
    waits_on_core_loops: bool,
    /// Where closed connections' contexts are kept, where they are (see [`restore`]).
    kept: Option<Arc<dyn KeptStore>>,
}

impl ClusterBackend {
    pub(crate) fn new(
        node: Arc<Node>,
        transport: Arc<dyn Transport>,
        query_timeout: Duration,
    ) -> Self {
        ClusterBackend {
            node,
            transport,
            query_timeout,
            waits_on_core_loops: false,
            kept: None,
        }
    }

    /// Lets cluster-wide answers wait on core loops (see `waits_on_core_loops`).
    pub(crate) fn waiting_on_core_loops(mut self) -> Self {
        self.waits_on_core_loops = true;
        self
    }

    fn delivery(&self) -> &Delivery {
        &self.node.delivery
    }

    fn me(&self) -> u16 {
        self.node.me
    }

    fn encode(&self, body: Body<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        wire::encode(
            &Envelope {
                origin: self.me(),
                body,
            },
            &mut out,
        );
        out
    }

    /// The other instances that own some of `ids`, with their ids; and this instance's.
    fn split_ids(&self, ids: &[ClientId]) -> (Vec<ClientId>, BTreeMap<u16, Vec<ClientId>>) {
        let mut mine = Vec::new();
        let mut others: BTreeMap<u16, Vec<ClientId>> = BTreeMap::new();
        for &id in ids {
            if id.instance() == self.me() {
                mine.push(id);
            } else {
                others.entry(id.instance()).or_default().push(id);
            }
        }
        (mine, others)
    }

    /// Sends the push (or, without a payload, the close) for the part of `target` other
    /// instances hold, asking for a count under `reply`; returns the part that is this
    /// instance's.
    fn publish(
        &self,
        target: &Target,
        reply: Option<u64>,
        except: &[ClientId],
        push: Option<Payload<'_>>,
    ) -> Result<Target> {
        let message = |target: WireTarget<'_>| match push {
            Some(p) => self.encode(Body::Push {
                target,
                except: except.to_vec(),
                worker: None,
                is_text: p.is_text,
                reply,
                payload: p.bytes,
            }),
            None => self.encode(Body::Close {
                target,
                except: except.to_vec(),
                worker: None,
                reply,
            }),
        };
        match target {
            Target::Clients(ids) => {
                let (mine, others) = self.split_ids(ids);
                for (instance, theirs) in &others {
                    let m = message(WireTarget::Clients(theirs.clone()));
                    self.transport.send(Route::To(*instance), m)?;
                }
                Ok(Target::Clients(mine))
            }
            other => {
                self.transport
                    .send(Route::Others, message(wire_target(other)))?;
                Ok(other.clone())
            }
        }
    }

    /// Fails on a core loop: what follows waits for other instances.
    fn may_wait(&self) -> Result<()> {
        if current_worker_runtime().is_some() && !self.waits_on_core_loops {
            Err(Error::WouldBlock)
        } else {
            Ok(())
        }
    }

    fn query(&self, query: &Query<'_>, scope: Scope<'_>) -> Result<Gathered> {
        // Cut off from the others, this instance cannot tell who else is live.
        self.transport.check()?;
        let local = answer::answer(self.delivery(), query, scope);
        // Calls by id ask the owner alone.
        let owner = match *query {
            Query::Exists(id)
            | Query::FlagOf(id)
            | Query::GroupsOf(id)
            | Query::Data { id, .. }
            | Query::SetData { id, .. }
            | Query::RemoveData { id, .. }
            | Query::Bind { id, .. }
            | Query::Unbind(id)
            | Query::Join { id, .. }
            | Query::Leave { id, .. } => Some(id.instance()),
            _ => None,
        };
        let asked: Vec<u16> = match owner {
            Some(o) if o == self.me() => return Ok(Gathered::alone(local)),
            Some(o) if !self.node.peers.is_live(o) => {
                // Nobody live holds the client: it is not connected.
                return Ok(Gathered::alone(local));
            }
            Some(o) => vec![o],
            None => self.node.peers.live(),
        };
        if asked.is_empty() {
            return Ok(Gathered::alone(local));
        }
        self.may_wait()?;
        let id = self.node.peers.open(&asked);
        let message = self.encode(Body::Query {
            id,
            except: scope.except.to_vec(),
            worker: scope.worker.map(|w| w.0),
            query: query.clone(),
        });
        let route = match owner {
            Some(o) => Route::To(o),
            None => Route::Others,
        };
        if let Err(e) = self.transport.send(route, message) {
            self.node.peers.cancel(id);
            return Err(e);
        }
        let mut gathered = self
            .node
            .peers
            .wait(id, Instant::now() + self.query_timeout);
        if owner.is_none() {
            gathered.values.push(local);
        }
        Ok(gathered)
    }

    fn counted(&self, request: &Request<'_>, scope: Scope<'_>) -> Result<Gathered> {
        self.delivery().check_running()?;
        if scope.worker.is_some() {
            // Confined to one core loop of this instance: never published.
            let n = match request {
                Request::Push { target, payload } => {
                    self.delivery().push(target.clone(), *payload, scope)?
                }
                Request::Close { target } => self.delivery().close(target.clone(), scope)?,
                Request::Message {
                    action,
                    data,
                    workers,
                } => self
                    .delivery()
                    .send_message(*action, data, workers, scope)?,
                Request::Query(_) => 0,
            };
            return Ok(Gathered::alone(Value::Count(n as u64)));
        }
        self.may_wait()?;
        let (target, push) = match request {
            Request::Push { target, payload } => (target, Some(*payload)),
            Request::Close { target } => (target, None),
            Request::Query(q) => return self.query(q, scope),
            Request::Message {
                action,
                data,
                workers,
            } => return self.message_everywhere(*action, data, workers, scope),
        };
        // The instances asked, known before anything is sent, so that no answer comes early.
        let asked: Vec<u16> = match target {
            Target::Clients(ids) => self.split_ids(ids).1.into_keys().collect(),
            _ => self.node.peers.live(),
        };
        let id = self.node.peers.open(&asked);
        let mine = match self.publish(target, Some(id), scope.except, push) {
            Ok(mine) => mine,
            Err(e) => {
                self.node.peers.cancel(id);
                return Err(e);
            }
        };
        let n = match push {
            Some(p) => self.delivery().push(mine, p, scope)?,
            None => self.delivery().close(mine, scope)?,
        };
        let mut gathered = self
            .node
            .peers
            .wait(id, Instant::now() + self.query_timeout);
        gathered.values.push(Value::Count(n as u64));
        Ok(gathered)
    }

    /// A worker message to the chosen core loops of every live instance, counted.
    fn message_everywhere(
        &self,
        action: Option<&str>,
        data: &[u8],
        workers: &Workers,
        scope: Scope<'_>,
    ) -> Result<Gathered> {
        let asked = self.node.peers.live();
        let id = self.node.peers.open(&asked);
        let message = self.encode(Body::Message {
            action,
            workers: match workers {
                Workers::All => None,
                Workers::Some(list) => Some(list.iter().map(|w| w.0).collect()),
            },
            reply: Some(id),
            payload: data,
        });
        if let Err(e) = self.transport.send(Route::Others, message) {
            self.node.peers.cancel(id);
            return Err(e);
        }
        let n = self.delivery().send_message(action, data, workers, scope)?;
        let mut gathered = self
            .node
            .peers
            .wait(id, Instant::now() + self.query_timeout);
        gathered.values.push(Value::Count(n as u64));
        Ok(gathered)
    }

    fn fire(&self, target: Target, scope: Scope<'_>, push: Option<Payload<'_>>) -> Result<usize> {
        self.delivery().check_running()?;
        if scope.worker.is_none() {
            let mine = self.publish(&target, None, scope.except, push)?;
            return match push {
                Some(p) => self.delivery().push(mine, p, scope),
                None => self.delivery().close(mine, scope),
            };
        }
        match push {
            Some(p) => self.delivery().push(target, p, scope),
            None => self.delivery().close(target, scope),
        }
    }
}

impl Backend for ClusterBackend {
    fn push(&self, target: Target, payload: Payload<'_>, scope: Scope<'_>) -> Result<usize> {
        self.fire(target, scope, Some(payload))
    }
    fn close(&self, target: Target, scope: Scope<'_>) -> Result<usize> {
        self.fire(target, scope, None)
    }
    fn send_message(
        &self,
        action: Option<&str>,
        data: &[u8],
        workers: &Workers,
        scope: Scope<'_>,
    ) -> Result<usize> {
        // This instance's core loops, as under Local (see `Server::send_message`).
        self.delivery().send_message(action, data, workers, scope)
    }
    fn exists(&self, id: ClientId, scope: Scope<'_>) -> bool {
        self.delivery().exists(id, scope)
    }
    fn flag_members(&self, flag: &str, scope: Scope<'_>) -> Vec<ClientId> {
        self.delivery().flag_members(flag, scope)
    }
    fn flag_of(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        self.delivery().flag_of(id, scope)
    }
    fn connections(&self, scope: Scope<'_>) -> Vec<ClientId> {
        self.delivery().connections(scope)
    }
    fn connection_count(&self, scope: Scope<'_>) -> usize {
        self.delivery().connection_count(scope)
    }
    fn group_members(&self, group: &str, scope: Scope<'_>) -> Vec<ClientId> {
        self.delivery().group_members(group, scope)
    }
    fn group_names(&self, scope: Scope<'_>) -> Vec<String> {
        self.delivery().group_names(scope)
    }
    fn bind(&self, id: ClientId, flag: &str, exclusive: bool, scope: Scope<'_>) -> bool {
        self.delivery().bind(id, flag, exclusive, scope)
    }
    fn unbind(&self, id: ClientId, scope: Scope<'_>) -> Option<String> {
        self.delivery().unbind(id, scope)
    }
    fn join(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        self.delivery().join(id, group, scope)
    }
    fn leave(&self, id: ClientId, group: &str, scope: Scope<'_>) -> bool {
        self.delivery().leave(id, group, scope)
    }
    fn groups_of(&self, id: ClientId, scope: Scope<'_>) -> Vec<String> {
        self.delivery().groups_of(id, scope)
    }
    fn set_data(&self, id: ClientId, key: &str, value: DataValue, scope: Scope<'_>) -> bool {
        self.delivery().set_data(id, key, value, scope)
    }
    fn data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> Option<DataValue> {
        self.delivery().data(id, key, scope)
    }
    fn remove_data(&self, id: ClientId, key: &str, scope: Scope<'_>) -> bool {
        self.delivery().remove_data(id, key, scope)
    }
    fn gather(&self, request: &Request<'_>, scope: Scope<'_>) -> Result<Gathered> {
        match request {
            Request::Query(q) => {
                self.delivery().check_running()?;
                self.query(q, scope)
            }
            other => self.counted(other, scope),
        }
    }
    fn restore(&self, id: ClientId, flag: &str, scope: Scope<'_>) -> Result<Restored> {
        self.restore_kept(id, flag, scope)
    }
    fn instances(&self) -> Vec<u16> {
        let mut all = self.node.peers.live();
        all.push(self.me());
        all.sort_unstable();
        all
    }
}

fn wire_target(target: &Target) -> WireTarget<'_> {
    match target {
        Target::Clients(ids) => WireTarget::Clients(ids.clone()),
        Target::Flags(names) => WireTarget::Flags(names.iter().map(String::as_str).collect()),
        Target::Groups(names) => WireTarget::Groups(names.iter().map(String::as_str).collect()),
        Target::All => WireTarget::All,
    }
}
