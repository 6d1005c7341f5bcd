//! The websocket-shootout server (hashrocket's benchmark protocol) on corepush.
//!
//! ```sh
//! cargo run --release --example shootout -- --port 3334 --workers 2 [--fanout-coalesce-ms 10]
//! ```
//!
//! `{"type":"echo","payload":P}` comes back to the sender; `{"type":"broadcast","payload":P}`
//! goes to every client through the facade's send-to-all, then the sender gets
//! `{"type":"broadcastResult","payload":P,"listenerCount":N}`. The payload is passed through
//! as raw JSON, never re-parsed.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use corepush::{Context, Handler, Message, Runtime, RuntimeConfig, ServerConfig};
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
    /// RuntimeConfig::fanout_coalesce in milliseconds [default: the library's]
    #[arg(long, value_name = "MS")]
    fanout_coalesce_ms: Option<u64>,
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
    let coalesce = flags.fanout_coalesce_ms.map(Duration::from_millis);
    if let Err(e) = serve(addr, workers, coalesce) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

/// Starts the shootout server on `addr` with `workers` core loops (and a fan-out window other
/// than the default, if given), prints
/// `listening on ws://ADDR/ (workers=N)` on stdout once it accepts, and runs until Ctrl-C or
/// SIGTERM. The error is a message for the operator. The load example runs this too.
pub(crate) fn serve(
    addr: SocketAddr,
    workers: usize,
    fanout_coalesce: Option<Duration>,
) -> Result<(), String> {
    let mut config = RuntimeConfig::default();
    if let Some(window) = fanout_coalesce {
        config = config.fanout_coalesce(window);
    }
    let runtime = Runtime::builder()
        .config(config)
        .workers(workers)
        .server(ServerConfig::websocket("shootout", addr).handler(|_| Shootout))
        .start()
        .map_err(|e| format!("cannot start: {e}"))?;
    let bound = runtime.local_addr("shootout").unwrap_or(addr);
    println!("listening on ws://{bound}/ (workers={workers})");
    runtime.run().map_err(|e| e.to_string())
}
