//! Which other instances are live, and the requests waiting for their answers.
//!
//! An instance counts as live from any message heard from it (every instance says hello at
//! start and at every heartbeat) until it says goodbye or stays silent for [`LIVE_FOR`], so a
//! query expects exactly the instances that can answer, and one that died stops being
//! waited for within a few seconds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::ask::{Gathered, Value};

/// How long an instance stays live without being heard from (three heartbeats).
pub(crate) const LIVE_FOR: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct State {
    seen: HashMap<u16, Instant>,
    pending: HashMap<u64, Pending>,
    next: u64,
}

#[derive(Debug)]
struct Pending {
    expected: HashSet<u16>,
    values: Vec<Value>,
}

/// The other instances of a cluster, as one instance knows them.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    state: Mutex<State>,
    answered: Condvar,
}

impl Peers {
    /// Something arrived from `from`: it is live. True if it was not until now.
    pub(crate) fn heard(&self, from: u16) -> bool {
        let now = Instant::now();
        let before = self.state.lock().seen.insert(from, now);
        before.is_none_or(|at| now.duration_since(at) >= LIVE_FOR)
    }

    /// `from` said goodbye: no request waits for it any longer.
    pub(crate) fn gone(&self, from: u16) {
        let mut state = self.state.lock();
        state.seen.remove(&from);
        for p in state.pending.values_mut() {
            p.expected.remove(&from);
        }
        drop(state);
        self.answered.notify_all();
    }

    /// The live instances (other than this one), sorted.
    pub(crate) fn live(&self) -> Vec<u16> {
        let now = Instant::now();
        let mut state = self.state.lock();
        state
            .seen
            .retain(|_, at| now.duration_since(*at) < LIVE_FOR);
        let mut live: Vec<u16> = state.seen.keys().copied().collect();
        live.sort_unstable();
        live
    }

    /// Whether `instance` is live.
    pub(crate) fn is_live(&self, instance: u16) -> bool {
        self.state
            .lock()
            .seen
            .get(&instance)
            .is_some_and(|at| at.elapsed() < LIVE_FOR)
    }

    /// Registers a request that expects an answer from each of `expected` that is live now;
    /// its id. One that is not (silent for [`LIVE_FOR`], gone, never heard from) cannot
    /// answer, so it is not waited for; and as this looks under the lock that a goodbye
    /// takes, neither is one whose goodbye came after the caller chose whom to ask.
    pub(crate) fn open(&self, expected: &[u16]) -> u64 {
        let now = Instant::now();
        let mut state = self.state.lock();
        let expected = expected
            .iter()
            .copied()
            .filter(|i| {
                state
                    .seen
                    .get(i)
                    .is_some_and(|at| now.duration_since(*at) < LIVE_FOR)
            })
            .collect();
        state.next += 1;
        let id = state.next;
        state.pending.insert(
            id,
            Pending {
                expected,
                values: Vec::new(),
            },
        );
        id
    }

    /// An answer to request `id` from `from`; ignored if nobody waits for it any more.
    pub(crate) fn answer(&self, id: u64, from: u16, value: Value) {
        let mut state = self.state.lock();
        if let Some(p) = state.pending.get_mut(&id) {
            if p.expected.remove(&from) {
                p.values.push(value);
                drop(state);
                self.answered.notify_all();
            }
        }
    }

    /// Waits until every expected instance answered request `id` or `deadline` passes, and
    /// takes the answers; `complete` says whether all came.
    pub(crate) fn wait(&self, id: u64, deadline: Instant) -> Gathered {
        let mut state = self.state.lock();
        loop {
            let done = state.pending.get(&id).is_none_or(|p| p.expected.is_empty());
            if done || Instant::now() >= deadline {
                break;
            }
            self.answered.wait_until(&mut state, deadline);
        }
        match state.pending.remove(&id) {
            Some(p) => Gathered {
                complete: p.expected.is_empty(),
                values: p.values,
            },
            None => Gathered::default(),
        }
    }

    /// Forgets a request that was never sent.
    pub(crate) fn cancel(&self, id: u64) {
        self.state.lock().pending.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_completes_when_every_expected_instance_answered() {
        let peers = Peers::default();
        peers.heard(2);
        peers.heard(3);
        assert_eq!(peers.live(), vec![2, 3]);
        let id = peers.open(&[2, 3]);
        peers.answer(id, 2, Value::Count(1));
        peers.answer(id, 2, Value::Count(5)); // a repeat is ignored
        peers.answer(id, 3, Value::Count(2));
        let got = peers.wait(id, Instant::now() + Duration::from_secs(5));
        assert!(got.complete);
        assert_eq!(got.sum(), 3);
    }

    #[test]
    fn a_missing_instance_makes_the_answer_partial_at_the_deadline() {
        let peers = Peers::default();
        peers.heard(2);
        peers.heard(3);
        let id = peers.open(&[2, 3]);
        peers.answer(id, 3, Value::Bool(true));
        let got = peers.wait(id, Instant::now() + Duration::from_millis(20));
        assert!(!got.complete);
        assert!(got.any());
    }

    #[test]
    fn a_goodbye_stops_the_wait_for_that_instance() {
        let peers = Peers::default();
        peers.heard(2);
        let id = peers.open(&[2]);
        peers.gone(2);
        let got = peers.wait(id, Instant::now() + Duration::from_secs(60));
        assert!(got.complete, "nobody left to wait for");
        assert!(peers.live().is_empty());
    }

    #[test]
    fn a_request_waits_only_for_instances_live_when_it_opens() {
        let peers = Peers::default();
        peers.heard(2);
        peers.heard(3);
        let asked = peers.live();
        // A goodbye between the choice of whom to ask and the request.
        peers.gone(3);
        let id = peers.open(&asked);
        peers.answer(id, 2, Value::Count(1));
        let got = peers.wait(id, Instant::now());
        assert!(got.complete, "instance 3 said goodbye before the request");
        // The owner of a client that was never heard from (dead before this instance
        // started, say) cannot answer either.
        let id = peers.open(&[7]);
        let got = peers.wait(id, Instant::now());
        assert!(got.complete);
        assert_eq!(got.sum(), 0);
    }
}
