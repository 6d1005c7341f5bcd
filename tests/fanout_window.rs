//! The adaptive fan-out window (`FanoutWindow::Adaptive`): frames of one burst share a write,
//! and a lone message right after heavy rounds is written at once — the window closed again —
//! even with a ceiling far longer than any wait of the test.
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{
    Context, FanoutWindow, Handler, Message, Runtime, RuntimeConfig, Server, ServerConfig,
};
use util::*;

/// `burst:K` pushes K messages to everyone but the sender, in one handler call (so on the
/// core loop, in one loop turn), then answers `done`. Anything else is echoed.
struct Burst;

impl Handler for Burst {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let text = message.as_text().unwrap_or_default().to_owned();
        if let Some(k) = text.strip_prefix("burst:") {
            let me = ctx.client_id();
            for i in 0..k.parse::<usize>().expect("a count") {
                ctx.server()
                    .except(me)
                    .send_raw_to_all(format!("b{i}"))
                    .expect("push");
            }
            ctx.send_raw("done").expect("reply");
        } else {
            ctx.send_raw(text).expect("reply");
        }
    }
}

/// One core loop, an adaptive window with a minute's ceiling, no keepalive pings (so that
/// every write is one the test knows of).
fn start(name: &str) -> (Runtime, SocketAddr, Server) {
    let window = FanoutWindow::Adaptive {
        max: Duration::from_secs(60),
    };
    let runtime = Runtime::builder()
        .config(RuntimeConfig::default().fanout_window(window))
        .workers(1)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .idle_timeout(None)
                .handler(|_| Burst),
        )
        .start()
        .expect("start the runtime");
    let addr = runtime.local_addr(name).expect("its address");
    let server = runtime.server(name).expect("its handle");
    (runtime, addr, server)
}

#[test]
fn a_lone_message_after_heavy_rounds_is_written_at_once() {
    let (rt, addr, server) = start("window-closes");
    let mut sender = connect(addr);
    let mut watchers = [connect(addr), connect(addr)];
    for ws in std::iter::once(&mut sender).chain(watchers.iter_mut()) {
        ws.send(tungstenite::Message::text("hi")).unwrap();
        assert_eq!(recv_text(ws), "hi");
    }
    let (mut frames, mut writes) = (3, 3);
    assert_writes(&server, frames, writes);

    // Heavy rounds: eight frames per watcher each, held together and written in one go.
    for _ in 0..5 {
        sender.send(tungstenite::Message::text("burst:8")).unwrap();
        assert_eq!(recv_text(&mut sender), "done");
        for ws in &mut watchers {
            for i in 0..8 {
                assert_eq!(recv_text(ws), format!("b{i}"));
            }
        }
        frames += 2 * 8 + 1;
        writes += 2 + 1;
        assert_writes(&server, frames, writes);
    }

    // A lone message: not held for the window (a minute), one write per client.
    assert_eq!(server.send_raw_to_all("lone").unwrap(), 3);
    for ws in std::iter::once(&mut sender).chain(watchers.iter_mut()) {
        assert_eq!(recv_text(ws), "lone");
    }
    assert_writes(&server, frames + 3, writes + 3);

    // And the next one too: the window stays shut while the load is light.
    assert_eq!(server.send_raw_to_all("again").unwrap(), 3);
    for ws in std::iter::once(&mut sender).chain(watchers.iter_mut()) {
        assert_eq!(recv_text(ws), "again");
    }
    assert_writes(&server, frames + 6, writes + 6);
    drop((sender, watchers));
    rt.shutdown().unwrap();
}

#[test]
fn an_adaptive_ceiling_over_a_minute_is_refused() {
    let window = FanoutWindow::Adaptive {
        max: Duration::from_secs(61),
    };
    let err = Runtime::builder()
        .config(RuntimeConfig::default().fanout_window(window))
        .server(
            ServerConfig::websocket("window-long", "127.0.0.1:0".parse().unwrap())
                .handler(|_| Burst),
        )
        .start()
        .expect_err("a 61 s ceiling must be refused");
    assert!(err.to_string().contains("fanout_window"), "{err}");
}

#[test]
fn the_adaptive_window_is_the_default_and_fanout_coalesce_sets_a_fixed_one() {
    let config = RuntimeConfig::default();
    assert_eq!(
        config.fanout_window,
        FanoutWindow::Adaptive {
            max: Duration::from_millis(10)
        }
    );
    let fixed = config.fanout_coalesce(Duration::from_millis(3));
    assert_eq!(
        fixed.fanout_window,
        FanoutWindow::Fixed(Duration::from_millis(3))
    );
}
