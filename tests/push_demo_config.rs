//! push_demo --config FILE: a real process takes its runtime and server settings from the
//! file, COREPUSH_* variables over it and flags over both; and its command line reads
//! `--flag=value`, `--host ::1` and the file's backend.
mod util;

#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)] // `main` is the example's; `pub` is for its binary
mod push_demo;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use push_demo::{Backend, Cli, Options, parse_args};
use serde_json::{Value, json};
use util::{WAIT, try_connect};

/// Set in a child process: run push_demo with the arguments in [`CHILD_ARGS`].
const CHILD: &str = "COREPUSH_PUSH_DEMO_CONFIG_CHILD";
/// The child's arguments, separated by spaces.
const CHILD_ARGS: &str = "COREPUSH_PUSH_DEMO_CONFIG_ARGS";

/// A file of this test's own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("corepush-{}-{name}", std::process::id()));
        std::fs::write(&path, text).expect("write the file");
        TempFile(path)
    }

    fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[String], env: &[(&str, &str)]) -> (Proc, Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"));
    child
        .args(["--exact", "child", "--ignored", "--nocapture"])
        .env(CHILD, "1")
        .env(CHILD_ARGS, args.join(" "))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        child.env(k, v);
    }
    let mut child = child.spawn().expect("start push_demo");
    let out = child.stdout.take().expect("its stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (Proc(child), rx)
}

fn listening_line(rx: &Receiver<String>) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("listening on ") => return line,
            Ok(_) => {}
            Err(e) => panic!("no listening line ({e})"),
        }
    }
}

/// Runs push_demo when [`CHILD`] is set.
#[test]
#[ignore = "the push_demo process of the tests above, run in its own process"]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let args: Vec<String> = std::env::var(CHILD_ARGS)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    std::process::exit(push_demo::serve(args));
}

#[test]
fn a_process_takes_the_file_then_the_variables_then_the_flags() {
    // The file: IPv6 loopback, 3 core loops, room for 5 clients.
    let file = TempFile::new(
        "demo.toml",
        "[runtime]\nworkers = 3\nshutdown_timeout = \"1s\"\n\n\
         [servers.demo]\naddr = \"[::1]:0\"\nmax_connections = 5\nidle_timeout = \"30s\"\n",
    );
    // The variable leaves room for one client; the flag asks for one core loop.
    let args = vec![
        format!("--config={}", file.path()),
        "--workers".into(),
        "1".into(),
    ];
    let (_proc, out) = spawn(&args, &[("COREPUSH_SERVER_DEMO_MAX_CONNECTIONS", "1")]);
    let line = listening_line(&out);
    assert!(line.ends_with("/ (workers=1, backend=local)"), "{line}");
    let addr: SocketAddr = line["listening on ws://".len()..]
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("an address in {line:?}"));
    assert!(addr.is_ipv6() && addr.ip().is_loopback(), "{addr}");

    let mut first = try_connect(addr, "/").expect("the first client");
    first
        .send(tungstenite::Message::text(
            json!({"op": "count", "id": 1}).to_string(),
        ))
        .expect("send");
    let reply: Value = match first.read().expect("a reply") {
        tungstenite::Message::Text(t) => serde_json::from_str(&t).expect("JSON"),
        other => panic!("{other:?}"),
    };
    assert_eq!(reply["result"], json!(1));
    assert!(
        try_connect(addr, "/").is_err(),
        "a second client past max_connections = 1 was admitted"
    );
}

#[test]
fn the_file_names_the_backend_and_flags_win() {
    let file = TempFile::new(
        "channel.json",
        r#"{"runtime": {"workers": 2},
            "servers": {"x": {"addr": "127.0.0.1:7001",
                "backend": {"type": "channel", "addr": "10.0.0.1:13005", "token": "t",
                            "name": "eu-1", "query_timeout": "2s"}}}}"#,
    );
    let run = |args: &[&str]| match parse_args(args.iter().copied()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    let path = file.path();
    let from_file = run(&["--config", &path]);
    assert_eq!(
        from_file,
        Options {
            host: "127.0.0.1".into(),
            port: 7001,
            workers: 2,
            backend: Backend::Channel,
            channel: Some("10.0.0.1:13005".into()),
            token: Some("t".into()),
            instance: "eu-1".into(),
            config: Some(path.clone()),
            ..Options::default()
        }
    );
    let flags = run(&[
        "--config",
        &path,
        "--port=0",
        "--host",
        "::1",
        "--channel=10.0.0.2:13005",
        "--instance",
        "eu-2",
        "--backend=local",
    ]);
    assert_eq!((flags.host.as_str(), flags.port), ("::1", 0));
    assert_eq!(flags.channel.as_deref(), Some("10.0.0.2:13005"));
    assert_eq!(
        (flags.instance.as_str(), flags.backend),
        ("eu-2", Backend::Local)
    );
    assert_eq!(flags.workers, 2);
}

#[test]
fn a_bad_file_is_a_bad_argument_naming_the_key() {
    let fails = |args: &[&str], expected: &str| match parse_args(args.iter().copied()) {
        Err(e) => assert!(e.contains(expected), "{args:?}: {e}"),
        Ok(other) => panic!("{args:?} must fail, got {other:?}"),
    };
    let unknown = TempFile::new(
        "unknown.toml",
        "[servers.d]\naddr = \"127.0.0.1:0\"\nport = 1\n",
    );
    fails(&["--config", &unknown.path()], "unknown key servers.d.port");
    let bad = TempFile::new("bad.toml", "[runtime]\nworkers = \"two\"\n");
    fails(
        &["--config", &bad.path()],
        "runtime.workers: expected a whole number",
    );
    let tcp = TempFile::new(
        "tcp.toml",
        "[servers.d]\naddr = \"127.0.0.1:0\"\nprotocol = \"tcp_lines\"\n",
    );
    fails(&["--config", &tcp.path()], "speaks \"websocket\" only");
    fails(&["--config", "/nonexistent/corepush.toml"], "--config: ");
    fails(&["--config"], "--config needs a value");
}

#[test]
fn host_takes_ipv6_and_names() {
    let run = |args: &[&str]| match parse_args(args.iter().copied()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(run(&["--host", "::1"]).host, "::1");
    assert_eq!(run(&["--host=::1", "--port=0"]).host, "::1");
    assert_eq!(run(&["--host", "localhost"]).host, "localhost");
    let rt = push_demo::build(&run(&["--host", "::1", "--port", "0", "--workers", "1"]))
        .expect("push_demo on ::1");
    let addr = rt.local_addr(push_demo::SERVER).expect("its address");
    assert_eq!(addr.ip().to_string(), "::1");
    rt.shutdown().unwrap();
}

#[test]
fn the_shipped_example_file_runs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/push_demo.toml");
    let Ok(Cli::Run(opts)) = parse_args(["--config", path, "--port", "0"]) else {
        panic!("examples/push_demo.toml parses")
    };
    assert_eq!((opts.workers, opts.backend), (2, Backend::Local));
    let rt = push_demo::build(&opts).expect("push_demo from examples/push_demo.toml");
    assert_eq!(rt.workers(), 2);
    rt.shutdown().unwrap();
}
