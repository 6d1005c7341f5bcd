//! A send's count is exactly the number of connections that get the message, while clients
//! connect and are closed by the server all the time: no client receives a broadcast that did
//! not count it, and every client counted receives it before its close frame.
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use corepush::{Context, Handler, Message, Runtime, ServerConfig};
use util::*;

/// Closes the connection (server side) when the client says `bye`.
struct Bye;

impl Handler for Bye {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        if message.as_text() == Some("bye") {
            ctx.close();
        }
    }
}

/// Broadcasts at most this many numbered messages.
const MAX: usize = 1_000_000;
/// How long clients keep connecting and leaving.
const CHURN: Duration = Duration::from_secs(3);

#[test]
fn broadcast_counts_match_deliveries_under_churn() {
    let name = "exact-counts";
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .max_outbound_bytes(1 << 30)
                .handler(|_| Bye),
        )
        .start()
        .expect("start");
    let addr = rt.local_addr(name).expect("address");
    let server = rt.server(name).expect("handle");
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..MAX).map(|_| AtomicUsize::new(0)).collect());
    let got: Arc<Vec<AtomicUsize>> = Arc::new((0..MAX).map(|_| AtomicUsize::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let broadcasters: Vec<_> = (0..2)
        .map(|_| {
            let (server, counts, next, stop) =
                (server.clone(), counts.clone(), next.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= MAX {
                        break;
                    }
                    let n = match server.send_raw_to_all(i.to_string()) {
                        Ok(n) => n,
                        Err(corepush::Error::MailboxFull { queued }) => queued,
                        Err(e) => panic!("broadcast {i}: {e}"),
                    };
                    counts[i].store(n, Ordering::Relaxed);
                    if i % 64 == 0 {
                        // Lets the clients' reads keep up: bounds the test's memory, not a
                        // synchronisation.
                        thread::sleep(Duration::from_micros(200));
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + CHURN;
    let clients: Vec<_> = (0..6)
        .map(|c| {
            let got = got.clone();
            thread::spawn(move || {
                let mut conns = 0;
                while Instant::now() < deadline {
                    let mut ws = connect(addr);
                    conns += 1;
                    let mut seen = 0;
                    let want = 1 + (conns * 7 + c) % 20;
                    loop {
                        match ws.read() {
                            Ok(tungstenite::Message::Text(t)) => {
                                let i: usize = t.parse().expect("a number");
                                got[i].fetch_add(1, Ordering::Relaxed);
                                seen += 1;
                                if seen == want {
                                    ws.send(tungstenite::Message::text("bye")).unwrap();
                                }
                            }
                            Ok(tungstenite::Message::Close(_)) => break,
                            Ok(_) => {}
                            Err(e) => panic!("client {c}: {e}"),
                        }
                    }
                    // Complete the close handshake and wait for the server's end.
                    while ws.read().is_ok() {}
                }
                conns
            })
        })
        .collect();
    let connections: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    // Every client has its close frame, so everything counted to it has arrived.
    stop.store(true, Ordering::Relaxed);
    for b in broadcasters {
        b.join().unwrap();
    }
    let sent = next.load(Ordering::Relaxed).min(MAX);
    let (mut more, mut fewer, mut examples) = (0, 0, Vec::new());
    for i in 0..sent {
        let (c, g) = (
            counts[i].load(Ordering::Relaxed),
            got[i].load(Ordering::Relaxed),
        );
        more += g.saturating_sub(c);
        fewer += c.saturating_sub(g);
        if g != c && examples.len() < 10 {
            examples.push((i, c, g));
        }
    }
    assert!(connections > 50, "only {connections} connections");
    assert_eq!(
        (more, fewer),
        (0, 0),
        "{connections} connections, {sent} broadcasts: delivered but not counted {more}, \
         counted but not delivered {fewer}; (message, count, received): {examples:?}"
    );
    rt.shutdown().unwrap();
}
