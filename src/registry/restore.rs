//! Restoring a kept context into a live connection, in one step: the flag, the groups and the
//! data, under the connection's table lock and the flags lock, so that no other thread sees
//! the flag free (or bound twice) between the take and the bind.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::kept::Kept;
use super::{DataValue, Entry, Registry, remove_flag_member};
use crate::id::ClientId;

/// What a closed flag holder had: its groups and its data (its flag is the key it is kept
/// under).
#[derive(Clone)]
pub(crate) struct KeptContext {
    pub(crate) groups: Vec<Arc<str>>,
    #[allow(clippy::box_collection)] // as the registry's entries hold it
    pub(crate) data: Option<Box<HashMap<String, DataValue>>>,
}

/// Told of every context kept, with its flag and the closed client's id; called under the
/// registry's locks, so it must not block (a cluster backend hands it to a thread).
pub(crate) type KeepHook = Box<dyn Fn(&str, ClientId, &KeptContext) + Send + Sync>;

/// Where a restore takes the context from.
#[derive(Clone)]
pub(crate) enum Source {
    /// This registry's kept table.
    Kept,
    /// A context already taken from elsewhere (a cluster's engine), kept from `from`; this
    /// registry's own copy of it is preferred where it has one (typed data survives there).
    Given(ClientId, KeptContext),
}

/// A restore that happened.
#[derive(Debug)]
pub(crate) struct Done {
    /// The closed client whose context it was.
    pub(crate) from: ClientId,
    /// Its groups that the connection is now in.
    pub(crate) groups: Vec<String>,
}

impl Registry {
    /// Keeps the context of a closing flag holder for `keep` (see
    /// [`ServerConfig::keep_context`](crate::ServerConfig::keep_context)); `None`: never.
    pub(crate) fn keeping(mut self, keep: Option<Duration>) -> Self {
        self.kept = keep.map(|k| Mutex::new(Kept::new(k)));
        self
    }

    /// Whether closing flag holders' contexts are kept.
    pub(crate) fn is_keeping(&self) -> bool {
        self.kept.is_some()
    }

    /// Sets the hook told of every context kept (once; later calls are ignored).
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // only the Redis store keeps copies
    pub(crate) fn set_keep_hook(&self, hook: KeepHook) {
        let _ = self.keep_hook.set(hook);
    }

    /// Keeps a closing client's context under its flag; called with the flags lock held,
    /// in the step that releases the flag.
    pub(super) fn keep(&self, flag: &Arc<str>, id: ClientId, entry: &Entry) {
        let Some(kept) = &self.kept else {
            return;
        };
        let context = KeptContext {
            groups: entry.groups.clone(),
            data: entry.data.clone(),
        };
        if let Some(hook) = self.keep_hook.get() {
            hook(flag, id, &context);
        }
        kept.lock()
            .insert(flag.clone(), id, context, Instant::now());
    }

    /// Gives live client `id` the context kept under `flag`: binds the flag, joins the groups
    /// (up to `max_groups` in all) and stores the data, overwriting its own values of the same
    /// keys. `None` (nothing changed) when keeping is off, the client is not live, another
    /// live client holds the flag, or nothing is kept under it.
    ///
    /// `commit` gets the id of the client the context was kept from, under the locks, before
    /// anything changes; its error leaves everything as it was (the context stays kept).
    pub(crate) fn restore<E>(
        &self,
        id: ClientId,
        flag: &str,
        max_groups: usize,
        source: Source,
        commit: impl FnOnce(ClientId) -> Result<(), E>,
    ) -> Result<Option<Done>, E> {
        let Some(kept) = &self.kept else {
            return Ok(None);
        };
        let Some(table) = self.table(id) else {
            return Ok(None);
        };
        let mut t = table.write();
        let Some(entry) = t.live.get_mut(&id) else {
            return Ok(None);
        };
        let mut flags = self.flags.write();
        if flags.get(flag).is_some_and(|h| h.iter().any(|&c| c != id)) {
            return Ok(None);
        }
        let now = Instant::now();
        let mut kept = kept.lock();
        let (from, context) = match source {
            Source::Kept => {
                let Some(from) = kept.from(flag, now) else {
                    return Ok(None);
                };
                commit(from)?;
                match kept.take(flag, now) {
                    Some(taken) => taken,
                    None => return Ok(None),
                }
            }
            Source::Given(from, given) => {
                commit(from)?;
                (from, kept.take_from(flag, from, now).unwrap_or(given))
            }
        };
        drop(kept);
        if entry.flag.as_deref() != Some(flag) {
            if let Some(old) = entry.flag.take() {
                remove_flag_member(&mut flags, &old, id);
            }
            let key = flags
                .get_key_value(flag)
                .map_or_else(|| Arc::from(flag), |(k, _)| k.clone());
            flags.entry(key.clone()).or_default().push(id);
            entry.flag = Some(key);
        }
        let mut joined = Vec::with_capacity(context.groups.len());
        if !context.groups.is_empty() {
            let mut groups = self.groups.write();
            for g in context.groups {
                if !entry.groups.contains(&g) {
                    if entry.groups.len() >= max_groups {
                        continue;
                    }
                    let key = groups
                        .get_key_value(&g)
                        .map_or_else(|| g.clone(), |(k, _)| k.clone());
                    groups.entry(key.clone()).or_default().insert(id);
                    entry.groups.push(key);
                }
                joined.push(g.to_string());
            }
        }
        drop(flags);
        if let Some(data) = context.data {
            entry
                .data
                .get_or_insert_with(Default::default)
                .extend(*data);
        }
        Ok(Some(Done {
            from,
            groups: joined,
        }))
    }
}
