//! Kept contexts: what a closed connection held under its flag, for a while, so that a new
//! connection can take it over ([`Context::restore`](crate::Context::restore)).
//!
//! One entry per flag: a later close of a holder of the same flag replaces it (the most
//! recently closed wins). Entries expire after the keep time; the expired ones are swept on
//! every insert and take, in the order they were kept (one keep time for the whole table, so
//! that order is the order of expiry). Memory is bounded by the closes of one keep time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::id::ClientId;

/// The table of one server: flag → the last context kept under it.
pub(crate) struct Kept<C> {
    keep: Duration,
    entries: HashMap<Arc<str>, Entry<C>>,
    /// (expiry, flag, sequence) in the order kept: the sweep's queue.
    queue: VecDeque<(Instant, Arc<str>, u64)>,
    seq: u64,
}

struct Entry<C> {
    from: ClientId,
    until: Instant,
    seq: u64,
    context: C,
}

impl<C> Kept<C> {
    /// An empty table whose entries live `keep`.
    pub(crate) fn new(keep: Duration) -> Self {
        Kept {
            keep,
            entries: HashMap::new(),
            queue: VecDeque::new(),
            seq: 0,
        }
    }

    /// Keeps `context` of closed client `from` under `flag`, replacing what was kept there.
    pub(crate) fn insert(&mut self, flag: Arc<str>, from: ClientId, context: C, now: Instant) {
        self.sweep(now);
        self.seq += 1;
        let until = now + self.keep;
        self.queue.push_back((until, flag.clone(), self.seq));
        let entry = Entry {
            from,
            until,
            seq: self.seq,
            context,
        };
        self.entries.insert(flag, entry);
    }

    /// The client whose context is kept under `flag`, if one is and has not expired.
    pub(crate) fn from(&self, flag: &str, now: Instant) -> Option<ClientId> {
        self.entries
            .get(flag)
            .filter(|e| e.until > now)
            .map(|e| e.from)
    }

    /// Takes the context kept under `flag` (with the client it was kept from), if one is and
    /// has not expired.
    pub(crate) fn take(&mut self, flag: &str, now: Instant) -> Option<(ClientId, C)> {
        self.sweep(now);
        self.entries.remove(flag).map(|e| (e.from, e.context))
    }

    /// Takes the context kept under `flag` only if it was kept from client `from`.
    pub(crate) fn take_from(&mut self, flag: &str, from: ClientId, now: Instant) -> Option<C> {
        if self.from(flag, now) != Some(from) {
            return None;
        }
        self.take(flag, now).map(|(_, c)| c)
    }

    /// How many contexts are kept (expired ones not yet swept included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Drops the entries that expired by `now`.
    fn sweep(&mut self, now: Instant) {
        while let Some((until, _, _)) = self.queue.front() {
            if *until > now {
                break;
            }
            if let Some((_, flag, seq)) = self.queue.pop_front() {
                // Only if the entry is still the one this queue item was for.
                if self.entries.get(&flag).is_some_and(|e| e.seq == seq) {
                    self.entries.remove(&flag);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::WorkerId;

    fn id(n: u64) -> ClientId {
        ClientId::new(0, WorkerId(0), n).unwrap()
    }

    #[test]
    fn the_most_recent_close_wins_and_a_take_works_once() {
        let now = Instant::now();
        let mut k = Kept::new(Duration::from_secs(10));
        k.insert("alice".into(), id(1), "first", now);
        k.insert("alice".into(), id(2), "second", now);
        assert_eq!(k.from("alice", now), Some(id(2)));
        assert_eq!(k.take_from("alice", id(1), now), None);
        assert_eq!(k.take("alice", now), Some((id(2), "second")));
        assert_eq!(k.take("alice", now), None);
        assert_eq!(k.take("bob", now), None);
    }

    #[test]
    fn entries_expire_and_are_swept() {
        let now = Instant::now();
        let keep = Duration::from_millis(100);
        let mut k = Kept::new(keep);
        k.insert("a".into(), id(1), 1, now);
        k.insert("b".into(), id(2), 2, now + keep / 2);
        assert_eq!(k.from("a", now + keep), None, "expired at its keep time");
        assert_eq!(k.take("a", now + keep), None);
        assert_eq!(k.len(), 1, "the take swept the expired entry");
        // A replaced entry's old queue item does not drop the new one.
        k.insert("b".into(), id(3), 3, now + keep);
        k.insert(
            "c".into(),
            id(4),
            4,
            now + keep * 3 / 2 + Duration::from_millis(1),
        );
        assert_eq!(k.take_from("b", id(3), now + keep * 3 / 2), Some(3));
        assert_eq!(k.len(), 1);
    }
}
