//! Client and worker identities.
//!
//! A [`ClientId`] packs, from the most significant bit down:
//!
//! | bits | field    | meaning                                                        |
//! |------|----------|----------------------------------------------------------------|
//! | 16   | instance | the process in a cluster (0 on a single instance)              |
//! | 8    | worker   | the core loop that owns the connection                         |
//! | 40   | serial   | the connection's number among those of core loops with this index, from 1 |
//!
//! Routing a push to one client is a shift and a mask to find its core loop. The serial comes
//! from one process-wide counter per core loop index, shared by every runtime of the process,
//! so an id is never handed out twice in the life of a process — not after its connection
//! closed (unlike file-descriptor ids, which a new stranger can inherit), and not by another
//! runtime of the same process. At 2^40 connections per core loop index the core loop refuses
//! further connections rather than wrap.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

const SERIAL_BITS: u32 = 40;
const WORKER_BITS: u32 = 8;
const SERIAL_MASK: u64 = (1 << SERIAL_BITS) - 1;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;
const WORKER_SHIFT: u32 = SERIAL_BITS;
const INSTANCE_SHIFT: u32 = SERIAL_BITS + WORKER_BITS;

/// The largest number of core loops a runtime can have.
pub const MAX_WORKERS: usize = 1 << WORKER_BITS;

/// The next serial for a connection of a core loop with this index, process-wide; `None` once
/// the serials are spent.
pub(crate) fn next_serial(worker: WorkerId) -> Option<u64> {
    static NEXT: [AtomicU64; MAX_WORKERS] = [const { AtomicU64::new(1) }; MAX_WORKERS];
    let counter = NEXT.get(worker.index())?;
    let serial = counter.fetch_add(1, Ordering::Relaxed);
    if serial > SERIAL_MASK {
        // Stay spent: never wrap back into used serials.
        counter.store(SERIAL_MASK + 1, Ordering::Relaxed);
        return None;
    }
    Some(serial)
}

/// The identity of one connection, unique for the life of the process and never reused.
///
/// It travels as a decimal string in text protocols (64-bit values do not fit a JavaScript
/// number); [`Display`](fmt::Display) and [`FromStr`] use that form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(NonZeroU64);

impl ClientId {
    /// Packs the parts; `None` if a part does not fit its field or the serial is 0.
    pub(crate) fn new(instance: u16, worker: WorkerId, serial: u64) -> Option<Self> {
        if worker.0 as u64 > WORKER_MASK || serial > SERIAL_MASK || serial == 0 {
            return None;
        }
        let raw = (instance as u64) << INSTANCE_SHIFT | (worker.0 as u64) << WORKER_SHIFT | serial;
        NonZeroU64::new(raw).map(ClientId)
    }

    /// Rebuilds an id from its 64-bit form; `None` for 0 or a zero serial.
    pub fn from_u64(raw: u64) -> Option<Self> {
        NonZeroU64::new(raw)
            .filter(|_| raw & SERIAL_MASK != 0)
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

    /// The connection's serial number (see the module docs).
    pub(crate) fn serial(self) -> u64 {
        self.0.get() & SERIAL_MASK
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
            "ClientId({}: instance {}, worker {}, serial {})",
            self.0,
            self.instance(),
            self.worker().0,
            self.serial()
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
        let id = ClientId::new(0xBEEF, WorkerId(200), SERIAL_MASK).unwrap();
        assert_eq!(id.instance(), 0xBEEF);
        assert_eq!(id.worker(), WorkerId(200));
        assert_eq!(id.serial(), SERIAL_MASK);
        let small = ClientId::new(0, WorkerId(0), 1).unwrap();
        assert_eq!(small.as_u64(), 1);
    }

    #[test]
    fn rejects_fields_that_do_not_fit() {
        assert!(ClientId::new(0, WorkerId(256), 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), SERIAL_MASK + 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), 0).is_none());
        assert!(ClientId::from_u64(0).is_none());
        assert!(
            ClientId::from_u64(1 << 40).is_none(),
            "serial 0 is never issued"
        );
    }

    #[test]
    fn serials_grow_per_worker_index_and_are_shared_process_wide() {
        let a = next_serial(WorkerId(255)).unwrap();
        let b = next_serial(WorkerId(255)).unwrap();
        assert!(b > a);
        assert!(next_serial(WorkerId(256)).is_none());
    }

    #[test]
    fn text_form_round_trips() {
        let id = ClientId::new(3, WorkerId(1), 9).unwrap();
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
