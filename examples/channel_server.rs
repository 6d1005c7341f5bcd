//! channel_server: the channel broker on its own, for instances on the Channel backend
//! (`BackendConfig::Channel`) in other processes or on other machines.
//!
//! ```text
//! cargo run --example channel_server -- --host 127.0.0.1 --port 13005 --token secret
//! ```
//!
//! Prints `listening on HOST:PORT` once it accepts connections, logs (set `RUST_LOG=info` to
//! see members join and leave, and `warn` for the clients it refuses or cuts off), and stops
//! on Ctrl-C or SIGTERM.

use std::net::{SocketAddr, ToSocketAddrs};

use clap::Parser;
use corepush::{ChannelConfig, ChannelServer};

#[path = "common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;

use cli::value;

/// The command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The token clients must present, if any.
    pub token: Option<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cli {
    /// Run the broker.
    Run(Options),
    /// Print the help.
    Help,
}

/// The channel broker, for instances on the Channel backend.
#[derive(Debug, Parser)]
#[command(name = "channel_server", disable_version_flag = true)]
struct Flags {
    /// IP address (::1 too) or name to listen on
    #[arg(long, value_name = "H", default_value = "127.0.0.1", value_parser = value::non_empty)]
    host: String,
    /// Port to listen on; 0 picks a free one
    #[arg(long, value_name = "N", default_value_t = 13005, value_parser = value::port)]
    port: u16,
    /// The token clients must present [default: none]
    #[arg(long, value_name = "T")]
    token: Option<String>,
}

/// Reads `--host H --port N --token T` (`--flag=value` too); defaults to 127.0.0.1:13005
/// and no token.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let Some(flags) = cli::parse::<Flags, _, _>(args)? else {
        return Ok(Cli::Help);
    };
    let addr = (flags.host.as_str(), flags.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| format!("--host {:?} resolves to no address", flags.host))?;
    Ok(Cli::Run(Options {
        addr,
        token: flags.token,
    }))
}

/// Starts the broker the command line describes.
pub fn start(cli: &Options) -> corepush::Result<ChannelServer> {
    let mut config = ChannelConfig::default().addr(cli.addr);
    if let Some(t) = &cli.token {
        config = config.token(t.clone());
    }
    ChannelServer::start(config)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(Cli::Run(cli)) => cli,
        Ok(Cli::Help) => {
            println!("{}", cli::help::<Flags>());
            return;
        }
        Err(e) => {
            eprintln!("channel_server: {e}\n{}", cli::usage::<Flags>());
            std::process::exit(2);
        }
    };
    let broker = match start(&cli) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot start the broker on {}: {e}", cli.addr);
            std::process::exit(1);
        }
    };
    println!("listening on {}", broker.local_addr());
    if let Err(e) = broker.run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
