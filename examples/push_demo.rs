//! push_demo: every method of the push facade, driven over a WebSocket with JSON commands.
//!
//! The protocol is specified in `PUSH_DEMO_PROTOCOL.md`: one JSON object per text frame,
//! `{"op": NAME, ...arguments, "id": ANY}`, answered by `{"op": "reply", "id": ID, "result": …}`
//! or `{"op": "reply", "id": ID, "error": "…"}`. Pushes arrive as their own frames.
//!
//! Details the protocol leaves open, as this server settles them:
//!
//! * Client ids are decimal strings only. A JSON number is refused, because a JavaScript
//!   client would already have rounded any id past 2^53 and the push would go to a stranger.
//! * An optional argument that is `null` counts as absent. A missing `id` is echoed as `null`.
//! * `scope` (only `"worker"`) is taken by the send and close ops, `except` by the sends to
//!   flags, groups and everyone; on any other op either argument is an error, not ignored.
//! * `unbind` and `leave` answer false when the connection did not hold that flag or group.
//! * `set` on an id that is not connected answers false; `get` answers null.
//! * `wait` (a boolean, on the send and close ops) asks for the counted, cluster-wide form;
//!   on the local backend it answers the same count as without it.
//!
//! # On a cluster backend
//!
//! With `--backend redis` the process is one instance of a cluster; `--redis-url` names the
//! Redis, `--instance` the name `whoami` reports (by default `instance-N`, N being the
//! instance number claimed in Redis at start — the lowest free one). With `--backend channel`
//! it is the same over a channel broker (`examples/channel_server.rs`): `--channel` names the
//! broker, `--token` its token where it has one, and the broker assigns the instance number.
//!
//! A core loop never waits for other instances: a cluster call that would, fails there with
//! `Error::WouldBlock` before it sends anything. Each op first runs on the core loop that
//! received it; one that meets `WouldBlock` (the cluster-wide queries, `get` / `set` on another
//! instance's client, the `wait` forms) is handed to a pool of two threads of the demo's own,
//! which makes the call and then pushes the reply to the client (`Server::send_raw`). One
//! thread makes both, so a push the op makes to the sender still arrives before the reply.
//! Such a reply may overtake the replies of ops the client sent after it: a client that
//! sends the next op before the last reply came matches replies by `id`.
//!
//! There a fire-and-forget send answers how many connections it was queued to on this
//! instance; `wait` gives the cluster's count, `"partial": true` beside the result when not
//! every instance answered in time. `sendMessage` reaches this instance's core loops only.
//!
//! # Behind gateways
//!
//! With `--backend gateway` the process is a business process: it holds no client port
//! (`--port` and `--host` are refused), links to the gateways `--gateway` names
//! (`examples/gateway.rs`, their internal addresses) with their `--secret`, and prints
//! `connected to N gateway(s)` once linked to all of them (after at most [`LINK_WAIT`] it
//! prints how many it has, says on stderr which are missing, and serves on). Clients connect
//! to a gateway. Its core loops hold no connections, so they may wait for the gateways: every
//! op runs on the core loop that received it, and there is no pool. A fire-and-forget send
//! answers 0 (the business process holds none of the clients it reaches); `wait` gives the
//! count. `whoami`'s `instance` is this process's `--instance` (default `business`), the one
//! that served the op. A connection's own data (`set` / `get` without `to`) is kept on its
//! gateway, as with a `to`, so that it outlives a restart of the business process.
//!
//! ```text
//! cargo run --example push_demo -- --port 8080 --workers 2
//! cargo run --example push_demo -- --port 8081 --backend redis --instance eu-1
//! cargo run --example push_demo -- --port 8082 --backend channel --channel 127.0.0.1:13005
//! cargo run --example gateway -- --port 8083 --internal-port 9083 --secret s3cret
//! cargo run --example push_demo -- --backend gateway --gateway 127.0.0.1:9083 \
//!     --secret s3cret --instance biz-1
//! ```

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use corepush::{
    Answer, BackendConfig, Context, Error, Handler, MAX_WORKERS, Message, Raw, Runtime,
    ServerConfig, WorkerContext, WorkerMessage,
};
use serde_json::{Value, json};

#[path = "push_demo/args.rs"]
mod args;
#[path = "push_demo/ops.rs"]
mod ops;
#[path = "push_demo/pool.rs"]
mod pool;

use args::Args;
use ops::{Failure, alone, facade_op};
use pool::{Job, Pool};

/// The name of the demo's one server.
pub const SERVER: &str = "push_demo";

/// The command-line help.
pub const USAGE: &str = "usage: push_demo [--port 8080] [--host 127.0.0.1] [--workers N]
    [--backend local|redis|channel|gateway] [--redis-url URL] [--channel HOST:PORT]
    [--token T] [--instance NAME] [--gateway HOST:PORT[,HOST:PORT...]] [--secret S]
    [--tls-cert FILE --tls-key FILE] [--help]

  --backend redis     one instance of a cluster on Redis
  --backend channel   one instance of a cluster on a channel broker
  --backend gateway   a business process behind gateways (examples/gateway.rs), which hold
                      the clients: needs --gateway and --secret; takes no --port or --host
  --redis-url URL     the Redis of the cluster (default redis://127.0.0.1:6379/)
  --channel HOST:PORT the channel broker of the cluster (default 127.0.0.1:13005)
  --token T           the channel broker's token, where it has one
  --gateway LIST      the gateways' internal addresses, HOST:PORT separated by commas
  --secret S          the secret the gateways were started with
  --tls-cert FILE     serve wss://: the certificate chain (PEM; with --tls-key; a build with
  --tls-key FILE      the tls feature)
  --instance NAME     the name whoami reports (default: local; on a cluster instance-N, N
                      being the instance number claimed in Redis or assigned by the broker;
                      on the gateway backend: business)";

/// The Redis of a cluster when `--redis-url` is not given.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// The channel broker of a cluster when `--channel` is not given.
pub const CHANNEL: &str = "127.0.0.1:13005";

/// The name `whoami` reports on the gateway backend when `--instance` is not given.
pub const BUSINESS: &str = "business";

/// How long a business process waits to be linked to every gateway before it says which are
/// missing (it goes on trying them in the background).
pub const LINK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The flags that take a value.
const FLAGS: &str = "--port --host --workers --backend --redis-url --channel --token --instance \
    --gateway --secret --tls-cert --tls-key";

/// Which backend carries the pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// The command-line options.
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
    /// For the redis backend; `None` is [`REDIS_URL`].
    pub redis_url: Option<String>,
    /// For the channel backend: the broker, `host:port`; `None` is [`CHANNEL`].
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
    /// Serve `wss://`: the certificate chain's PEM file (with `tls_key`).
    pub tls_cert: Option<String>,
    /// Serve `wss://`: the private key's PEM file (with `tls_cert`).
    pub tls_key: Option<String>,
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
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // made once at start: boxing the options would gain nothing
pub enum Cli {
    /// Run the server.
    Run(Options),
    /// Print the usage and exit.
    Help,
}

/// Parses the arguments after the program name. `--flag value` and `--flag=value` both work.
/// A backend this build cannot run is an error, like an unknown flag.
pub fn parse_args<I, S>(args: I) -> Result<Cli, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut opts = Options::default();
    let mut named = false;
    // --port or --host given: refused on the gateway backend, which holds no client port.
    let mut listening = None;
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
        if flag == "--port" || flag == "--host" || flag == "--tls-cert" {
            listening = Some(flag.clone());
        }
        match flag.as_str() {
            "--port" => {
                opts.port = value
                    .parse()
                    .map_err(|_| format!("--port expects a port number 0-65535, not {value:?}"))?
            }
            "--host" if value.is_empty() => return Err("--host must not be empty".to_owned()),
            "--host" => opts.host = value,
            "--workers" => {
                opts.workers = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_WORKERS).contains(n))
                    .ok_or_else(|| {
                        format!("--workers expects a number from 1 to {MAX_WORKERS}, not {value:?}")
                    })?
            }
            "--backend" => {
                opts.backend = match value.as_str() {
                    "local" => Backend::Local,
                    "redis" => Backend::Redis,
                    "channel" => Backend::Channel,
                    "gateway" => Backend::Gateway,
                    _ => {
                        return Err(format!(
                            "--backend expects local, redis, channel or gateway, not {value:?}"
                        ));
                    }
                }
            }
            "--redis-url" => opts.redis_url = Some(value),
            "--channel" => opts.channel = Some(value),
            "--token" => opts.token = Some(value),
            "--instance" if value.is_empty() => {
                return Err("--instance must not be empty".to_owned());
            }
            "--instance" => {
                opts.instance = value;
                named = true;
            }
            "--gateway" => opts.gateway = Some(value),
            "--tls-cert" => opts.tls_cert = Some(value),
            "--tls-key" => opts.tls_key = Some(value),
            _ => opts.secret = Some(value),
        }
    }
    if opts.tls_cert.is_some() != opts.tls_key.is_some() {
        return Err("--tls-cert and --tls-key go together".to_owned());
    }
    if opts.tls_cert.is_some() && !cfg!(feature = "tls") {
        return Err("--tls-cert needs a build with the tls feature".to_owned());
    }
    if !available(opts.backend) {
        return Err(unsupported(opts.backend));
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

/// Starts the demo server: listening and accepting when this returns. On a cluster backend
/// it has joined the cluster (claiming the lowest free instance number); an unreachable
/// engine is an error. On the gateway backend it listens for nothing: it has linked to the
/// gateways that could be reached (a wrong secret is [`Error::Config`], none reachable
/// [`Error::Backend`]), and goes on trying the others in the background.
pub fn build(opts: &Options) -> corepush::Result<Runtime> {
    if !available(opts.backend) {
        return Err(Error::Config(unsupported(opts.backend)));
    }
    let gateway = opts.backend == Backend::Gateway;
    // A business process listens nowhere; the address is not used.
    let addr = if gateway {
        SocketAddr::from(([127, 0, 0, 1], 0))
    } else {
        resolve(&opts.host, opts.port)?
    };
    let instance: Option<Arc<str>> =
        (!opts.instance.is_empty()).then(|| opts.instance.as_str().into());
    // A business process's core loops may wait for the gateways (they hold no connections):
    // its ops need no pool. The pool's threads end once the runtime has dropped the handlers,
    // which hold its sender.
    let cluster = opts.backend != Backend::Local;
    let pool = (cluster && !gateway).then(|| Pool::start(POOL_THREADS));
    let config = ServerConfig::websocket(SERVER, addr)
        .listen(!gateway)
        .backend(backend_config(opts));
    let spec = with_tls(config, opts)?
        .handler(move |_| Demo {
            instance: instance.clone(),
            cluster,
            pool: pool.clone(),
            behind_gateways: gateway,
        })
        .action("pushLocal", push_local);
    Runtime::builder()
        .workers(opts.workers)
        .server(spec)
        .start()
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
            eprintln!("push_demo: {e}\n{USAGE}");
            return 2;
        }
    };
    let runtime = match build(&opts) {
        Ok(rt) => rt,
        Err(e @ Error::Backend(_)) if opts.backend == Backend::Redis => {
            let url = opts.redis_url.as_deref().unwrap_or(REDIS_URL);
            eprintln!("push_demo: cannot start: {e} (Redis at {url})");
            return 1;
        }
        Err(e @ (Error::Backend(_) | Error::Config(_))) if opts.backend == Backend::Channel => {
            let addr = opts.channel.as_deref().unwrap_or(CHANNEL);
            eprintln!("push_demo: cannot start: {e} (channel broker at {addr})");
            return 1;
        }
        Err(e @ (Error::Backend(_) | Error::Config(_))) if opts.backend == Backend::Gateway => {
            let list = gateways(&opts).join(", ");
            eprintln!("push_demo: cannot start: {e} (gateways at {list})");
            return 1;
        }
        Err(e) => {
            eprintln!("push_demo: cannot start: {e}");
            return 1;
        }
    };
    let (workers, backend) = (runtime.workers(), opts.backend.name());
    if opts.backend == Backend::Gateway {
        let wanted = gateways(&opts).len();
        let linked = wait_for_gateways(&runtime, wanted);
        if linked < wanted {
            eprintln!(
                "push_demo: linked to {linked} of {wanted} gateway(s) within {LINK_WAIT:?}; \
                 the others are tried again in the background"
            );
        }
        println!("connected to {linked} gateway(s) (workers={workers}, backend={backend})");
        let _ = std::io::stdout().flush();
    } else if let Some(addr) = runtime.local_addr(SERVER) {
        let scheme = if opts.tls_cert.is_some() { "wss" } else { "ws" };
        println!("listening on {scheme}://{addr}/ (workers={workers}, backend={backend})");
        let _ = std::io::stdout().flush();
    }
    match runtime.run() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("push_demo: {e}");
            1
        }
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    std::process::exit(serve(std::env::args().skip(1)));
}

/// Waits (at most [`LINK_WAIT`]) until the business process is linked to `wanted` gateways;
/// how many it is linked to. The gateways are the live instances other than this process's
/// own number 0.
fn wait_for_gateways(runtime: &Runtime, wanted: usize) -> usize {
    let Some(server) = runtime.server(SERVER) else {
        return 0;
    };
    let linked = || {
        server
            .cluster()
            .instances()
            .iter()
            .filter(|&&n| n != 0)
            .count()
    };
    let deadline = std::time::Instant::now() + LINK_WAIT;
    while linked() < wanted && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    linked()
}

/// Threads that make the calls which wait for other instances.
const POOL_THREADS: usize = 2;

/// Whether this build runs the backend.
/// The server with `--tls-cert` and `--tls-key`, where given.
#[cfg(feature = "tls")]
fn with_tls(config: ServerConfig, opts: &Options) -> corepush::Result<ServerConfig> {
    match (&opts.tls_cert, &opts.tls_key) {
        (Some(cert), Some(key)) => Ok(config.tls(corepush::TlsConfig::from_pem_files(cert, key)?)),
        _ => Ok(config),
    }
}

#[cfg(not(feature = "tls"))]
fn with_tls(config: ServerConfig, opts: &Options) -> corepush::Result<ServerConfig> {
    match opts.tls_cert {
        Some(_) => Err(Error::Config(
            "--tls-cert needs a build with the tls feature".to_owned(),
        )),
        None => Ok(config),
    }
}

fn available(backend: Backend) -> bool {
    match backend {
        Backend::Local => true,
        Backend::Redis => cfg!(feature = "redis"),
        Backend::Channel => true,
        Backend::Gateway => true,
    }
}

fn backend_config(opts: &Options) -> BackendConfig {
    match opts.backend {
        #[cfg(feature = "redis")]
        Backend::Redis => {
            let url = opts.redis_url.as_deref().unwrap_or(REDIS_URL);
            let mut redis = corepush::RedisConfig::default().url(url);
            if !opts.instance.is_empty() {
                redis = redis.name(opts.instance.as_str());
            }
            BackendConfig::Redis(redis)
        }
        Backend::Channel => {
            let addr = opts.channel.as_deref().unwrap_or(CHANNEL);
            let mut channel = corepush::ChannelBackendConfig::default().addr(addr);
            if let Some(token) = &opts.token {
                channel = channel.token(token.as_str());
            }
            if !opts.instance.is_empty() {
                channel = channel.name(opts.instance.as_str());
            }
            BackendConfig::Channel(channel)
        }
        Backend::Gateway => {
            let secret = opts.secret.as_deref().unwrap_or("");
            BackendConfig::Gateway(
                corepush::GatewayBackendConfig::new(gateways(opts), secret)
                    .name(opts.instance.as_str()),
            )
        }
        _ => BackendConfig::Local,
    }
}

fn unsupported(backend: Backend) -> String {
    format!(
        "backend {} is not available in this build yet",
        backend.name()
    )
}

fn resolve(host: &str, port: u16) -> corepush::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| Error::Config(format!("{host:?} resolves to no address")))
}

/// The handler of one core loop.
struct Demo {
    /// The name `whoami` reports; `None`: `instance-N`, N being this instance's number.
    instance: Option<Arc<str>>,
    /// On a cluster backend (the gateway one included): the queries answer for the cluster.
    cluster: bool,
    /// On the Redis and Channel backends: the threads that make the calls a core loop may not
    /// wait for.
    pool: Option<Pool>,
    /// A business process behind gateways: a connection's own data is kept on its gateway.
    behind_gateways: bool,
}

impl Handler for Demo {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let reply = match message {
            Message::Text(text) => self.request(ctx, text),
            Message::Binary(_) => Some(reply(
                Value::Null,
                Err("binary frames are not accepted: send a JSON object as text".to_owned()),
            )),
        };
        // None: a pool thread answers.
        let Some(reply) = reply else { return };
        if let Err(e) = ctx.send(&reply) {
            log::warn!("reply to {} failed: {e}", ctx.client_id());
        }
    }

    fn on_worker_message_raw(&mut self, ctx: &mut WorkerContext<'_>, data: &[u8]) {
        let raw = match std::str::from_utf8(data) {
            Ok(text) => Raw::text(text),
            Err(_) => Raw::binary(data),
        };
        if let Err(e) = ctx.this_worker().send_raw_to_all(raw) {
            log::warn!("core loop {}: raw worker message: {e}", ctx.worker());
        }
    }
}

/// The `pushLocal` action: the data, to this core loop's own connections.
fn push_local(_: &mut Demo, ctx: &mut WorkerContext<'_>, message: &WorkerMessage<'_>) {
    let pushed = message
        .decode::<Value>()
        .and_then(|data| ctx.this_worker().send_to_all(&data));
    if let Err(e) = pushed {
        log::warn!("core loop {}: pushLocal: {e}", ctx.worker());
    }
}

/// The reply to a request: its `result` (with `"partial": true` when not every instance
/// answered in time), or its `error`.
fn reply(id: Value, outcome: Result<Answer<Value>, String>) -> Value {
    match outcome {
        Ok(Answer {
            value,
            complete: true,
        }) => json!({"op": "reply", "id": id, "result": value}),
        Ok(Answer { value, .. }) => {
            json!({"op": "reply", "id": id, "result": value, "partial": true})
        }
        Err(error) => json!({"op": "reply", "id": id, "error": error}),
    }
}

/// Ops that take neither `scope`, `except` nor `wait`.
const PLAIN: &str = "whoami bind bindNx unbind set get join leave exists flagExists connections \
    count groupCount sendMessage sendMessageRaw";
/// Ops that take `scope`, and those that take `except` too; all of them take `wait`.
const SCOPED: &[&str] = &["send", "sendRaw", "close", "closeByFlag"];
const EXCEPTING: &[&str] = &[
    "sendByFlag",
    "sendRawByFlag",
    "sendToAll",
    "sendRawToAll",
    "sendToGroup",
    "sendRawToGroup",
];

impl Demo {
    /// The reply to one text frame; `None` when a pool thread sends it.
    fn request(&self, ctx: &mut Context<'_>, text: &str) -> Option<Value> {
        let request: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Some(reply(Value::Null, Err(format!("unparseable JSON: {e}")))),
        };
        let Value::Object(map) = request else {
            return Some(reply(
                Value::Null,
                Err("a request must be a JSON object".to_owned()),
            ));
        };
        let id = map.get("id").cloned().unwrap_or(Value::Null);
        let outcome = self.op(ctx, &Args(&map));
        match (outcome, &self.pool) {
            (Err(Failure::WouldBlock), Some(pool)) => {
                let server = match Args(&map).facade(ctx) {
                    Ok(server) => server,
                    Err(e) => return Some(reply(id, Err(e))),
                };
                let job = Job {
                    server,
                    replies: ctx.server().clone(),
                    client: ctx.client_id(),
                    id: id.clone(),
                    request: map,
                };
                pool.submit(job).err().map(|e| reply(id, Err(e)))
            }
            (outcome, _) => Some(reply(id, outcome.map_err(Failure::text))),
        }
    }

    fn op(&self, ctx: &mut Context<'_>, a: &Args<'_>) -> Result<Answer<Value>, Failure> {
        let op = a.str("op")?;
        let excepting = EXCEPTING.contains(&op);
        let scoped = excepting || SCOPED.contains(&op);
        if !scoped && !PLAIN.split(' ').any(|o| o == op) {
            return Err(format!("unknown op {op:?}").into());
        }
        for (key, allowed) in [("scope", scoped), ("except", excepting), ("wait", scoped)] {
            if !allowed && a.opt(key).is_some() {
                return Err(format!("{op} does not take {key}").into());
            }
        }
        let me = ctx.client_id();
        let done = |value: Value| Ok(alone(value));
        // `to` absent or naming this connection: its own data, through the context.
        let own = || a.opt_id("to").map(|to| to.is_none_or(|to| to == me));
        match op {
            "whoami" => done(json!({
                "clientId": me.to_string(),
                "worker": ctx.worker().index(),
                "instance": match &self.instance {
                    Some(name) => name.to_string(),
                    None => format!("instance-{}", me.instance()),
                },
            })),
            "bind" => {
                ctx.bind(a.str("flag")?);
                done(true.into())
            }
            "bindNx" => done(ctx.bind_nx(a.str("flag")?).into()),
            "unbind" => {
                let flag = a.str("flag")?;
                let held = ctx.flag().is_some_and(|f| f == flag);
                if held {
                    ctx.unbind();
                }
                done(held.into())
            }
            // Behind gateways, on the gateway that holds the connection (as `set` with a `to`
            // does), so that every op sees the same data and a business restart keeps it.
            "set" if own()? && self.behind_gateways => {
                let (key, value) = (a.str("key")?, a.value("value")?);
                let stored = ctx.server().cluster().set_data(me, key, value);
                stored.map_err(|e| e.to_string().into()).map(|a| Answer {
                    value: a.value.into(),
                    complete: a.complete,
                })
            }
            "get" if own()? && self.behind_gateways => {
                let read = ctx.server().cluster().data::<Value>(me, a.str("key")?);
                read.map_err(|e| e.to_string().into()).map(|a| Answer {
                    value: a.value.unwrap_or(Value::Null),
                    complete: a.complete,
                })
            }
            "set" if own()? => {
                let (key, value) = (a.str("key")?, a.value("value")?.clone());
                ctx.set(key, value);
                done(true.into())
            }
            "get" if own()? => done(ctx.get::<Value>(a.str("key")?).unwrap_or(Value::Null)),
            "join" => {
                ctx.join(a.str("group")?);
                done(true.into())
            }
            "leave" => done(ctx.leave(a.str("group")?).into()),
            _ => facade_op(a, &a.facade(ctx)?, self.cluster),
        }
    }
}
