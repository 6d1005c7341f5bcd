//! A handler of a runtime's very first connection already finds its own server through
//! `get_server`: the runtime's servers are known before any core loop runs.
mod util;

use std::net::{SocketAddr, TcpListener};

use corepush::{Context, Handler, Message, Runtime, ServerConfig, get_server};
use util::*;

const NAME: &str = "first-connection";

/// Answers, on open, whether `get_server` found a server holding this very connection.
struct Probe;

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let me = ctx.client_id();
        let found = match get_server(NAME) {
            Some(s) if s.exists(me) => "own",
            Some(_) => "other",
            None => "none",
        };
        let _ = ctx.send_raw(found);
    }

    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

/// A port that was free a moment ago.
fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("its address")
}

#[test]
fn the_first_connection_finds_its_own_server() {
    // The client connects while the runtime starts: the kernel queues it as soon as the
    // listener exists, and a core loop takes it the moment it runs — racing the runtime's
    // registration, which used to come after the core loops started.
    for round in 0..30 {
        let addr = free_port();
        let client = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                if let Ok(stream) = std::net::TcpStream::connect(addr) {
                    stream.set_read_timeout(Some(WAIT)).unwrap();
                    let (mut ws, _) =
                        tungstenite::client(format!("ws://{addr}/"), stream).expect("handshake");
                    return recv_text(&mut ws);
                }
                assert!(std::time::Instant::now() < deadline, "never connected");
                std::thread::yield_now();
            }
        });
        let rt = Runtime::builder()
            .workers(2)
            .server(ServerConfig::websocket(NAME, addr).handler(|_| Probe))
            .start()
            .expect("start");
        assert_eq!(client.join().unwrap(), "own", "round {round}");
        rt.shutdown().unwrap();
    }
}
