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

/// The name of the gateway's one server.
pub const SERVER: &str = "gateway";

/// The command-line help.
pub const USAGE: &str = "usage: gateway --port N --internal-port M --secret S [--workers W]
    [--instance K] [--host 127.0.0.1] [--help]

  --port N           where clients connect (WebSocket); 0 picks a free port
  --internal-port M  where business processes connect; 0 picks a free port
  --secret S         the secret business processes must present
  --workers W        core loops (default: the number of cores)
  --instance K       this gateway's number, 1 to 4095, unique among the gateways (default 1)
  --host H           the address both ports are on (default 127.0.0.1)";

/// The flags that take a value.
const FLAGS: &str = "--port --internal-port --secret --workers --instance --host";

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
    let mut host = "127.0.0.1".to_owned();
    let (mut port, mut internal_port, mut secret) = (None, None, None);
    let mut workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut instance = 1;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Cli::Help);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        if !FLAGS.split(' ').any(|f| f == flag) {
            return Err(format!("unknown argument {flag:?}"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(v) => v,
            None => return Err(format!("{flag} needs a value")),
        };
        let port_number = |value: &str| {
            value
                .parse::<u16>()
                .map_err(|_| format!("{flag} expects a port number 0-65535, not {value:?}"))
        };
        match flag.as_str() {
            "--port" => port = Some(port_number(&value)?),
            "--internal-port" => internal_port = Some(port_number(&value)?),
            "--secret" if value.is_empty() => return Err("--secret must not be empty".into()),
            "--secret" => secret = Some(value),
            "--workers" => {
                workers = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_WORKERS).contains(n))
                    .ok_or_else(|| {
                        format!("--workers expects a number from 1 to {MAX_WORKERS}, not {value:?}")
                    })?
            }
            "--instance" => {
                instance = value
                    .parse()
                    .ok()
                    .filter(|n| (1..MAX_INSTANCES).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "--instance expects a number from 1 to {}, not {value:?}",
                            MAX_INSTANCES - 1
                        )
                    })?
            }
            "--host" if value.is_empty() => return Err("--host must not be empty".into()),
            _ => host = value,
        }
    }
    let missing = |flag: &str| format!("{flag} is required");
    Ok(Cli::Run(Options {
        port: port.ok_or_else(|| missing("--port"))?,
        internal_port: internal_port.ok_or_else(|| missing("--internal-port"))?,
        secret: secret.ok_or_else(|| missing("--secret"))?,
        host,
        workers,
        instance,
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
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("gateway: {e}\n{USAGE}");
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
