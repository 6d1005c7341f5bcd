//! The table of a core loop's connections, indexed by the slot bits of a [`ClientId`].
//!
//! Each slot carries a generation that grows on every reuse, so a stale id never reaches a
//! new connection; a slot whose generation is spent is retired instead of reused.

use crate::id::{MAX_GENERATION, MAX_SLOTS};

#[derive(Debug)]
struct Entry<T> {
    generation: u32,
    value: Option<T>,
}

/// A slab with generations.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    entries: Vec<Entry<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slots<T> {
    /// Stores the value built from its (slot, generation); `None` when the table is full.
    pub(crate) fn insert(&mut self, make: impl FnOnce(u32, u32) -> T) -> Option<u32> {
        let slot = match self.free.pop() {
            Some(slot) => {
                let e = &mut self.entries[slot as usize];
                e.generation += 1;
                slot
            }
            None => {
                if self.entries.len() >= MAX_SLOTS as usize {
                    return None;
                }
                self.entries.push(Entry {
                    generation: 1,
                    value: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let e = &mut self.entries[slot as usize];
        e.value = Some(make(slot, e.generation));
        self.len += 1;
        Some(slot)
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.entries.get_mut(slot as usize)?.value.as_mut()
    }

    /// The value in `slot` if its generation matches.
    pub(crate) fn get_live(&mut self, slot: u32, generation: u32) -> Option<&mut T> {
        let e = self.entries.get_mut(slot as usize)?;
        if e.generation == generation {
            e.value.as_mut()
        } else {
            None
        }
    }

    pub(crate) fn remove(&mut self, slot: u32) -> Option<T> {
        let e = self.entries.get_mut(slot as usize)?;
        let value = e.value.take()?;
        self.len -= 1;
        if e.generation < MAX_GENERATION {
            self.free.push(slot);
        }
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The occupied slots, in order.
    pub(crate) fn occupied(&self) -> Vec<u32> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.value.is_some())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Every occupied (slot, value).
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(i, e)| e.value.as_mut().map(|v| (i as u32, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_the_generation_and_stale_ids_miss() {
        let mut s = Slots::default();
        let mut seen = Vec::new();
        let a = s.insert(|slot, generation| {
            seen.push((slot, generation));
            "a"
        });
        assert_eq!(a, Some(0));
        assert_eq!(s.remove(0), Some("a"));
        assert_eq!(s.remove(0), None);
        let b = s.insert(|slot, generation| {
            seen.push((slot, generation));
            "b"
        });
        assert_eq!(b, Some(0));
        assert_eq!(seen, vec![(0, 1), (0, 2)]);
        assert!(
            s.get_live(0, 1).is_none(),
            "the old generation must not reach the new value"
        );
        assert_eq!(s.get_live(0, 2).copied(), Some("b"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_spent_slot_is_retired() {
        let mut s: Slots<u32> = Slots::default();
        s.insert(|_, g| g);
        s.entries[0].generation = MAX_GENERATION;
        s.remove(0);
        let next = s.insert(|_, g| g).unwrap();
        assert_eq!(next, 1, "slot 0 is never handed out again");
        assert!(!s.is_empty() && s.len() == 1);
        assert_eq!(s.occupied(), vec![1]);
    }
}
