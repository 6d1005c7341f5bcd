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
//! # From a file
//!
//! `--config FILE` takes the runtime and server settings from a TOML or JSON file
//! (`corepush::ConfigFile`): its `[runtime]`, and its one `[servers.NAME]` (or
//! `[servers.push_demo]`), address, limits and backend included. `COREPUSH_*` variables win
//! over the file and the flags over both (`push_demo/cli.rs` says which flag sets which key).
//!
//! ```text
//! cargo run --example push_demo -- --config demo.toml --workers 2
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
    Answer, BackendConfig, ConfigFile, Context, Error, Handler, Message, Raw, Runtime,
    ServerConfig, WorkerContext, WorkerMessage,
};
use serde_json::{Value, json};

#[path = "push_demo/args.rs"]
mod args;
#[path = "common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
mod cli;
#[path = "push_demo/cli.rs"]
mod command_line;
#[path = "push_demo/history.rs"]
mod history;
#[path = "push_demo/ops.rs"]
mod ops;
#[path = "push_demo/pool.rs"]
mod pool;
#[path = "push_demo/restore.rs"]
mod restore;

use args::Args;
pub use command_line::{
    Backend, Cli, Options, file_server, gateways, parse_args, short_usage, usage,
};
use ops::{Failure, alone, facade_op};
use pool::{Job, Pool};

/// The name of the demo's one server.
pub const SERVER: &str = "push_demo";

/// The Redis of a cluster when `--redis-url` is not given.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379/";

/// The channel broker of a cluster when `--channel` is not given.
pub const CHANNEL: &str = "127.0.0.1:13005";

/// The name `whoami` reports on the gateway backend when `--instance` is not given.
pub const BUSINESS: &str = "business";

/// How long a business process waits to be linked to every gateway before it says which are
/// missing (it goes on trying them in the background).
pub const LINK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    // With --config, the file's runtime and server settings, under what the options say.
    let file = opts.config.as_deref().map(ConfigFile::load).transpose()?;
    let (runtime, server) = match &file {
        Some(file) => (
            file.runtime.clone(),
            file_server(file).map_err(Error::Config)?,
        ),
        None => (corepush::RuntimeConfig::default(), None),
    };
    let mut server = server.unwrap_or_else(|| ServerConfig::websocket(SERVER, addr));
    server.name = SERVER.to_owned();
    server.addr = addr;
    if opts.deflate && server.permessage_deflate.is_none() {
        server = server.permessage_deflate(corepush::DeflateConfig::default());
    }
    if let Some(ms) = opts.keep_ms {
        server = server.keep_context(std::time::Duration::from_millis(ms));
    }
    if opts.history > 0 {
        server.history = corepush::HistoryConfig::everything(opts.history);
    }
    let backend = backend_config(opts, &server.backend);
    let spec = with_tls(server.listen(!gateway).backend(backend), opts)?
        .handler(move |_| Demo {
            instance: instance.clone(),
            cluster,
            pool: pool.clone(),
            behind_gateways: gateway,
        })
        .action("pushLocal", push_local);
    Runtime::builder()
        .config(runtime)
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
            println!("{}", usage());
            return 0;
        }
        Err(e) => {
            eprintln!("push_demo: {e}\n{}", short_usage());
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

pub(crate) fn available(backend: Backend) -> bool {
    match backend {
        Backend::Local => true,
        Backend::Redis => cfg!(feature = "redis"),
        Backend::Channel => true,
        Backend::Gateway => true,
    }
}

/// The backend the options name, over the file's settings of the same backend (its prefix,
/// timeouts) where it gives that one.
fn backend_config(opts: &Options, file: &BackendConfig) -> BackendConfig {
    match opts.backend {
        #[cfg(feature = "redis")]
        Backend::Redis => {
            let url = opts.redis_url.as_deref().unwrap_or(REDIS_URL);
            let mut redis = match file {
                BackendConfig::Redis(redis) => redis.clone(),
                _ => corepush::RedisConfig::default(),
            }
            .url(url);
            if !opts.instance.is_empty() {
                redis = redis.name(opts.instance.as_str());
            }
            BackendConfig::Redis(redis)
        }
        Backend::Channel => {
            let addr = opts.channel.as_deref().unwrap_or(CHANNEL);
            let mut channel = match file {
                BackendConfig::Channel(channel) => channel.clone(),
                _ => corepush::ChannelBackendConfig::default(),
            }
            .addr(addr);
            channel.token = opts.token.clone();
            if !opts.instance.is_empty() {
                channel = channel.name(opts.instance.as_str());
            }
            BackendConfig::Channel(channel)
        }
        Backend::Gateway => {
            let secret = opts.secret.as_deref().unwrap_or("");
            let mut config = corepush::GatewayBackendConfig::new(gateways(opts), secret);
            if let BackendConfig::Gateway(from_file) = file {
                config = config
                    .query_timeout(from_file.query_timeout)
                    .connect_timeout(from_file.connect_timeout);
            }
            BackendConfig::Gateway(config.name(opts.instance.as_str()))
        }
        _ => BackendConfig::Local,
    }
}

pub(crate) fn unsupported(backend: Backend) -> String {
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
    count groupCount sendMessage sendMessageRaw restore recover";
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
        let Value::Object(mut map) = request else {
            return Some(reply(
                Value::Null,
                Err("a request must be a JSON object".to_owned()),
            ));
        };
        let id = map.get("id").cloned().unwrap_or(Value::Null);
        let outcome = self.op(ctx, &Args(&map));
        match (outcome, &self.pool) {
            (Err(Failure::WouldBlock), Some(pool)) => {
                // The pool's `restore` restores into the connection that asked.
                if map.get("op").and_then(Value::as_str) == Some("restore") {
                    map.insert("to".to_owned(), ctx.client_id().to_string().into());
                }
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
        if let Some(outcome) = history::history_op(a, ctx.server(), me) {
            return outcome;
        }
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
            "restore" => restore::op(ctx.server(), me, a.str("flag")?),
            _ => facade_op(a, &a.facade(ctx)?, self.cluster),
        }
    }
}
