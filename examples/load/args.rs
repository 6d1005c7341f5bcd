//! The load benchmark's command line: its flags, and the server child's hidden ones
//! (`--serve corepush|floor|tokio --port P --watch-stdin 1 --workers N
//! [--fanout-coalesce-ms MS]`).

use std::error::Error;

use super::{Opts, Res, SERVERS, cli};

/// The loopback load benchmark: corepush against a floor and a tokio baseline.
#[derive(Debug, clap::Parser)]
#[command(name = "load", disable_version_flag = true)]
pub(super) struct Flags {
    /// corepush, corepush@MS (a fixed fan-out window of MS ms), corepush~MS (the adaptive
    /// window up to MS ms), floor, tokio, other (see --other-build), all (corepush,
    /// corepush@0, floor, tokio), or a list of them separated by commas
    #[arg(long, value_name = "LIST", default_value = "all")]
    server: String,
    /// Connected clients, or a list separated by commas (one measurement each)
    #[arg(long, value_name = "N[,N...]", default_value = "1000")]
    clients: String,
    /// Clients that broadcast
    #[arg(long, value_name = "N", default_value_t = 4)]
    senders: usize,
    /// Payload bytes per message
    #[arg(long, value_name = "B", default_value_t = 64)]
    payload: usize,
    /// Seconds per measurement, at most 600
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    seconds: f64,
    /// Runs per measurement (the median is given)
    #[arg(long, value_name = "N", default_value_t = 3)]
    runs: usize,
    /// The server's core loops
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub(super) workers: usize,
    /// Clients of the echo phase
    #[arg(long, value_name = "N", default_value_t = 100)]
    echo_clients: usize,
    /// Broadcasts open per sender
    #[arg(long, value_name = "N", default_value_t = 16)]
    inflight: u64,
    /// Threads driving the clients, 1 to 8
    #[arg(long, value_name = "N", default_value_t = 1)]
    client_threads: usize,
    /// Threads connecting the clients, 1 to 64
    #[arg(long, value_name = "N", default_value_t = 4)]
    connect_threads: usize,
    /// Seconds to wait at most for a quiet machine before a run (0: no waiting)
    #[arg(long, value_name = "S", default_value_t = 60)]
    quiet_wait: u64,
    /// Attempts per run at most when other processes take over a quarter of a core (the
    /// least disturbed is kept)
    #[arg(long, value_name = "N", default_value_t = 3)]
    attempts: usize,
    /// The shootout's ramp instead of the measurements
    #[arg(long)]
    ramp: bool,
    /// The ramp's most clients
    #[arg(long, value_name = "N", default_value_t = 30_000)]
    ramp_max: usize,
    /// A fixed fan-out window for corepush, in milliseconds [default: the library's adaptive one]
    #[arg(long, value_name = "MS")]
    pub(super) fanout_coalesce_ms: Option<u64>,
    /// The server child's adaptive window ceiling, in milliseconds
    #[arg(long, hide = true, value_name = "MS")]
    pub(super) fanout_max_ms: Option<u64>,
    /// Another build of this program: its corepush runs as the server "other" (added to
    /// --server when missing), to compare two builds in one run
    #[arg(long, value_name = "PATH")]
    other_build: Option<std::path::PathBuf>,
    /// Open-loop fan-out rates, broadcasts per second at 1,000 clients (the same deliveries
    /// per second at other client counts), separated by commas; "none" for no open loop
    #[arg(long, value_name = "R[,R...]", default_value = "50,200,800")]
    rates: String,
    /// The server child this program runs itself as: corepush, floor or tokio
    #[arg(long, hide = true, value_name = "KIND")]
    pub(super) serve: Option<String>,
    /// The server child's port
    #[arg(long, hide = true, default_value_t = 0)]
    pub(super) port: u16,
    /// The server child ends when its parent does
    #[arg(long, hide = true)]
    pub(super) watch_stdin: Option<String>,
}

/// The command line; a bad one exits with status 2.
pub(super) fn flags() -> Flags {
    match cli::parse::<Flags, _, _>(std::env::args().skip(1)) {
        Ok(Some(flags)) => flags,
        Ok(None) => {
            println!("{}", cli::help::<Flags>());
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("load: {e}\n{}", cli::usage::<Flags>());
            std::process::exit(2);
        }
    }
}

pub(super) fn parse(flags: &Flags) -> Res<Opts> {
    let bad = |flag: &str, value: &str, e: &dyn std::fmt::Display| -> Box<dyn Error> {
        format!("{flag} {value:?}: {e}").into()
    };
    let mut servers = Vec::new();
    for name in flags.server.split(',') {
        match name.trim() {
            "all" => servers.extend(SERVERS.map(String::from)),
            n @ ("corepush" | "floor" | "tokio") => servers.push(n.to_owned()),
            "other" if flags.other_build.is_some() => servers.push("other".to_owned()),
            n if n
                .strip_prefix("corepush@")
                .or_else(|| n.strip_prefix("corepush~"))
                .is_some_and(|ms| ms.parse::<u64>().is_ok()) =>
            {
                servers.push(n.to_owned())
            }
            _ => {
                let e = "corepush, corepush@MS, corepush~MS, floor, tokio, other (with \
                         --other-build), all, or a list";
                return Err(bad("--server", &flags.server, &e));
            }
        }
    }
    if let Some(path) = &flags.other_build {
        if !path.is_file() {
            return Err(bad(
                "--other-build",
                &path.display().to_string(),
                &"no such file",
            ));
        }
        if !servers.iter().any(|s| s == "other") {
            servers.push("other".to_owned());
        }
    }
    let clients = flags
        .clients
        .split(',')
        .map(|c| c.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e| bad("--clients", &flags.clients, &e))?;
    let rates: Vec<f64> = if flags.rates.trim() == "none" {
        Vec::new()
    } else {
        flags
            .rates
            .split(',')
            .map(|r| r.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|e| bad("--rates", &flags.rates, &e))?
    };
    if rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        let e = "positive numbers of broadcasts per second";
        return Err(bad("--rates", &flags.rates, &e));
    }
    let o = Opts {
        servers,
        clients,
        senders: flags.senders,
        payload: flags.payload,
        seconds: flags.seconds,
        runs: flags.runs,
        workers: flags.workers,
        echo_clients: flags.echo_clients,
        inflight: flags.inflight,
        client_threads: flags.client_threads,
        connect_threads: flags.connect_threads,
        ramp: flags.ramp,
        ramp_max: flags.ramp_max,
        quiet_wait: flags.quiet_wait,
        attempts: flags.attempts.max(1),
        coalesce_ms: flags.fanout_coalesce_ms,
        other_build: flags.other_build.clone(),
        rates,
    };
    let min_clients = o.clients.iter().copied().min().unwrap_or(0);
    if !(o.seconds > 0.0 && o.seconds <= 600.0) {
        return Err("--seconds must be in (0, 600]".into());
    }
    if o.runs == 0 || o.workers == 0 || o.senders == 0 || o.inflight == 0 {
        return Err("--runs, --workers, --senders and --inflight must be positive".into());
    }
    if !(1..=8).contains(&o.client_threads) || !(1..=64).contains(&o.connect_threads) {
        return Err("--client-threads must be 1..=8 and --connect-threads 1..=64".into());
    }
    if !o.ramp && o.senders > min_clients.div_ceil(o.client_threads) {
        return Err("--senders must not exceed the clients of the first client thread".into());
    }
    if o.clients
        .iter()
        .chain([&o.ramp_max])
        .any(|&n| n == 0 || n > 1_000_000)
    {
        return Err("client counts must be in 1..=1000000".into());
    }
    Ok(o)
}
