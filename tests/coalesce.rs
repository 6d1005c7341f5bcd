//! A fixed fan-out window (`RuntimeConfig::fanout_coalesce`, `FanoutWindow::Fixed`, set
//! either way): frames of messages to many clients
//! wait for the core loop's next fan-out round and share its write; the first one after a
//! quiet spell goes at once; a message to one client, a handler's reply and a shutdown take
//! whatever is held along at once, in order.
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{FanoutWindow, Runtime, RuntimeConfig, Server, ServerConfig};
use util::*;

/// One core loop with a [`Cmd`] server and this fan-out window; no keepalive pings, so that
/// every write is one the test knows of.
fn start(name: &str, window: Duration) -> (Runtime, SocketAddr, Server) {
    let config = RuntimeConfig::default().fanout_coalesce(window);
    let runtime = Runtime::builder()
        .config(config)
        .workers(1)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .idle_timeout(None)
                .handler(|_| Cmd),
        )
        .start()
        .expect("start the runtime");
    let addr = runtime.local_addr(name).expect("its address");
    let server = runtime.server(name).expect("its handle");
    (runtime, addr, server)
}

#[test]
fn fan_out_frames_after_the_first_wait_for_the_window_and_share_one_write() {
    // Long enough that "two" and "three" reach the core loop inside it on any machine.
    let (rt, addr, server) = start("coalesce-window", Duration::from_secs(3));
    let mut a = Client::connect(addr);
    assert_writes(&server, 1, 1); // the reply to the client helper's `id`

    // Quiet until now: the first fan-out is written at once.
    assert_eq!(server.send_raw_to_all("one").unwrap(), 1);
    assert_eq!(a.recv(), "one");
    assert_writes(&server, 2, 2);

    // The next two are held until the window since that round has passed, then go together.
    assert_eq!(server.send_raw_to_all("two").unwrap(), 1);
    assert_eq!(server.send_raw_to_all("three").unwrap(), 1);
    assert_eq!(a.recv(), "two");
    assert_eq!(a.recv(), "three");
    // Two fan-out frames held in one window share one write.
    assert_writes(&server, 4, 3);
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn a_message_to_one_client_or_a_reply_takes_held_frames_along_at_once() {
    // Far longer than any wait of this test: a held frame only arrives if something else
    // flushes it.
    let (rt, addr, server) = start("coalesce-bypass", Duration::from_secs(60));
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    assert_eq!(server.send_raw_to_all("first").unwrap(), 2);
    assert_eq!(a.recv(), "first");
    assert_eq!(b.recv(), "first");

    // Held for both; a push to `a` alone writes `a`'s queue, in the order it was queued
    // (one mailbox, so the two commands arrive in the order they were sent).
    assert_eq!(server.send_raw_to_all("held-1").unwrap(), 2);
    assert_eq!(server.send_raw("direct", a.id).unwrap(), 1);
    assert_eq!(a.recv(), "held-1");
    assert_eq!(a.recv(), "direct");

    // `b`'s request: its reply writes `b`'s queue, with the fan-out the handler made before
    // it (one thread's messages keep their order); for `a` that fan-out is held...
    b.say("all:from-b");
    assert_eq!(b.recv(), "held-1");
    assert_eq!(b.recv(), "from-b");
    assert_eq!(b.recv(), "sent:2");
    // ...until `a`'s own reply takes it along.
    a.say("echo:a");
    assert_eq!(a.recv(), "from-b");
    assert_eq!(a.recv(), "a");

    // A group of both is a fan-out too.
    assert_eq!(a.ask("join:room"), "ok");
    assert_eq!(b.ask("join:room"), "ok");
    assert_eq!(server.send_raw_to_group("room", "room-msg").unwrap(), 2);
    assert_eq!(server.send_raw("direct-b", b.id).unwrap(), 1);
    assert_eq!(b.recv(), "room-msg");
    assert_eq!(b.recv(), "direct-b");

    // Shutdown writes what is still held (for `a`) before the close frame.
    drop(b);
    rt.shutdown().unwrap();
    assert_eq!(a.recv(), "room-msg");
    assert_eq!(read_until_close(&mut a.ws), Some(1001));
}

#[test]
fn a_queue_that_fills_a_vectored_write_does_not_wait_for_the_window() {
    // Nothing else flushes within the test's waits: only the 64-frame rule can.
    let (rt, addr, server) = start("coalesce-full", Duration::from_secs(60));
    let mut a = Client::connect(addr);
    assert_eq!(server.send_raw_to_all("first").unwrap(), 1);
    assert_eq!(a.recv(), "first");
    let texts: Vec<String> = (0..64).map(|i| format!("burst-{i}")).collect();
    for t in &texts {
        assert_eq!(server.send_raw_to_all(t).unwrap(), 1);
    }
    for t in &texts {
        assert_eq!(&a.recv(), t);
    }
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn a_window_over_a_minute_is_refused() {
    let config = RuntimeConfig::default().fanout_coalesce(Duration::from_secs(61));
    let err = Runtime::builder()
        .config(config)
        .server(
            ServerConfig::websocket("coalesce-long", "127.0.0.1:0".parse().unwrap())
                .handler(|_| Cmd),
        )
        .start()
        .expect_err("a 61 s window must be refused");
    assert!(err.to_string().contains("fanout_coalesce"), "{err}");
}

#[test]
fn a_fixed_window_set_as_a_fanout_window_holds_frames_as_fanout_coalesce_does() {
    let config =
        RuntimeConfig::default().fanout_window(FanoutWindow::Fixed(Duration::from_secs(60)));
    let runtime = Runtime::builder()
        .config(config)
        .workers(1)
        .server(
            ServerConfig::websocket("coalesce-fixed", "127.0.0.1:0".parse().unwrap())
                .idle_timeout(None)
                .handler(|_| Cmd),
        )
        .start()
        .expect("start the runtime");
    let addr = runtime.local_addr("coalesce-fixed").unwrap();
    let server = runtime.server("coalesce-fixed").unwrap();
    let mut a = Client::connect(addr);
    assert_eq!(server.send_raw_to_all("first").unwrap(), 1);
    assert_eq!(a.recv(), "first");
    // Inside the minute's window: held, until a message to `a` alone takes it along.
    assert_eq!(server.send_raw_to_all("held").unwrap(), 1);
    assert_silent(&mut a.ws, Duration::from_millis(200));
    assert_eq!(server.send_raw("direct", a.id).unwrap(), 1);
    assert_eq!(a.recv(), "held");
    assert_eq!(a.recv(), "direct");
    assert_writes(&server, 4, 3);
    drop(a);
    runtime.shutdown().unwrap();
}

#[test]
fn a_zero_window_writes_each_fan_out_in_its_own_turn() {
    let (rt, addr, server) = start("coalesce-off", Duration::ZERO);
    let mut a = Client::connect(addr);
    assert_writes(&server, 1, 1);
    for (k, text) in (2..).zip(["p", "q", "r"]) {
        assert_eq!(server.send_raw_to_all(text).unwrap(), 1);
        assert_eq!(a.recv(), text);
        // Each one waited for: nothing else can share its write.
        assert_writes(&server, k, k);
    }
    drop(a);
    rt.shutdown().unwrap();
}
