//! The parent's side: the server child and its control channel, what /proc says about it,
//! and the thread that connects churn's new clients while the main loop keeps reading.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::pool::{Ends, Pool, STREAMS};
use crate::{Opts, Res, child, client};

/// How long the child may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What /proc says about the server at one moment, and how many clients this side had.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) clients: usize,
    /// VmRSS.
    pub(crate) rss: u64,
    /// VmHWM: the highest VmRSS so far.
    pub(crate) peak: u64,
    pub(crate) fds: usize,
}

/// The child's `stats` answer, key by key.
#[derive(Debug, Clone, Default)]
pub(crate) struct StatsLine(BTreeMap<String, u64>);

impl StatsLine {
    /// A counter (0 if the line lacked it).
    pub(crate) fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }
}

/// The server child; killed and reaped when dropped, whatever happened meanwhile.
pub(crate) struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub(crate) pid: u32,
    pub(crate) port: u16,
}

impl ServerProcess {
    /// Re-executes this program as `--serve` and waits (bounded) for its `listening on` line.
    pub(crate) fn start(o: &Opts) -> Res<Self> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .arg("--serve")
            .args(["--workers", &o.workers.to_string()])
            .args(["--push-ms", &o.push_ms.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning the server: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe to the server")?;
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        // Keeps the pipe drained for the child's whole life.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let pid = child.id();
        let mut server = ServerProcess {
            child,
            stdin,
            lines,
            pid,
            port: 0,
        };
        let line = server.expect("listening on", START_TIMEOUT)?;
        server.port = line
            .split_once("ws://127.0.0.1:")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("unexpected first line from the server: {line:?}"))?;
        Ok(server)
    }

    /// Sends a control command and waits for the answer that starts with `answer`.
    pub(crate) fn ask(&mut self, command: &str, answer: &str, timeout: Duration) -> Res<String> {
        let stdin = self.stdin.as_mut().ok_or("the server's stdin is closed")?;
        writeln!(stdin, "{command}").map_err(|e| format!("to the server: {e}"))?;
        stdin.flush().map_err(|e| format!("to the server: {e}"))?;
        self.expect(answer, timeout)
    }

    /// The server's counters.
    pub(crate) fn stats(&mut self) -> Res<StatsLine> {
        let line = self.ask("stats", "stats ", Duration::from_secs(10))?;
        Ok(StatsLine(
            line.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect(),
        ))
    }

    /// The server's resident memory and open descriptors now.
    pub(crate) fn sample(&self, clients: usize) -> Res<Sample> {
        let dir = format!("/proc/{}/fd", self.pid);
        let fds = std::fs::read_dir(&dir)
            .map_err(|e| format!("{dir}: {e}"))?
            .count();
        Ok(Sample {
            clients,
            rss: child::rss_bytes(self.pid)?,
            peak: peak_rss(self.pid)?,
            fds,
        })
    }

    /// Keeps the clients going until the server counts `n` connections (at most `timeout`).
    pub(crate) fn wait_connections(
        &mut self,
        n: u64,
        pool: &mut Pool,
        timeout: Duration,
    ) -> Res<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.stats()?.get("connections");
            if now == n {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the server has {now} connections, not {n}, after {timeout:?}"
                )
                .into());
            }
            let until = Instant::now() + Duration::from_millis(200);
            while Instant::now() < until {
                pool.pump(Duration::from_millis(10))?;
            }
        }
    }

    /// Asks the server to shut down and waits for it to exit (at most `timeout`).
    pub(crate) fn exit(mut self, timeout: Duration) -> Res<()> {
        self.ask("exit", "exited", timeout)?;
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    return Err(format!("the server exited with {status}").into());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("the server did not exit in time".into())
    }

    /// Waits for a line from the child that starts with `prefix`; other lines are shown.
    fn expect(&mut self, prefix: &str, timeout: Duration) -> Res<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(line) => eprintln!("[server] {line}"),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("no {prefix:?} from the server within {timeout:?}").into());
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(format!("the server exited before {prefix:?}").into());
                }
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// VmHWM of a process (its peak resident set), in bytes.
fn peak_rss(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("{path}: no VmHWM"))
}

/// The numbers in a `stopped a=A g=G f=F …` answer.
pub(crate) fn parse_ends(line: &str) -> Res<Ends> {
    let mut ends = [0; 3];
    for (k, s) in STREAMS.iter().enumerate() {
        let key = (*s as char).to_string();
        ends[k] = field(line, &key).ok_or_else(|| format!("no {key}= in {line:?}"))?;
    }
    Ok(ends)
}

/// The number after `key=` in a line of `key=value` words.
pub(crate) fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// Clients connected in a batch: the first global index, how many were asked for, and the
/// sockets or why not.
type Batch = (usize, usize, Result<Vec<TcpStream>, String>);

/// Handshakes in parallel per batch: each waits on a busy server's loop, so throughput comes
/// from having several in flight.
const CONNECT_THREADS: usize = 64;

/// A thread that connects batches of clients (blocking handshakes, several at once) so that
/// the main loop keeps reading meanwhile.
pub(crate) struct Connector {
    requests: Option<Sender<(usize, usize)>>,
    done: Receiver<Batch>,
    /// Batches asked for and not collected yet.
    pending: usize,
    /// Clients in those batches.
    in_flight: usize,
    thread: Option<JoinHandle<()>>,
}

impl Connector {
    pub(crate) fn start(port: u16) -> Self {
        let (requests, rx) = mpsc::channel::<(usize, usize)>();
        let (tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            // Ends when the sender is dropped.
            for (first, count) in rx {
                let deadline = Instant::now() + Duration::from_secs(30);
                let batch = client::connect(port, first, count, CONNECT_THREADS, deadline);
                if tx.send((first, count, batch)).is_err() {
                    break;
                }
            }
        });
        Connector {
            requests: Some(requests),
            done,
            pending: 0,
            in_flight: 0,
            thread: Some(thread),
        }
    }

    /// Asks for `count` clients numbered from `first`.
    pub(crate) fn request(&mut self, first: usize, count: usize) {
        if count == 0 {
            return;
        }
        if let Some(r) = &self.requests
            && r.send((first, count)).is_ok()
        {
            self.pending += 1;
            self.in_flight += count;
        }
    }

    /// Clients asked for and not collected yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands the batches connected so far to the pool.
    pub(crate) fn collect(&mut self, pool: &mut Pool) -> Res<()> {
        while let Ok((first, count, batch)) = self.done.try_recv() {
            self.pending -= 1;
            self.in_flight -= count;
            take(pool, first, batch)?;
        }
        Ok(())
    }

    /// Waits for the batches in flight (keeping the clients going), then stops the thread.
    pub(crate) fn finish(&mut self, pool: &mut Pool, timeout: Duration) -> Res<()> {
        drop(self.requests.take());
        let deadline = Instant::now() + timeout;
        while self.pending > 0 {
            if Instant::now() >= deadline {
                return Err(format!("{} connect batches still pending", self.pending).into());
            }
            pool.pump(Duration::from_millis(10))?;
            self.collect(pool)?;
        }
        if let Some(t) = self.thread.take() {
            t.join().map_err(|_| "the connect thread panicked")?;
        }
        Ok(())
    }
}

/// Adds a batch's clients to the pool; a failed batch counts as a problem.
fn take(pool: &mut Pool, first: usize, batch: Result<Vec<TcpStream>, String>) -> Res<()> {
    match batch {
        Ok(streams) => {
            for (i, s) in streams.into_iter().enumerate() {
                pool.add(s, first + i)?;
            }
        }
        Err(e) => pool.connect_failed(format!("connecting clients from {first}: {e}")),
    }
    Ok(())
}
