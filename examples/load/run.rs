//! One run of one server: start it, connect the clients, measure every phase, and the
//! figures a run gives, with their medians over runs.

use std::time::{Duration, Instant};

use crate::child;
use crate::client::{self, Engine};
use crate::phases::{self, FanoutSpec, Stop};
use crate::{DRAIN, Opts, Pace, Res};

/// One fan-out phase's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fig {
    pub(crate) deliveries_per_s: f64,
    pub(crate) result_p50: f64,
    pub(crate) result_p99: f64,
    pub(crate) last_p50: f64,
    pub(crate) last_p99: f64,
    pub(crate) cpu_per_delivery_us: f64,
    pub(crate) server_cpu: f64,
    pub(crate) client_cpu: f64,
    pub(crate) other_cpu: f64,
    /// Frames per write call, from a server that counts them (NaN from others).
    pub(crate) frames_per_write: f64,
    /// In a summary: every run's `last_p50` and `last_p99`, for comparing two servers'
    /// runs rather than their medians alone.
    pub(crate) last_p50_runs: Vec<f64>,
    pub(crate) last_p99_runs: Vec<f64>,
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Run {
    pub(crate) connect_per_s: f64,
    pub(crate) rss_per_conn: f64,
    /// Per phase, in the order of [`Opts::phases`].
    pub(crate) fanout: Vec<Fig>,
    pub(crate) echo_per_s: f64,
    pub(crate) echo_p50: f64,
    pub(crate) echo_p99: f64,
    pub(crate) cpu_per_echo_us: f64,
}

impl Run {
    /// The most CPU other processes took during a fan-out phase.
    pub(crate) fn other_cpu(&self) -> f64 {
        self.fanout.iter().map(|f| f.other_cpu).fold(0.0, f64::max)
    }

    pub(crate) fn brief(&self) -> String {
        let mut out = String::new();
        for f in &self.fanout {
            out += &format!(
                "{:.0} deliveries/s, result p50 {:.2} ms p99 {:.2} ms, last p50 {:.2} ms p99 \
                 {:.2} ms, {:.3} µs CPU/delivery (server {:.0}%, client {:.0}%, other {:.0}%); ",
                f.deliveries_per_s,
                f.result_p50,
                f.result_p99,
                f.last_p50,
                f.last_p99,
                f.cpu_per_delivery_us,
                f.server_cpu,
                f.client_cpu,
                f.other_cpu,
            );
        }
        out + &format!(
            "{:.0} echo/s, {:.1} µs CPU/echo, {:.0} B/conn, {:.0} connects/s",
            self.echo_per_s, self.cpu_per_echo_us, self.rss_per_conn, self.connect_per_s,
        )
    }
}

/// Medians over runs, field by field.
pub(crate) type Summary = Run;

impl Summary {
    pub(crate) fn of(runs: &[Run]) -> Self {
        let m = |f: &dyn Fn(&Run) -> f64| median(runs.iter().map(f).collect());
        let phases = runs.iter().map(|r| r.fanout.len()).min().unwrap_or(0);
        let fanout = (0..phases)
            .map(|i| {
                let p = |f: fn(&Fig) -> f64| m(&|r: &Run| f(&r.fanout[i]));
                Fig {
                    deliveries_per_s: p(|f| f.deliveries_per_s),
                    result_p50: p(|f| f.result_p50),
                    result_p99: p(|f| f.result_p99),
                    last_p50: p(|f| f.last_p50),
                    last_p99: p(|f| f.last_p99),
                    cpu_per_delivery_us: p(|f| f.cpu_per_delivery_us),
                    server_cpu: p(|f| f.server_cpu),
                    client_cpu: p(|f| f.client_cpu),
                    other_cpu: p(|f| f.other_cpu),
                    frames_per_write: p(|f| f.frames_per_write),
                    last_p50_runs: runs.iter().map(|r| r.fanout[i].last_p50).collect(),
                    last_p99_runs: runs.iter().map(|r| r.fanout[i].last_p99).collect(),
                }
            })
            .collect();
        Run {
            connect_per_s: m(&|r| r.connect_per_s),
            rss_per_conn: m(&|r| r.rss_per_conn),
            fanout,
            echo_per_s: m(&|r| r.echo_per_s),
            echo_p50: m(&|r| r.echo_p50),
            echo_p99: m(&|r| r.echo_p99),
            cpu_per_echo_us: m(&|r| r.cpu_per_echo_us),
        }
    }
}

/// The client threads' engines; each one's first broadcasters and echo clients get priority.
pub(crate) fn engines(threads: usize, o: &Opts) -> Res<Vec<Engine>> {
    let priority = o.senders.max(4).max(o.echo_clients.div_ceil(threads));
    Ok((0..threads)
        .map(|t| Engine::new(0x9e37_79b9_7f4a_7c15 ^ t as u64, priority))
        .collect::<Result<_, _>>()?)
}

/// Connects clients `first..first + count` and deals them to the engines round-robin, so
/// that global clients 0, T, 2T … (the broadcasters) are engine 0's first.
pub(crate) fn add_clients(
    engines: &mut [Engine],
    port: u16,
    first: usize,
    count: usize,
    o: &Opts,
) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(30) + Duration::from_millis(count as u64);
    let streams = client::connect(port, first, count, o.connect_threads, deadline)?;
    let t = engines.len();
    for (i, s) in (first..).zip(streams) {
        engines[i % t].add(s)?;
    }
    Ok(())
}

pub(crate) fn run_once(kind: &str, n: usize, o: &Opts, tck: u64) -> Res<Run> {
    let mut server = o.start(kind)?;
    let rss_idle = server.settled_rss()?;
    let mut engines = engines(o.client_threads, o)?;
    let t = Instant::now();
    add_clients(&mut engines, server.port, 0, n, o)?;
    let connect_s = t.elapsed().as_secs_f64();
    let rss_conns = server.settled_rss()?;
    let mut run = Run {
        connect_per_s: n as f64 / connect_s,
        rss_per_conn: (rss_conns as f64 - rss_idle as f64) / n as f64,
        ..Run::default()
    };
    let spec = |stop, inflight, rate| FanoutSpec {
        senders: o.senders,
        inflight,
        payload: o.payload,
        stop,
        clients: n,
        drain: DRAIN,
        rate,
    };
    // Warm-up: lazily grown buffers and first-touch pages stay out of the window.
    phases::fanout(
        &mut engines,
        &spec(Stop::Each(o.inflight), o.inflight, None),
    )?;

    let seconds = Duration::from_secs_f64(o.seconds);
    for phase in o.phases(n) {
        // Asked outside the measured time: a server that does not count its writes answers
        // nothing, and the question waits out its timeout.
        let counted0 = server.frames_and_writes();
        let (all0, _) = child::machine_ticks()?;
        let (cpu0, me0, t0) = (
            server.cpu_ticks()?,
            child::cpu_ticks("self")?,
            Instant::now(),
        );
        eprintln!("  fan-out, {}: server pid {}", phase.name, server.pid);
        let f = phases::fanout(
            &mut engines,
            &spec(Stop::After(seconds), phase.inflight, phase.rate()),
        )?;
        let (cpu1, me1, wall) = (server.cpu_ticks()?, child::cpu_ticks("self")?, t0.elapsed());
        let (all1, _) = child::machine_ticks()?;
        let counted1 = server.frames_and_writes();
        let frames_per_write = match (counted0, counted1) {
            (Some((f0, w0)), Some((f1, w1))) if w1 > w0 => (f1 - f0) as f64 / (w1 - w0) as f64,
            _ => f64::NAN,
        };
        if phase.pace == Pace::Result && f.room_waits > 0 {
            eprintln!(
                "  note: {} broadcast(s) waited for room: {} per sender were not yet delivered",
                f.room_waits, phase.inflight
            );
        }
        if f.skipped > 0 {
            eprintln!(
                "  note: {} scheduled broadcast(s) dropped: {} per sender were still open",
                f.skipped, phase.inflight
            );
        }
        if f.wrong_count > 0 {
            eprintln!(
                "  note: {} broadcastResult(s) with a listenerCount other than {n}",
                f.wrong_count
            );
        }
        let secs = |ticks: u64| ticks as f64 / tck as f64;
        let server_cpu = 100.0 * secs(cpu1 - cpu0) / wall.as_secs_f64();
        let client_cpu = 100.0 * secs(me1 - me0) / wall.as_secs_f64();
        // Whatever else ran meanwhile: other processes, kernel work charged to neither.
        let machine = 100.0 * secs(all1 - all0) / wall.as_secs_f64();
        run.fanout.push(Fig {
            deliveries_per_s: f.deliveries as f64 / f.window.as_secs_f64(),
            result_p50: ms(pct(&f.to_result, 0.50)),
            result_p99: ms(pct(&f.to_result, 0.99)),
            last_p50: ms(pct(&f.to_last, 0.50)),
            last_p99: ms(pct(&f.to_last, 0.99)),
            cpu_per_delivery_us: secs(cpu1 - cpu0) * 1e6 / f.deliveries.max(1) as f64,
            server_cpu,
            client_cpu,
            other_cpu: (machine - server_cpu - client_cpu).max(0.0),
            frames_per_write,
            ..Fig::default()
        });
    }

    let t = engines.len();
    let echo_clients = o.echo_clients.min(n);
    let per_engine: Vec<usize> = (0..t)
        .map(|k| (0..echo_clients).filter(|i| i % t == k).count())
        .collect();
    // The phase and the pid on stderr, for a profiler to attach to the phase it wants.
    eprintln!("  echo phase: server pid {}", server.pid);
    let secs = |ticks: u64| ticks as f64 / tck as f64;
    let cpu0 = server.cpu_ticks()?;
    let e = phases::echo(&mut engines, &per_engine, o.payload, seconds, DRAIN)?;
    let cpu1 = server.cpu_ticks()?;
    run.echo_per_s = e.round_trips as f64 / e.window.as_secs_f64();
    run.echo_p50 = ms(pct(&e.rtts, 0.50));
    run.echo_p99 = ms(pct(&e.rtts, 0.99));
    run.cpu_per_echo_us = secs(cpu1 - cpu0) * 1e6 / e.round_trips.max(1) as f64;
    drop(server); // first the server, then the clients (which reset their connections)
    drop(engines);
    Ok(run)
}

/// Nearest-rank percentile of sorted values (0 if none).
pub(crate) fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// How far the runs `a` lie above the runs `b`: the Hodges–Lehmann shift (the median of
/// every difference `a_i − b_j`) and its two-sided 95 % interval, the `k`-th smallest and
/// largest of those differences with `k` from the Mann–Whitney statistic's normal
/// approximation (exact where it matters here: `k` = 3 for 5 runs each, 9 for 7). `None`
/// when there are too few runs for such an interval (3 each or fewer).
pub(crate) fn shift(a: &[f64], b: &[f64]) -> Option<Shift> {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let mut d: Vec<f64> = a
        .iter()
        .flat_map(|x| b.iter().map(move |y| x - y))
        .collect();
    d.sort_by(f64::total_cmp);
    let k = (n * m / 2.0 - 1.96 * (n * m * (n + m + 1.0) / 12.0).sqrt()).floor();
    if k < 1.0 {
        return None;
    }
    let k = k as usize;
    Some(Shift {
        estimate: median(d.clone()),
        low: d[k - 1],
        high: d[d.len() - k],
    })
}

/// See [`shift`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shift {
    pub(crate) estimate: f64,
    pub(crate) low: f64,
    pub(crate) high: f64,
}

pub(crate) fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_of_five_runs_each_takes_the_third_differences_from_either_end() {
        let a = [10.0, 11.0, 12.0, 13.0, 14.0];
        let b = [0.0, 1.0, 2.0, 3.0, 4.0];
        // The 25 differences are 10 + t for t in -4..=4, each 5 − |t| times: 6, 7, 7, 8 …
        let s = shift(&a, &b).unwrap();
        assert_eq!(
            s,
            Shift {
                estimate: 10.0,
                low: 7.0,
                high: 13.0
            }
        );
    }

    #[test]
    fn overlapping_runs_give_an_interval_around_zero() {
        let a = [9.0, 11.0, 10.0, 12.0, 8.0];
        let b = [10.5, 9.5, 11.5, 8.5, 10.0];
        let s = shift(&a, &b).unwrap();
        assert!(s.low < 0.0 && s.high > 0.0, "{s:?}");
    }

    #[test]
    fn three_runs_each_are_too_few_for_an_interval() {
        assert_eq!(shift(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), None);
    }
}
