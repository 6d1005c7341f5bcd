//! cluster_bench's command line: the benchmark's flags, and the instance role's hidden ones
//! (`--serve KIND --port P --watch-stdin 1 --workers N [--redis URL | --broker ADDR |
//! --gateway ADDR] [--prefix P --instance N] [--fanout-coalesce-ms MS]`).

use std::time::Duration;

use super::{Opts, PHASES, Res, instance::InstanceSpec};

#[path = "../common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;

/// The cluster benchmark: Local, Redis, Channel and Gateway instances on loopback.
#[derive(Debug, clap::Parser)]
#[command(name = "cluster_bench", disable_version_flag = true)]
pub(super) struct Flags {
    /// Connected clients, 2 to 100000, at least twice --senders
    #[arg(long, value_name = "N", default_value_t = 1000)]
    clients: usize,
    /// Runs (the median is given)
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: usize,
    /// Seconds per measurement, at most 600
    #[arg(long, value_name = "S", default_value_t = 3.0)]
    seconds: f64,
    /// Single pushes per path, at most 1000000
    #[arg(long, value_name = "N", default_value_t = 2000)]
    pushes: usize,
    /// Single pushes before the measured ones, at most 1000000
    #[arg(long, value_name = "N", default_value_t = 200)]
    warmup: usize,
    /// Payload bytes per message, at most 60000
    #[arg(long, value_name = "B", default_value_t = 64)]
    payload: usize,
    /// Clients that broadcast
    #[arg(long, value_name = "N", default_value_t = 4)]
    senders: usize,
    /// Broadcast depths, separated by commas, each 1 to 1024 (one measurement each)
    #[arg(long, value_name = "D[,D...]", default_value = "1,16")]
    inflight: String,
    /// Pushes open at once in the throughput phase, at most 10000
    #[arg(long, value_name = "N", default_value_t = 512)]
    window: u64,
    /// Each instance's core loops
    #[arg(long, value_name = "N", default_value_t = 2)]
    workers: usize,
    /// Threads connecting the clients, 1 to 64
    #[arg(long, value_name = "N", default_value_t = 4)]
    connect_threads: usize,
    /// Seconds to wait at most for a quiet machine before a run (0: no waiting)
    #[arg(long, value_name = "S", default_value_t = 30)]
    quiet_wait: u64,
    /// RuntimeConfig::fanout_coalesce in milliseconds [default: the library's]
    #[arg(long, value_name = "MS")]
    fanout_coalesce_ms: Option<u64>,
    /// Which of single, throughput, broadcast to run, separated by commas
    #[arg(
        long,
        value_name = "LIST",
        default_value = "single,throughput,broadcast"
    )]
    phases: String,
    /// The instance role this program runs itself as
    #[arg(long, hide = true, value_name = "KIND")]
    pub(super) serve: Option<String>,
    /// The instance's port
    #[arg(long, hide = true, default_value_t = 0)]
    port: u16,
    /// The instance ends when its parent does
    #[arg(long, hide = true)]
    watch_stdin: Option<String>,
    /// The instance's Redis
    #[arg(long, hide = true)]
    redis: Option<String>,
    /// The instance's channel broker
    #[arg(long, hide = true)]
    broker: Option<String>,
    /// The business process's gateway
    #[arg(long, hide = true)]
    gateway: Option<String>,
    /// The instance's cluster prefix
    #[arg(long, hide = true)]
    prefix: Option<String>,
    /// The instance's number
    #[arg(long, hide = true, default_value_t = 0)]
    instance: u16,
}

/// The command line; `--help` and a bad one exit (status 0 and 2).
pub(super) fn flags() -> Flags {
    match cli::parse::<Flags, _, _>(std::env::args().skip(1)) {
        Ok(Some(flags)) => flags,
        Ok(None) => {
            println!("{}", cli::help::<Flags>());
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("cluster_bench: {e}\n{}", usage());
            std::process::exit(2);
        }
    }
}

/// The usage line printed after a bad argument.
pub(super) fn usage() -> String {
    cli::usage::<Flags>()
}

/// The benchmark's options, checked.
pub(super) fn parse(f: &Flags) -> Res<Opts> {
    let inflight = f
        .inflight
        .split(',')
        .map(|d| d.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--inflight {:?}: {e}", f.inflight))?;
    let phases: Vec<String> = f.phases.split(',').map(|p| p.trim().to_owned()).collect();
    if let Some(p) = phases.iter().find(|p| !PHASES.contains(&p.as_str())) {
        return Err(format!("--phases {:?}: unknown phase {p:?}", f.phases).into());
    }
    let o = Opts {
        clients: f.clients,
        runs: f.runs,
        seconds: f.seconds,
        pushes: f.pushes,
        warmup: f.warmup,
        payload: f.payload,
        senders: f.senders,
        inflight,
        window: f.window,
        workers: f.workers,
        connect_threads: f.connect_threads,
        quiet_wait: f.quiet_wait,
        coalesce_ms: f.fanout_coalesce_ms,
        phases,
    };
    if !(o.seconds > 0.0 && o.seconds <= 600.0) {
        return Err("--seconds must be in (0, 600]".into());
    }
    if [o.runs, o.pushes, o.payload, o.senders, o.workers].contains(&0)
        || o.window == 0
        || o.inflight.is_empty()
        || o.inflight.iter().any(|&d| d == 0 || d > 1024)
    {
        return Err(
            "--runs, --pushes, --payload, --senders, --window and --workers must be positive, \
             --inflight in 1..=1024"
                .into(),
        );
    }
    if o.pushes > 1_000_000 || o.warmup > 1_000_000 || o.window > 10_000 || o.payload > 60_000 {
        return Err(
            "--pushes and --warmup at most 1000000, --window 10000, --payload 60000".into(),
        );
    }
    if !(2..=100_000).contains(&o.clients) || o.senders > o.clients / 2 {
        return Err("--clients must be in 2..=100000, and at least twice --senders".into());
    }
    if !(1..=64).contains(&o.connect_threads) {
        return Err("--connect-threads must be 1..=64".into());
    }
    Ok(o)
}

/// The instance role's settings.
pub(super) fn instance_spec(kind: &str, f: &Flags) -> InstanceSpec {
    if f.watch_stdin.is_some() {
        super::child::exit_with_parent();
    }
    InstanceSpec {
        backend: kind.to_owned(),
        port: f.port,
        workers: f.workers,
        instance: f.instance,
        redis_url: f.redis.clone(),
        broker: f.broker.clone(),
        gateway: f.gateway.clone(),
        prefix: f.prefix.clone(),
        fanout_coalesce: f.fanout_coalesce_ms.map(Duration::from_millis),
    }
}
