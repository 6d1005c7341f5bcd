//! The soak test behind the README's Reliability section: thousands of WebSocket clients with
//! churn while pushes run, for a bounded time, reporting the server's memory, file descriptors
//! and deliveries as it goes — and at the end, that nothing was lost and nothing leaked.
//!
//! ```sh
//! cargo run --release --example soak -- [--minutes 3] [--clients 10000] [--churn 2]
//!     [--push-ms 10] [--workers 2] [--report-secs 10]
//! ```
//!
//! The server runs in a child process (this program re-executed with a hidden `--serve`), so
//! that its resident memory (`VmRSS`) and descriptors (`/proc/PID/fd`) are its own. Its
//! clients bind one of 64 flags and join two of six groups; a pusher thread pushes one
//! numbered message every `--push-ms`, in turn to everyone, to all groups and to all flags
//! (three sequences, see `server.rs`). This process connects `--clients` clients, then every
//! second closes `--churn` percent of them (half with a close handshake, half with a reset)
//! and connects new ones to get back to `--clients`, and every client checks that each sequence arrives without a
//! gap or a duplicate from the first number it sees. At the end the pusher stops and sends the
//! last numbers to everyone, each client checks it has them, every client disconnects, and the
//! server must come back to no connections and its baseline of descriptors.
//!
//! Progress goes to stderr, the report to stdout; the exit status is 1 if anything was lost,
//! duplicated, closed unasked, or leaked. Every wait has a deadline; only 127.0.0.1 is used.

#[path = "../load/child.rs"]
#[allow(dead_code)] // the load example's helpers; this one uses a few of them
mod child;
#[path = "../load/client.rs"]
#[allow(dead_code)] // the handshakes are shared; the load example's engine is not used here
mod client;

#[path = "../common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;
mod pool;
mod process;
mod server;
mod wire;

use std::error::Error;
use std::time::{Duration, Instant};

use cli::value;
use pool::{Pool, Totals};
use process::{Connector, Sample, ServerProcess};

type Res<T> = Result<T, Box<dyn Error>>;

/// Descriptors the server may hold above its baseline once every client is gone (a
/// connection still in the middle of being torn down, say) and still pass.
const FD_SLACK: usize = 4;
/// Descriptors this process keeps besides its clients.
const FD_MARGIN: u64 = 256;

#[derive(Debug, Clone)]
struct Opts {
    minutes: f64,
    clients: usize,
    churn: f64,
    push_ms: u64,
    workers: usize,
    report_secs: u64,
}

/// The soak test: many clients for minutes, with churn and pushes, checking that nothing is
/// lost, duplicated or leaked.
#[derive(Debug, clap::Parser)]
#[command(name = "soak", disable_version_flag = true)]
struct Flags {
    /// How long to run, in minutes, at most 60
    #[arg(long, value_name = "M", default_value_t = 3.0, value_parser = value::within(0.0, 60.0))]
    minutes: f64,
    /// Clients kept connected
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = value::within(1usize, 200_000))]
    clients: usize,
    /// Per cent of the clients closed and opened again every second
    #[arg(long, value_name = "PCT", default_value_t = 2.0, value_parser = value::within(0.0, 50.0))]
    churn: f64,
    /// Milliseconds between pushes (to everyone, a group, a flag in turn)
    #[arg(long, value_name = "MS", default_value_t = 10, value_parser = value::within(1u64, 10_000))]
    push_ms: u64,
    /// The server's core loops
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = value::within(1usize, 64))]
    workers: usize,
    /// Seconds between progress reports
    #[arg(long, value_name = "S", default_value_t = 10, value_parser = value::within(1u64, 600))]
    report_secs: u64,
    /// The server child this program runs itself as
    #[arg(long, hide = true)]
    serve: bool,
}

fn main() -> Res<()> {
    let (o, serve) = parse();
    if serve {
        child::raise_nofile()?;
        return server::serve(o.workers, Duration::from_millis(o.push_ms));
    }
    let (nofile, _) = child::raise_nofile()?;
    let churn_per_s = churn_count(o.clients, o.churn);
    if (o.clients + 2 * churn_per_s) as u64 + FD_MARGIN > nofile {
        return Err(format!("{} clients do not fit RLIMIT_NOFILE {nofile}", o.clients).into());
    }
    println!("corepush soak (loopback; clients and server share the machine)");
    println!(
        "parameters: clients={} minutes={} churn={}%/s (~{churn_per_s} closed and opened per \
         second) push every {} ms (a, g, f in turn) workers={} nproc={} RLIMIT_NOFILE={nofile}",
        o.clients,
        o.minutes,
        o.churn,
        o.push_ms,
        o.workers,
        child::nproc(),
    );
    println!("loadavg at the start: {}", loadavg());
    let passed = soak(&o)?;
    println!("loadavg at the end: {}", loadavg());
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs the soak; true if it passed.
fn soak(o: &Opts) -> Res<bool> {
    let mut server = ServerProcess::start(o)?;
    std::thread::sleep(Duration::from_millis(500));
    let baseline = server.sample(0)?;
    eprintln!("server pid {} on port {}", server.pid, server.port);

    let mut pool = Pool::new()?;
    let t = Instant::now();
    let deadline = t + Duration::from_secs(60) + Duration::from_millis(o.clients as u64 * 10);
    let streams = client::connect(server.port, 0, o.clients, 4, deadline)?;
    for (i, s) in streams.into_iter().enumerate() {
        pool.add(s, i)?;
    }
    let connect_s = t.elapsed().as_secs_f64();
    eprintln!(
        "{} clients connected in {connect_s:.1} s ({:.0}/s)",
        o.clients,
        o.clients as f64 / connect_s
    );
    server.wait_connections(o.clients as u64, &mut pool, Duration::from_secs(30))?;
    let loaded = server.sample(pool.live())?;

    let churn_per_s = churn_count(o.clients, o.churn);
    let mut connector = Connector::start(server.port);
    let mut next_index = o.clients;
    server.ask("push", "pushing", Duration::from_secs(5))?;
    let start = Instant::now();
    // A moment past the last whole report interval, so that its row is printed.
    let end = start + Duration::from_secs_f64(o.minutes * 60.0) + Duration::from_millis(100);
    let every = Duration::from_secs(o.report_secs);
    let (mut next_churn, mut next_report) = (start + Duration::from_secs(1), start + every);
    let mut rows: Vec<Row> = Vec::new();
    let mut last_deliveries = 0u64;
    let mut last_at = start;
    print_row_header();
    while Instant::now() < end {
        pool.pump(Duration::from_millis(10))?;
        connector.collect(&mut pool)?;
        let now = Instant::now();
        if now >= next_report {
            next_report += every;
            let stats = server.stats()?;
            let d = pool.totals.deliveries;
            let row = Row {
                at: now - start,
                sample: server.sample(pool.live())?,
                connections: stats.get("connections"),
                pushed: stats.get("pushed"),
                lag: pool
                    .slowest()
                    .map_or(0, |n| stats.get("pushed").saturating_sub(n)),
                deliveries: d,
                rate: (d - last_deliveries) as f64 / (now - last_at).as_secs_f64(),
                totals: pool.totals.clone(),
            };
            (last_deliveries, last_at) = (d, now);
            row.print();
            rows.push(row);
        }
        if now >= next_churn {
            next_churn += Duration::from_secs(1);
            pool.churn(churn_per_s);
            // Back up to --clients, counting those still connecting: a slow connect must not
            // shrink the population, nor a fast one grow it.
            let n = o
                .clients
                .saturating_sub(pool.live() + connector.in_flight());
            connector.request(next_index, n);
            next_index += n;
        }
    }

    eprintln!("soak time over: finishing the connects in flight, stopping the pusher");
    connector.finish(&mut pool, Duration::from_secs(60))?;
    let stopped = server.ask("stop", "stopped", Duration::from_secs(30))?;
    let ends = process::parse_ends(&stopped)?;
    let queued = process::field(&stopped, "queued").unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool.waiting_for_end() > 0 && Instant::now() < deadline {
        pool.pump(Duration::from_millis(10))?;
    }
    let checked = pool.check_ends(ends);
    let before_close = server.sample(pool.live())?;
    let before_stats = server.stats()?;

    pool.close_all();
    server.wait_connections(0, &mut pool, Duration::from_secs(30))?;
    let after = server.sample(pool.live())?;
    let stats = server.stats()?;
    server.exit(Duration::from_secs(30))?;

    let report = Report {
        baseline,
        loaded,
        before_close,
        after,
        rows,
        totals: pool.totals.clone(),
        ends,
        queued,
        checked,
        stats,
        before_stats,
    };
    Ok(report.print(o))
}

/// How many clients churn closes (and opens) per second.
fn churn_count(clients: usize, percent: f64) -> usize {
    (clients as f64 * percent / 100.0).round() as usize
}

/// One line of the report during the soak.
struct Row {
    at: Duration,
    sample: Sample,
    connections: u64,
    pushed: u64,
    /// Pushes the slowest client is behind the pusher.
    lag: u64,
    deliveries: u64,
    rate: f64,
    totals: Totals,
}

fn print_row_header() {
    println!(
        "\nevery row: clients connected here (not closing) and counted by the server, the \
         server's VmRSS and open fds, pushes so far and how many the slowest client is behind, \
         deliveries received, clients opened and closed, numbers lost or duplicated, problems"
    );
    println!(
        "\n{:>6} {:>8} {:>8} {:>9} {:>7} {:>8} {:>5} {:>12} {:>11} {:>8} {:>8} {:>5} {:>5} {:>6}",
        "t s",
        "clients",
        "srv conn",
        "RSS MiB",
        "fds",
        "pushed",
        "lag",
        "deliveries",
        "deliv/s",
        "opened",
        "closed",
        "lost",
        "dup",
        "probl"
    );
}

impl Row {
    fn print(&self) {
        println!(
            "{:>6.0} {:>8} {:>8} {:>9.1} {:>7} {:>8} {:>5} {:>12} {:>11.0} {:>8} {:>8} {:>5} {:>5} {:>6}",
            self.at.as_secs_f64(),
            self.sample.clients,
            self.connections,
            mib(self.sample.rss),
            self.sample.fds,
            self.pushed,
            self.lag,
            self.deliveries,
            self.rate,
            self.totals.opened,
            self.totals.closed,
            self.totals.lost,
            self.totals.duplicates,
            self.totals.problem_count,
        );
    }
}

struct Report {
    baseline: Sample,
    loaded: Sample,
    before_close: Sample,
    after: Sample,
    rows: Vec<Row>,
    totals: Totals,
    ends: pool::Ends,
    queued: u64,
    checked: usize,
    stats: process::StatsLine,
    before_stats: process::StatsLine,
}

impl Report {
    /// Prints the summary; true if the soak passed.
    fn print(&self, o: &Opts) -> bool {
        let t = &self.totals;
        let s = &self.stats;
        println!("\nsummary");
        println!(
            "{:<34} {:>8} {:>9} {:>9} {:>7}",
            "server", "clients", "RSS MiB", "peak MiB", "fds"
        );
        for (what, x) in [
            ("baseline (no clients)", &self.baseline),
            ("clients connected", &self.loaded),
            ("end of soak (pushes stopped)", &self.before_close),
            ("every client disconnected", &self.after),
        ] {
            println!(
                "{what:<34} {:>8} {:>9.1} {:>9.1} {:>7}",
                x.clients,
                mib(x.rss),
                mib(x.peak),
                x.fds
            );
        }
        if let (Some(first), Some(last)) = (self.rows.first(), self.rows.last()) {
            let (lo, hi) = self.rows.iter().fold((u64::MAX, 0), |(lo, hi), r| {
                (lo.min(r.sample.rss), hi.max(r.sample.rss))
            });
            println!(
                "RSS during the soak: {:.1} MiB at {:.0} s, {:.1} MiB at {:.0} s (min {:.1}, max \
                 {:.1})",
                mib(first.sample.rss),
                first.at.as_secs_f64(),
                mib(last.sample.rss),
                last.at.as_secs_f64(),
                mib(lo),
                mib(hi),
            );
        }
        let [a, g, f] = self.ends;
        let pushes = a + g + f;
        println!(
            "pushes: {pushes} (to all {a}, to groups {g}, to flags {f}) over {} min, queued to \
             {} connections in all",
            o.minutes, self.queued
        );
        println!(
            "deliveries received: {} (server frames out: {}); clients checked at the end: {} of \
             {} live",
            t.deliveries,
            self.before_stats.get("messages_out"),
            self.checked,
            self.before_close.clients,
        );
        println!(
            "connections: opened {} (server accepted {}), closed {} (server closed {}), pings \
             answered {}",
            t.opened,
            s.get("accepted"),
            t.closed,
            s.get("closed"),
            t.pings,
        );
        println!(
            "lost {}, duplicated {}, closed unasked {}, garbled {}",
            t.lost, t.duplicates, t.unexpected_closes, t.garbled
        );
        let counters = [
            "connections",
            "listed",
            "groups",
            "members",
            "flags",
            "rejected",
            "handshake_failures",
            "dropped",
            "slow_consumer_closes",
            "protocol_errors",
            "idle_closes",
            "handler_panics",
            "mailbox_timeouts",
        ];
        let listed: Vec<String> = counters
            .iter()
            .map(|k| format!("{k}={}", s.get(k)))
            .collect();
        println!("server at the end: {}", listed.join(" "));

        let mut failures = t.problems.clone();
        if t.problem_count > t.problems.len() as u64 {
            failures.push(format!(
                "… {} more problems",
                t.problem_count - t.problems.len() as u64
            ));
        }
        for k in counters {
            if s.get(k) != 0 {
                failures.push(format!("server {k} = {}", s.get(k)));
            }
        }
        if self.after.fds > self.baseline.fds + FD_SLACK {
            failures.push(format!(
                "server fds {} after every client left, baseline {} (+{FD_SLACK} allowed)",
                self.after.fds, self.baseline.fds
            ));
        }
        if s.get("accepted") != s.get("closed") {
            failures.push(format!(
                "server accepted {} but closed {}",
                s.get("accepted"),
                s.get("closed")
            ));
        }
        if pushes == 0 || t.deliveries == 0 {
            failures.push("nothing was pushed or delivered".into());
        }
        if failures.is_empty() {
            println!(
                "PASSED: nothing lost (every live client had every number), nothing leaked \
                 (connections 0, fds back to baseline {} ± {FD_SLACK})",
                self.baseline.fds
            );
            true
        } else {
            println!("FAILED:");
            for f in failures {
                println!("  {f}");
            }
            false
        }
    }
}

/// The machine is shared: other processes' load is part of the conditions.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// The options, and whether this is the server child; a bad command line exits with status 2.
fn parse() -> (Opts, bool) {
    let flags = match cli::parse::<Flags, _, _>(std::env::args().skip(1)) {
        Ok(Some(flags)) => flags,
        Ok(None) => {
            println!("{}", cli::help::<Flags>());
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("soak: {e}\n{}", cli::usage::<Flags>());
            std::process::exit(2);
        }
    };
    if flags.minutes <= 0.0 {
        eprintln!(
            "soak: --minutes must be in (0, 60]\n{}",
            cli::usage::<Flags>()
        );
        std::process::exit(2);
    }
    let o = Opts {
        minutes: flags.minutes,
        clients: flags.clients,
        churn: flags.churn,
        push_ms: flags.push_ms,
        workers: flags.workers,
        report_secs: flags.report_secs,
    };
    (o, flags.serve)
}
