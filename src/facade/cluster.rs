//! [`Cluster`]: the calls of a [`Server`] that answer for every instance of a cluster.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Server;
use crate::cluster::ask::{Gathered, Request};
use crate::cluster::wire::Query;
use crate::error::{Error, Result};
use crate::id::ClientId;
use crate::target::{IntoIds, IntoNames, Payload, Raw, Target, Workers};

/// An answer gathered from the instances of a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The answer, merged over the instances that answered.
    pub value: T,
    /// Whether every instance that could know answered within the backend's deadline. On a
    /// single instance (Local, Fpm) always true.
    pub complete: bool,
}

impl<T> Answer<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            complete: self.complete,
        }
    }
}

fn answer<T>(gathered: Gathered, merge: impl FnOnce(&Gathered) -> T) -> Answer<T> {
    Answer {
        value: merge(&gathered),
        complete: gathered.complete,
    }
}

/// The calls of a [`Server`] that answer for the whole cluster, made by
/// [`Server::cluster`].
///
/// Each asks only the instances that can know — the owner of a client for a call by id,
/// every live instance otherwise — waits for their answers up to the backend's deadline, and
/// says in [`Answer::complete`] whether all of them answered. The sends and closes here are
/// the *counted* forms: they return how many connections the message was queued to (or how
/// many were closed) on every instance, where [`Server::send`] and the others return at once
/// with this instance's part. A client of an instance that is not live (see
/// [`instances`](Cluster::instances)) counts as not connected, for counted sends and closes
/// as for queries: nobody is waited for on its behalf.
///
/// Waiting for other instances is not allowed on a core loop: there these calls fail with
/// [`Error::WouldBlock`] whenever this instance cannot answer alone — make them from another
/// thread. Scope and exclusions of the handle apply as everywhere. On a single instance
/// (Local) they answer at once, as the plain methods do; on Fpm they answer as for an empty
/// server.
///
/// Connection data crosses instances as JSON: [`set_data`](Cluster::set_data) stores a
/// `serde_json::Value` on the connection, and [`data`](Cluster::data) reads a stored
/// `serde_json::Value`, `String`, `bool`, `i64`, `u64` or `f64`.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    pub(super) server: &'a Server,
}

impl Cluster<'_> {
    fn ask(&self, query: Query<'_>) -> Result<Gathered> {
        self.gather(&Request::Query(query))
    }

    fn gather(&self, request: &Request<'_>) -> Result<Gathered> {
        self.server
            .inner
            .backend
            .gather(request, self.server.scope_ref())
    }

    /// The instances of the cluster that are live now, this one included, sorted (one on a
    /// single instance, none on Fpm). An instance counts from its first message until it
    /// says goodbye or stays silent for three seconds.
    pub fn instances(&self) -> Vec<u16> {
        self.server.inner.backend.instances()
    }

    /// Whether the client is connected, on whichever instance owns it.
    pub fn exists(&self, id: ClientId) -> Result<Answer<bool>> {
        Ok(answer(self.ask(Query::Exists(id))?, Gathered::any))
    }

    /// Whether any connection of the cluster is bound to the flag.
    pub fn flag_exists(&self, flag: &str) -> Result<Answer<bool>> {
        Ok(self.flag_clients(flag)?.map(|ids| !ids.is_empty()))
    }

    /// The connections of the cluster bound to a flag, sorted.
    pub fn flag_clients(&self, flag: &str) -> Result<Answer<Vec<ClientId>>> {
        Ok(answer(self.ask(Query::FlagMembers(flag))?, Gathered::ids))
    }

    /// The flag a client is bound to.
    pub fn flag_of(&self, id: ClientId) -> Result<Answer<Option<String>>> {
        Ok(answer(self.ask(Query::FlagOf(id))?, Gathered::name))
    }

    /// Every connection of the cluster, sorted.
    pub fn connections(&self) -> Result<Answer<Vec<ClientId>>> {
        Ok(answer(self.ask(Query::Connections)?, Gathered::ids))
    }

    /// How many connections the cluster has.
    pub fn connection_count(&self) -> Result<Answer<usize>> {
        Ok(answer(self.ask(Query::Count)?, |g| g.sum() as usize))
    }

    /// The members of a group across the cluster, sorted.
    pub fn group_members(&self, group: &str) -> Result<Answer<Vec<ClientId>>> {
        Ok(answer(self.ask(Query::GroupMembers(group))?, Gathered::ids))
    }

    /// How many connections of the cluster are in a group.
    pub fn group_count(&self, group: &str) -> Result<Answer<usize>> {
        Ok(self.group_members(group)?.map(|ids| ids.len()))
    }

    /// The groups that have members anywhere in the cluster, sorted.
    pub fn groups(&self) -> Result<Answer<Vec<String>>> {
        Ok(answer(self.ask(Query::Groups)?, Gathered::names))
    }

    /// The groups a client is in, sorted.
    pub fn groups_of(&self, id: ClientId) -> Result<Answer<Vec<String>>> {
        Ok(answer(self.ask(Query::GroupsOf(id))?, Gathered::names))
    }

    /// Reads a value stored on a client of any instance, as JSON decoded into `T`; `None`
    /// when absent or not of that shape.
    pub fn data<T: DeserializeOwned>(&self, id: ClientId, key: &str) -> Result<Answer<Option<T>>> {
        let got = self.ask(Query::Data { id, key })?;
        Ok(answer(got, |g| {
            g.json().and_then(|j| serde_json::from_slice(&j).ok())
        }))
    }

    /// Stores a value (as a `serde_json::Value`) on a client of any instance. False if the
    /// client is not connected.
    pub fn set_data<T: Serialize + ?Sized>(
        &self,
        id: ClientId,
        key: &str,
        value: &T,
    ) -> Result<Answer<bool>> {
        let json = serde_json::to_vec(value).map_err(|e| Error::Encode(e.to_string()))?;
        Ok(answer(
            self.ask(Query::SetData {
                id,
                key,
                json: &json,
            })?,
            Gathered::any,
        ))
    }

    /// Removes a value from a client of any instance; whether one was there.
    pub fn remove_data(&self, id: ClientId, key: &str) -> Result<Answer<bool>> {
        Ok(answer(
            self.ask(Query::RemoveData { id, key })?,
            Gathered::any,
        ))
    }

    /// Binds a client of any instance to a flag, as [`Server::bind`].
    pub fn bind(&self, id: ClientId, flag: &str) -> Result<Answer<bool>> {
        let query = Query::Bind {
            id,
            flag,
            exclusive: false,
        };
        Ok(answer(self.ask(query)?, Gathered::any))
    }

    /// Binds the flag only if no other connection *of the owner's instance* holds it, as
    /// [`Server::bind_nx`].
    pub fn bind_nx(&self, id: ClientId, flag: &str) -> Result<Answer<bool>> {
        let query = Query::Bind {
            id,
            flag,
            exclusive: true,
        };
        Ok(answer(self.ask(query)?, Gathered::any))
    }

    /// Unbinds a client of any instance; the flag it held.
    pub fn unbind(&self, id: ClientId) -> Result<Answer<Option<String>>> {
        Ok(answer(self.ask(Query::Unbind(id))?, Gathered::name))
    }

    /// Adds a client of any instance to a group, as [`Server::join`].
    pub fn join(&self, id: ClientId, group: &str) -> Result<Answer<bool>> {
        Ok(answer(self.ask(Query::Join { id, group })?, Gathered::any))
    }

    /// Takes a client of any instance out of a group; whether it was a member.
    pub fn leave(&self, id: ClientId, group: &str) -> Result<Answer<bool>> {
        Ok(answer(self.ask(Query::Leave { id, group })?, Gathered::any))
    }

    fn push(&self, target: Target, payload: Payload<'_>) -> Result<Answer<usize>> {
        let got = self.gather(&Request::Push { target, payload })?;
        Ok(answer(got, |g| g.sum() as usize))
    }

    fn push_encoded<T: Serialize + ?Sized>(
        &self,
        target: Target,
        data: &T,
    ) -> Result<Answer<usize>> {
        let bytes = self.server.encode(data)?;
        let payload = Payload {
            is_text: self.server.inner.parser.is_text(),
            bytes: &bytes,
        };
        self.push(target, payload)
    }

    fn push_raw(&self, target: Target, raw: Raw<'_>) -> Result<Answer<usize>> {
        let payload = Payload {
            is_text: raw.is_text(),
            bytes: raw.as_bytes(),
        };
        self.push(target, payload)
    }

    /// [`Server::send`], counted across the cluster.
    pub fn send<T: Serialize + ?Sized>(
        &self,
        data: &T,
        ids: impl IntoIds,
    ) -> Result<Answer<usize>> {
        self.push_encoded(Target::Clients(ids.into_ids()), data)
    }

    /// [`Server::send_raw`], counted across the cluster.
    pub fn send_raw<'r>(
        &self,
        raw: impl Into<Raw<'r>>,
        ids: impl IntoIds,
    ) -> Result<Answer<usize>> {
        self.push_raw(Target::Clients(ids.into_ids()), raw.into())
    }

    /// [`Server::send_by_flag`], counted across the cluster.
    pub fn send_by_flag<T: Serialize + ?Sized>(
        &self,
        data: &T,
        flags: impl IntoNames,
    ) -> Result<Answer<usize>> {
        self.push_encoded(Target::Flags(flags.into_names()), data)
    }

    /// [`Server::send_raw_by_flag`], counted across the cluster.
    pub fn send_raw_by_flag<'r>(
        &self,
        raw: impl Into<Raw<'r>>,
        flags: impl IntoNames,
    ) -> Result<Answer<usize>> {
        self.push_raw(Target::Flags(flags.into_names()), raw.into())
    }

    /// [`Server::send_to_group`], counted across the cluster.
    pub fn send_to_group<T: Serialize + ?Sized>(
        &self,
        groups: impl IntoNames,
        data: &T,
    ) -> Result<Answer<usize>> {
        self.push_encoded(Target::Groups(groups.into_names()), data)
    }

    /// [`Server::send_raw_to_group`], counted across the cluster.
    pub fn send_raw_to_group<'r>(
        &self,
        groups: impl IntoNames,
        raw: impl Into<Raw<'r>>,
    ) -> Result<Answer<usize>> {
        self.push_raw(Target::Groups(groups.into_names()), raw.into())
    }

    /// [`Server::send_to_all`], counted across the cluster.
    pub fn send_to_all<T: Serialize + ?Sized>(&self, data: &T) -> Result<Answer<usize>> {
        self.push_encoded(Target::All, data)
    }

    /// [`Server::send_raw_to_all`], counted across the cluster.
    pub fn send_raw_to_all<'r>(&self, raw: impl Into<Raw<'r>>) -> Result<Answer<usize>> {
        self.push_raw(Target::All, raw.into())
    }

    /// [`Server::close`], counted across the cluster: when it returns, the owners have
    /// released the clients.
    pub fn close(&self, ids: impl IntoIds) -> Result<Answer<usize>> {
        let got = self.gather(&Request::Close {
            target: Target::Clients(ids.into_ids()),
        })?;
        Ok(answer(got, |g| g.sum() as usize))
    }

    /// [`Server::close_by_flag`], counted across the cluster.
    pub fn close_by_flag(&self, flags: impl IntoNames) -> Result<Answer<usize>> {
        let got = self.gather(&Request::Close {
            target: Target::Flags(flags.into_names()),
        })?;
        Ok(answer(got, |g| g.sum() as usize))
    }

    /// [`Server::send_message`] to the chosen core loops of every instance (the plain form
    /// reaches this instance's only); how many core loops it reached.
    pub fn send_message<T: Serialize + ?Sized>(
        &self,
        action: &str,
        data: &T,
        workers: impl Into<Workers>,
    ) -> Result<Answer<usize>> {
        let bytes = self.server.encode(data)?;
        let workers = workers.into();
        let got = self.gather(&Request::Message {
            action: Some(action),
            data: &bytes,
            workers: &workers,
        })?;
        Ok(answer(got, |g| g.sum() as usize))
    }

    /// [`Server::send_message_raw`] to the chosen core loops of every instance.
    pub fn send_message_raw<'r>(
        &self,
        raw: impl Into<Raw<'r>>,
        workers: impl Into<Workers>,
    ) -> Result<Answer<usize>> {
        let raw = raw.into();
        let workers = workers.into();
        let got = self.gather(&Request::Message {
            action: None,
            data: raw.as_bytes(),
            workers: &workers,
        })?;
        Ok(answer(got, |g| g.sum() as usize))
    }
}
