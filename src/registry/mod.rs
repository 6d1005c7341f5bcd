//! Who is connected, which flag each client holds, which groups it is in, and its data.
//!
//! The only lock-guarded state of a server. It is touched on open, close, bind and join, and
//! when the facade resolves a target to client ids — never per frame. Each core loop has its
//! own client table, so opens and closes on different cores do not contend.
//!
//! # Consistency
//!
//! A client is *live* from [`open`](Registry::open) until [`unregister`](Registry::unregister)
//! (or [`close_live`](Registry::close_live)); every query of the facade sees live clients only.
//! Unregistering releases the client's flag and groups at once and keeps its entry, unlisted,
//! for its `on_close` (which still reads its flag, groups and data), until
//! [`forget`](Registry::forget).
//!
//! The table lock of a core loop is held while a push counts that loop's clients *and* hands
//! its command to the loop's mailbox ([`with_live`](Registry::with_live)), and while a client
//! opens or closes *and* the loop notes where it stands in its mailbox. So every command that
//! counted a client lies before the point where it closed, and every command that did not
//! count a new client lies before the point where it opened: the core loop delivers by those
//! points, and a count is exactly the number of connections a message is queued to.
//!
//! Lock order: a table lock, then the flags or the groups lock (a restore holds the flags
//! lock, then the kept table's, then the groups lock); never a table lock while holding the
//! flags or groups lock, and never two table locks.

mod kept;
mod restore;

pub(crate) use restore::{KeepHook, KeptContext, Source};

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use parking_lot::{Mutex, RwLock};

use crate::id::{ClientId, WorkerId};
use kept::Kept;

/// A value stored on a connection.
pub(crate) type DataValue = Arc<dyn Any + Send + Sync>;

#[derive(Default)]
struct Entry {
    flag: Option<Arc<str>>,
    groups: Vec<Arc<str>>,
    // Boxed: 8 bytes on the many connections that store nothing, instead of an empty map's 48.
    #[allow(clippy::box_collection)]
    data: Option<Box<HashMap<String, DataValue>>>,
}

/// The clients of one core loop.
#[derive(Default)]
struct Table {
    live: HashMap<ClientId, Entry>,
    /// Unregistered, waiting for their `on_close` to finish.
    closing: HashMap<ClientId, Entry>,
}

/// The live clients of one core loop, seen under its table lock.
pub(crate) struct Live<'a>(&'a Table);

impl Live<'_> {
    pub(crate) fn contains(&self, id: ClientId) -> bool {
        self.0.live.contains_key(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.live.len()
    }
}

/// The registry of one server.
pub(crate) struct Registry {
    tables: Box<[RwLock<Table>]>,
    flags: RwLock<HashMap<Arc<str>, Vec<ClientId>>>,
    groups: RwLock<HashMap<Arc<str>, HashSet<ClientId>>>,
    /// The contexts of closed flag holders, with context keeping on.
    kept: Option<Mutex<Kept<KeptContext>>>,
    /// Told of every context kept (a cluster backend copies it into its engine).
    keep_hook: OnceLock<KeepHook>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("clients", &self.count(None))
            .field("flags", &self.flags.read().len())
            .field("groups", &self.groups.read().len())
            .finish()
    }
}

impl Registry {
    pub(crate) fn new(workers: usize) -> Self {
        Registry {
            tables: (0..workers).map(|_| RwLock::default()).collect(),
            flags: RwLock::default(),
            groups: RwLock::default(),
            kept: None,
            keep_hook: OnceLock::new(),
        }
    }

    fn table(&self, id: ClientId) -> Option<&RwLock<Table>> {
        self.tables.get(id.worker().index())
    }

    /// Makes the client live; `at` runs under the table lock (see the module docs).
    pub(crate) fn open<T>(&self, id: ClientId, at: impl FnOnce() -> T) -> Option<T> {
        let mut t = self.table(id)?.write();
        t.live.insert(id, Entry::default());
        Some(at())
    }

    /// Unregisters a live client: releases its flag and groups and keeps its entry for
    /// `on_close`. `at` runs under the table lock. `None` if the client was not live (another
    /// thread closed it first).
    pub(crate) fn unregister<T>(&self, id: ClientId, at: impl FnOnce() -> T) -> Option<T> {
        let mut t = self.table(id)?.write();
        let entry = t.live.remove(&id)?;
        self.release(id, &entry);
        t.closing.insert(id, entry);
        Some(at())
    }

    /// Closes the live clients among `ids` (all of core loop `worker`): `send` gets them and
    /// hands the close on, under the table lock; only if it succeeds are they unregistered.
    /// Returns how many were live.
    pub(crate) fn close_live<E>(
        &self,
        worker: WorkerId,
        ids: &[ClientId],
        send: impl FnOnce(Vec<ClientId>) -> Result<(), E>,
    ) -> Result<usize, E> {
        let Some(table) = self.tables.get(worker.index()) else {
            return Ok(0);
        };
        let mut t = table.write();
        let live: Vec<ClientId> = ids
            .iter()
            .copied()
            .filter(|id| t.live.contains_key(id))
            .collect();
        if live.is_empty() {
            return Ok(0);
        }
        send(live.clone())?;
        for &id in &live {
            if let Some(entry) = t.live.remove(&id) {
                self.release(id, &entry);
                t.closing.insert(id, entry);
            }
        }
        Ok(live.len())
    }

    /// Drops an unregistered client's entry, after its `on_close`.
    pub(crate) fn forget(&self, id: ClientId) {
        if let Some(t) = self.table(id) {
            t.write().closing.remove(&id);
        }
    }

    /// Runs `f` on core loop `worker`'s live clients under its table lock.
    pub(crate) fn with_live<R>(&self, worker: WorkerId, f: impl FnOnce(&Live<'_>) -> R) -> R {
        match self.tables.get(worker.index()) {
            Some(t) => f(&Live(&t.read())),
            None => f(&Live(&Table::default())),
        }
    }

    /// Takes the client out of its flag's and its groups' member lists; with context keeping
    /// on, keeps what a flag holder had, in the same step as its flag is released.
    fn release(&self, id: ClientId, entry: &Entry) {
        if let Some(flag) = &entry.flag {
            let mut flags = self.flags.write();
            remove_flag_member(&mut flags, flag, id);
            self.keep(flag, id, entry);
        }
        if !entry.groups.is_empty() {
            let mut groups = self.groups.write();
            for g in &entry.groups {
                remove_member(&mut groups, g, id);
            }
        }
    }

    pub(crate) fn exists(&self, id: ClientId) -> bool {
        self.table(id)
            .is_some_and(|t| t.read().live.contains_key(&id))
    }

    /// How many groups have members.
    pub(crate) fn group_count(&self) -> usize {
        self.groups.read().len()
    }

    /// How many flags are bound.
    pub(crate) fn flag_count(&self) -> usize {
        self.flags.read().len()
    }

    /// Live client count of one core loop, or of all of them.
    pub(crate) fn count(&self, worker: Option<WorkerId>) -> usize {
        match worker {
            Some(w) => self
                .tables
                .get(w.index())
                .map_or(0, |t| t.read().live.len()),
            None => self.tables.iter().map(|t| t.read().live.len()).sum(),
        }
    }

    /// The live clients of one core loop or of all of them, sorted.
    pub(crate) fn ids(&self, worker: Option<WorkerId>) -> Vec<ClientId> {
        let mut out = Vec::new();
        for (i, t) in self.tables.iter().enumerate() {
            if worker.is_none_or(|w| w.index() == i) {
                out.extend(t.read().live.keys().copied());
            }
        }
        out.sort_unstable();
        out
    }

    /// Binds `flag` to a live client, replacing any flag it had. With `exclusive`, binds only
    /// if no other client holds the flag. Returns whether the client now holds it.
    pub(crate) fn bind(&self, id: ClientId, flag: &str, exclusive: bool) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        let mut t = table.write();
        let Some(entry) = t.live.get_mut(&id) else {
            return false;
        };
        if entry.flag.as_deref() == Some(flag) {
            return true;
        }
        let mut flags = self.flags.write();
        if exclusive && flags.get(flag).is_some_and(|h| h.iter().any(|&c| c != id)) {
            return false;
        }
        if let Some(old) = entry.flag.take() {
            remove_flag_member(&mut flags, &old, id);
        }
        let key = flags
            .get_key_value(flag)
            .map_or_else(|| Arc::from(flag), |(k, _)| k.clone());
        flags.entry(key.clone()).or_default().push(id);
        entry.flag = Some(key);
        true
    }

    /// Unbinds a live client's flag. Returns the flag it held.
    pub(crate) fn unbind(&self, id: ClientId) -> Option<Arc<str>> {
        let mut t = self.table(id)?.write();
        let old = t.live.get_mut(&id)?.flag.take()?;
        remove_flag_member(&mut self.flags.write(), &old, id);
        Some(old)
    }

    /// The flag of a client; with `closing`, also of one whose `on_close` runs.
    pub(crate) fn flag_of(&self, id: ClientId, closing: bool) -> Option<Arc<str>> {
        self.read_entry(id, closing, |e| e.flag.clone())?
    }

    pub(crate) fn flag_members(&self, flag: &str) -> Vec<ClientId> {
        self.flags.read().get(flag).cloned().unwrap_or_default()
    }

    /// Adds a live client to a group. False if it is not live or already in `max` groups;
    /// true if it is now a member.
    pub(crate) fn join(&self, id: ClientId, group: &str, max: usize) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        let mut t = table.write();
        let Some(entry) = t.live.get_mut(&id) else {
            return false;
        };
        if entry.groups.iter().any(|g| **g == *group) {
            return true;
        }
        if entry.groups.len() >= max {
            return false;
        }
        let mut groups = self.groups.write();
        let key = groups
            .get_key_value(group)
            .map_or_else(|| Arc::from(group), |(k, _)| k.clone());
        groups.entry(key.clone()).or_default().insert(id);
        entry.groups.push(key);
        true
    }

    /// Takes a live client out of a group. Returns whether it was a member.
    pub(crate) fn leave(&self, id: ClientId, group: &str) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        let mut t = table.write();
        let Some(entry) = t.live.get_mut(&id) else {
            return false;
        };
        let before = entry.groups.len();
        entry.groups.retain(|g| **g != *group);
        if entry.groups.len() == before {
            return false;
        }
        remove_member(&mut self.groups.write(), group, id);
        true
    }

    /// The groups of a client; with `closing`, also of one whose `on_close` runs.
    pub(crate) fn groups_of(&self, id: ClientId, closing: bool) -> Vec<Arc<str>> {
        self.read_entry(id, closing, |e| e.groups.clone())
            .unwrap_or_default()
    }

    pub(crate) fn group_members(&self, group: &str) -> Vec<ClientId> {
        let mut v: Vec<ClientId> = self
            .groups
            .read()
            .get(group)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// The groups that have at least one member for which `keep` holds, sorted.
    pub(crate) fn group_names(&self, keep: impl Fn(ClientId) -> bool) -> Vec<String> {
        let mut v: Vec<String> = self
            .groups
            .read()
            .iter()
            .filter(|(_, members)| members.iter().any(|&id| keep(id)))
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort_unstable();
        v
    }

    /// Stores a value on a live client. False if it is not live.
    pub(crate) fn set_data(&self, id: ClientId, key: &str, value: DataValue) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        let mut t = table.write();
        let Some(e) = t.live.get_mut(&id) else {
            return false;
        };
        e.data
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        true
    }

    /// A value stored on a client; with `closing`, also on one whose `on_close` runs.
    pub(crate) fn data(&self, id: ClientId, key: &str, closing: bool) -> Option<DataValue> {
        self.read_entry(id, closing, |e| e.data.as_ref()?.get(key).cloned())?
    }

    /// Removes a value from a live client; returns whether one was there.
    pub(crate) fn remove_data(&self, id: ClientId, key: &str) -> bool {
        self.table(id)
            .and_then(|t| t.write().live.get_mut(&id)?.data.as_mut()?.remove(key))
            .is_some()
    }

    fn read_entry<R>(&self, id: ClientId, closing: bool, f: impl FnOnce(&Entry) -> R) -> Option<R> {
        let t = self.table(id)?.read();
        let entry = t
            .live
            .get(&id)
            .or_else(|| closing.then(|| t.closing.get(&id)).flatten())?;
        Some(f(entry))
    }
}

fn remove_flag_member(flags: &mut HashMap<Arc<str>, Vec<ClientId>>, flag: &str, id: ClientId) {
    if let Some(holders) = flags.get_mut(flag) {
        holders.retain(|&c| c != id);
        if holders.is_empty() {
            flags.remove(flag);
        }
    }
}

fn remove_member(
    groups: &mut HashMap<Arc<str>, HashSet<ClientId>>,
    group: &str,
    id: ClientId,
) -> bool {
    let Some(members) = groups.get_mut(group) else {
        return false;
    };
    let was = members.remove(&id);
    if members.is_empty() {
        groups.remove(group);
    }
    was
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(worker: u16, slot: u32) -> ClientId {
        ClientId::new(0, WorkerId(worker), slot as u64).unwrap()
    }

    fn close(r: &Registry, id: ClientId) -> bool {
        let done = r.unregister(id, || ()).is_some();
        r.forget(id);
        done
    }

    #[test]
    fn a_flag_covers_several_clients_and_is_released_on_close() {
        let r = Registry::new(2);
        let (a, b, c) = (id(0, 1), id(1, 1), id(1, 2));
        for x in [a, b, c] {
            r.open(x, || ());
        }
        assert!(r.bind(a, "alice", false));
        assert!(r.bind(b, "alice", false));
        assert!(!r.bind(c, "alice", true), "bind_nx refuses a held flag");
        assert!(
            r.bind(a, "alice", true),
            "bind_nx on the holder itself is fine"
        );
        assert_eq!(r.flag_members("alice"), vec![a, b]);
        assert!(close(&r, a));
        assert_eq!(r.flag_members("alice"), vec![b]);
        assert_eq!(r.unbind(b).as_deref(), Some("alice"));
        assert!(r.flag_members("alice").is_empty());
        assert!(r.bind(c, "alice", true));
        assert!(r.bind(c, "bob", false));
        assert!(
            r.flag_members("alice").is_empty(),
            "rebinding releases the old flag"
        );
        assert_eq!(r.flag_of(c, false).as_deref(), Some("bob"));
    }

    #[test]
    fn groups_and_data_are_released_on_close() {
        let r = Registry::new(1);
        let a = id(0, 1);
        assert!(!r.join(a, "room", 8), "unknown clients cannot join");
        r.open(a, || ());
        assert!(r.join(a, "room", 2));
        assert!(r.join(a, "room", 2));
        assert!(r.join(a, "hall", 2));
        assert!(!r.join(a, "attic", 2), "a third group is over the limit");
        assert!(r.join(a, "hall", 2), "rejoining a group is not a new group");
        assert_eq!(r.group_members("room"), vec![a]);
        assert_eq!(
            r.group_names(|_| true),
            vec!["hall".to_string(), "room".to_string()]
        );
        assert!(r.group_names(|_| false).is_empty());
        assert!(r.set_data(a, "k", Arc::new(5u32)));
        assert_eq!(
            r.data(a, "k", false)
                .and_then(|v| v.downcast_ref::<u32>().copied()),
            Some(5)
        );
        assert!(r.leave(a, "hall"));
        assert!(!r.leave(a, "hall"));
        assert_eq!(r.count(None), 1);
        assert!(close(&r, a));
        assert!(!close(&r, a));
        assert!(r.group_members("room").is_empty());
        assert!(r.group_names(|_| true).is_empty());
        assert!(r.data(a, "k", true).is_none());
        assert!(!r.exists(a));
        assert_eq!(r.count(None), 0);
    }

    #[test]
    fn an_unregistered_client_is_unlisted_but_readable_until_forgotten() {
        let r = Registry::new(1);
        let a = id(0, 1);
        r.open(a, || ());
        r.bind(a, "alice", false);
        r.join(a, "room", 8);
        r.set_data(a, "k", Arc::new(1u8));
        assert_eq!(r.unregister(a, || 7), Some(7));
        assert_eq!(r.unregister(a, || 7), None, "only one close wins");
        assert!(!r.exists(a));
        assert_eq!(r.count(None), 0);
        assert!(r.flag_members("alice").is_empty());
        assert!(r.group_members("room").is_empty());
        assert!(r.data(a, "k", false).is_none(), "the facade sees it gone");
        assert!(
            r.data(a, "k", true).is_some(),
            "its on_close still reads it"
        );
        assert_eq!(r.flag_of(a, true).as_deref(), Some("alice"));
        assert_eq!(r.groups_of(a, true).len(), 1);
        assert!(!r.bind(a, "bob", false), "no bind after close");
        assert!(!r.join(a, "hall", 8), "no join after close");
        assert!(!r.set_data(a, "k2", Arc::new(2u8)));
        r.forget(a);
        assert!(r.flag_of(a, true).is_none());
    }

    #[test]
    fn close_live_unregisters_only_when_the_close_was_handed_on() {
        let r = Registry::new(2);
        let (a, b) = (id(0, 1), id(0, 2));
        r.open(a, || ());
        r.open(b, || ());
        let refused: Result<usize, ()> = r.close_live(WorkerId(0), &[a, b], |_| Err(()));
        assert!(refused.is_err());
        assert_eq!(r.count(None), 2, "a close not handed on changes nothing");
        let mut handed = Vec::new();
        let done: Result<usize, ()> = r.close_live(WorkerId(0), &[a, id(0, 9)], |ids| {
            handed = ids;
            Ok(())
        });
        assert_eq!(done, Ok(1));
        assert_eq!(handed, vec![a]);
        assert!(!r.exists(a));
        assert!(r.exists(b));
        r.with_live(WorkerId(0), |live| {
            assert!(live.contains(b) && !live.contains(a));
            assert_eq!(live.len(), 1);
        });
    }
}
