//! push_demo answers `GET /metrics` and `GET /health` on its WebSocket port (the server
//! default), beside its WebSocket clients.
mod util;

// The example itself is compiled in, so the test drives exactly the server users run. Its
// `main` is unused here (dead_code), and its `pub` items exist for its own binary crate, not
// for this test crate (unreachable_pub).
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::io::Write;

use push_demo::{Options, build};
use util::{connect, read_to_close, tcp};

#[test]
fn push_demo_answers_metrics_and_health() {
    let opts = Options {
        port: 0,
        workers: 1,
        ..Options::default()
    };
    let rt = build(&opts).expect("start push_demo");
    let addr = rt.local_addr(push_demo::SERVER).expect("its address");
    let ws = connect(addr);
    let get = |path: &str| {
        let mut s = tcp(addr);
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: demo\r\n\r\n").as_bytes())
            .unwrap();
        String::from_utf8(read_to_close(&mut s)).unwrap()
    };
    let health = get("/health");
    assert!(
        health.starts_with("HTTP/1.1 200 ") && health.ends_with("\r\n\r\nok\n"),
        "{health}"
    );
    let metrics = get("/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200 "), "{metrics}");
    let line = format!(
        "corepush_connections{{server=\"{}\"}} 1\n",
        push_demo::SERVER
    );
    assert!(metrics.contains(&line), "{metrics}");
    drop(ws);
    rt.shutdown().expect("clean shutdown");
}
