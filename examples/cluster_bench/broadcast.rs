//! Broadcasts to every client (`send_raw_to_all`), from clients spread over the instances,
//! in a closed loop: each sender keeps at most `inflight` of its broadcasts not yet received
//! by every client, and sends the next as soon as one completes. Every client counts what it
//! receives; for each broadcast the last delivery on the sender's own instance and the last
//! on the other instance are timed apart.

use std::time::{Duration, Instant};

use crate::client::{self, Engine, Kind, classify, request};
use crate::meter::{Meter, Usage};

/// Time allowed to finish what is in flight once sending stops.
const DRAIN: Duration = Duration::from_secs(15);

/// The clients of one broadcast measurement, on one engine: the senders first (the engine
/// reads them first, so that a sender's next broadcast is not held up behind deliveries).
pub(crate) struct Fleet {
    engine: Engine,
    /// Which instance (index into the ports connected to) each client is on.
    home: Vec<usize>,
    /// How many clients each instance has.
    per_home: Vec<usize>,
    senders: usize,
}

impl Fleet {
    /// Connects `clients` clients spread evenly over `ports` (one instance each), `senders`
    /// of them broadcasters, sender `s` on instance `s % ports.len()`.
    pub(crate) fn connect(
        ports: &[u16],
        clients: usize,
        senders: usize,
        threads: usize,
    ) -> Result<Fleet, String> {
        let k = ports.len();
        if k == 0 || senders == 0 || clients < senders.max(k) {
            return Err(format!(
                "{clients} clients cannot hold {senders} senders on {k} instance(s)"
            ));
        }
        let deadline =
            Instant::now() + Duration::from_secs(30) + Duration::from_millis(clients as u64);
        let mut pools = Vec::with_capacity(k);
        let mut first = 0;
        for (h, &port) in ports.iter().enumerate() {
            let n = clients / k + usize::from(h < clients % k);
            let streams = client::connect(port, first, n, threads, deadline)?;
            pools.push(streams.into_iter());
            first += n;
        }
        let mut engine = Engine::new(0x2545_f491_4f6c_dd1d, senders)?;
        let mut home = Vec::with_capacity(clients);
        for s in 0..senders {
            let h = s % k;
            let stream = pools[h].next().ok_or("too few clients for the senders")?;
            engine.add(stream)?;
            home.push(h);
        }
        for (h, pool) in pools.into_iter().enumerate() {
            for stream in pool {
                engine.add(stream)?;
                home.push(h);
            }
        }
        let per_home = (0..k)
            .map(|h| home.iter().filter(|&&x| x == h).count())
            .collect();
        Ok(Fleet {
            engine,
            home,
            per_home,
            senders,
        })
    }
}

/// What a broadcast measurement came to. Latencies in ns, sorted.
#[derive(Debug, Default)]
pub(crate) struct Broadcast {
    pub(crate) broadcasts: u64,
    pub(crate) deliveries: u64,
    /// First send to the last delivery of the last broadcast.
    pub(crate) window: Duration,
    /// Send → the last delivery on the sender's instance.
    pub(crate) to_own: Vec<u64>,
    /// Send → the last delivery on the other instance (empty with one instance).
    pub(crate) to_other: Vec<u64>,
    pub(crate) usage: Usage,
}

/// One broadcast in flight.
#[derive(Debug, Clone, Default)]
struct Slot {
    seq: u64,
    sent_at: u64,
    remaining: Vec<usize>,
    last: Vec<u64>,
    open: bool,
}

/// Runs `warmup` broadcasts per sender, then broadcasts for `seconds` with at most
/// `inflight` open per sender, measuring the servers of `meter` over the second part.
pub(crate) fn run(
    fleet: &mut Fleet,
    meter: &Meter,
    inflight: usize,
    payload: usize,
    warmup: u64,
    seconds: Duration,
) -> Result<Broadcast, String> {
    run_for(fleet, inflight, payload, Stop::Each(warmup))?;
    let before = meter.read()?;
    let mut out = run_for(fleet, inflight, payload, Stop::After(seconds))?;
    out.usage = meter.since(&before)?;
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
enum Stop {
    After(Duration),
    Each(u64),
}

fn run_for(
    fleet: &mut Fleet,
    inflight: usize,
    payload: usize,
    stop: Stop,
) -> Result<Broadcast, String> {
    let Fleet {
        engine,
        home,
        per_home,
        senders,
    } = fleet;
    let (senders, inflight) = (*senders, inflight.max(1));
    let clients = home.len();
    let epoch = Instant::now();
    let start = Instant::now();
    let (send_until, per_sender) = match stop {
        Stop::After(d) => (Some(start + d), u64::MAX),
        Stop::Each(k) => (None, k),
    };
    let hard = send_until.unwrap_or(start) + DRAIN;
    let blank = Slot {
        remaining: vec![0; per_home.len()],
        last: vec![0; per_home.len()],
        ..Slot::default()
    };
    let mut slots = vec![blank; senders * inflight];
    // Per sender: the next broadcast's local number, and the oldest not yet complete.
    let (mut next, mut oldest) = (vec![0u64; senders], vec![0u64; senders]);
    let mut out = Broadcast::default();
    let (mut first_send, mut last_done) = (u64::MAX, 0u64);
    let mut failure = None;
    loop {
        let now = Instant::now();
        let sending = send_until.is_none_or(|t| now < t);
        let mut busy = false;
        for s in 0..senders {
            while oldest[s] < next[s] {
                let slot = &mut slots[s * inflight + (oldest[s] % inflight as u64) as usize];
                if slot.open {
                    break;
                }
                let own = home[s];
                let done = slot.last.iter().copied().max().unwrap_or(0);
                last_done = last_done.max(done);
                out.to_own.push(slot.last[own].saturating_sub(slot.sent_at));
                if let Some(other) = (0..per_home.len()).find(|&h| h != own) {
                    out.to_other
                        .push(slot.last[other].saturating_sub(slot.sent_at));
                }
                oldest[s] += 1;
            }
            let more = sending && next[s] < per_sender;
            if more && next[s] - oldest[s] < inflight as u64 {
                let seq = next[s] * senders as u64 + s as u64;
                let slot = &mut slots[s * inflight + (next[s] % inflight as u64) as usize];
                slot.seq = seq;
                slot.remaining.clone_from(per_home);
                slot.open = true;
                let mut text = b"all:".to_vec();
                text.extend_from_slice(&request("broadcast", seq, payload));
                slot.sent_at = epoch.elapsed().as_nanos() as u64;
                first_send = first_send.min(slot.sent_at);
                engine.send_text(s, &text)?;
                next[s] += 1;
                out.broadcasts += 1;
            }
            busy |= more || oldest[s] < next[s];
        }
        if !busy {
            break;
        }
        if now >= hard {
            let open: u64 = (0..senders).map(|s| next[s] - oldest[s]).sum();
            return Err(format!(
                "broadcast: {open} broadcast(s) not received by all {clients} clients {DRAIN:?} \
                 after the last send"
            ));
        }
        engine.pump(Duration::from_millis(2), epoch, &mut |i, text, now| {
            let m = classify(text);
            let h = home.get(i).copied().unwrap_or(0);
            let (s, k) = ((m.seq % senders as u64) as usize, m.seq / senders as u64);
            let index = s * inflight + (k % inflight as u64) as usize;
            match slots.get_mut(index) {
                Some(slot)
                    if m.kind == Kind::Broadcast
                        && slot.open
                        && slot.seq == m.seq
                        && slot.remaining[h] > 0 =>
                {
                    out.deliveries += 1;
                    slot.remaining[h] -= 1;
                    slot.last[h] = now;
                    if slot.remaining.iter().all(|&r| r == 0) {
                        slot.open = false;
                        // Back to the loop, which sends that sender's next broadcast.
                        return true;
                    }
                    false
                }
                _ => {
                    failure.get_or_insert_with(|| {
                        format!(
                            "broadcast: client {i} got {:?}",
                            String::from_utf8_lossy(&text[..text.len().min(80)])
                        )
                    });
                    false
                }
            }
        })?;
        if let Some(f) = failure.take() {
            return Err(f);
        }
    }
    let expected = out.broadcasts * clients as u64;
    if out.deliveries != expected {
        return Err(format!(
            "broadcast: {} deliveries, expected {expected}",
            out.deliveries
        ));
    }
    out.window = Duration::from_nanos(last_done.saturating_sub(first_send));
    out.to_own.sort_unstable();
    out.to_other.sort_unstable();
    Ok(out)
}
