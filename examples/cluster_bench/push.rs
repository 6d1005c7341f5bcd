//! Single pushes through a "control" client: its message `push:<id>:<payload>` makes the
//! instance it is connected to call `send_raw(payload, id)`. One at a time for latency; many
//! in flight for throughput, set against a plain loop of synchronous `PUBLISH`es.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use corepush::ClientId;

use crate::client::Engine;
use crate::meter::{Meter, Usage};

/// How long one push may take to arrive before the run fails.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed to receive what is in flight once sending stops.
const DRAIN: Duration = Duration::from_secs(15);

/// A client of the probe engine, with the id its instance gave it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) index: usize,
    pub(crate) id: ClientId,
}

/// Asks each of the engine's clients `0..count` for its id (the handler's `id` request).
pub(crate) fn ids(e: &mut Engine, count: usize, epoch: Instant) -> Result<Vec<Peer>, String> {
    let mut ids: Vec<Option<ClientId>> = vec![None; count];
    for i in 0..count {
        e.send_text(i, b"id")?;
    }
    let deadline = Instant::now() + PUSH_TIMEOUT;
    let mut failure = None;
    while ids.iter().any(Option::is_none) {
        if Instant::now() >= deadline {
            return Err("the clients' ids did not come".into());
        }
        e.pump(Duration::from_millis(50), epoch, &mut |i, text, _| {
            let text = String::from_utf8_lossy(text);
            match (ids.get_mut(i), text.parse()) {
                (Some(slot), Ok(id)) => *slot = Some(id),
                _ => failure = Some(format!("client {i}: {text:?} is not an id")),
            }
            false
        })?;
        if let Some(f) = failure.take() {
            return Err(f);
        }
    }
    Ok(ids
        .into_iter()
        .enumerate()
        .filter_map(|(index, id)| id.map(|id| Peer { index, id }))
        .collect())
}

/// One way a push can go: from `control`'s instance to `target`, with the CPU of `meter`'s
/// servers counted against it.
#[derive(Debug)]
pub(crate) struct Path {
    pub(crate) control: usize,
    pub(crate) target: Peer,
    pub(crate) meter: Meter,
}

/// What the pushes of one path came to.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    /// Control client's write → target client's read, ns, sorted.
    pub(crate) latencies: Vec<u64>,
    /// The handler's push (its wall clock, stamped in the payload) → the target client's read
    /// (the wall clock when the engine hands the message over), ns, sorted.
    pub(crate) oneway: Vec<u64>,
    pub(crate) usage: Usage,
}

/// The push text for push `seq` of `payload` bytes: `seq`, a space, padding.
fn payload(seq: u64, size: usize) -> String {
    let head = format!("{seq} ");
    format!("{head}{}", "x".repeat(size.saturating_sub(head.len())))
}

/// The sequence number a pushed payload starts with.
fn seq_of(text: &[u8]) -> Option<u64> {
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&text[..digits]).ok()?.parse().ok()
}

/// The wall clock, ns since the epoch.
fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The handler's wall clock at the push, stamped after ` @` at the end of a `stamp:` push.
fn stamp_of(text: &[u8]) -> Option<u64> {
    let at = text.iter().rposition(|&b| b == b'@')?;
    std::str::from_utf8(&text[at + 1..]).ok()?.parse().ok()
}

/// One push, one in flight: from the moment the control client writes it to the moment the
/// target reads it, ns; with `stamp`, the handler stamps the push with its wall clock, and
/// the time from that stamp to the target's read comes second.
pub(crate) fn push_once(
    e: &mut Engine,
    epoch: Instant,
    path: &Path,
    seq: u64,
    size: usize,
    stamp: bool,
) -> Result<(u64, Option<u64>), String> {
    let verb = if stamp { "stamp" } else { "push" };
    let text = format!("{verb}:{}:{}", path.target.id, payload(seq, size));
    let sent = epoch.elapsed().as_nanos() as u64;
    e.send_text(path.control, text.as_bytes())?;
    let deadline = Instant::now() + PUSH_TIMEOUT;
    let (mut arrived, mut oneway, mut failure) = (None, None, None);
    while arrived.is_none() {
        if Instant::now() >= deadline {
            return Err(format!("push {seq} not delivered within {PUSH_TIMEOUT:?}"));
        }
        e.pump(Duration::from_millis(50), epoch, &mut |i, text, now| {
            if i == path.target.index && seq_of(text) == Some(seq) {
                arrived = Some(now);
                if stamp {
                    oneway = stamp_of(text).map(|at| wall_ns().saturating_sub(at));
                }
            } else {
                failure = Some(format!(
                    "waiting for push {seq}, client {i} got {:?}",
                    String::from_utf8_lossy(&text[..text.len().min(80)])
                ));
            }
            true
        })?;
        if let Some(f) = failure.take() {
            return Err(f);
        }
    }
    if stamp && oneway.is_none() {
        return Err(format!("push {seq} came without its stamp"));
    }
    Ok((arrived.unwrap_or(sent).saturating_sub(sent), oneway))
}

/// `pushes` single pushes on each path after `warmup` each, in blocks of `block` that take
/// the paths in turn (so that drift on the machine hits them alike); each block's CPU is
/// counted to its path.
pub(crate) fn latency(
    e: &mut Engine,
    paths: &[Path],
    warmup: usize,
    pushes: usize,
    block: usize,
    size: usize,
) -> Result<Vec<Latency>, String> {
    let epoch = Instant::now();
    let mut seq = 0u64;
    for path in paths {
        for _ in 0..warmup {
            push_once(e, epoch, path, seq, size, true)?;
            seq += 1;
        }
    }
    let mut out: Vec<Latency> = paths.iter().map(|_| Latency::default()).collect();
    while out.iter().any(|l| l.latencies.len() < pushes) {
        for (path, got) in paths.iter().zip(&mut out) {
            let n = block.min(pushes - got.latencies.len());
            if n == 0 {
                continue;
            }
            let before = path.meter.read()?;
            for _ in 0..n {
                let (latency, oneway) = push_once(e, epoch, path, seq, size, true)?;
                got.latencies.push(latency);
                got.oneway.extend(oneway);
                seq += 1;
            }
            got.usage += path.meter.since(&before)?;
        }
    }
    for l in &mut out {
        l.latencies.sort_unstable();
        l.oneway.sort_unstable();
    }
    Ok(out)
}

/// What a throughput run came to.
#[derive(Debug, Default)]
pub(crate) struct Throughput {
    pub(crate) pushes: u64,
    /// First send to last delivery.
    pub(crate) window: Duration,
    pub(crate) usage: Usage,
}

/// Pushes along `path` with up to `window` in flight for `seconds`, then waits for the rest.
/// Every push must arrive, in order.
pub(crate) fn throughput(
    e: &mut Engine,
    path: &Path,
    window: u64,
    seconds: Duration,
    size: usize,
) -> Result<Throughput, String> {
    let epoch = Instant::now();
    let before = path.meter.read()?;
    let start = Instant::now();
    let (send_until, hard) = (start + seconds, start + seconds + DRAIN);
    let (mut sent, mut received, mut last) = (0u64, 0u64, 0u64);
    let mut failure = None;
    loop {
        let now = Instant::now();
        if now < send_until {
            while sent - received < window {
                let text = format!("push:{}:{}", path.target.id, payload(sent, size));
                e.send_text(path.control, text.as_bytes())?;
                sent += 1;
            }
        } else if received == sent {
            break;
        }
        if now >= hard {
            return Err(format!(
                "throughput: {} push(es) not delivered {DRAIN:?} after the last send",
                sent - received
            ));
        }
        e.pump(Duration::from_millis(2), epoch, &mut |i, text, now| {
            if i == path.target.index && seq_of(text) == Some(received) {
                received += 1;
                last = now;
            } else if failure.is_none() {
                failure = Some(format!(
                    "throughput: expected push {received}, client {i} got {:?}",
                    String::from_utf8_lossy(&text[..text.len().min(80)])
                ));
            }
            false
        })?;
        if let Some(f) = failure.take() {
            return Err(f);
        }
    }
    Ok(Throughput {
        pushes: received,
        window: Duration::from_nanos(last),
        usage: path.meter.since(&before)?,
    })
}

/// The size in bytes of the message the transport publishes for one push along `path`
/// (whose target is on another instance): one push, read off a pattern subscription to the
/// instances' direct channels.
pub(crate) fn published_size(
    e: &mut Engine,
    path: &Path,
    url: &str,
    pattern: &str,
    size: usize,
) -> Result<usize, String> {
    let client = redis::Client::open(url).map_err(|e| format!("redis: {e}"))?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| format!("redis: {e}"))?;
    let mut sub = con.as_pubsub();
    sub.psubscribe(pattern)
        .and_then(|()| sub.set_read_timeout(Some(PUSH_TIMEOUT)))
        .map_err(|e| format!("redis psubscribe: {e}"))?;
    push_once(e, Instant::now(), path, 0, size, false)?;
    let msg = sub
        .get_message()
        .map_err(|e| format!("reading the published push: {e}"))?;
    Ok(msg.get_payload_bytes().len())
}

/// What the plain loop of synchronous `PUBLISH`es came to.
#[derive(Debug, Default)]
pub(crate) struct Publishes {
    pub(crate) count: u64,
    pub(crate) elapsed: Duration,
    pub(crate) redis_ns: u64,
}

/// One `PUBLISH` of `size` bytes at a time, each waiting for Redis' answer, for `seconds`,
/// to a channel with one subscriber (a thread here, which must receive them all).
pub(crate) fn sync_publishes(
    url: &str,
    channel: &str,
    size: usize,
    seconds: Duration,
    meter: &Meter,
) -> Result<Publishes, String> {
    let client = redis::Client::open(url).map_err(|e| format!("redis: {e}"))?;
    let connect = || {
        client
            .get_connection_with_timeout(Duration::from_secs(2))
            .map_err(|e| format!("redis: {e}"))
    };
    let mut sub_con = connect()?;
    let mut con = connect()?;
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let subscriber = {
        let (stop, seen, channel) = (stop.clone(), seen.clone(), channel.to_owned());
        std::thread::spawn(move || -> Result<(), String> {
            let mut sub = sub_con.as_pubsub();
            sub.subscribe(&channel)
                .and_then(|()| sub.set_read_timeout(Some(Duration::from_millis(50))))
                .map_err(|e| format!("redis subscribe: {e}"))?;
            let _ = ready_tx.send(());
            while !stop.load(Ordering::Relaxed) {
                match sub.get_message() {
                    Ok(_) => {
                        seen.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(e) => return Err(format!("redis subscriber: {e}")),
                }
            }
            Ok(())
        })
    };
    let finish = |result: Result<Publishes, String>| {
        stop.store(true, Ordering::Relaxed);
        let joined = subscriber
            .join()
            .unwrap_or_else(|_| Err("the subscriber thread panicked".into()));
        result.and_then(|p| joined.map(|()| p))
    };
    if ready.recv_timeout(PUSH_TIMEOUT).is_err() {
        return finish(Err("the baseline's subscriber did not subscribe".into()));
    }
    let bytes = vec![b'x'; size];
    let before = match meter.read() {
        Ok(r) => r,
        Err(e) => return finish(Err(e)),
    };
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < seconds {
        let receivers: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(&bytes)
            .query(&mut con);
        match receivers {
            Ok(1) => count += 1,
            Ok(n) => return finish(Err(format!("PUBLISH reached {n} subscribers, not 1"))),
            Err(e) => return finish(Err(format!("PUBLISH: {e}"))),
        }
    }
    let elapsed = start.elapsed();
    let deadline = Instant::now() + DRAIN;
    while seen.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let usage = meter.since(&before);
    let got = seen.load(Ordering::Relaxed);
    let result = match usage {
        Ok(_) if got != count => Err(format!(
            "the baseline's subscriber got {got} of {count} messages"
        )),
        Ok(u) => Ok(Publishes {
            count,
            elapsed,
            redis_ns: u.redis_ns,
        }),
        Err(e) => Err(e),
    };
    finish(result)
}
