//! One instance under test, as a child process: a runtime of `--workers` core loops with one
//! WebSocket server, on the Redis backend, the Channel one, the Gateway one (a business
//! process, holding no clients) or the Local one, serving the benchmark's own handler; or the
//! Channel backend's broker; or a gateway, which holds the clients and relays them to the
//! business process.
//!
//! The handler's protocol (text messages from the benchmark's clients):
//!
//! * `id` — answers with the connection's client id (decimal);
//! * `push:<id>:<payload>` — `server.send_raw(payload, id)`: the single push, to a client of
//!   this instance or of another one;
//! * `stamp:<id>:<payload>` — the same with ` @<ns>` after the payload: the wall clock
//!   (`SystemTime`, ns since the epoch) just before the push, for the one-way time from the
//!   handler's push to the target's read (both processes read the same clock);
//! * `all:<payload>` — `server.send_raw_to_all(payload)`: the broadcast.
//!
//! Anything else, or a push that fails, is answered with `error: …`, which the parent takes
//! as a failure of the run rather than waiting for a delivery that will not come.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use corepush::{
    BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer, ClientId, Context,
    GatewayBackendConfig, GatewayConfig, Handler, Message, RedisConfig, Runtime, RuntimeConfig,
    ServerConfig,
};

/// The server's name in each instance (and in the Redis channels).
pub(crate) const SERVER: &str = "bench";
/// The secret the gateway asks of the business process.
const GATEWAY_SECRET: &str = "cluster-bench";

/// What a child is told to run.
#[derive(Debug)]
pub(crate) struct InstanceSpec {
    /// `redis`, `channel`, `business` (the Gateway backend), `local`, `broker` (the Channel
    /// backend's broker) or `gateway`.
    pub(crate) backend: String,
    pub(crate) port: u16,
    pub(crate) workers: usize,
    pub(crate) instance: u16,
    pub(crate) redis_url: Option<String>,
    /// The broker's `host:port`, for the Channel backend.
    pub(crate) broker: Option<String>,
    /// The gateway's internal `host:port`, for the Gateway backend.
    pub(crate) gateway: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) fanout_coalesce: Option<Duration>,
}

/// Starts the instance, prints `listening on ws://ADDR/ (…)` on stdout once it accepts
/// (the parent waits for that line), and runs until killed.
pub(crate) fn serve(spec: &InstanceSpec) -> Result<(), String> {
    let backend = match spec.backend.as_str() {
        "broker" => return broker(spec.port),
        "gateway" => return gateway(spec),
        "local" => BackendConfig::Local,
        "business" => {
            let addr = spec.gateway.clone().ok_or("--gateway ADDR is missing")?;
            BackendConfig::Gateway(GatewayBackendConfig::new([addr], GATEWAY_SECRET))
        }
        "channel" => {
            let addr = spec.broker.clone().ok_or("--broker ADDR is missing")?;
            let prefix = spec.prefix.clone().ok_or("--prefix is missing")?;
            BackendConfig::Channel(
                ChannelBackendConfig::default()
                    .addr(addr)
                    .prefix(prefix)
                    .name(format!("bench-{}", spec.instance)),
            )
        }
        "redis" => {
            let url = spec.redis_url.clone().ok_or("--redis URL is missing")?;
            let prefix = spec.prefix.clone().ok_or("--prefix is missing")?;
            BackendConfig::Redis(
                RedisConfig::default()
                    .url(url)
                    .prefix(prefix)
                    .name(format!("bench-{}", spec.instance)),
            )
        }
        other => return Err(format!("unknown backend {other:?}")),
    };
    let mut config = RuntimeConfig::default()
        .workers(spec.workers)
        .instance(spec.instance);
    if let Some(window) = spec.fanout_coalesce {
        config = config.fanout_coalesce(window);
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], spec.port));
    let listen = !matches!(backend, BackendConfig::Gateway(_));
    let runtime = Runtime::builder()
        .config(config)
        .server(
            ServerConfig::websocket(SERVER, addr)
                .listen(listen)
                .backend(backend)
                .handler(|_| Bench),
        )
        .start()
        .map_err(|e| format!("cannot start: {e}"))?;
    let bound = runtime.local_addr(SERVER).unwrap_or(addr);
    println!(
        "listening on ws://{bound}/ (backend={}, instance={}, workers={})",
        spec.backend, spec.instance, spec.workers
    );
    runtime.run().map_err(|e| e.to_string())
}

/// A gateway with `--workers` core loops, clients on `--port` (0: a free one), business
/// processes on a free port of 127.0.0.1; its first line has the instances' form, with the
/// internal address after `business processes on `.
fn gateway(spec: &InstanceSpec) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], spec.port));
    let internal = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = RuntimeConfig::default()
        .workers(spec.workers)
        .instance(spec.instance.max(1));
    if let Some(window) = spec.fanout_coalesce {
        config = config.fanout_coalesce(window);
    }
    let runtime = Runtime::builder()
        .config(config)
        .server(
            ServerConfig::websocket(SERVER, addr)
                .gateway(GatewayConfig::new(internal, GATEWAY_SECRET)),
        )
        .start()
        .map_err(|e| format!("cannot start the gateway: {e}"))?;
    let bound = runtime.local_addr(SERVER).unwrap_or(addr);
    let internal = runtime
        .gateway(SERVER)
        .and_then(|g| g.internal_addr())
        .ok_or("the gateway has no internal address")?;
    println!(
        "listening on ws://{bound}/ (gateway, workers={}; business processes on {internal})",
        spec.workers
    );
    runtime.run().map_err(|e| e.to_string())
}

/// The Channel backend's broker, on a port of 127.0.0.1 (0: a free one). Its first line has
/// the instances' form, which the parent reads the port from.
fn broker(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let broker = ChannelServer::start(ChannelConfig::default().addr(addr))
        .map_err(|e| format!("cannot start the broker: {e}"))?;
    println!(
        "listening on ws://{}/ (channel broker; its own protocol, not WebSocket)",
        broker.local_addr()
    );
    broker.join();
    Ok(())
}

struct Bench;

impl Handler for Bench {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let Some(text) = message.as_text() else {
            let _ = ctx.send_raw("error: a binary message");
            return;
        };
        let outcome: Result<(), String> = if let Some(rest) = text.strip_prefix("push:") {
            match rest.split_once(':') {
                Some((id, payload)) => match id.parse::<ClientId>() {
                    Ok(id) => ctx
                        .server()
                        .send_raw(payload, id)
                        .map(drop)
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("{id:?}: {e}")),
                },
                None => Err("push:<id>:<payload> expected".to_owned()),
            }
        } else if let Some(rest) = text.strip_prefix("stamp:") {
            match rest.split_once(':') {
                Some((id, payload)) => match id.parse::<ClientId>() {
                    Ok(id) => {
                        let at = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos());
                        ctx.server()
                            .send_raw(format!("{payload} @{at}"), id)
                            .map(drop)
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(format!("{id:?}: {e}")),
                },
                None => Err("stamp:<id>:<payload> expected".to_owned()),
            }
        } else if let Some(payload) = text.strip_prefix("all:") {
            ctx.server()
                .send_raw_to_all(payload)
                .map(drop)
                .map_err(|e| e.to_string())
        } else if text == "id" {
            let id = ctx.client_id().to_string();
            ctx.send_raw(id).map_err(|e| e.to_string())
        } else {
            Err(format!("unknown request {:?}", truncate(text)))
        };
        if let Err(e) = outcome {
            let _ = ctx.send_raw(format!("error: {e}"));
        }
    }
}

fn truncate(text: &str) -> &str {
    let end = (0..=text.len().min(40))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[..end]
}
