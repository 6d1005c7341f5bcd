//! Who is connected, which flag each client holds, which groups it is in, and its data.
//!
//! The only lock-guarded state of a server. It is touched on open, close, bind and join, and
//! when the facade resolves a flag or a group to client ids — never per frame. Each core loop
//! has its own client table, so opens and closes on different cores do not contend.
//!
//! Lock order: no two of these locks are ever held at once.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::id::{ClientId, WorkerId};

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

/// The registry of one server.
pub(crate) struct Registry {
    clients: Box<[RwLock<HashMap<ClientId, Entry>>]>,
    flags: RwLock<HashMap<Arc<str>, Vec<ClientId>>>,
    groups: RwLock<HashMap<Arc<str>, HashSet<ClientId>>>,
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
            clients: (0..workers).map(|_| RwLock::default()).collect(),
            flags: RwLock::default(),
            groups: RwLock::default(),
        }
    }

    fn table(&self, id: ClientId) -> Option<&RwLock<HashMap<ClientId, Entry>>> {
        self.clients.get(id.worker().index())
    }

    pub(crate) fn open(&self, id: ClientId) {
        if let Some(t) = self.table(id) {
            t.write().insert(id, Entry::default());
        }
    }

    /// Removes the client and releases its flag and groups. False if it was not registered.
    pub(crate) fn close(&self, id: ClientId) -> bool {
        let Some(entry) = self.table(id).and_then(|t| t.write().remove(&id)) else {
            return false;
        };
        if let Some(flag) = entry.flag {
            self.remove_flag_member(&flag, id);
        }
        if !entry.groups.is_empty() {
            let mut groups = self.groups.write();
            for g in &entry.groups {
                remove_member(&mut groups, g, id);
            }
        }
        true
    }

    pub(crate) fn exists(&self, id: ClientId) -> bool {
        self.table(id).is_some_and(|t| t.read().contains_key(&id))
    }

    /// Client count of one core loop, or of all of them.
    pub(crate) fn count(&self, worker: Option<WorkerId>) -> usize {
        match worker {
            Some(w) => self.clients.get(w.index()).map_or(0, |t| t.read().len()),
            None => self.clients.iter().map(|t| t.read().len()).sum(),
        }
    }

    pub(crate) fn ids(&self, worker: Option<WorkerId>) -> Vec<ClientId> {
        let mut out = Vec::new();
        for (i, t) in self.clients.iter().enumerate() {
            if worker.is_none_or(|w| w.index() == i) {
                out.extend(t.read().keys().copied());
            }
        }
        out.sort_unstable();
        out
    }

    /// Binds `flag` to the client, replacing any flag it had. With `exclusive`, binds only if
    /// no other client holds the flag. Returns whether the client now holds it.
    pub(crate) fn bind(&self, id: ClientId, flag: &str, exclusive: bool) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        let old = match table.read().get(&id) {
            Some(e) => e.flag.clone(),
            None => return false,
        };
        if old.as_deref() == Some(flag) {
            return true;
        }
        let flag: Arc<str> = {
            let mut flags = self.flags.write();
            let holders = flags.get(flag);
            if exclusive && holders.is_some_and(|h| h.iter().any(|&c| c != id)) {
                return false;
            }
            let key = flags
                .get_key_value(flag)
                .map_or_else(|| Arc::from(flag), |(k, _)| k.clone());
            flags.entry(key.clone()).or_default().push(id);
            key
        };
        if let Some(old) = old {
            self.remove_flag_member(&old, id);
        }
        match table.write().get_mut(&id) {
            Some(e) => e.flag = Some(flag),
            // Closed meanwhile (only the owner closes, so this is defensive): undo.
            None => self.remove_flag_member(&flag, id),
        }
        true
    }

    /// Unbinds the client's flag. Returns the flag it held.
    pub(crate) fn unbind(&self, id: ClientId) -> Option<Arc<str>> {
        let old = self.table(id)?.write().get_mut(&id)?.flag.take()?;
        self.remove_flag_member(&old, id);
        Some(old)
    }

    pub(crate) fn flag_of(&self, id: ClientId) -> Option<Arc<str>> {
        self.table(id)?.read().get(&id)?.flag.clone()
    }

    pub(crate) fn flag_members(&self, flag: &str) -> Vec<ClientId> {
        self.flags.read().get(flag).cloned().unwrap_or_default()
    }

    fn remove_flag_member(&self, flag: &str, id: ClientId) {
        let mut flags = self.flags.write();
        if let Some(holders) = flags.get_mut(flag) {
            holders.retain(|&c| c != id);
            if holders.is_empty() {
                flags.remove(flag);
            }
        }
    }

    /// Adds the client to a group. False if it is not connected or already in `max` groups;
    /// true if it is now a member.
    pub(crate) fn join(&self, id: ClientId, group: &str, max: usize) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        match table.read().get(&id) {
            Some(e) if e.groups.iter().any(|g| **g == *group) => return true,
            Some(e) if e.groups.len() >= max => return false,
            Some(_) => {}
            None => return false,
        }
        let key: Arc<str> = {
            let mut groups = self.groups.write();
            let key = groups
                .get_key_value(group)
                .map_or_else(|| Arc::from(group), |(k, _)| k.clone());
            groups.entry(key.clone()).or_default().insert(id);
            key
        };
        let mut t = table.write();
        match t.get_mut(&id) {
            Some(e) => {
                if !e.groups.iter().any(|g| **g == *group) {
                    e.groups.push(key);
                }
                true
            }
            None => {
                drop(t);
                remove_member(&mut self.groups.write(), group, id);
                false
            }
        }
    }

    /// Removes the client from a group. Returns whether it was a member.
    pub(crate) fn leave(&self, id: ClientId, group: &str) -> bool {
        if let Some(t) = self.table(id) {
            if let Some(e) = t.write().get_mut(&id) {
                e.groups.retain(|g| **g != *group);
            }
        }
        remove_member(&mut self.groups.write(), group, id)
    }

    pub(crate) fn groups_of(&self, id: ClientId) -> Vec<Arc<str>> {
        self.table(id)
            .and_then(|t| t.read().get(&id).map(|e| e.groups.clone()))
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

    pub(crate) fn group_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.groups.read().keys().map(|k| k.to_string()).collect();
        v.sort_unstable();
        v
    }

    /// Stores a value on the client. False if it is not connected.
    pub(crate) fn set_data(&self, id: ClientId, key: &str, value: DataValue) -> bool {
        let Some(table) = self.table(id) else {
            return false;
        };
        let mut t = table.write();
        let Some(e) = t.get_mut(&id) else {
            return false;
        };
        e.data
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        true
    }

    pub(crate) fn data(&self, id: ClientId, key: &str) -> Option<DataValue> {
        self.table(id)?
            .read()
            .get(&id)?
            .data
            .as_ref()?
            .get(key)
            .cloned()
    }

    /// Removes a value; returns whether one was there.
    pub(crate) fn remove_data(&self, id: ClientId, key: &str) -> bool {
        self.table(id)
            .and_then(|t| t.write().get_mut(&id)?.data.as_mut()?.remove(key))
            .is_some()
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

    #[test]
    fn a_flag_covers_several_clients_and_is_released_on_close() {
        let r = Registry::new(2);
        let (a, b, c) = (id(0, 1), id(1, 1), id(1, 2));
        for x in [a, b, c] {
            r.open(x);
        }
        assert!(r.bind(a, "alice", false));
        assert!(r.bind(b, "alice", false));
        assert!(!r.bind(c, "alice", true), "bind_nx refuses a held flag");
        assert!(
            r.bind(a, "alice", true),
            "bind_nx on the holder itself is fine"
        );
        assert_eq!(r.flag_members("alice"), vec![a, b]);
        assert!(r.close(a));
        assert_eq!(r.flag_members("alice"), vec![b]);
        assert_eq!(r.unbind(b).as_deref(), Some("alice"));
        assert!(r.flag_members("alice").is_empty());
        assert!(r.bind(c, "alice", true));
        assert!(r.bind(c, "bob", false));
        assert!(
            r.flag_members("alice").is_empty(),
            "rebinding releases the old flag"
        );
        assert_eq!(r.flag_of(c).as_deref(), Some("bob"));
    }

    #[test]
    fn groups_and_data_are_released_on_close() {
        let r = Registry::new(1);
        let a = id(0, 1);
        assert!(!r.join(a, "room", 8), "unknown clients cannot join");
        r.open(a);
        assert!(r.join(a, "room", 2));
        assert!(r.join(a, "room", 2));
        assert!(r.join(a, "hall", 2));
        assert!(!r.join(a, "attic", 2), "a third group is over the limit");
        assert!(r.join(a, "hall", 2), "rejoining a group is not a new group");
        assert_eq!(r.group_members("room"), vec![a]);
        assert_eq!(
            r.group_names(),
            vec!["hall".to_string(), "room".to_string()]
        );
        assert!(r.set_data(a, "k", Arc::new(5u32)));
        assert_eq!(
            r.data(a, "k")
                .and_then(|v| v.downcast_ref::<u32>().copied()),
            Some(5)
        );
        assert!(r.leave(a, "hall"));
        assert!(!r.leave(a, "hall"));
        assert_eq!(r.count(None), 1);
        assert!(r.close(a));
        assert!(!r.close(a));
        assert!(r.group_members("room").is_empty());
        assert!(r.group_names().is_empty());
        assert!(r.data(a, "k").is_none());
        assert!(!r.exists(a));
        assert_eq!(r.count(None), 0);
    }
}
