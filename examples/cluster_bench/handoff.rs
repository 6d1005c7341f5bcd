//! The machine's unit cost: one blocking hand-off between two threads — a byte written to a
//! Unix socket whose reader sleeps in `read`, which wakes, reads, and answers the same way.
//!
//! A push that crosses instances is a chain of such hand-offs (client → core loop → publisher
//! thread → Redis → subscriber thread → core loop → client), so their cost on the machine at
//! hand says how much of a push's CPU time and latency is the chain itself. Virtual machines
//! in particular make a sleeping thread's wake-up dear.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// What the hand-offs cost, per hand-off (half a round trip).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Handoff {
    /// CPU time of both threads, ns.
    pub(crate) cpu_ns: f64,
    /// Wall time, ns (median round trip / 2).
    pub(crate) latency_ns: f64,
}

/// `round_trips` round trips between two threads of this process (bounded by `limit`).
pub(crate) fn measure(round_trips: usize, limit: Duration) -> Result<Handoff, String> {
    let (mut here, mut there) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    for s in [&here, &there] {
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|e| format!("socket timeout: {e}"))?;
    }
    let echo = std::thread::spawn(move || -> Result<u64, String> {
        let start = thread_cpu_ns()?;
        let mut byte = [0u8; 1];
        loop {
            match there.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => there.write_all(&byte).map_err(|e| format!("echo: {e}"))?,
                Err(e) => return Err(format!("echo: {e}")),
            }
        }
        Ok(thread_cpu_ns()? - start)
    });
    let start = thread_cpu_ns()?;
    let deadline = Instant::now() + limit;
    let mut rtts = Vec::with_capacity(round_trips);
    let mut byte = [7u8; 1];
    for _ in 0..round_trips {
        if Instant::now() >= deadline {
            break;
        }
        let t = Instant::now();
        here.write_all(&byte)
            .and_then(|()| here.read_exact(&mut byte))
            .map_err(|e| format!("hand-off: {e}"))?;
        rtts.push(t.elapsed().as_nanos() as u64);
    }
    let mine = thread_cpu_ns()? - start;
    drop(here);
    let theirs = echo
        .join()
        .map_err(|_| "the echo thread panicked".to_owned())??;
    if rtts.is_empty() {
        return Err("no hand-off within the time limit".into());
    }
    rtts.sort_unstable();
    let n = rtts.len() as f64;
    Ok(Handoff {
        cpu_ns: (mine + theirs) as f64 / (2.0 * n),
        latency_ns: rtts[rtts.len() / 2] as f64 / 2.0,
    })
}

/// This thread's CPU time so far, ns (its schedstat).
fn thread_cpu_ns() -> Result<u64, String> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .map_err(|e| format!("/proc/thread-self/schedstat: {e}"))?;
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "/proc/thread-self/schedstat: no run time".to_owned())
}
