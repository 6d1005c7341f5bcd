//! When a core loop's next fan-out round may start: the policy of
//! [`FanoutWindow`], kept apart from the loop so that it can be tested
//! on its own, with made-up clocks.
//!
//! The loop tells the pacer four things: a fan-out message reached connections (and whether
//! it found the loop quiet), a round started, how long a part of it took to write, a round
//! finished (and whether anything is held for the next one). The pacer answers one question:
//! from when may the next round start.
//!
//! A round's time is the time spent writing it, not the time from its start to its end: a
//! round is written a chunk per loop turn, and the reads, replies and other work in between
//! are not its cost. Writing at once keeps up as long as messages come further apart than
//! that time; measured from start to end, a busy loop would look slower than it writes and
//! open the window where writing at once would do.
//!
//! Counting messages alone does not tell a loop that falls behind from one that is merely
//! busy: a steady stream that takes most of the loop's time to write brings two messages
//! into many rounds, and waiting then only adds latency, since the next round would carry
//! both anyway. The window opens only while the *load* — the time writing each message at
//! once would take, per unit of time — is above [`OPENS_AT`]. The load is the messages
//! since the last round began times a round's writing time, over the time since it began,
//! averaged over rounds; it does not depend on the window (a wider window gathers more
//! messages in a longer period), so opening does not feed on itself.

use std::time::{Duration, Instant};

use crate::config::FanoutWindow;

/// The load (see the module's docs) from which the adaptive window opens: writing at once
/// would take half again the loop's time. Below it, back-to-back rounds of whatever came
/// meanwhile keep up, and a round at once is the shortest way to the last delivery.
const OPENS_AT: f64 = 1.5;

/// The weight of the newest round in the load's average.
const LOAD_WEIGHT: f64 = 0.25;

/// One core loop's fan-out window.
#[derive(Debug)]
pub(crate) struct Pacer {
    window: FanoutWindow,
    /// When the last round began.
    began: Option<Instant>,
    /// Adaptive: the window open now, after `began`.
    open: Duration,
    /// Fan-out messages since the last round began.
    since_round: u32,
    /// How long the last finished round took to write.
    round_time: Duration,
    /// How long the round under way has taken to write so far.
    writing: Duration,
    /// The burst under way: the quiet arrival that began it, its last arrival, its size.
    burst: Option<(Instant, Instant, u32)>,
    /// Whether the burst before the one under way had company: a burst is awaited only
    /// once it recurs.
    recurring: bool,
    /// How long a round waits after a quiet arrival, learned from the last burst.
    linger: Duration,
    /// When the round for what is held may start, if a quiet arrival set it.
    due: Option<Instant>,
    /// How many messages the last burst had: once as many have come, the round need not
    /// wait for the rest of `linger`.
    expect: u32,
    /// The load, averaged over rounds.
    load: f64,
}

impl Pacer {
    pub(crate) fn new(window: FanoutWindow) -> Self {
        Pacer {
            window,
            began: None,
            open: Duration::ZERO,
            since_round: 0,
            round_time: Duration::ZERO,
            writing: Duration::ZERO,
            burst: None,
            recurring: false,
            linger: Duration::ZERO,
            due: None,
            expect: 0,
            load: 0.0,
        }
    }

    /// A fan-out message reached connections at `now`; `idle`: the loop held nothing and had
    /// no round under way when it came.
    pub(crate) fn arrived(&mut self, now: Instant, idle: bool) {
        self.since_round = self.since_round.saturating_add(1);
        let FanoutWindow::Adaptive { max } = self.window else {
            return;
        };
        let quiet = idle && self.began.is_none_or(|b| now >= b + self.open);
        if !quiet {
            if let Some((_, last, n)) = &mut self.burst {
                *last = now;
                *n = n.saturating_add(1);
            }
            return;
        }
        // The last burst ends here: if it had company, and so had the one before it, the next
        // one is awaited for a while — under a light load only if it came closer together
        // than the quiet after it. Senders answering the same delivery make a burst that
        // recurs; two messages that met by chance in a light stream do not, and waiting after
        // them would only delay the next lone one. A steady stream that finds the loop busy
        // now and then also makes "bursts", spread as wide as the gaps between them: waiting
        // for the rest of those only delays each round. Under a heavy load, gathering them is
        // what keeps the loop up.
        if let Some((first, last, n)) = self.burst {
            let compact = self.load >= OPENS_AT
                || last.saturating_duration_since(first) * 2 <= now.saturating_duration_since(last);
            // Whatever this burst's size, it is the one before the next.
            let before_had_company = std::mem::replace(&mut self.recurring, n >= 2);
            (self.linger, self.expect) = if n >= 2 && before_had_company && compact {
                let spread = last.saturating_duration_since(first) * 2;
                (spread.min(self.round_time.max(spread / 2)).min(max), n)
            } else {
                (Duration::ZERO, 0)
            };
        }
        self.burst = Some((now, now, 1));
        self.open = Duration::ZERO;
        self.due = Some(now + self.linger);
    }

    /// From when the next round may start (it starts only if something is held).
    pub(crate) fn next_round(&self, epoch: Instant) -> Instant {
        match self.window {
            FanoutWindow::Fixed(window) => self.began.map_or(epoch, |b| b + window),
            FanoutWindow::Adaptive { .. } => match (self.due, self.began) {
                (Some(_), _) if self.expect >= 2 && self.since_round >= self.expect => epoch,
                (Some(due), _) => due,
                (None, Some(b)) => b + self.open,
                (None, None) => epoch,
            },
        }
    }

    /// A round began at `now`.
    pub(crate) fn started(&mut self, now: Instant) {
        if let FanoutWindow::Adaptive { max } = self.window {
            if let Some(b) = self.began {
                let period = now.saturating_duration_since(b).as_secs_f64();
                let writing = self.round_time.as_secs_f64() * f64::from(self.since_round);
                let load = if period > 0.0 {
                    writing / period
                } else {
                    OPENS_AT
                };
                self.load += (load - self.load) * LOAD_WEIGHT;
            }
            // More messages came in the time of one round than one round carries, and
            // writing each at once would not keep up: it waits a round's time per extra one.
            self.open = if self.since_round >= 2 && self.load >= OPENS_AT {
                self.round_time
                    .saturating_mul(self.since_round - 1)
                    .min(max)
            } else {
                Duration::ZERO
            };
        }
        self.began = Some(now);
        self.since_round = 0;
        self.due = None;
        self.writing = Duration::ZERO;
    }

    /// A part of the round under way took `took` to write.
    pub(crate) fn wrote(&mut self, took: Duration) {
        self.writing += took;
    }

    /// The round under way was written to its end; `held`: connections got fan-out frames
    /// meanwhile after their write, and wait for the next round.
    pub(crate) fn finished(&mut self, held: bool) {
        self.round_time = self.writing;
        if !held {
            self.open = Duration::ZERO;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_millis(10);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn adaptive() -> (Pacer, Instant) {
        (
            Pacer::new(FanoutWindow::Adaptive { max: MAX }),
            Instant::now(),
        )
    }

    /// An adaptive pacer on a loop that has been under heavy load: writing each message at
    /// once would take twice the loop's time.
    fn loaded() -> (Pacer, Instant) {
        let (mut p, t0) = adaptive();
        p.load = OPENS_AT * 2.0;
        (p, t0)
    }

    /// One round: a message at `at` (quiet or not), the round when allowed, written in `took`.
    fn round(p: &mut Pacer, epoch: Instant, at: Instant, took: Duration, held: bool) -> Instant {
        let start = p.next_round(epoch).max(at);
        p.started(start);
        p.wrote(took);
        p.finished(held);
        start
    }

    #[test]
    fn a_lone_message_and_a_light_stream_go_at_once() {
        let (mut p, t0) = adaptive();
        for k in 0..5u32 {
            // One message every 5 ms, a round taking 1 ms to write.
            let at = t0 + Duration::from_millis(5) * k;
            p.arrived(at, true);
            assert_eq!(p.next_round(t0).max(at), at, "message {k}");
            round(&mut p, t0, at, Duration::from_millis(1), false);
        }
    }

    /// Messages every `every` from `t0` on, rounds taking `took`: the window at each round.
    fn steady(every: Duration, took: Duration, rounds: usize) -> Vec<Duration> {
        let (mut p, t0) = adaptive();
        let mut next = t0;
        let mut windows = Vec::new();
        let mut now = t0;
        for _ in 0..rounds {
            // Whatever arrives before the round may start.
            loop {
                let held = next <= now;
                if next <= p.next_round(t0).max(now) || held {
                    let idle = windows.is_empty() && next == t0;
                    p.arrived(next, idle || next > now);
                    now = now.max(next);
                    next += every;
                } else {
                    break;
                }
            }
            let start = p.next_round(t0).max(now);
            p.started(start);
            windows.push(p.open);
            now = start + took;
            p.wrote(took);
            p.finished(next <= now);
        }
        windows
    }

    #[test]
    fn fan_out_faster_than_rounds_opens_the_window_up_to_max() {
        let windows = steady(us(100), us(500), 12);
        assert!(windows.windows(2).all(|w| w[1] >= w[0]), "{windows:?}");
        assert_eq!(*windows.last().unwrap(), MAX, "{windows:?}");
    }

    #[test]
    fn fan_out_slower_than_rounds_keeps_it_shut() {
        let windows = steady(us(2000), us(500), 12);
        assert!(windows.iter().all(|w| w.is_zero()), "{windows:?}");
    }

    #[test]
    fn a_stream_that_back_to_back_rounds_keep_up_with_keeps_it_shut() {
        // A message every 5 ms, a round taking 6 ms to write: now and then a round begins
        // with two messages, but the next round carries whatever came meanwhile anyway, and
        // waiting would only delay them.
        let windows = steady(us(5000), us(6000), 40);
        assert!(windows.iter().all(|w| w.is_zero()), "{windows:?}");
    }

    #[test]
    fn a_load_above_the_threshold_opens_it() {
        // Writing each at once would take twice the time.
        let windows = steady(us(3000), us(6000), 40);
        assert!(windows[20..].iter().all(|w| !w.is_zero()), "{windows:?}");
    }

    #[test]
    fn a_round_counts_its_writing_not_the_turns_between() {
        let (mut p, t0) = loaded();
        p.arrived(t0, true);
        p.started(t0);
        // Four chunks of 100 µs each, in turns spread over 4 ms of other work; two messages
        // come meanwhile, 1 and 3 ms in.
        for k in 0..4 {
            p.wrote(us(100));
            if k % 2 == 0 {
                p.arrived(t0 + Duration::from_millis(k + 1), false);
            }
        }
        p.finished(true);
        p.started(t0 + Duration::from_millis(4));
        // One message beyond one: a round's writing (400 µs), not its 4 ms from start to end.
        assert_eq!(p.open, us(400));
    }

    #[test]
    fn the_window_closes_once_a_round_leaves_nothing_held() {
        let (mut p, t0) = loaded();
        p.arrived(t0, true);
        p.started(t0);
        for k in 1..=4 {
            p.arrived(t0 + us(k), false);
        }
        p.wrote(us(500));
        p.finished(true);
        p.started(t0 + us(500));
        assert!(p.open > Duration::ZERO);
        p.wrote(us(400));
        p.finished(false);
        // Right after, well inside the window that was open: at once.
        let at = t0 + Duration::from_millis(1);
        p.arrived(at, true);
        assert!(p.next_round(t0) <= at + us(900));
    }

    #[test]
    fn a_recurring_burst_is_awaited_for_twice_its_spread() {
        let (mut p, t0) = adaptive();
        let mut at = t0;
        let mut starts = Vec::new();
        for _ in 0..4 {
            // Four messages 30 µs apart after a quiet spell; rounds take 1 ms.
            p.arrived(at, true);
            let first = p.next_round(t0).max(at);
            for k in 1..=3 {
                p.arrived(at + us(30 * k), false);
            }
            starts.push(first.saturating_duration_since(at));
            let start = round(&mut p, t0, at, Duration::from_millis(1), false);
            at = start + Duration::from_millis(3);
        }
        assert_eq!(
            starts[..2],
            [Duration::ZERO; 2],
            "the first two bursts teach"
        );
        assert!(starts[2..].iter().all(|&s| s == us(180)), "{starts:?}");
    }

    /// A message every 5 ms or so, rounds taking 4.5 ms: every second message comes during
    /// the round of the one before, the next (10 ms after the pair began) after the round
    /// that carries it — twice over. When the round for the fifth message, at 20 ms, may start.
    fn a_stream_that_finds_the_loop_busy(mut p: Pacer, t0: Instant) -> Instant {
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for pair in [0, 10] {
            p.arrived(ms(pair), true);
            p.started(ms(pair));
            p.arrived(ms(pair + 4), false);
            p.wrote(us(4500));
            p.finished(true);
            p.started(ms(pair) + us(4500));
            p.wrote(us(4500));
            p.finished(false);
        }
        p.arrived(ms(20), true);
        p.next_round(t0)
    }

    #[test]
    fn a_steady_stream_that_found_the_loop_busy_is_not_a_burst() {
        let (p, t0) = adaptive();
        let start = a_stream_that_finds_the_loop_busy(p, t0);
        assert_eq!(start, t0 + Duration::from_millis(20));
    }

    #[test]
    fn under_a_heavy_load_a_spread_burst_is_awaited() {
        // Gathering the messages is what keeps a loop under a heavy load up.
        let (p, t0) = loaded();
        let start = a_stream_that_finds_the_loop_busy(p, t0);
        assert!(start > t0 + Duration::from_millis(20));
    }

    #[test]
    fn two_messages_that_met_by_chance_are_not_a_burst() {
        // A light stream, a message every 10 ms or so, rounds taking 2 ms: one message came
        // 1 ms after the one before, during its round. The next lone one goes at once.
        let (mut p, t0) = adaptive();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        for at in [0, 10, 20] {
            p.arrived(ms(at), true);
            round(&mut p, t0, ms(at), Duration::from_millis(2), false);
        }
        p.arrived(ms(30), true);
        p.started(ms(30));
        p.arrived(ms(31), false);
        p.wrote(Duration::from_millis(2));
        p.finished(true);
        p.started(ms(32));
        p.wrote(Duration::from_millis(2));
        p.finished(false);
        p.arrived(ms(40), true);
        assert_eq!(p.next_round(t0), ms(40));
    }

    #[test]
    fn chance_meetings_with_lone_messages_between_are_not_a_burst() {
        // As above, twice, with a lone message between the two meetings: the meetings do not
        // recur back to back, and the lone message after the second goes at once.
        let (mut p, t0) = adaptive();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let meeting = |p: &mut Pacer, at: u64| {
            p.arrived(ms(at), true);
            p.started(ms(at));
            p.arrived(ms(at + 1), false);
            p.wrote(Duration::from_millis(2));
            p.finished(true);
            p.started(ms(at + 2));
            p.wrote(Duration::from_millis(2));
            p.finished(false);
        };
        meeting(&mut p, 0);
        p.arrived(ms(10), true);
        round(&mut p, t0, ms(10), Duration::from_millis(2), false);
        meeting(&mut p, 20);
        p.arrived(ms(30), true);
        assert_eq!(p.next_round(t0), ms(30));
    }

    #[test]
    fn a_recurring_burst_goes_once_as_many_as_last_time_have_come() {
        let (mut p, t0) = adaptive();
        let mut at = t0;
        for burst in 0..4 {
            // Four messages 300 µs apart after a quiet spell; rounds take 1 ms, so the linger
            // (twice the spread, at most a round's time) would last past the fourth.
            p.arrived(at, true);
            for k in 1..=3 {
                let now = at + us(300 * k);
                if burst > 1 && k < 3 {
                    // Fewer than the last burst had: the round still waits for the rest.
                    assert!(p.next_round(t0) > now, "burst {burst}, message {k}");
                }
                p.arrived(now, false);
            }
            let last = at + us(900);
            if burst > 1 {
                // All four are here: no need to wait out the linger.
                assert!(p.next_round(t0) <= last, "burst {burst}");
            }
            let start = round(&mut p, t0, last, Duration::from_millis(1), false);
            at = start + Duration::from_millis(3);
        }
    }

    #[test]
    fn a_fixed_window_spaces_rounds() {
        let t0 = Instant::now();
        let mut p = Pacer::new(FanoutWindow::Fixed(MAX));
        assert_eq!(p.next_round(t0), t0);
        p.arrived(t0, true);
        p.started(t0);
        p.wrote(us(10));
        p.finished(false);
        p.arrived(t0 + us(20), true);
        assert_eq!(p.next_round(t0), t0 + MAX);
    }
}
