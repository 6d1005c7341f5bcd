//! Out of file descriptors: clients that arrive while a server cannot accept stay queued in
//! the kernel, and no new readiness event announces them; they must still be accepted as
//! soon as a descriptor is free again, without waiting for yet another client to connect —
//! with one warning for the episode, not one per attempt. For the push runtime and for the
//! request-scoped HTTP server.
//!
//! The server runs in a child process (this test binary again, running the ignored
//! `server_child` test) with a small open-file limit, so the limit is its own.
mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use corepush::{HttpConfig, HttpServer, Response, Runtime, ServerConfig};
use rlimit::Resource;
use util::*;

/// Set in the child's environment: the ignored test then runs as the server.
const CHILD: &str = "COREPUSH_FD_EXHAUSTION_CHILD";
/// Clients the parent queues; more than the child's spare descriptors.
const CLIENTS: usize = 40;
/// Descriptors the child leaves free for clients, exactly.
const FREE: usize = 5;

/// Lines of a child's pipe, read on their own thread.
fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line holding `needle` (other lines are skipped); panics after `WAIT`.
fn expect_line(rx: &Receiver<String>, needle: &str) -> String {
    expect_line_without(rx, needle, None)
}

/// As [`expect_line`], and panics if a line holding `forbidden` comes first.
fn expect_line_without(rx: &Receiver<String>, needle: &str, forbidden: Option<&str>) -> String {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) if forbidden.is_some_and(|f| line.contains(f)) => {
                panic!("{line:?} before a line with {needle:?}")
            }
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?} from the server child: {e}"),
        }
    }
}

/// Starts the server child (`kind`: `ws` or `http`); returns it with its stdin, its stdout
/// and stderr lines, and its address.
fn start_child(
    kind: &str,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    Receiver<String>,
    Receiver<String>,
    std::net::SocketAddr,
) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD, kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server child");
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let stdin = child.stdin.take().unwrap();
    let addr = expect_line(&out, "listening on ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (child, stdin, out, err, addr)
}

/// Ends the child; returns every stderr line it printed that was not read yet.
fn finish(
    mut child: std::process::Child,
    stdin: std::process::ChildStdin,
    err: Receiver<String>,
) -> Vec<String> {
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "the server child failed: {status}");
    err.iter().collect()
}

/// Runs one episode on a `kind` child: every client connects (the kernel queues them) and
/// sends `request` at once; the server takes the first [`FREE`], in the order they queued,
/// and is stuck on the next until one goes, when that next one gets its answer with no new
/// connection; once all go, the server says it accepts again, with one warning for it all.
fn episode(kind: &str, request: impl Fn(std::net::SocketAddr) -> String, status: u16, again: &str) {
    let (child, stdin, _out, err, addr) = start_child(kind);
    let request = request(addr);
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = tcp(addr);
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    expect_line(&err, "accept failed");

    for s in &mut clients[..FREE] {
        assert_eq!(status_of(&read_head(s)), status);
    }

    drop(clients.remove(0));
    assert_eq!(status_of(&read_head(&mut clients[FREE - 1])), status);

    // All go: the rest are accepted (and find their client gone), and the queue is empty.
    drop(clients);
    expect_line_without(&err, again, Some("accept failed"));
    let rest = finish(child, stdin, err);
    assert!(
        !rest.iter().any(|l| l.contains("accept failed")),
        "one warning per episode: {rest:?}"
    );
}

#[test]
fn clients_queued_while_out_of_descriptors_are_accepted_once_one_is_free() {
    episode(
        "ws",
        |addr| upgrade_request(addr, "/", &[]),
        101,
        "accepting clients again",
    );
}

#[test]
fn http_clients_queued_while_out_of_descriptors_are_served_once_one_is_free() {
    // Keep-alive requests: an answered connection keeps its descriptor.
    episode(
        "http",
        |addr| format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n"),
        200,
        "accepting connections again",
    );
}

/// The server half (`ws`: a WebSocket runtime on one core loop; `http`: the request-scoped
/// HTTP server), in a process that can open exactly [`FREE`] more descriptors. Prints
/// `listening on ADDR` and stops when stdin closes.
#[test]
#[ignore = "the server half of the tests above, run in its own process"]
fn server_child() {
    let Some(kind) = std::env::var_os(CHILD) else {
        return;
    };
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .target(env_logger::Target::Stderr)
        .init();
    let stop: Box<dyn FnOnce()>;
    let addr = if kind == "http" {
        let server = HttpServer::start(
            HttpConfig::new("fd-http", "127.0.0.1:0".parse().unwrap()),
            |_: &corepush::Request, _: &mut corepush::RequestContext| Response::text("ok"),
        )
        .unwrap();
        let addr = server.local_addr();
        stop = Box::new(move || server.shutdown().unwrap());
        addr
    } else {
        let runtime = Runtime::builder()
            .workers(1)
            .server(
                ServerConfig::websocket("fd", "127.0.0.1:0".parse().unwrap())
                    .idle_timeout(None)
                    .handler(|_| Cmd),
            )
            .start()
            .unwrap();
        let addr = runtime.local_addr("fd").unwrap();
        stop = Box::new(move || runtime.shutdown().unwrap());
        addr
    };

    // A new descriptor takes the lowest free number under the soft limit. Lower the limit
    // near the count of open ones, fill every free number below it, then free exactly FREE.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let (_, hard) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    rlimit::setrlimit(Resource::NOFILE, (open + 16).min(hard), hard).unwrap();
    let mut filler: Vec<std::fs::File> = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        filler.push(f);
    }
    assert!(
        filler.len() >= FREE,
        "only {} descriptors to free",
        filler.len()
    );
    filler.truncate(filler.len() - FREE);

    println!("listening on {addr}");
    for _ in std::io::stdin().lock().lines() {}
    stop();
    drop(filler);
}
