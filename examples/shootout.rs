//! The websocket-shootout server (hashrocket's benchmark protocol) on corepush.
//!
//! ```sh
//! cargo run --release --example shootout -- --port 3334 --workers 2 [--fanout-coalesce-ms 10 |
//!     --fanout-max-ms 10]
//! ```
//!
//! `{"type":"echo","payload":P}` comes back to the sender; `{"type":"broadcast","payload":P}`
//! goes to every client through the facade's send-to-all, then the sender gets
//! `{"type":"broadcastResult","payload":P,"listenerCount":N}`. The payload is passed through
//! as raw JSON, never re-parsed.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use corepush::{
    Context, FanoutWindow, Handler, Message, Runtime, RuntimeConfig, Server, ServerConfig,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

#[path = "common/cli.rs"]
#[allow(dead_code)] // shared by the examples: not every one uses every helper
pub(crate) mod cli;

use cli::value;

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    payload: &'a RawValue,
}

#[derive(Serialize)]
struct Reply<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    payload: &'a RawValue,
    #[serde(rename = "listenerCount", skip_serializing_if = "Option::is_none")]
    listener_count: Option<usize>,
}

struct Shootout;

impl Handler for Shootout {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let Ok(req) = serde_json::from_slice::<Request<'_>>(message.as_bytes()) else {
            log::debug!(
                "not a shootout request: {:?}",
                String::from_utf8_lossy(message.as_bytes())
            );
            return;
        };
        let reply = |kind, listener_count| Reply {
            kind,
            payload: req.payload,
            listener_count,
        };
        let result = match req.kind {
            "echo" => ctx.send(&reply("echo", None)),
            "broadcast" => ctx
                .server()
                .send_to_all(&reply("broadcast", None))
                .and_then(|n| ctx.send(&reply("broadcastResult", Some(n)))),
            other => {
                log::debug!("unknown shootout type {other:?} ignored");
                Ok(())
            }
        };
        if let Err(e) = result {
            log::warn!("shootout reply failed: {e}");
        }
    }
}

/// The websocket-shootout server (hashrocket's benchmark protocol) on corepush.
#[derive(Debug, clap::Parser)]
#[command(name = "shootout", disable_version_flag = true)]
struct Flags {
    /// Port to listen on; 0 picks a free one
    #[arg(long, value_name = "N", default_value_t = 3334, value_parser = value::port)]
    port: u16,
    /// IP address (::1 too) or name to listen on
    #[arg(long, value_name = "H", default_value = "127.0.0.1", value_parser = value::non_empty)]
    host: String,
    /// Core loops [default: the number of cores]
    #[arg(long, value_name = "N", value_parser = value::within(1, corepush::MAX_WORKERS))]
    workers: Option<usize>,
    /// A fixed fan-out window (RuntimeConfig::fanout_coalesce) in milliseconds [default: the
    /// library's adaptive one]
    #[arg(long, value_name = "MS", conflicts_with = "fanout_max_ms")]
    fanout_coalesce_ms: Option<u64>,
    /// The adaptive fan-out window's ceiling (FanoutWindow::Adaptive) in milliseconds
    /// [default: the library's]
    #[arg(long, value_name = "MS")]
    fanout_max_ms: Option<u64>,
}

impl Flags {
    /// The fan-out window the flags ask for, if not the library's default.
    fn window(&self) -> Option<FanoutWindow> {
        window(self.fanout_coalesce_ms, self.fanout_max_ms)
    }
}

/// A fixed window of `fixed_ms`, else an adaptive one up to `max_ms`, else the default.
pub(crate) fn window(fixed_ms: Option<u64>, max_ms: Option<u64>) -> Option<FanoutWindow> {
    match (fixed_ms, max_ms) {
        (Some(ms), _) => Some(FanoutWindow::Fixed(Duration::from_millis(ms))),
        (None, Some(ms)) => Some(FanoutWindow::Adaptive {
            max: Duration::from_millis(ms),
        }),
        (None, None) => None,
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let flags = match cli::parse::<Flags, _, _>(std::env::args().skip(1)) {
        Ok(Some(flags)) => flags,
        Ok(None) => {
            println!("{}", cli::help::<Flags>());
            return;
        }
        Err(e) => {
            eprintln!("shootout: {e}\n{}", cli::usage::<Flags>());
            std::process::exit(2);
        }
    };
    let addr = match (flags.host.as_str(), flags.port).to_socket_addrs() {
        Ok(mut addrs) => addrs.next(),
        Err(_) => None,
    };
    let Some(addr) = addr else {
        eprintln!("shootout: --host {:?} resolves to no address", flags.host);
        std::process::exit(2);
    };
    let workers = flags
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Err(e) = serve(addr, workers, flags.window(), |_| {}) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

/// Starts the shootout server on `addr` with `workers` core loops (and a fan-out window other
/// than the default, if given), prints
/// `listening on ws://ADDR/ (workers=N)` on stdout once it accepts, hands its handle to
/// `started`, and runs until Ctrl-C or SIGTERM. The error is a message for the operator. The
/// load example runs this too.
pub(crate) fn serve(
    addr: SocketAddr,
    workers: usize,
    fanout_window: Option<FanoutWindow>,
    started: impl FnOnce(Server),
) -> Result<(), String> {
    let mut config = RuntimeConfig::default();
    if let Some(window) = fanout_window {
        config = config.fanout_window(window);
    }
    let runtime = Runtime::builder()
        .config(config)
        .workers(workers)
        .server(ServerConfig::websocket("shootout", addr).handler(|_| Shootout))
        .start()
        .map_err(|e| format!("cannot start: {e}"))?;
    let bound = runtime.local_addr("shootout").unwrap_or(addr);
    println!("listening on ws://{bound}/ (workers={workers})");
    if let Some(server) = runtime.server("shootout") {
        started(server);
    }
    runtime.run().map_err(|e| e.to_string())
}
