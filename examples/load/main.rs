//! The loopback load benchmark behind the README's Performance section: the websocket-shootout
//! protocol (see `examples/shootout.rs`), served by corepush, by a "floor" — a minimal mio
//! server with no library around it — and by a tuned tokio + tokio-tungstenite broadcast
//! server (`tokio_ws.rs`), each as a child process so that its CPU time and memory are its
//! own. `corepush@MS` is corepush with a fixed fan-out window of MS milliseconds
//! (`corepush@0`: every frame written in the loop turn that queued it), `corepush~MS` with the
//! adaptive window opening up to MS milliseconds. `--server all` (the
//! default) runs corepush, corepush@0, floor and tokio.
//!
//! ```sh
//! cargo run --release --example load -- [--server corepush|corepush@MS|corepush~MS|floor|tokio|all|LIST]
//!     [--clients 1000[,10000]] [--senders 4] [--payload 64] [--seconds 5] [--runs 3]
//!     [--workers 2] [--echo-clients 100] [--inflight 16] [--client-threads 1]
//!     [--connect-threads 4] [--quiet-wait 60] [--attempts 3] [--ramp] [--ramp-max 30000]
//!     [--fanout-coalesce-ms MS] [--rates R[,R...]]
//! ```
//!
//! A run starts a fresh server, reads its idle RSS, connects the clients (tungstenite's
//! handshake, then raw non-blocking sockets on one mio loop per client thread), reads the RSS
//! again, and measures:
//!
//! * **fan-out, closed loop** — `--senders` clients broadcast `--payload`-byte payloads in a
//!   closed loop (the next as soon as the previous one's broadcastResult is read — a result
//!   ends the client thread's batch of reads early — and at most `--inflight` of a sender's
//!   broadcasts not yet received by every client); deliveries per second, send →
//!   broadcastResult and send → last delivery latencies, server CPU per delivery, and for
//!   corepush the frames each write call carried (asked of the server before and after);
//! * **fan-out, one awaiting its result** — a sender's next broadcast goes as soon as the
//!   previous one's broadcastResult is read, however many of its broadcasts are not yet
//!   received by every client (up to 1,024, far beyond what a server holds back);
//! * **fan-out, one not yet delivered** — a sender's next broadcast waits for the last
//!   delivery of its previous one (a lighter, latency-bound load: a server's write carries
//!   at most one frame per sender);
//! * **fan-out, open loop** — for each of `--rates` (broadcasts per second at 1,000 clients,
//!   scaled to the same deliveries per second at other client counts): the senders
//!   broadcast on a fixed schedule, whatever the results (still at most `--inflight` per
//!   sender open; a send that waits a whole interval for room is dropped and reported) —
//!   latency at a load every server can carry, rather than at saturation;
//! * **echo** — `--echo-clients` clients in a closed loop; round trips per second and server
//!   CPU per round trip.
//!
//! `--fanout-coalesce-ms` sets a fixed window for every corepush server (`corepush@MS` for
//! one of them). Figures are medians over `--runs` runs. `--ramp` runs the shootout's ramp instead: 1,000
//! more clients per step, a burst of 20 broadcasts from 4 senders at each, until the 95th
//! percentile of send → broadcastResult passes 500 ms (or `--ramp-max`, or a failure).
//!
//! Progress goes to stderr, results to stdout. Every wait has a deadline.

#[path = "../shootout.rs"]
#[allow(dead_code)] // the shootout example's own `main` is not called from here
mod shootout;

mod args;
mod child;
mod client;
mod floor;
mod phases;
mod report;
mod tokio_ws;

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use child::ServerChild;
// The examples' command-line helper, loaded once: through the shootout, which this includes.
use client::Engine;
use phases::{FanoutSpec, Stop};
use shootout::cli;

/// The ramp's limit on the 95th percentile of send → broadcastResult.
const RAMP_LIMIT: Duration = Duration::from_millis(500);
/// Clients added per ramp step.
const RAMP_STEP: usize = 1000;
/// Time allowed to finish what is in flight once sending stops.
const DRAIN: Duration = Duration::from_secs(15);

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Debug, Clone)]
struct Opts {
    servers: Vec<String>,
    clients: Vec<usize>,
    senders: usize,
    payload: usize,
    seconds: f64,
    runs: usize,
    workers: usize,
    echo_clients: usize,
    inflight: u64,
    client_threads: usize,
    connect_threads: usize,
    ramp: bool,
    ramp_max: usize,
    /// Seconds to wait at most for a quiet machine before a run (0: no waiting).
    quiet_wait: u64,
    /// Attempts per run at most when other processes disturb it.
    attempts: usize,
    /// corepush's fan-out window, if not its default.
    coalesce_ms: Option<u64>,
    /// Open-loop fan-out at these many broadcasts per second (all senders together) at
    /// 1,000 clients.
    rates: Vec<f64>,
}

/// Broadcasts per second of the open-loop rates are given for this many clients.
const RATE_CLIENTS: f64 = 1000.0;

/// Per sender, the undelivered broadcasts the "one awaiting its result" closed loop tracks:
/// far more than the server holds back, so that only the results pace the senders.
const RESULT_GATED_TRACKED: u64 = 1024;

/// What paces a fan-out measurement's senders.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    /// The next broadcast after the previous one's result, with at most `--inflight` not yet
    /// received by every client.
    Deep,
    /// The next broadcast after the previous one's result, nothing else.
    Result,
    /// The next broadcast after the previous one's last delivery.
    Delivery,
    /// A fixed schedule, whatever the results (broadcasts per second at this client count).
    Rate(f64),
}

/// One fan-out measurement of a run.
#[derive(Debug, Clone)]
struct Phase {
    name: String,
    pace: Pace,
    /// Broadcasts of one sender not yet received by every client, at most.
    inflight: u64,
}

impl Phase {
    fn rate(&self) -> Option<f64> {
        match self.pace {
            Pace::Rate(r) => Some(r),
            _ => None,
        }
    }
}

impl Opts {
    /// The fan-out measurements of a run with `n` clients, in order.
    fn phases(&self, n: usize) -> Vec<Phase> {
        let mut phases = vec![
            Phase {
                name: format!("closed loop, {} in flight per sender", self.inflight),
                pace: Pace::Deep,
                inflight: self.inflight,
            },
            Phase {
                name: "closed loop, 1 awaiting its broadcastResult per sender".to_owned(),
                pace: Pace::Result,
                inflight: RESULT_GATED_TRACKED,
            },
            Phase {
                name: "closed loop, 1 not yet delivered to all per sender".to_owned(),
                pace: Pace::Delivery,
                inflight: 1,
            },
        ];
        for &r in &self.rates {
            let rate = r * RATE_CLIENTS / n as f64;
            phases.push(Phase {
                name: format!("open loop, {r}k deliveries/s ({rate:.1} broadcasts/s)"),
                pace: Pace::Rate(rate),
                inflight: self.inflight,
            });
        }
        phases
    }
}

fn main() -> Res<()> {
    let flags = args::flags();
    if let Some(kind) = &flags.serve {
        return serve(kind, &flags);
    }
    let o = args::parse(&flags).unwrap_or_else(|e| {
        eprintln!("load: {e}\n{}", cli::usage::<args::Flags>());
        std::process::exit(2);
    });
    let (nofile, hard_raised) = child::raise_nofile()?;
    let o = fit_fd_limit(o, nofile)?;
    let (tck, tck_known) = child::clock_ticks();
    println!("corepush load benchmark (loopback; client and server share the machine)");
    println!(
        "parameters: server={} clients={} senders={} payload={} B seconds={} runs={} workers={} \
         echo-clients={} inflight={}/sender client-threads={} corepush-fanout-coalesce={} \
         open-loop rates={} broadcasts/s at 1,000 clients{}",
        o.servers.join(","),
        join(&o.clients),
        o.senders,
        o.payload,
        o.seconds,
        o.runs,
        o.workers,
        o.echo_clients,
        o.inflight,
        o.client_threads,
        o.coalesce_ms
            .map_or_else(|| "default".to_owned(), |ms| format!("{ms}ms")),
        o.rates
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        if o.ramp {
            format!(" ramp (max {})", o.ramp_max)
        } else {
            String::new()
        },
    );
    println!(
        "machine: nproc={} CLK_TCK={tck}{} RLIMIT_NOFILE={nofile}{} loadavg {}",
        child::nproc(),
        if tck_known {
            ""
        } else {
            " (assumed: getconf failed)"
        },
        if hard_raised {
            ""
        } else {
            " (the hard limit: raising it needs CAP_SYS_RESOURCE)"
        },
        loadavg(),
    );
    if o.ramp {
        for kind in &o.servers {
            ramp(kind, &o, tck)?;
        }
        return Ok(());
    }
    let mut rows: Vec<(String, usize, Summary)> = Vec::new();
    let mut notes = Vec::new();
    for &n in &o.clients {
        let mut results: Vec<Vec<Run>> = vec![Vec::new(); o.servers.len()];
        // Runs alternate between servers, so that drift on the machine hits them all alike.
        for r in 0..o.runs {
            for (k, kind) in o.servers.iter().enumerate() {
                eprintln!("[{kind} × {n}] run {}/{}", r + 1, o.runs);
                // A run that other processes cut into is done again, twice at most, and the
                // attempt they disturbed least is kept; the table shows what share of the
                // machine they took anyway (oth%).
                let mut kept: Option<Run> = None;
                for _ in 0..o.attempts {
                    wait_quiet(tck, &o);
                    let run = run_once(kind, n, &o, tck)
                        .map_err(|e| format!("{kind} with {n} clients, run {}: {e}", r + 1))?;
                    eprintln!("  {}", run.brief());
                    let quiet = run.other_cpu() <= BUSY_OTHER;
                    if kept
                        .as_ref()
                        .is_none_or(|k| run.other_cpu() < k.other_cpu())
                    {
                        kept = Some(run);
                    }
                    if quiet {
                        break;
                    }
                    eprintln!("  other processes took a share of the machine: again");
                }
                results[k].extend(kept);
            }
        }
        for (kind, runs) in o.servers.iter().zip(results) {
            let disturbed = runs.iter().filter(|r| r.other_cpu() > BUSY_OTHER).count();
            if disturbed > 0 {
                notes.push(format!(
                    "note: {kind} × {n}: {disturbed} of the {} run(s) kept had other processes \
                     taking over {BUSY_OTHER:.0}% of a core",
                    runs.len()
                ));
            }
            rows.push((kind.clone(), n, Summary::of(&runs)));
        }
    }
    report::print(&rows, &o);
    notes.iter().for_each(|n| println!("{n}"));
    println!("loadavg at the end: {}", loadavg());
    Ok(())
}

/// The share of a core (percent) other processes may take before a run is done again.
const BUSY_OTHER: f64 = 25.0;

/// File descriptors each process keeps besides its connections (stdio, pipes, epoll, wakers).
const FD_MARGIN: usize = 64;

/// Client counts must fit the open-file limit of both processes; the ramp stops short of it.
fn fit_fd_limit(mut o: Opts, nofile: u64) -> Res<Opts> {
    let room = usize::try_from(nofile)
        .unwrap_or(usize::MAX)
        .saturating_sub(FD_MARGIN);
    if !o.ramp {
        if let Some(&n) = o.clients.iter().find(|&&n| n > room) {
            return Err(
                format!("{n} clients do not fit RLIMIT_NOFILE {nofile} (at most {room})").into(),
            );
        }
    } else if o.ramp_max > room {
        eprintln!(
            "note: --ramp-max {} lowered to {room} to fit RLIMIT_NOFILE {nofile}",
            o.ramp_max
        );
        o.ramp_max = room;
    }
    Ok(o)
}

/// The machine is shared: before a run, waits (at most `--quiet-wait` seconds) until
/// everything else together used under 15% of a core over one second, so that runs start on
/// a quiet machine.
fn wait_quiet(tck: u64, o: &Opts) {
    if o.quiet_wait == 0 {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(o.quiet_wait);
    loop {
        let Ok((a, _)) = child::machine_ticks() else {
            return;
        };
        std::thread::sleep(Duration::from_secs(1));
        let Ok((b, _)) = child::machine_ticks() else {
            return;
        };
        let busy = 100.0 * (b - a) as f64 / tck as f64;
        if busy < 15.0 {
            return;
        }
        if Instant::now() >= deadline {
            eprintln!("  note: the machine is still busy ({busy:.0}% of a core); running anyway");
            return;
        }
        eprintln!("  waiting for a quiet machine ({busy:.0}% of a core busy)");
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

impl Opts {
    /// The server child's kind, and its arguments beyond kind, port and workers.
    fn child(&self, kind: &str) -> (String, Vec<String>) {
        let window = |flag: &str, ms: &str| vec![flag.to_owned(), ms.to_owned()];
        if let Some(ms) = kind.strip_prefix("corepush@") {
            return ("corepush".into(), window("--fanout-coalesce-ms", ms));
        }
        if let Some(ms) = kind.strip_prefix("corepush~") {
            return ("corepush".into(), window("--fanout-max-ms", ms));
        }
        match self.coalesce_ms {
            Some(ms) if kind == "corepush" => (
                kind.to_owned(),
                window("--fanout-coalesce-ms", &ms.to_string()),
            ),
            _ => (kind.to_owned(), Vec::new()),
        }
    }
}

/// The hidden child mode: `--serve corepush|floor|tokio --port P --workers N
/// [--fanout-coalesce-ms MS]`.
fn serve(kind: &str, flags: &args::Flags) -> Res<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let (port, workers) = (flags.port, flags.workers);
    let window = shootout::window(flags.fanout_coalesce_ms, flags.fanout_max_ms);
    let watch = flags.watch_stdin.is_some();
    if watch && kind != "corepush" {
        child::exit_with_parent();
    }
    child::raise_nofile()?;
    match kind {
        "corepush" => Ok(shootout::serve(
            SocketAddr::from(([127, 0, 0, 1], port)),
            workers,
            window,
            |server| {
                if watch {
                    child::exit_with_parent_answering(move || {
                        let s = server.stats();
                        (s.messages_out, s.writes)
                    });
                }
            },
        )?),
        "floor" => floor::serve(port, workers),
        "tokio" => tokio_ws::serve(port, workers),
        other => Err(format!("unknown server {other:?}").into()),
    }
}

/// The servers `--server all` (the default) runs, in this order.
const SERVERS: [&str; 4] = ["corepush", "corepush@0", "floor", "tokio"];

/// One fan-out phase's figures.
#[derive(Debug, Clone, Default)]
struct Fig {
    deliveries_per_s: f64,
    result_p50: f64,
    result_p99: f64,
    last_p50: f64,
    last_p99: f64,
    cpu_per_delivery_us: f64,
    server_cpu: f64,
    client_cpu: f64,
    other_cpu: f64,
    /// Frames per write call, from a server that counts them (NaN from others).
    frames_per_write: f64,
}

/// One run's figures.
#[derive(Debug, Clone, Default)]
struct Run {
    connect_per_s: f64,
    rss_per_conn: f64,
    /// Per phase, in the order of [`Opts::phases`].
    fanout: Vec<Fig>,
    echo_per_s: f64,
    echo_p50: f64,
    echo_p99: f64,
    cpu_per_echo_us: f64,
}

impl Run {
    /// The most CPU other processes took during a fan-out phase.
    fn other_cpu(&self) -> f64 {
        self.fanout.iter().map(|f| f.other_cpu).fold(0.0, f64::max)
    }

    fn brief(&self) -> String {
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
type Summary = Run;

impl Summary {
    fn of(runs: &[Run]) -> Self {
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
fn engines(threads: usize, o: &Opts) -> Res<Vec<Engine>> {
    let priority = o.senders.max(4).max(o.echo_clients.div_ceil(threads));
    Ok((0..threads)
        .map(|t| Engine::new(0x9e37_79b9_7f4a_7c15 ^ t as u64, priority))
        .collect::<Result<_, _>>()?)
}

/// Connects clients `first..first + count` and deals them to the engines round-robin, so
/// that global clients 0, T, 2T … (the broadcasters) are engine 0's first.
fn add_clients(engines: &mut [Engine], port: u16, first: usize, count: usize, o: &Opts) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(30) + Duration::from_millis(count as u64);
    let streams = client::connect(port, first, count, o.connect_threads, deadline)?;
    let t = engines.len();
    for (i, s) in (first..).zip(streams) {
        engines[i % t].add(s)?;
    }
    Ok(())
}

fn run_once(kind: &str, n: usize, o: &Opts, tck: u64) -> Res<Run> {
    let (child_kind, args) = o.child(kind);
    let mut server = ServerChild::start(&child_kind, o.workers, &args)?;
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
        let (all0, _) = child::machine_ticks()?;
        let (cpu0, me0, t0) = (
            server.cpu_ticks()?,
            child::cpu_ticks("self")?,
            Instant::now(),
        );
        let counted0 = server.frames_and_writes();
        eprintln!("  fan-out, {}: server pid {}", phase.name, server.pid);
        let f = phases::fanout(
            &mut engines,
            &spec(Stop::After(seconds), phase.inflight, phase.rate()),
        )?;
        let (cpu1, me1, wall) = (server.cpu_ticks()?, child::cpu_ticks("self")?, t0.elapsed());
        let (all1, _) = child::machine_ticks()?;
        let frames_per_write = match (counted0, server.frames_and_writes()) {
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

fn ramp(kind: &str, o: &Opts, tck: u64) -> Res<()> {
    eprintln!(
        "[{kind}] ramp: +{RAMP_STEP} clients per step up to {}",
        o.ramp_max
    );
    wait_quiet(tck, o);
    let (child_kind, args) = o.child(kind);
    let server = ServerChild::start(&child_kind, o.workers, &args)?;
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

/// Nearest-rank percentile of sorted values (0 if none).
fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}
