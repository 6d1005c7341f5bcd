//! The command line of push_demo, and the settings `--config FILE` gives under it.

use std::net::SocketAddr;

use clap::Parser;
use corepush::{BackendConfig, ConfigFile, MAX_WORKERS, Protocol, ServerConfig};

use super::cli::{self, value};
use super::{BUSINESS, SERVER};

/// Which backend carries the pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Every core loop of this process.
    Local,
    /// A Redis pub/sub cluster.
    Redis,
    /// A channel server shared by the instances.
    Channel,
    /// Business process behind one or more gateways.
    Gateway,
}

impl Backend {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Redis => "redis",
            Backend::Channel => "channel",
            Backend::Gateway => "gateway",
        }
    }
}

/// The command-line options, with what `--config` gave where no flag did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Address to listen on (an IP address or a resolvable name). Defaults to 127.0.0.1.
    pub host: String,
    /// Port to listen on; 0 picks a free one. Defaults to 8080.
    pub port: u16,
    /// Core loops. Defaults to the number of available cores.
    pub workers: usize,
    /// Defaults to [`Backend::Local`].
    pub backend: Backend,
    /// For the redis backend; `None` is [`REDIS_URL`](super::REDIS_URL).
    pub redis_url: Option<String>,
    /// For the channel backend: the broker, `host:port`; `None` is [`CHANNEL`](super::CHANNEL).
    pub channel: Option<String>,
    /// For the channel backend: the broker's token, where it has one.
    pub token: Option<String>,
    /// The name `whoami` reports. Defaults to "local". Empty means `instance-N`, N being this
    /// instance's number: [`parse_args`] leaves it so on a cluster backend without
    /// `--instance`.
    pub instance: String,
    /// For the gateway backend: the gateways' internal addresses, `host:port` separated by
    /// commas.
    pub gateway: Option<String>,
    /// For the gateway backend: the gateways' secret.
    pub secret: Option<String>,
    /// The configuration file whose other settings (runtime, server limits, backend
    /// timeouts) [`build`](super::build) takes.
    pub config: Option<String>,
    /// Serve `wss://`: the certificate chain's PEM file (with `tls_key`).
    pub tls_cert: Option<String>,
    /// Serve `wss://`: the private key's PEM file (with `tls_cert`).
    pub tls_key: Option<String>,
    /// Compress messages for the clients that offer permessage-deflate (RFC 7692), with the
    /// default `DeflateConfig` unless the configuration file set one.
    pub deflate: bool,
    /// How long a closed connection's flag context is kept for `restore`, in milliseconds
    /// (0 keeps nothing); `None` (the default) leaves it to `--config`'s `keep_context`, off
    /// without one.
    pub keep_ms: Option<u64>,
    /// Keep the last N messages of every group and flag, for `recover`; 0 (the default) is
    /// off.
    pub history: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1".to_owned(),
            port: 8080,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: Backend::Local,
            redis_url: None,
            channel: None,
            token: None,
            instance: "local".to_owned(),
            gateway: None,
            secret: None,
            config: None,
            tls_cert: None,
            tls_key: None,
            deflate: false,
            keep_ms: None,
            history: 0,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
// Made once per process: boxing the options would only burden every match on it.
#[allow(clippy::large_enum_variant)]
pub enum Cli {
    /// Run the server.
    Run(Options),
    /// Print the usage and exit.
    Help,
}

/// Every method of the push facade, driven over a WebSocket with JSON commands
/// (PUSH_DEMO_PROTOCOL.md).
#[derive(Debug, Parser)]
#[command(
    name = "push_demo",
    disable_version_flag = true,
    after_help = "Backends:
  local     every core loop of this process
  redis     one instance of a cluster on Redis
  channel   one instance of a cluster on a channel broker
  gateway   a business process behind gateways (examples/gateway.rs), which hold the
            clients: needs --gateway and --secret; takes no --port or --host

--config FILE: the file's [runtime] and its one [servers.NAME] (or [servers.push_demo]),
TOML or JSON (by its name); COREPUSH_* variables win over the file, and flags over both."
)]
pub(crate) struct Flags {
    /// Port to listen on; 0 picks a free one [default: 8080]
    #[arg(long, value_name = "PORT", value_parser = value::port)]
    port: Option<u16>,
    /// IP address (::1 too) or name to listen on [default: 127.0.0.1]
    #[arg(long, value_name = "HOST", value_parser = value::non_empty)]
    host: Option<String>,
    /// Core loops [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = value::within(1, MAX_WORKERS))]
    workers: Option<usize>,
    /// local, redis, channel or gateway (below) [default: local]
    #[arg(long, value_enum, value_name = "B", hide_possible_values = true)]
    backend: Option<Backend>,
    /// The Redis of the cluster [default: redis://127.0.0.1:6379/]
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,
    /// The channel broker of the cluster [default: 127.0.0.1:13005]
    #[arg(long, value_name = "HOST:PORT")]
    channel: Option<String>,
    /// The channel broker's token, where it has one
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// The name whoami reports [default: local; instance-N on redis and
    /// channel; business on gateway]
    #[arg(long, value_name = "NAME", value_parser = value::non_empty)]
    instance: Option<String>,
    /// The gateways' internal addresses, HOST:PORT separated by commas
    #[arg(long, value_name = "LIST")]
    gateway: Option<String>,
    /// The secret the gateways were started with
    #[arg(long, value_name = "S")]
    secret: Option<String>,
    /// Runtime and server settings from a TOML or JSON file (below)
    #[arg(long, value_name = "FILE")]
    config: Option<String>,
    /// Serve wss://: the certificate chain, PEM (with --tls-key; a build with the tls
    /// feature)
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<String>,
    /// Serve wss://: the private key, PEM (with --tls-cert)
    #[arg(long, value_name = "FILE")]
    tls_key: Option<String>,
    /// Compress messages for the clients that offer permessage-deflate (RFC 7692)
    #[arg(long)]
    deflate: bool,
    /// Keep a closed connection's flag context (data, groups) this long for restore
    /// [default: 0, off]
    #[arg(long, value_name = "MS")]
    keep_ms: Option<u64>,
    /// Keep the last N messages of every group and flag, for recover [default: 0, off]
    #[arg(long, value_name = "N")]
    history: Option<usize>,
}

/// The help `--help` prints.
pub fn usage() -> String {
    cli::help::<Flags>()
}

/// The usage line printed after a bad argument.
pub fn short_usage() -> String {
    cli::usage::<Flags>()
}

/// Parses the arguments after the program name. `--flag value` and `--flag=value` both work.
/// A backend this build cannot run is an error, like an unknown flag, and so is a
/// `--config` file that cannot be read or holds a wrong key or value.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let Some(flags) = cli::parse::<Flags, _, _>(args)? else {
        return Ok(Cli::Help);
    };
    let mut opts = Options::default();
    let mut named = false;
    if let Some(path) = &flags.config {
        let file = ConfigFile::load(path).map_err(|e| format!("--config: {e}"))?;
        named = from_file(&mut opts, &file)?;
        opts.config = Some(path.clone());
    }
    // --port, --host or --tls-cert given: refused on the gateway backend, which holds no
    // client port.
    let listening = match (&flags.port, &flags.host, &flags.tls_cert) {
        (Some(_), _, _) => Some("--port"),
        (None, Some(_), _) => Some("--host"),
        (None, None, Some(_)) => Some("--tls-cert"),
        (None, None, None) => None,
    };
    if flags.tls_cert.is_some() != flags.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".to_owned());
    }
    if flags.tls_cert.is_some() && !cfg!(feature = "tls") {
        return Err("--tls-cert needs a build with the tls feature".to_owned());
    }
    overlay(&mut opts.port, flags.port);
    overlay(&mut opts.host, flags.host);
    overlay(&mut opts.workers, flags.workers);
    overlay(&mut opts.backend, flags.backend);
    opts.deflate |= flags.deflate;
    if flags.keep_ms.is_some() {
        opts.keep_ms = flags.keep_ms;
    }
    overlay(&mut opts.history, flags.history);
    for (slot, flag) in [
        (&mut opts.redis_url, flags.redis_url),
        (&mut opts.channel, flags.channel),
        (&mut opts.token, flags.token),
        (&mut opts.gateway, flags.gateway),
        (&mut opts.secret, flags.secret),
        (&mut opts.tls_cert, flags.tls_cert),
        (&mut opts.tls_key, flags.tls_key),
    ] {
        if flag.is_some() {
            *slot = flag;
        }
    }
    if let Some(instance) = flags.instance {
        opts.instance = instance;
        named = true;
    }
    if !super::available(opts.backend) {
        return Err(super::unsupported(opts.backend));
    }
    if opts.backend == Backend::Gateway {
        if let Some(flag) = listening {
            return Err(format!(
                "{flag} does not go with --backend gateway: a business process holds no client \
                 port (clients connect to a gateway)"
            ));
        }
        if gateways(&opts).is_empty() {
            return Err("--backend gateway needs --gateway HOST:PORT[,HOST:PORT...]".to_owned());
        }
        if opts.secret.as_deref().is_none_or(str::is_empty) {
            return Err("--backend gateway needs --secret (the gateways' secret)".to_owned());
        }
        if !named {
            opts.instance = BUSINESS.to_owned();
        }
    } else if opts.backend != Backend::Local && !named {
        opts.instance = String::new();
    }
    Ok(Cli::Run(opts))
}

/// The gateways' internal addresses `--gateway` names.
pub fn gateways(opts: &Options) -> Vec<String> {
    opts.gateway
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The demo's server in a configuration file: its one `[servers.NAME]`, or
/// `[servers.push_demo]` among several; `None` when it has none.
pub fn file_server(file: &ConfigFile) -> Result<Option<ServerConfig>, String> {
    let server = match file.servers.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        _ => file.server(SERVER).map_err(|_| {
            format!(
                "--config: {} has several servers and none named {SERVER:?}",
                file.origin
            )
        })?,
    };
    if server.protocol != Protocol::WebSocket {
        return Err(format!(
            "--config: {}: servers.{}.protocol: push_demo speaks \"websocket\" only",
            file.origin, server.name
        ));
    }
    Ok(Some(server))
}

/// Takes what the flags also say from the file: the workers, the address, the backend and
/// its address, token, gateways, secret and name. Whether the file named the instance.
fn from_file(opts: &mut Options, file: &ConfigFile) -> Result<bool, String> {
    opts.workers = file.runtime.workers;
    let Some(server) = file_server(file)? else {
        return Ok(false);
    };
    if server.listen {
        opts.host = host_of(server.addr);
        opts.port = server.addr.port();
    }
    let name = match &server.backend {
        BackendConfig::Local => {
            opts.backend = Backend::Local;
            None
        }
        #[cfg(feature = "redis")]
        BackendConfig::Redis(redis) => {
            opts.backend = Backend::Redis;
            opts.redis_url = Some(redis.url.clone());
            redis.name.clone()
        }
        BackendConfig::Channel(channel) => {
            opts.backend = Backend::Channel;
            opts.channel = Some(channel.addr.clone());
            opts.token = channel.token.clone();
            channel.name.clone()
        }
        BackendConfig::Gateway(gateway) => {
            opts.backend = Backend::Gateway;
            opts.gateway = Some(gateway.gateways.join(","));
            opts.secret = Some(gateway.secret.clone());
            gateway.name.clone()
        }
        other => {
            return Err(format!(
                "--config: push_demo cannot run the {other:?} backend"
            ));
        }
    };
    Ok(match name {
        Some(name) => {
            opts.instance = name;
            true
        }
        None => false,
    })
}

/// An address's host as `--host` takes it (an IPv6 one without brackets).
fn host_of(addr: SocketAddr) -> String {
    addr.ip().to_string()
}

fn overlay<T>(slot: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *slot = value;
    }
}
