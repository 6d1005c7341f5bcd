//! The table of a core loop's connections: a slab (the slot is the connection's poll token)
//! plus an index from a [`ClientId`](crate::ClientId)'s serial to its slot.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Serials are distinct integers: a multiply spreads them over the hash's high bits (which
/// the map's probing reads) at a fraction of SipHash's cost. No untrusted input reaches it.
#[derive(Default)]
pub(crate) struct SerialHasher(u64);

impl Hasher for SerialHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A slab of values, each with the serial it was stored under.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    entries: Vec<Option<(u64, T)>>,
    free: Vec<u32>,
    by_serial: HashMap<u64, u32, BuildHasherDefault<SerialHasher>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
            by_serial: HashMap::default(),
        }
    }
}

impl<T> Slots<T> {
    /// Stores the value built from its slot under `serial`; returns the slot.
    pub(crate) fn insert(&mut self, serial: u64, make: impl FnOnce(u32) -> T) -> u32 {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            (self.entries.len() - 1) as u32
        });
        self.entries[slot as usize] = Some((serial, make(slot)));
        self.by_serial.insert(serial, slot);
        slot
    }

    pub(crate) fn get(&self, slot: u32) -> Option<&T> {
        self.entries.get(slot as usize)?.as_ref().map(|(_, v)| v)
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut T> {
        self.entries
            .get_mut(slot as usize)?
            .as_mut()
            .map(|(_, v)| v)
    }

    /// The slot of the live value stored under `serial`.
    pub(crate) fn slot_of(&self, serial: u64) -> Option<u32> {
        self.by_serial.get(&serial).copied()
    }

    pub(crate) fn remove(&mut self, slot: u32) -> Option<T> {
        let (serial, value) = self.entries.get_mut(slot as usize)?.take()?;
        self.by_serial.remove(&serial);
        self.free.push(slot);
        Some(value)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_serial.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_serial.is_empty()
    }

    /// The occupied slots, in order.
    pub(crate) fn occupied(&self) -> Vec<u32> {
        self.iter().map(|(slot, _)| slot).collect()
    }

    /// Every occupied (slot, value).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|(_, v)| (i as u32, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_but_serials_find_only_their_own_value() {
        let mut s = Slots::default();
        let a = s.insert(1, |slot| ("a", slot));
        assert_eq!(a, 0);
        assert_eq!(s.slot_of(1), Some(0));
        assert_eq!(s.remove(0).map(|(v, _)| v), Some("a"));
        assert_eq!(s.remove(0), None);
        assert_eq!(
            s.slot_of(1),
            None,
            "a closed connection's serial finds nothing"
        );
        let b = s.insert(2, |slot| ("b", slot));
        assert_eq!(b, 0, "the slot (poll token) is reused");
        assert_eq!(s.slot_of(1), None);
        assert_eq!(s.slot_of(2), Some(0));
        assert_eq!(s.get_mut(0).map(|(v, _)| *v), Some("b"));
        s.insert(3, |slot| ("c", slot));
        assert_eq!(s.len(), 2);
        assert_eq!(s.occupied(), vec![0, 1]);
        assert!(!s.is_empty());
    }
}
