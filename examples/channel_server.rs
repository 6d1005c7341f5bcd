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

use std::net::{IpAddr, SocketAddr};

use corepush::{ChannelConfig, ChannelServer};

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The token clients must present, if any.
    pub token: Option<String>,
}

/// Reads `--host H --port N --token T` (also `--host=H`); defaults to 127.0.0.1:13005 and
/// no token.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut port: u16 = 13005;
    let mut token = None;
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg, None),
        };
        if name == "--help" || name == "-h" {
            return Err("usage: channel_server [--host H] [--port N] [--token T]".into());
        }
        let value = inline
            .or_else(|| args.next())
            .ok_or_else(|| format!("{name} needs a value"))?;
        match name.as_str() {
            "--host" => {
                host = value
                    .parse()
                    .map_err(|e| format!("--host {value:?}: {e}"))?;
            }
            "--port" => {
                port = value
                    .parse()
                    .map_err(|e| format!("--port {value:?}: {e}"))?;
            }
            "--token" => token = Some(value),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Cli {
        addr: SocketAddr::new(host, port),
        token,
    })
}

/// Starts the broker the command line describes.
pub fn start(cli: &Cli) -> corepush::Result<ChannelServer> {
    let mut config = ChannelConfig::default().addr(cli.addr);
    if let Some(t) = &cli.token {
        config = config.token(t.clone());
    }
    ChannelServer::start(config)
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("{e}");
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
