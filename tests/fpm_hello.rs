//! fpm_hello: the same handler code pushes to a group under the push server (real WebSocket
//! clients receive it), answers HTTP requests harmlessly under the request-scoped server alone,
//! and reaches the room from a request when both run in one process — and the command-line
//! parsing.
mod http_util;
mod util;

// The example itself is compiled in, so the test drives exactly the servers users run. Its
// `main` is unused here (dead_code), and its `pub` items exist for its own binary crate, not
// for this test crate (unreachable_pub).
#[path = "../examples/fpm_hello.rs"]
#[allow(dead_code, unreachable_pub)]
mod fpm_hello;

use std::collections::HashSet;
use std::net::SocketAddr;

use parking_lot::Mutex;

use fpm_hello::{Cli, Mode, Options, ROOM, SERVER, parse_args, start_fpm, start_push};
use serde_json::{Value, json};
use tungstenite::Message;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Held by each test that starts a server: both modes use the name [`SERVER`], and a request
/// reaches a push server of that name if one runs in the process, so the tests take turns.
static ONE_MODE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn push_mode_pushes_to_the_room() {
    let _turn = ONE_MODE_AT_A_TIME.lock();
    let runtime = start_push(any_port()).expect("start push mode");
    let addr = runtime.local_addr(SERVER).unwrap();
    let mut alice = util::connect(addr);
    let mut bob = util::connect(addr);
    // Each is told once it has joined the room, so the push below reaches both.
    for ws in [&mut alice, &mut bob] {
        assert_eq!(util::recv_json(ws), json!({ "joined": ROOM }));
    }
    alice.send(Message::text("x")).unwrap();
    // Alice gets the push and her answer, in either order (the push goes through the core
    // loops' mailboxes, the answer straight to her connection); Bob gets the push.
    let got: HashSet<String> = (0..2).map(|_| util::recv_text(&mut alice)).collect();
    let expected: HashSet<String> = [r#"{"hello":"x"}"#, r#"{"hello":"x","pushed":2}"#]
        .map(str::to_owned)
        .into();
    assert_eq!(got, expected);
    assert_eq!(util::recv_json(&mut bob), json!({ "hello": "x" }));
    // Hung up first, so shutdown need not wait for their close handshakes.
    drop((alice, bob));
    runtime.shutdown().unwrap();
}

#[test]
fn fpm_mode_answers_http_and_pushes_to_nobody() {
    let _turn = ONE_MODE_AT_A_TIME.lock();
    let server = start_fpm(any_port()).expect("start fpm mode");
    assert_eq!(server.name(), SERVER);
    let mut c = http_util::Client::connect(server.local_addr());
    let r = c.roundtrip(http_util::get("/hello?name=x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"hello":"x","pushed":0}"#);
    let v: Value = c.roundtrip(http_util::get("/hello?name=a%20b")).json();
    assert_eq!(v, json!({ "hello": "a b", "pushed": 0 }));
    assert_eq!(
        c.roundtrip(http_util::get("/hello")).json()["hello"],
        "world"
    );
    assert_eq!(c.roundtrip(http_util::post("/hello", "x")).status, 405);
    assert_eq!(c.roundtrip(http_util::get("/elsewhere")).status, 404);
    server.shutdown().unwrap();
}

#[test]
fn both_modes_in_one_process_a_request_pushes_to_the_room() {
    let _turn = ONE_MODE_AT_A_TIME.lock();
    let runtime = start_push(any_port()).expect("start push mode");
    let mut member = util::connect(runtime.local_addr(SERVER).unwrap());
    assert_eq!(util::recv_json(&mut member), json!({ "joined": ROOM }));
    let http = start_fpm(any_port()).expect("start fpm mode");
    let mut c = http_util::Client::connect(http.local_addr());
    let v = c.roundtrip(http_util::get("/hello?name=x")).json();
    assert_eq!(v, json!({ "hello": "x", "pushed": 1 }));
    assert_eq!(util::recv_json(&mut member), json!({ "hello": "x" }));
    drop(member);
    http.shutdown().unwrap();
    runtime.shutdown().unwrap();
}

#[test]
fn command_line() {
    let run = |args: &[&str]| match parse_args(args.iter().copied()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(run(&[]), Options::default());
    assert_eq!(run(&[]).mode, Mode::Push);
    let fpm = run(&["--mode", "fpm"]);
    assert_eq!(fpm.mode, Mode::Fpm);
    assert_eq!(fpm.addr().unwrap().port(), 8081);
    assert_eq!(run(&[]).addr().unwrap().port(), 8080);
    let custom = run(&["--mode=push", "--port=0", "--host", "localhost"]);
    assert_eq!((custom.port, custom.host.as_str()), (Some(0), "localhost"));
    let ipv6 = run(&["--host", "::1", "--port=0"]);
    assert_eq!(ipv6.addr().unwrap().to_string(), "[::1]:0");
    assert_eq!(
        run(&["--host=::1"]).addr().unwrap().to_string(),
        "[::1]:8080"
    );
    assert_eq!(parse_args(["--help"]), Ok(Cli::Help));
    for bad in [
        &["--mode", "cgi"][..],
        &["--port", "70000"],
        &["--port"],
        &["--host", ""],
        &["--workers", "2"],
    ] {
        assert!(parse_args(bad.iter().copied()).is_err(), "{bad:?}");
    }
}
