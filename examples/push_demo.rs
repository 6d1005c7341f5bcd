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
//!
//! ```text
//! cargo run --example push_demo -- --port 8080 --workers 2
//! ```

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use corepush::{
    ClientId, Context, Error, Handler, MAX_WORKERS, Message, Raw, Runtime, Server, ServerConfig,
    WorkerContext, WorkerId, WorkerMessage, Workers,
};
use serde_json::{Map, Value, json};

/// The name of the demo's one server.
pub const SERVER: &str = "push_demo";

/// The command-line help.
pub const USAGE: &str = "usage: push_demo [--port 8080] [--host 127.0.0.1] [--workers N]
    [--backend local|redis|channel|gateway] [--redis-url URL] [--channel HOST:PORT]
    [--instance NAME] [--gateway HOST:PORT[,HOST:PORT...]] [--secret S] [--help]";

/// The flags that take a value.
const FLAGS: &str =
    "--port --host --workers --backend --redis-url --channel --instance --gateway --secret";

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
    /// For the redis backend.
    pub redis_url: Option<String>,
    /// For the channel backend.
    pub channel: Option<String>,
    /// The name `whoami` reports. Defaults to "local".
    pub instance: String,
    /// For the gateway backend.
    pub gateway: Option<String>,
    /// For the gateway backend.
    pub secret: Option<String>,
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
            instance: "local".to_owned(),
            gateway: None,
            secret: None,
        }
    }
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
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
            "--instance" => opts.instance = value,
            "--gateway" => opts.gateway = Some(value),
            _ => opts.secret = Some(value),
        }
    }
    if opts.backend != Backend::Local {
        return Err(unsupported(opts.backend));
    }
    Ok(Cli::Run(opts))
}

/// Starts the demo server: listening and accepting when this returns.
pub fn build(opts: &Options) -> corepush::Result<Runtime> {
    if opts.backend != Backend::Local {
        return Err(Error::Config(unsupported(opts.backend)));
    }
    let addr = resolve(&opts.host, opts.port)?;
    let instance: Arc<str> = opts.instance.as_str().into();
    let spec = ServerConfig::websocket(SERVER, addr)
        .handler(move |_| Demo {
            instance: instance.clone(),
        })
        .action("pushLocal", push_local);
    Runtime::builder()
        .workers(opts.workers)
        .server(spec)
        .start()
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(Cli::Run(opts)) => opts,
        Ok(Cli::Help) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("push_demo: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = match build(&opts) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("push_demo: cannot start: {e}");
            std::process::exit(1);
        }
    };
    if let Some(addr) = runtime.local_addr(SERVER) {
        let (workers, backend) = (runtime.workers(), opts.backend.name());
        println!("listening on ws://{addr}/ (workers={workers}, backend={backend})");
        let _ = std::io::stdout().flush();
    }
    if let Err(e) = runtime.run() {
        eprintln!("push_demo: {e}");
        std::process::exit(1);
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
    instance: Arc<str>,
}

impl Handler for Demo {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let reply = match message {
            Message::Text(text) => self.request(ctx, text),
            Message::Binary(_) => reply(
                Value::Null,
                Err("binary frames are not accepted: send a JSON object as text".to_owned()),
            ),
        };
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

fn reply(id: Value, outcome: Result<Value, String>) -> Value {
    match outcome {
        Ok(result) => json!({"op": "reply", "id": id, "result": result}),
        Err(error) => json!({"op": "reply", "id": id, "error": error}),
    }
}

/// Ops that take neither `scope` nor `except`.
const PLAIN: &str = "whoami bind bindNx unbind set get join leave exists flagExists connections \
    count groupCount sendMessage sendMessageRaw";
/// Ops that take `scope`, and those that take `except` too.
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
    fn request(&self, ctx: &mut Context<'_>, text: &str) -> Value {
        let request: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return reply(Value::Null, Err(format!("unparseable JSON: {e}"))),
        };
        let Value::Object(map) = request else {
            return reply(
                Value::Null,
                Err("a request must be a JSON object".to_owned()),
            );
        };
        let id = map.get("id").cloned().unwrap_or(Value::Null);
        reply(id, self.op(ctx, &Args(&map)))
    }

    fn op(&self, ctx: &mut Context<'_>, a: &Args<'_>) -> Result<Value, String> {
        let op = a.str("op")?;
        let excepting = EXCEPTING.contains(&op);
        if !excepting && !SCOPED.contains(&op) && !PLAIN.split(' ').any(|o| o == op) {
            return Err(format!("unknown op {op:?}"));
        }
        for (key, allowed) in [
            ("scope", excepting || SCOPED.contains(&op)),
            ("except", excepting),
        ] {
            if !allowed && a.opt(key).is_some() {
                return Err(format!("{op} does not take {key}"));
            }
        }
        let count = |n: corepush::Result<usize>| n.map(Value::from).map_err(|e| e.to_string());
        let me = ctx.client_id();
        match op {
            "whoami" => Ok(json!({
                "clientId": me.to_string(),
                "worker": ctx.worker().index(),
                "instance": &*self.instance,
            })),
            "bind" => {
                ctx.bind(a.str("flag")?);
                Ok(true.into())
            }
            "bindNx" => Ok(ctx.bind_nx(a.str("flag")?).into()),
            "unbind" => {
                let flag = a.str("flag")?;
                let held = ctx.flag().is_some_and(|f| f == flag);
                if held {
                    ctx.unbind();
                }
                Ok(held.into())
            }
            "set" => {
                let (key, value) = (a.str("key")?, a.value("value")?.clone());
                match a.opt_id("to")? {
                    Some(to) if to != me => Ok(ctx.server().set_data(to, key, value).into()),
                    _ => {
                        ctx.set(key, value);
                        Ok(true.into())
                    }
                }
            }
            "get" => {
                let key = a.str("key")?;
                let value = match a.opt_id("to")? {
                    Some(to) if to != me => ctx.server().data::<Value>(to, key),
                    _ => ctx.get::<Value>(key),
                };
                Ok(value.unwrap_or(Value::Null))
            }
            "join" => {
                ctx.join(a.str("group")?);
                Ok(true.into())
            }
            "leave" => Ok(ctx.leave(a.str("group")?).into()),
            "send" => count(a.facade(ctx)?.send(a.value("data")?, a.ids("to")?)),
            "sendRaw" => count(a.facade(ctx)?.send_raw(a.str("text")?, a.ids("to")?)),
            "sendByFlag" => count(
                a.facade(ctx)?
                    .send_by_flag(a.value("data")?, a.names("flag")?),
            ),
            "sendRawByFlag" => count(
                a.facade(ctx)?
                    .send_raw_by_flag(a.str("text")?, a.names("flag")?),
            ),
            "sendToAll" => count(a.facade(ctx)?.send_to_all(a.value("data")?)),
            "sendRawToAll" => count(a.facade(ctx)?.send_raw_to_all(a.str("text")?)),
            "sendToGroup" => count(
                a.facade(ctx)?
                    .send_to_group(a.names("group")?, a.value("data")?),
            ),
            "sendRawToGroup" => count(
                a.facade(ctx)?
                    .send_raw_to_group(a.names("group")?, a.str("text")?),
            ),
            "close" => count(a.facade(ctx)?.close(a.ids("to")?)),
            "closeByFlag" => count(a.facade(ctx)?.close_by_flag(a.names("flag")?)),
            "exists" => Ok(ctx.server().exists(a.id("to")?).into()),
            "flagExists" => Ok(ctx.server().flag_exists(a.str("flag")?).into()),
            "connections" => {
                let ids = ctx.server().connections();
                Ok(ids.iter().map(|id| Value::from(id.to_string())).collect())
            }
            "count" => Ok(ctx.server().connection_count().into()),
            "groupCount" => Ok(ctx.server().group_count(a.str("group")?).into()),
            "sendMessage" => {
                let (action, data) = (a.str("action")?, a.value("data")?);
                count(ctx.server().send_message(action, data, a.workers()?))
            }
            "sendMessageRaw" => count(ctx.server().send_message_raw(a.str("text")?, a.workers()?)),
            other => Err(format!("unknown op {other:?}")),
        }
    }
}

/// The arguments of one request, read with error messages that name the argument.
struct Args<'a>(&'a Map<String, Value>);

impl Args<'_> {
    /// An optional argument: absent and `null` are the same.
    fn opt(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn value(&self, key: &str) -> Result<&Value, String> {
        self.0.get(key).ok_or_else(|| format!("missing {key}"))
    }

    fn str(&self, key: &str) -> Result<&str, String> {
        match self.opt(key) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(format!("{key} must be a string")),
            None => Err(format!("missing {key}")),
        }
    }

    /// One value or an array of values, each converted by `one`.
    fn many<T>(
        &self,
        key: &str,
        one: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        match self.opt(key) {
            Some(Value::Array(items)) => items.iter().map(one).collect(),
            Some(v) => one(v).map(|t| vec![t]),
            None => Err(format!("missing {key}")),
        }
    }

    fn ids(&self, key: &str) -> Result<Vec<ClientId>, String> {
        self.many(key, |v| client_id(key, v))
    }

    fn id(&self, key: &str) -> Result<ClientId, String> {
        client_id(key, self.opt(key).ok_or_else(|| format!("missing {key}"))?)
    }

    fn opt_id(&self, key: &str) -> Result<Option<ClientId>, String> {
        self.opt(key).map(|v| client_id(key, v)).transpose()
    }

    fn names(&self, key: &str) -> Result<Vec<String>, String> {
        self.many(key, |v| match v {
            Value::String(s) => Ok(s.clone()),
            _ => Err(format!("{key} must be a string or an array of strings")),
        })
    }

    fn workers(&self) -> Result<Workers, String> {
        if self.opt("workers").is_none() {
            return Ok(Workers::All);
        }
        let list = self.many("workers", |v| {
            v.as_u64()
                .and_then(|w| u16::try_from(w).ok())
                .map(WorkerId)
                .ok_or_else(|| "workers must be a core loop index or an array of them".to_owned())
        })?;
        Ok(Workers::Some(list))
    }

    /// The facade the op goes through: confined by `scope`, excluding `except`.
    fn facade(&self, ctx: &Context<'_>) -> Result<Server, String> {
        let mut server = match self.opt("scope") {
            None => ctx.server().clone(),
            Some(Value::String(s)) if s == "worker" => {
                ctx.server().this_worker().map_err(|e| e.to_string())?
            }
            Some(other) => return Err(format!("unknown scope {other} (only \"worker\")")),
        };
        if self.opt("except").is_some() {
            server = server.except(self.ids("except")?);
        }
        Ok(server)
    }
}

fn client_id(key: &str, value: &Value) -> Result<ClientId, String> {
    match value {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("{key}: {s:?} is not a client id (a non-zero decimal string)")),
        Value::Number(_) => Err(format!(
            "{key}: client ids are decimal strings, not JSON numbers (which lose precision)"
        )),
        _ => Err(format!(
            "{key} must be a client id string or an array of them"
        )),
    }
}
