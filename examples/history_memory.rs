//! Measures what the history costs in memory on the Local backend: the resident set growth
//! per kept message (100,000 messages of 16 bytes in one group) and per kept name (100,000
//! groups of one message each). Linux only (reads /proc/self/status).
//!
//! ```text
//! cargo run --release --example history_memory
//! ```

use corepush::{Context, Handler, HistoryConfig, Message, Runtime, ServerConfig};

const N: usize = 100_000;

struct Quiet;
impl Handler for Quiet {
    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

fn rss() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

fn main() -> corepush::Result<()> {
    let history = HistoryConfig::default()
        .groups("one", N, None)
        .groups("*", 1, None);
    let rt = Runtime::builder()
        .workers(1)
        .server(
            ServerConfig::websocket("history", "127.0.0.1:0".parse().unwrap())
                .history(history)
                .handler(|_| Quiet),
        )
        .start()?;
    let server = rt.server("history").expect("the server");
    let payload = [b'x'; 16];

    let before = rss();
    for _ in 0..N {
        server.send_raw_to_group("one", payload.as_slice())?;
    }
    let per_message = rss().saturating_sub(before) as f64 / N as f64;

    let before = rss();
    for i in 0..N {
        server.send_raw_to_group(format!("name-{i}").as_str(), payload.as_slice())?;
    }
    let per_name = rss().saturating_sub(before) as f64 / N as f64;

    println!("per kept message (16-byte payload): {per_message:.0} bytes");
    println!("per kept name (one message kept):   {per_name:.0} bytes");
    rt.shutdown()
}
