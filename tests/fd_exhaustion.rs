//! Out of file descriptors: clients that arrive while a core loop cannot accept stay queued
//! in the kernel, and no new readiness event announces them; they must still be accepted as
//! soon as a descriptor is free again, without waiting for yet another client to connect.
//!
//! The server runs in a child process (this test binary again, running the ignored
//! `server_child` test) with a small open-file limit, so the limit is its own.
mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use corepush::{Runtime, ServerConfig};
use rlimit::Resource;
use util::*;

/// Set in the child's environment: the ignored test then runs as the server.
const CHILD: &str = "COREPUSH_FD_EXHAUSTION_CHILD";
/// Clients the parent queues; more than the child's spare descriptors.
const CLIENTS: usize = 40;
/// Descriptors the child may open beyond those it has (give or take a few).
const SPARE: u64 = 4;

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
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {needle:?} from the server child: {e}"),
        }
    }
}

#[test]
fn clients_queued_while_out_of_descriptors_are_accepted_once_one_is_free() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "server_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server child");
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut stdin = child.stdin.take().unwrap();
    let addr: std::net::SocketAddr = expect_line(&out, "listening on ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // Every client connects (the kernel queues them) and asks to upgrade at once.
    let request = upgrade_request(addr, "/", &[]);
    let mut clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| {
            let mut s = tcp(addr);
            s.write_all(request.as_bytes()).unwrap();
            s
        })
        .collect();
    expect_line(&err, "accept failed");

    // The server took the first ones, in the order they queued, and is stuck on the next.
    writeln!(stdin, "accepted").unwrap();
    let accepted: usize = expect_line(&out, "accepted ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..CLIENTS).contains(&accepted),
        "{accepted} of {CLIENTS} accepted: the limit did not bite"
    );
    for s in &mut clients[..accepted] {
        assert_eq!(status_of(&read_head(s)), 101);
    }

    // One goes; its descriptor lets the next queued client in, with no new connection.
    drop(clients.remove(0));
    let next = &mut clients[accepted - 1];
    assert_eq!(status_of(&read_head(next)), 101);

    // All go: the rest are accepted (and find their client gone), and the queue is empty.
    drop(clients);
    expect_line(&err, "accepting clients again");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "the server child failed: {status}");
}

/// The server half: a WebSocket server on one core loop whose process may open only a few
/// more descriptors. Prints `listening on ADDR`, answers `accepted` on stdin with the count of
/// accepted clients, and stops when stdin closes.
#[test]
#[ignore = "the server half of the test above, run in its own process"]
fn server_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .target(env_logger::Target::Stderr)
        .init();
    let runtime = Runtime::builder()
        .workers(1)
        .server(
            ServerConfig::websocket("fd", "127.0.0.1:0".parse().unwrap())
                .idle_timeout(None)
                .handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let server = runtime.server("fd").unwrap();
    let addr = runtime.local_addr("fd").unwrap();

    // A new descriptor takes the lowest free number under the soft limit: a limit just above
    // the count of open ones leaves a few free (a few more if some are numbered above it).
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let (_, hard) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    rlimit::setrlimit(Resource::NOFILE, (open + SPARE).min(hard), hard).unwrap();

    println!("listening on {addr}");
    for line in std::io::stdin().lock().lines().map_while(Result::ok) {
        if line == "accepted" {
            println!("accepted {}", server.stats().accepted);
        }
    }
    runtime.shutdown().unwrap();
}
