//! Client and worker identities.
//!
//! A [`ClientId`] packs, from the most significant bit down:
//!
//! | bits | field    | meaning                                                        |
//! |------|----------|----------------------------------------------------------------|
//! | 12   | instance | the process in a cluster (0 on a single instance; below [`MAX_INSTANCES`]) |
//! | 8    | worker   | the core loop that owns the connection                         |
//! | 44   | serial   | the connection's number among those of core loops with this index, counted from the wall clock |
//!
//! Routing a push to one client is a shift and a mask to find its core loop. The serial comes
//! from one process-wide counter per core loop index, shared by every runtime of the process,
//! so an id is never handed out twice in the life of a process — not after its connection
//! closed (unlike file-descriptor ids, which a new stranger can inherit), and not by another
//! runtime of the same process.
//!
//! Nor is it handed out again by a later run of the same instance, so an id kept elsewhere (in
//! a database, in a reconnect token) cannot reach a stranger after a restart. The counters
//! start, once per process, at the time of its first connection in ticks of 1/16,000 s since
//! 2025-01-01T00:00:00Z, and count up by one per connection. A restarted process therefore
//! starts above every serial the previous run issued on the same core loop index, on the
//! condition that each core loop index of a run averaged fewer than 16,000 new connections per
//! second between that run's first connection and the restart, and that the wall clock did not
//! step back between the runs. A core loop that gets more than a minute's worth of ticks ahead
//! of the clock logs a warning (once per process). A clock before 2025 (or past the end of the
//! serials, in 2059) starts the counters at 1, with a warning: ids may then repeat across
//! restarts. At 2^44 the serials are spent — about 34.8 years of ticks from 2025 — and the
//! core loop refuses further connections rather than wrap.

use std::fmt;
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use log::warn;

const SERIAL_BITS: u32 = 44;
const WORKER_BITS: u32 = 8;
const INSTANCE_BITS: u32 = 12;
const SERIAL_MASK: u64 = (1 << SERIAL_BITS) - 1;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;
const INSTANCE_MASK: u64 = (1 << INSTANCE_BITS) - 1;
const WORKER_SHIFT: u32 = SERIAL_BITS;
const INSTANCE_SHIFT: u32 = SERIAL_BITS + WORKER_BITS;

/// Serials the clock advances per second.
const TICKS_PER_SECOND: u64 = 16_000;
/// The clock's zero: 2025-01-01T00:00:00Z, in seconds since the Unix epoch.
const CLOCK_ZERO_UNIX_SECONDS: u64 = 1_735_689_600;
/// How far a counter may run ahead of the clock before a restart could repeat its serials
/// and a warning says so: a minute.
const AHEAD_LIMIT: u64 = TICKS_PER_SECOND * 60;
/// A counter is compared with the clock once per this many serials, to keep the clock out of
/// the accept path.
const AHEAD_CHECK_EVERY: u64 = 4096;

/// The largest number of core loops a runtime can have.
pub const MAX_WORKERS: usize = 1 << WORKER_BITS;

/// The number of instance numbers of a cluster: [`RuntimeConfig::instance`] must be below it.
///
/// [`RuntimeConfig::instance`]: crate::RuntimeConfig::instance
pub const MAX_INSTANCES: u16 = 1 << INSTANCE_BITS;

/// The next serial for a connection of a core loop with this index, process-wide; `None` once
/// the serials are spent.
pub(crate) fn next_serial(worker: WorkerId) -> Option<u64> {
    // Serials issued per core loop index, counted from the process's first serial.
    static ISSUED: [AtomicU64; MAX_WORKERS] = [const { AtomicU64::new(0) }; MAX_WORKERS];
    static FIRST: OnceLock<u64> = OnceLock::new();
    static WARNED_AHEAD: AtomicBool = AtomicBool::new(false);

    let counter = ISSUED.get(worker.index())?;
    let first = *FIRST.get_or_init(|| {
        let now = SystemTime::now();
        if ticks(now).is_none() {
            warn!(
                "the wall clock is not between 2025 and 2059; client ids count from 1 and may \
                 repeat those of an earlier run of this process"
            );
        }
        first_serial(now)
    });
    let (issued, serial) = take(counter, first)?;
    if issued % AHEAD_CHECK_EVERY == AHEAD_CHECK_EVERY - 1
        && is_ahead(serial, SystemTime::now())
        && !WARNED_AHEAD.swap(true, Ordering::Relaxed)
    {
        warn!(
            "client ids of core loop {worker} ran more than a minute ahead of the clock (over \
             16,000 new connections a second since the first); after a restart, ids may repeat"
        );
    }
    Some(serial)
}

/// Takes the next serial from a counter of serials issued since `first`: how many were issued
/// before it, and the serial; `None` once the serials are spent.
fn take(issued: &AtomicU64, first: u64) -> Option<(u64, u64)> {
    let before = issued.fetch_add(1, Ordering::Relaxed);
    let serial = first.saturating_add(before);
    if serial > SERIAL_MASK {
        // Stay spent: never wrap back into used serials.
        issued.store((SERIAL_MASK + 1).saturating_sub(first), Ordering::Relaxed);
        return None;
    }
    Some((before, serial))
}

/// The serial a process started at `now` counts from: the ticks of 1/16,000 s since
/// 2025-01-01T00:00:00Z, or 1 for a clock outside the serials' range.
fn first_serial(now: SystemTime) -> u64 {
    ticks(now).unwrap_or(1).max(1)
}

/// Whether `serial` is more than [`AHEAD_LIMIT`] ticks ahead of the clock at `now` (a clock
/// outside the serials' range counts as 0).
fn is_ahead(serial: u64, now: SystemTime) -> bool {
    serial > ticks(now).unwrap_or(0).saturating_add(AHEAD_LIMIT)
}

/// Ticks of 1/16,000 s from 2025-01-01T00:00:00Z to `now`; `None` before then or past the
/// last serial.
fn ticks(now: SystemTime) -> Option<u64> {
    let zero = SystemTime::UNIX_EPOCH + Duration::from_secs(CLOCK_ZERO_UNIX_SECONDS);
    let micros = u64::try_from(now.duration_since(zero).ok()?.as_micros()).ok()?;
    // 62.5 µs per tick, in integers.
    let ticks = micros.checked_mul(2)? / 125;
    (ticks <= SERIAL_MASK).then_some(ticks)
}

/// The identity of one connection, never handed out twice: not in the life of the process,
/// and not by a later run of the same instance.
///
/// From the most significant bit down it packs the [instance](ClientId::instance) (12 bits),
/// the [core loop](ClientId::worker) (8 bits) and a serial (44 bits). Serials count up per core
/// loop index from the wall clock at the process's first connection, in ticks of 1/16,000 s
/// since 2025-01-01T00:00:00Z, so a restarted process starts above every id its previous run
/// issued on the same core loop — provided each core loop index of that run averaged fewer than
/// 16,000 new connections per second from its first connection to the restart, and the wall
/// clock did not step back in between. A warning is logged when this may fail: a core loop a
/// minute ahead of the clock, or a clock outside 2025–2059 (serials then count from 1). When
/// the serials are spent (at 2^44, in 2059 at the clock's pace) the core loop refuses new
/// connections rather than reuse ids.
///
/// It travels as a decimal string in text protocols (64-bit values do not fit a JavaScript
/// number); [`Display`](fmt::Display) and [`FromStr`] use that form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(NonZeroU64);

impl ClientId {
    /// Packs the parts; `None` if a part does not fit its field or the serial is 0.
    pub(crate) fn new(instance: u16, worker: WorkerId, serial: u64) -> Option<Self> {
        if instance as u64 > INSTANCE_MASK
            || worker.0 as u64 > WORKER_MASK
            || serial > SERIAL_MASK
            || serial == 0
        {
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

    /// The clock's zero plus `micros` microseconds.
    fn at(micros: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(CLOCK_ZERO_UNIX_SECONDS)
            + Duration::from_micros(micros)
    }

    #[test]
    fn packs_and_unpacks_every_field() {
        let id = ClientId::new(0xABC, WorkerId(200), SERIAL_MASK).unwrap();
        assert_eq!(id.instance(), 0xABC);
        assert_eq!(id.worker(), WorkerId(200));
        assert_eq!(id.serial(), SERIAL_MASK);
        let small = ClientId::new(0, WorkerId(0), 1).unwrap();
        assert_eq!(small.as_u64(), 1);
        let largest = ClientId::new(MAX_INSTANCES - 1, WorkerId(255), SERIAL_MASK).unwrap();
        assert_eq!(largest.as_u64(), u64::MAX);
        assert_eq!(largest.instance(), 4095);
        let id = ClientId::new(1, WorkerId(2), 3).unwrap();
        assert_eq!(id.as_u64(), 1 << 52 | 2 << 44 | 3);
    }

    #[test]
    fn rejects_fields_that_do_not_fit() {
        assert!(ClientId::new(MAX_INSTANCES, WorkerId(0), 1).is_none());
        assert!(ClientId::new(u16::MAX, WorkerId(0), 1).is_none());
        assert!(ClientId::new(0, WorkerId(256), 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), SERIAL_MASK + 1).is_none());
        assert!(ClientId::new(0, WorkerId(0), 0).is_none());
        assert!(ClientId::from_u64(0).is_none());
        assert!(
            ClientId::from_u64(1 << 44).is_none(),
            "serial 0 is never issued"
        );
    }

    #[test]
    fn serials_grow_per_worker_index_and_are_shared_process_wide() {
        let a = next_serial(WorkerId(255)).unwrap();
        let b = next_serial(WorkerId(255)).unwrap();
        assert!(b > a);
        assert!(next_serial(WorkerId(256)).is_none());
        // Counted from the clock (this machine's is past 2025), not from 1, and not ahead of it.
        assert!(a > 1 && b <= first_serial(SystemTime::now()) + 1, "{a} {b}");
    }

    #[test]
    fn the_first_serial_counts_ticks_of_62_5_microseconds_since_2025() {
        assert_eq!(first_serial(at(0)), 1, "tick 0 is not a serial");
        assert_eq!(first_serial(at(62)), 1);
        assert_eq!(first_serial(at(63)), 1);
        assert_eq!(first_serial(at(125)), 2);
        assert_eq!(first_serial(at(187)), 2);
        assert_eq!(first_serial(at(188)), 3);
        assert_eq!(first_serial(at(1_000_000)), 16_000);
        // 2026-01-01T00:00:00Z.
        let year = 365 * 86_400 * 1_000_000;
        assert_eq!(first_serial(at(year)), 365 * 86_400 * 16_000);
        // The last tick that is a serial (2059), and the next one.
        let last = (SERIAL_MASK * 125).div_ceil(2);
        assert_eq!(first_serial(at(last)), SERIAL_MASK);
        assert_eq!(first_serial(at(last + 63)), 1, "past the serials");
    }

    #[test]
    fn a_clock_before_2025_counts_from_1() {
        let zero = at(0);
        assert_eq!(first_serial(zero - Duration::from_micros(1)), 1);
        assert_eq!(first_serial(SystemTime::UNIX_EPOCH), 1);
    }

    #[test]
    fn a_restart_starts_above_a_run_that_kept_to_16000_per_second() {
        // A run from second 100 that issued 16,000 serials a second for 10 s: the restart
        // at second 110 starts just above its last serial.
        let start = at(100_000_000);
        let last = first_serial(start) + TICKS_PER_SECOND * 10 - 1;
        let restart = start + Duration::from_secs(10);
        assert_eq!(first_serial(restart), last + 1);
        // Restarted one tick sooner, it would issue that last serial again.
        assert_eq!(first_serial(restart - Duration::from_micros(62)), last);
    }

    #[test]
    fn a_counter_a_minute_ahead_of_the_clock_is_noticed() {
        let now = at(3_600_000_000);
        let tick = first_serial(now);
        assert!(!is_ahead(tick, now));
        assert!(!is_ahead(tick + AHEAD_LIMIT, now));
        assert!(is_ahead(tick + AHEAD_LIMIT + 1, now));
        // Against a clock before 2025, any count past a minute's worth is ahead.
        let early = SystemTime::UNIX_EPOCH;
        assert!(!is_ahead(AHEAD_LIMIT, early));
        assert!(is_ahead(AHEAD_LIMIT + 1, early));
    }

    #[test]
    fn a_spent_counter_stays_spent() {
        let first = SERIAL_MASK - 2;
        let issued = AtomicU64::new(0);
        assert_eq!(take(&issued, first), Some((0, SERIAL_MASK - 2)));
        assert_eq!(take(&issued, first), Some((1, SERIAL_MASK - 1)));
        assert_eq!(take(&issued, first), Some((2, SERIAL_MASK)));
        for _ in 0..3 {
            assert_eq!(take(&issued, first), None);
        }
        assert_eq!(
            issued.load(Ordering::Relaxed),
            3,
            "held at the end, never wrapped"
        );
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
