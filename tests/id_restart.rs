//! Client ids do not repeat across restarts: a process started after another one exited hands
//! out ids the first never did, each above every id the first gave on the same core loop.
//!
//! Each run of the server is a child process (this test binary again, running the ignored
//! `server_child` test), so that the second run starts with nothing left of the first in
//! memory, as a restarted server does.
mod util;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use corepush::{ClientId, Runtime, ServerConfig, WorkerId};
use util::*;

/// Set in the child's environment: the ignored test then runs as the server.
const CHILD: &str = "COREPUSH_ID_RESTART_CHILD";
/// Core loops of each run.
const WORKERS: usize = 2;
/// Clients kept on each core loop of each run.
const PER_WORKER: usize = 3;

/// Lines of a child's stdout, read on their own thread to the end, so that the child never
/// writes into a closed pipe once nobody listens any more.
fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Starts a server child; returns it with its stdin (closing it stops the child) and its
/// address.
fn start_child() -> (Child, ChildStdin, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args(["--exact", "server_child", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the server child");
    let out = lines(child.stdout.take().expect("the child's stdout"));
    let stdin = child.stdin.take().expect("the child's stdin");
    let deadline = std::time::Instant::now() + WAIT;
    let addr = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = out
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no address from the server child: {e}"));
        // The harness's `test server_child ... ` may begin the same line.
        if let Some((_, addr)) = line.split_once("listening on ") {
            break addr.parse().expect("the child's address");
        }
    };
    (child, stdin, addr)
}

/// One run: a server child, [`PER_WORKER`] clients on each of its core loops, each asked for
/// its id; then the clients hang up and the child exits. Returns the ids by core loop.
fn run_once() -> BTreeMap<WorkerId, Vec<ClientId>> {
    let (mut child, stdin, addr) = start_child();
    let mut ids: BTreeMap<WorkerId, Vec<ClientId>> = BTreeMap::new();
    for clients in clients_by_worker(addr, WORKERS, PER_WORKER) {
        for mut c in clients {
            // The id the server reports now, not only the one learnt on connecting.
            let id: ClientId = c.ask("id").parse().expect("the reply to `id`");
            assert_eq!(id, c.id);
            ids.entry(id.worker()).or_default().push(id);
            c.hang_up();
        }
    }
    drop(stdin);
    let status = child.wait().expect("wait for the server child");
    assert!(status.success(), "the server child failed: {status}");
    ids
}

#[test]
fn ids_of_a_restarted_process_are_new_and_above_the_previous_ones() {
    let first = run_once();
    let second = run_once();

    let seen: HashSet<ClientId> = first.values().flatten().copied().collect();
    for id in second.values().flatten() {
        assert!(
            !seen.contains(id),
            "id {id:?} was handed out again after a restart"
        );
    }
    for w in 0..WORKERS {
        let w = WorkerId(w as u16);
        let before = first[&w].iter().max().expect("ids of the first run");
        let after = second[&w].iter().min().expect("ids of the second run");
        assert!(
            after > before,
            "core loop {w}: the restart began at {after:?}, not above {before:?}"
        );
    }
}

/// The server half of the test above: a WebSocket runtime of [`WORKERS`] core loops with the
/// command handler. Prints `listening on ADDR` and stops when stdin closes.
#[test]
#[ignore = "the server half of the test above, run in its own process"]
fn server_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = Runtime::builder()
        .workers(WORKERS)
        .server(ServerConfig::websocket("restart", "127.0.0.1:0".parse().unwrap()).handler(|_| Cmd))
        .start()
        .unwrap();
    println!("listening on {}", runtime.local_addr("restart").unwrap());
    for _ in std::io::stdin().lock().lines() {}
    runtime.shutdown().unwrap();
}
