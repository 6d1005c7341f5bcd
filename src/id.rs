//! Client and worker identities.
//!
//! A [`ClientId`] packs, from the most significant bit down:
//!
//! | bits  | field      | meaning                                                   |
//! |-------|------------|-----------------------------------------------------------|
//! | 16    | instance   | the process in a cluster (0 on a single instance)         |
//! | 8     | worker     | the core loop that owns the connection                    |
//! | 20    | slot       | the connection's slot in that core loop's table           |
//! | 20    | generation | how many times the slot has been used, starting at 1      |
//!
//! Routing a push to one client is a shift and a mask: no lookup. A slot whose generation
//! would wrap is retired for good, so an id is never handed out twice in the life of a process
//! (unlike file-descriptor ids, which a new stranger can inherit).

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;

const GEN_BITS: u32 = 20;
const SLOT_BITS: u32 = 20;
const WORKER_BITS: u32 = 8;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;
const SLOT_SHIFT: u32 = GEN_BITS;
const WORKER_SHIFT: u32 = GEN_BITS + SLOT_BITS;
const INSTANCE_SHIFT: u32 = GEN_BITS + SLOT_BITS + WORKER_BITS;

/// The largest number of core loops a runtime can have.
pub const MAX_WORKERS: usize = 1 << WORKER_BITS;
/// The largest number of connections one core loop can hold at once.
pub(crate) const MAX_SLOTS: u32 = 1 << SLOT_BITS;
/// The last generation a slot may carry before it is retired.
pub(crate) const MAX_GENERATION: u32 = GEN_MASK as u32;

/// The identity of one connection, unique for the life of the process and never reused.
///
/// It travels as a decimal string in text protocols (64-bit values do not fit a JavaScript
/// number); [`Display`](fmt::Display) and [`FromStr`] use that form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(NonZeroU64);

impl ClientId {
    /// Packs the parts; `None` if a part does not fit its field or the generation is 0.
    pub(crate) fn new(instance: u16, worker: WorkerId, slot: u32, generation: u32) -> Option<Self> {
        if worker.0 as u64 > WORKER_MASK || slot as u64 > SLOT_MASK || generation as u64 > GEN_MASK
        {
            return None;
        }
        let raw = (instance as u64) << INSTANCE_SHIFT
            | (worker.0 as u64) << WORKER_SHIFT
            | (slot as u64) << SLOT_SHIFT
            | generation as u64;
        NonZeroU64::new(raw)
            .filter(|_| generation != 0)
            .map(ClientId)
    }

    /// Rebuilds an id from its 64-bit form; `None` for 0 or a zero generation.
    pub fn from_u64(raw: u64) -> Option<Self> {
        NonZeroU64::new(raw)
            .filter(|_| raw & GEN_MASK != 0)
            .map(ClientId)
    }

    /// The 64-bit form.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }

    /// The instance (process) of a cluster that owns the connection; 0 on a single instance.
    pub fn instance(self) -> u16 {
        (self.0.get() >> INSTANCE_SHIFT) as u16
    }

    /// The core loop that owns the connection.
    pub fn worker(self) -> WorkerId {
        WorkerId(((self.0.get() >> WORKER_SHIFT) & WORKER_MASK) as u16)
    }

    pub(crate) fn slot(self) -> u32 {
        ((self.0.get() >> SLOT_SHIFT) & SLOT_MASK) as u32
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0.get() & GEN_MASK) as u32
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClientId({}: instance {}, worker {}, slot {}, generation {})",
            self.0,
            self.instance(),
            self.worker().0,
            self.slot(),
            self.generation()
        )
    }
}

/// The error of parsing a [`ClientId`] from text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseClientIdError(());

impl fmt::Display for ParseClientIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a client id (a non-zero decimal 64-bit number)")
    }
}

impl std::error::Error for ParseClientIdError {}

impl FromStr for ClientId {
    type Err = ParseClientIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u64>()
            .ok()
            .and_then(ClientId::from_u64)
            .ok_or(ParseClientIdError(()))
    }
}

impl serde::Serialize for ClientId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ClientId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The index of a core loop: `0..workers`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct WorkerId(pub u16);

impl WorkerId {
    /// The index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_and_unpacks_every_field() {
        let id = ClientId::new(0xBEEF, WorkerId(200), MAX_SLOTS - 1, MAX_GENERATION).unwrap();
        assert_eq!(id.instance(), 0xBEEF);
        assert_eq!(id.worker(), WorkerId(200));
        assert_eq!(id.slot(), MAX_SLOTS - 1);
        assert_eq!(id.generation(), MAX_GENERATION);
        let small = ClientId::new(0, WorkerId(0), 0, 1).unwrap();
        assert_eq!(small.as_u64(), 1);
    }

    #[test]
    fn rejects_fields_that_do_not_fit() {
        assert!(ClientId::new(0, WorkerId(256), 0, 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), MAX_SLOTS, 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), 0, MAX_GENERATION + 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), 0, 0).is_none());
        assert!(ClientId::from_u64(0).is_none());
        assert!(
            ClientId::from_u64(1 << 20).is_none(),
            "generation 0 is never issued"
        );
    }

    #[test]
    fn text_form_round_trips() {
        let id = ClientId::new(3, WorkerId(1), 7, 9).unwrap();
        let text = id.to_string();
        assert_eq!(text.parse::<ClientId>().unwrap(), id);
        assert!("".parse::<ClientId>().is_err());
        assert!("-1".parse::<ClientId>().is_err());
        assert!("abc".parse::<ClientId>().is_err());
        assert!("18446744073709551616".parse::<ClientId>().is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<ClientId>(&json).unwrap(), id);
    }
}
