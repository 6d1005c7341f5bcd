//! The shootout's ramp (`--ramp`): 1,000 more clients per step, a burst of 20 broadcasts from
//! 4 senders at each, until the 95th percentile of send → broadcastResult passes 500 ms.

use std::time::Duration;

use crate::child;
use crate::phases::{self, FanoutSpec, Stop};
use crate::run::{add_clients, engines, ms, pct};
use crate::{Opts, Res, wait_quiet};

/// The ramp's limit on the 95th percentile of send → broadcastResult.
const RAMP_LIMIT: Duration = Duration::from_millis(500);
/// Clients added per ramp step.
const RAMP_STEP: usize = 1000;
pub(crate) fn ramp(kind: &str, o: &Opts, tck: u64) -> Res<()> {
    eprintln!(
        "[{kind}] ramp: +{RAMP_STEP} clients per step up to {}",
        o.ramp_max
    );
    wait_quiet(tck, o);
    let server = o.start(kind)?;
    let mut engines = engines(o.client_threads, o)?;
    println!(
        "\nramp, {kind}: 20 broadcasts from 4 senders per step; limit p95(send → broadcastResult) ≤ 500 ms"
    );
    println!(
        "{:>8} {:>14} {:>14} {:>14} {:>12}",
        "clients", "result p95 ms", "last p95 ms", "last max ms", "RSS MiB"
    );
    let (mut n, mut passed) = (0usize, 0usize);
    let why = loop {
        if n >= o.ramp_max {
            break format!("--ramp-max {} reached", o.ramp_max);
        }
        let step = RAMP_STEP.min(o.ramp_max - n);
        if let Err(e) = add_clients(&mut engines, server.port, n, step, o) {
            break format!("connecting failed at {} clients: {e}", n + step);
        }
        n += step;
        let spec = FanoutSpec {
            senders: 4.min(n),
            inflight: o.inflight,
            payload: o.payload,
            stop: Stop::Each(5),
            clients: n,
            drain: Duration::from_secs(30),
            rate: None,
        };
        let f = match phases::fanout(&mut engines, &spec) {
            Ok(f) => f,
            Err(e) => break format!("the burst at {n} clients failed: {e}"),
        };
        let p95 = pct(&f.to_result, 0.95);
        let rss = child::rss_bytes(server.pid)? as f64 / (1 << 20) as f64;
        println!(
            "{n:>8} {:>14.2} {:>14.2} {:>14.2} {rss:>12.1}",
            ms(p95),
            ms(pct(&f.to_last, 0.95)),
            ms(f.to_last.last().copied().unwrap_or(0)),
        );
        eprintln!("  {n} clients: p95 {:.2} ms", ms(p95));
        if Duration::from_nanos(p95) > RAMP_LIMIT {
            break format!("p95 {:.0} ms > 500 ms at {n} clients", ms(p95));
        }
        passed = n;
    };
    println!("ramp result, {kind}: {passed} clients within the limit (stopped: {why})");
    drop(server);
    drop(engines);
    Ok(())
}
