//! gateway: a gateway process on its own, holding the client connections for business
//! processes that run the application (`push_demo --backend gateway`, or any server with
//! `BackendConfig::Gateway`).
//!
//! Clients connect to `--host`:`--port` (WebSocket); business processes connect to
//! `--host`:`--internal-port` and must present `--secret`. `--instance` is this gateway's
//! number, from 1 up, part of every client id: give each gateway of a deployment its own.
//!
//! ```text
//! cargo run --example gateway -- --port 8080 --internal-port 9080 --workers 2 --secret s3cret
//! cargo run --example gateway -- --port 8081 --internal-port 9081 --secret s3cret --instance 2
//! ```
//!
//! Prints `listening on ws://HOST:PORT/ (internal HOST:PORT, workers=N, instance=K)` once it
//! accepts clients and business processes, logs (`RUST_LOG`, `info` by default: business
//! processes connecting and leaving), and stops on Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};

use corepush::{Error, GatewayConfig, MAX_INSTANCES, MAX_WORKERS, Runtime, ServerConfig};

#[path = "common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;

use cli::value;

/// The name of the gateway's one server.
pub const SERVER: &str = "gateway";

/// The command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "gateway",
    disable_version_flag = true,
    about = "A gateway: holds the client connections for business processes"
)]
struct Flags {
    /// Where clients connect (WebSocket); 0 picks a free port
    #[arg(long, value_name = "N", value_parser = value::port)]
    port: u16,
    /// Where business processes connect; 0 picks a free port
    #[arg(long, value_name = "M", value_parser = value::port)]
    internal_port: u16,
    /// The secret business processes must present
    #[arg(long, value_name = "S", value_parser = value::non_empty)]
    secret: String,
    /// Core loops [default: the number of cores]
    #[arg(long, value_name = "W", value_parser = value::within(1, MAX_WORKERS))]
    workers: Option<usize>,
    /// This gateway's number, 1 to 4095, unique among the gateways
    #[arg(long, value_name = "K", default_value_t = 1,
          value_parser = value::within(1, MAX_INSTANCES - 1))]
    instance: u16,
    /// IP address (::1 too) or name both ports are on
    #[arg(long, value_name = "H", default_value = "127.0.0.1", value_parser = value::non_empty)]
    host: String,
}

/// The command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Address both ports are on (an IP address or a resolvable name).
    pub host: String,
    /// Where clients connect.
    pub port: u16,
    /// Where business processes connect.
    pub internal_port: u16,
    /// Core loops.
    pub workers: usize,
    /// The secret business processes present.
    pub secret: String,
    /// This gateway's instance number, from 1.
    pub instance: u16,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// Run the gateway.
    Run(Options),
    /// Print the usage and exit.
    Help,
}

/// Parses the arguments after the program name. `--flag value` and `--flag=value` both work.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let Some(flags) = cli::parse::<Flags, _, _>(args)? else {
        return Ok(Cli::Help);
    };
    Ok(Cli::Run(Options {
        host: flags.host,
        port: flags.port,
        internal_port: flags.internal_port,
        workers: flags
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        secret: flags.secret,
        instance: flags.instance,
    }))
}

/// Starts the gateway: accepting clients and business processes when this returns.
pub fn build(opts: &Options) -> corepush::Result<Runtime> {
    let addr = resolve(&opts.host, opts.port)?;
    let internal = resolve(&opts.host, opts.internal_port)?;
    Runtime::builder()
        .workers(opts.workers)
        .instance(opts.instance)
        .server(
            ServerConfig::websocket(SERVER, addr)
                .gateway(GatewayConfig::new(internal, opts.secret.as_str())),
        )
        .start()
}

/// The line printed once the gateway accepts clients and business processes.
pub fn ready_line(runtime: &Runtime, opts: &Options) -> Option<String> {
    let addr = runtime.local_addr(SERVER)?;
    let internal = runtime.gateway(SERVER)?.internal_addr()?;
    Some(format!(
        "listening on ws://{addr}/ (internal {internal}, workers={}, instance={})",
        runtime.workers(),
        opts.instance
    ))
}

/// Everything `main` does once the log is set up: the process's exit status (it returns only
/// on a bad command line, a failed start, or a stop).
pub fn serve<I, S>(args: I) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let opts = match parse_args(args) {
        Ok(Cli::Run(opts)) => opts,
        Ok(Cli::Help) => {
            println!("{}", cli::help::<Flags>());
            return 0;
        }
        Err(e) => {
            eprintln!("gateway: {e}\n{}", cli::usage::<Flags>());
            return 2;
        }
    };
    let runtime = match build(&opts) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gateway: cannot start: {e}");
            return 1;
        }
    };
    if let Some(line) = ready_line(&runtime, &opts) {
        println!("{line}");
        let _ = std::io::stdout().flush();
    }
    match runtime.run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("gateway: {e}");
            1
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    std::process::exit(serve(std::env::args().skip(1)));
}

fn resolve(host: &str, port: u16) -> corepush::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::Config(format!("{host:?} resolves to no address")))
}
