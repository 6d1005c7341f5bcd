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
//!     [--fanout-coalesce-ms MS] [--rates R[,R...]] [--other-build PATH]
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
//! one of them). `--other-build PATH` runs the corepush of another build of this program as
//! the server `other`, alternating with this build's, to compare two builds in one run. Figures are medians over `--runs` runs. `--ramp` runs the shootout's ramp instead: 1,000
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
mod ramp;
mod report;
mod run;
mod tokio_ws;

use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

// The examples' command-line helper, loaded once: through the shootout, which this includes.
use ramp::ramp;
use run::{Run, Summary, run_once};
use shootout::cli;

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
    /// Another build of this program, whose corepush runs as the server "other".
    other_build: Option<std::path::PathBuf>,
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
        // Runs alternate between servers, so that drift on the machine hits them all alike,
        // and each run starts with the next server, so that none always follows the same one.
        for r in 0..o.runs {
            let m = o.servers.len();
            for k in (0..m).map(|i| (i + r) % m) {
                let kind = &o.servers[k];
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
    /// Starts the server child `kind` (see `--server`).
    fn start(&self, kind: &str) -> Res<child::ServerChild> {
        let (child_kind, args) = self.child(kind);
        match (&self.other_build, kind) {
            (Some(exe), "other") => {
                child::ServerChild::start_from(exe, &child_kind, self.workers, &args)
            }
            _ => child::ServerChild::start(&child_kind, self.workers, &args),
        }
    }

    /// The server child's kind, and its arguments beyond kind, port and workers.
    fn child(&self, kind: &str) -> (String, Vec<String>) {
        if kind == "other" {
            return ("corepush".into(), Vec::new());
        }
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

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}
