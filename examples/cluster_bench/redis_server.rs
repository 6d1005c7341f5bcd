//! The benchmark's own `redis-server`: on a free port of 127.0.0.1, no persistence, in a
//! directory of its own; stopped when dropped.
//!
//! It runs under a small `sh` that holds a pipe from this process on its stdin and kills the
//! server (and removes its directory) once that pipe closes: when this process ends,
//! whichever way (an error, a panic, a signal), the pipe closes and the server goes with it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the wrapper may take to stop the server once told to.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// Starts `redis-server "$@"` with its directory `$1` in the background, says its pid, kills it
/// when stdin ends and removes the directory. Its stdin is /dev/null (a background job's), so
/// that it never reads the parent's pipe.
const WRAPPER: &str = r#"dir=$1
shift
redis-server "$@" --dir "$dir" </dev/null &
r=$!
echo "pid $r"
read line
kill "$r" 2>/dev/null
wait "$r"
rm -rf -- "$dir""#;

/// A running private `redis-server`.
#[derive(Debug)]
pub(crate) struct RedisServer {
    shell: Child,
    stdin: Option<ChildStdin>,
    /// The server's own pid (not the wrapper's), for its CPU time.
    pub(crate) pid: u32,
    pub(crate) port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts one and waits (bounded) until it takes connections.
    pub(crate) fn start() -> Result<RedisServer, String> {
        let version = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !version.is_ok_and(|s| s.success()) {
            return Err("redis-server is not installed (or not on PATH)".into());
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("finding a free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "corepush-cluster-bench-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(&dir)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting redis-server: {e}"))?;
        let stdin = shell.stdin.take();
        let stdout = shell.stdout.take();
        let mut server = RedisServer {
            shell,
            stdin,
            pid: 0,
            port,
            dir,
        };
        let stdout = stdout.ok_or("no stdout pipe to redis-server")?;
        // The first line is the wrapper's; then the server's log, which says when it is ready.
        // The pipe is drained for the server's whole life.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
            if let Some(first) = lines.next() {
                let _ = tx.send(first);
            }
            for line in lines {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(line);
                }
            }
        });
        let first = rx
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| "redis-server did not start")?;
        server.pid = first
            .strip_prefix("pid ")
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line from the wrapper: {first:?}"))?;
        rx.recv_timeout(START_TIMEOUT)
            .map_err(|_| format!("redis-server did not get ready within {START_TIMEOUT:?}"))?;
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(server.addr()).is_err() {
            if Instant::now() >= deadline {
                return Err("redis-server never took connections".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(server)
    }

    /// The URL clients connect with.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // Closing the pipe tells the wrapper to stop the server and wait for it.
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.shell.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    // The wrapper is stuck: stop both by pid (never by name).
                    if self.pid != 0 {
                        let _ = Command::new("kill")
                            .args(["-9", &self.pid.to_string()])
                            .status();
                    }
                    let _ = self.shell.kill();
                    let _ = self.shell.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
