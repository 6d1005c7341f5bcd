//! The measurements over connected clients: fan-out (closed-loop broadcasters, every client
//! counting what it receives) and echo (closed-loop round trips).
//!
//! With several client threads, engine 0 holds the broadcasters and keeps time; every engine
//! counts deliveries into shared per-broadcast counters, and whoever takes a counter to zero
//! stamps the broadcast complete.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Engine, Kind, classify, request};

/// When the broadcasters stop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// Send for this long.
    After(Duration),
    /// Send this many broadcasts per broadcaster.
    Each(u64),
}

/// One fan-out measurement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FanoutSpec {
    /// Broadcasters: clients 0.. of engine 0.
    pub(crate) senders: usize,
    /// Broadcasts of one broadcaster not yet received by every client, at most.
    pub(crate) inflight: u64,
    pub(crate) payload: usize,
    pub(crate) stop: Stop,
    /// Clients connected in all: a broadcast is complete once this many received it.
    pub(crate) clients: usize,
    /// How long after the last send every broadcast must be complete.
    pub(crate) drain: Duration,
    /// Open loop: broadcasts per second from all broadcasters together, on a schedule that
    /// does not wait for results (still at most `inflight` per broadcaster). `None`: the
    /// closed loop.
    pub(crate) rate: Option<f64>,
}

/// What a fan-out measured. Latencies in ns.
#[derive(Debug, Default)]
pub(crate) struct Fanout {
    pub(crate) broadcasts: u64,
    pub(crate) deliveries: u64,
    /// First send to the last delivery of the last broadcast.
    pub(crate) window: Duration,
    pub(crate) to_result: Vec<u64>,
    pub(crate) to_last: Vec<u64>,
    /// broadcastResults whose listenerCount was not the number of clients.
    pub(crate) wrong_count: u64,
    /// Open loop: scheduled sends dropped because `inflight` broadcasts of their broadcaster
    /// were still open for a whole interval (the server, or this generator, fell behind).
    pub(crate) skipped: u64,
    /// Closed loop: broadcasts whose sender had the previous one's result but waited for
    /// room, `inflight` of its broadcasts not yet being received by every client.
    pub(crate) room_waits: u64,
}

/// What an echo run measured. Latencies in ns.
#[derive(Debug, Default)]
pub(crate) struct Echo {
    pub(crate) round_trips: u64,
    pub(crate) window: Duration,
    pub(crate) rtts: Vec<u64>,
}

/// Shared per-broadcast counters: slot = broadcaster × inflight + local sequence % inflight.
struct Track {
    epoch: Instant,
    senders: u64,
    inflight: u64,
    remaining: Vec<AtomicU32>,
    done_at: Vec<AtomicU64>,
    stop: AtomicBool,
    failure: AtomicBool,
    anomalies: AtomicU64,
}

impl Track {
    fn slot(&self, seq: u64) -> usize {
        let (sender, local) = (seq % self.senders, seq / self.senders);
        (sender * self.inflight + local % self.inflight) as usize
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn delivered(&self, seq: u64, now: u64) {
        let slot = self.slot(seq);
        let Some(remaining) = self.remaining.get(slot) else {
            self.anomalies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match remaining.fetch_sub(1, Ordering::AcqRel) {
            1 => self.done_at[slot].store(now.max(1), Ordering::Release),
            0 => {
                // A delivery nobody waits for: keep the counter sane and say so at the end.
                remaining.store(0, Ordering::Relaxed);
                self.anomalies.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Runs one fan-out over all engines (engine 0 on this thread, the others on their own).
pub(crate) fn fanout(engines: &mut [Engine], spec: &FanoutSpec) -> Result<Fanout, String> {
    let slots = spec.senders * spec.inflight as usize;
    let track = Track {
        epoch: Instant::now(),
        senders: spec.senders as u64,
        inflight: spec.inflight,
        remaining: (0..slots).map(|_| AtomicU32::new(0)).collect(),
        done_at: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        stop: AtomicBool::new(false),
        failure: AtomicBool::new(false),
        anomalies: AtomicU64::new(0),
    };
    let (lead, rest) = engines.split_first_mut().ok_or("no client engine")?;
    let mut out = std::thread::scope(|scope| {
        let followers: Vec<_> = rest
            .iter_mut()
            .map(|e| scope.spawn(|| follow(e, &track)))
            .collect();
        let alone = followers.is_empty();
        let lead_result = broadcast(lead, spec, &track, alone);
        track.stop.store(true, Ordering::Relaxed);
        let mut out = lead_result?;
        for f in followers {
            out.deliveries += f.join().map_err(|_| "a client thread panicked")??;
        }
        Ok::<_, String>(out)
    })?;
    let anomalies = track.anomalies.load(Ordering::Relaxed);
    if anomalies > 0 {
        return Err(format!(
            "{anomalies} deliveries of unknown or complete broadcasts"
        ));
    }
    let expected = out.broadcasts * spec.clients as u64;
    if out.deliveries != expected {
        return Err(format!(
            "{} deliveries, expected {expected}",
            out.deliveries
        ));
    }
    out.to_result.sort_unstable();
    out.to_last.sort_unstable();
    Ok(out)
}

/// A client thread that only receives: counts deliveries until told to stop.
fn follow(e: &mut Engine, track: &Track) -> Result<u64, String> {
    let mut deliveries = 0;
    while !track.stop.load(Ordering::Relaxed) {
        let result = e.pump(
            Duration::from_millis(2),
            track.epoch,
            &mut |_, text, now| {
                let m = classify(text);
                if m.kind == Kind::Broadcast {
                    deliveries += 1;
                    track.delivered(m.seq, now);
                }
                false
            },
        );
        if let Err(e) = result {
            track.failure.store(true, Ordering::Relaxed);
            return Err(e);
        }
    }
    Ok(deliveries)
}

struct Sender {
    /// Local sequence of the next broadcast.
    next: u64,
    /// Oldest local sequence not yet complete.
    oldest: u64,
    awaiting_result: bool,
    /// Closed loop: the next broadcast is waiting for room (counted once).
    waiting_room: bool,
    sent_at: Vec<u64>,
    /// Open loop: when the next broadcast is due.
    due: Instant,
}

/// Engine 0: the broadcasters' closed loops, plus its share of receiving.
fn broadcast(
    e: &mut Engine,
    spec: &FanoutSpec,
    track: &Track,
    alone: bool,
) -> Result<Fanout, String> {
    if e.len() < spec.senders || spec.senders == 0 {
        return Err(format!(
            "{} broadcasters, {} clients on the first client thread",
            spec.senders,
            e.len()
        ));
    }
    let n = spec.senders as u64;
    let inflight = spec.inflight;
    let start = Instant::now();
    // Open loop: each broadcaster sends every `interval`, the broadcasters staggered evenly.
    let interval = spec
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| Duration::from_secs_f64(n as f64 / r));
    let mut senders: Vec<Sender> = (0..spec.senders)
        .map(|s| Sender {
            next: 0,
            oldest: 0,
            awaiting_result: false,
            waiting_room: false,
            sent_at: vec![0; inflight as usize],
            due: start + interval.map_or(Duration::ZERO, |i| i * s as u32 / n as u32),
        })
        .collect();
    let mut out = Fanout::default();
    let (send_until, per_sender) = match spec.stop {
        Stop::After(d) => (Some(start + d), u64::MAX),
        Stop::Each(k) => (None, k),
    };
    let hard = send_until.unwrap_or(start) + spec.drain;
    let (mut first_send, mut last_done) = (u64::MAX, 0u64);
    // Alone, every completion is seen by this thread's own reads, which end its poll.
    let tick = Duration::from_millis(if alone { 10 } else { 1 });
    loop {
        if track.failure.load(Ordering::Relaxed) {
            return Err("a client thread failed".to_owned());
        }
        let now = Instant::now();
        let sending = send_until.is_none_or(|t| now < t);
        let mut busy = false;
        for (s, st) in senders.iter_mut().enumerate() {
            while st.oldest < st.next {
                let slot = track.slot(st.oldest * n + s as u64);
                let done = track.done_at[slot].load(Ordering::Acquire);
                if done == 0 {
                    break;
                }
                let sent = st.sent_at[(st.oldest % inflight) as usize];
                out.to_last.push(done.saturating_sub(sent));
                last_done = last_done.max(done);
                st.oldest += 1;
            }
            let more = sending && st.next < per_sender;
            let room = st.next - st.oldest < inflight;
            let go = match interval {
                None => {
                    if more && !st.awaiting_result && !room && !st.waiting_room {
                        st.waiting_room = true;
                        out.room_waits += 1;
                    }
                    !st.awaiting_result && room
                }
                Some(every) if now >= st.due => {
                    if !room {
                        // Full: the send waits, up to an interval; then it is dropped.
                        if now >= st.due + every {
                            out.skipped += 1;
                            st.due += every;
                        }
                        false
                    } else {
                        st.due += every;
                        // Far behind (a stall): no burst to catch up.
                        if st.due + every < now {
                            st.due = now;
                        }
                        true
                    }
                }
                Some(_) => false,
            };
            if more && go {
                let seq = st.next * n + s as u64;
                let slot = track.slot(seq);
                track.done_at[slot].store(0, Ordering::Relaxed);
                track.remaining[slot].store(spec.clients as u32, Ordering::Release);
                let text = request("broadcast", seq, spec.payload);
                let t = track.now();
                st.sent_at[(st.next % inflight) as usize] = t;
                first_send = first_send.min(t);
                e.send_text(s, &text)?;
                st.awaiting_result = true;
                st.waiting_room = false;
                st.next += 1;
                out.broadcasts += 1;
            }
            busy |= more || st.awaiting_result || st.oldest < st.next;
        }
        if !busy {
            break;
        }
        if now >= hard {
            let open: u64 = senders.iter().map(|s| s.next - s.oldest).sum();
            return Err(format!(
                "fan-out: {open} broadcast(s) not received by all {} clients {:?} after the last send",
                spec.clients, spec.drain
            ));
        }
        // Open loop: wake for the next due send.
        let wait = match interval {
            Some(_) if sending => senders
                .iter()
                .map(|st| st.due.saturating_duration_since(now))
                .min()
                .map_or(tick, |d| d.min(tick)),
            _ => tick,
        };
        let (senders, out) = (&mut senders, &mut out);
        e.pump(wait, track.epoch, &mut |i, text, now| {
            let m = classify(text);
            match m.kind {
                Kind::Broadcast => {
                    out.deliveries += 1;
                    track.delivered(m.seq, now);
                    false
                }
                Kind::Result if i < senders.len() && m.seq % n == i as u64 => {
                    let st = &mut senders[i];
                    let sent = st.sent_at[((m.seq / n) % inflight) as usize];
                    out.to_result.push(now.saturating_sub(sent));
                    st.awaiting_result = false;
                    if m.listeners != spec.clients as u64 {
                        out.wrong_count += 1;
                    }
                    // Back to the loop, which sends this broadcaster's next one.
                    true
                }
                _ => {
                    track.anomalies.fetch_add(1, Ordering::Relaxed);
                    false
                }
            }
        })?;
    }
    out.window = Duration::from_nanos(last_done.saturating_sub(first_send));
    Ok(out)
}

/// Closed-loop echo from the first `per_engine[k]` clients of engine `k`, for `duration`.
pub(crate) fn echo(
    engines: &mut [Engine],
    per_engine: &[usize],
    payload: usize,
    duration: Duration,
    drain: Duration,
) -> Result<Echo, String> {
    let epoch = Instant::now();
    let (lead, rest) = engines.split_first_mut().ok_or("no client engine")?;
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .iter_mut()
            .zip(per_engine.iter().skip(1))
            .map(|(e, &k)| scope.spawn(move || echo_one(e, k, payload, duration, drain, epoch)))
            .collect();
        let k = per_engine.first().copied().unwrap_or(0);
        let mut parts = vec![echo_one(lead, k, payload, duration, drain, epoch)];
        for h in handles {
            parts.push(
                h.join()
                    .unwrap_or_else(|_| Err("a client thread panicked".to_owned())),
            );
        }
        parts
    });
    let mut out = Echo::default();
    for part in parts {
        let part = part?;
        out.round_trips += part.round_trips;
        out.window = out.window.max(part.window);
        out.rtts.extend(part.rtts);
    }
    out.rtts.sort_unstable();
    Ok(out)
}

fn echo_one(
    e: &mut Engine,
    k: usize,
    payload: usize,
    duration: Duration,
    drain: Duration,
    epoch: Instant,
) -> Result<Echo, String> {
    let k = k.min(e.len());
    let mut out = Echo::default();
    let (mut sent_at, mut seq) = (vec![0u64; k], vec![0u64; k]);
    let end = Instant::now() + duration;
    let hard = end + drain;
    let mut ready: Vec<usize> = (0..k).collect();
    let mut outstanding = 0usize;
    let mut last = 0u64;
    let mut wrong = 0u64;
    loop {
        let now = Instant::now();
        for i in ready.drain(..) {
            if now < end {
                sent_at[i] = epoch.elapsed().as_nanos() as u64;
                e.send_text(i, &request("echo", seq[i], payload))?;
                outstanding += 1;
            }
        }
        if outstanding == 0 {
            break;
        }
        if now >= hard {
            return Err(format!(
                "echo: {outstanding} repl(ies) missing {drain:?} after the end"
            ));
        }
        e.pump(Duration::from_millis(10), epoch, &mut |i, text, now| {
            let m = classify(text);
            if m.kind == Kind::Echo && i < k && m.seq == seq[i] {
                out.rtts.push(now.saturating_sub(sent_at[i]));
                out.round_trips += 1;
                last = last.max(now);
                seq[i] += 1;
                outstanding -= 1;
                ready.push(i);
            } else {
                wrong += 1;
            }
            false
        })?;
    }
    if wrong > 0 {
        return Err(format!("echo: {wrong} unexpected message(s)"));
    }
    out.window = Duration::from_nanos(last);
    Ok(out)
}
