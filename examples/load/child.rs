//! The server under test as a child process, and what /proc says about a process.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a child may take to print its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a child may take to answer `stats`.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);
/// What a child that counts its writes prints when asked (`stats` on its stdin):
/// `stats FRAMES WRITES`.
pub(crate) const STATS_PREFIX: &str = "stats ";

/// A running server child; killed and reaped when dropped, whatever happened meanwhile.
/// Should this process die without unwinding (a signal), the child sees its stdin close and
/// exits by itself.
pub(crate) struct ServerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The child's `stats` lines.
    stats: mpsc::Receiver<String>,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    /// The child's first stdout line (its `listening on` line).
    pub(crate) line: String,
    /// The child left a `stats` question unanswered: it does not count, and is not asked again.
    silent: bool,
}

impl ServerChild {
    /// Re-executes this program as `--serve KIND --port 0 --workers N EXTRA…` and waits (bounded)
    /// for the first stdout line, `listening on ws://127.0.0.1:PORT/…`.
    pub(crate) fn start(
        kind: &str,
        workers: usize,
        extra: &[String],
    ) -> Result<Self, Box<dyn Error>> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        Self::start_from(&exe, kind, workers, extra)
    }

    /// As [`ServerChild::start`], running `exe` (another build of this program) instead.
    pub(crate) fn start_from(
        exe: &std::path::Path,
        kind: &str,
        workers: usize,
        extra: &[String],
    ) -> Result<Self, Box<dyn Error>> {
        let mut child = Command::new(exe)
            .args([
                "--serve",
                kind,
                "--port",
                "0",
                "--watch-stdin",
                "1",
                "--workers",
            ])
            .arg(workers.to_string())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawning the {kind} server ({}): {e}", exe.display()))?;
        let pid = child.id();
        let (stats_tx, stats) = mpsc::channel();
        let mut guard = ServerChild {
            stdin: child.stdin.take(),
            stats,
            child,
            pid,
            port: 0,
            line: String::new(),
            silent: false,
        };
        let stdout = guard
            .child
            .stdout
            .take()
            .ok_or("no stdout pipe to the child")?;
        let (tx, rx) = mpsc::channel();
        let name = kind.to_owned();
        // Keeps the pipe drained for the child's whole life; later lines go to our stderr.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for line in lines.map_while(Result::ok) {
                match line.strip_prefix(STATS_PREFIX) {
                    Some(stats) => {
                        let _ = stats_tx.send(stats.to_owned());
                    }
                    None => eprintln!("[{name} server] {line}"),
                }
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return Err(format!("the {kind} server exited before listening").into()),
            Err(_) => {
                return Err(
                    format!("the {kind} server did not listen within {START_TIMEOUT:?}").into(),
                );
            }
        };
        guard.port = line
            .split_once("ws://127.0.0.1:")
            .and_then(|(_, rest)| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("unexpected first line from the {kind} server: {line:?}"))?;
        guard.line = line;
        Ok(guard)
    }

    /// Frames queued to clients and the write calls that carried them, so far, from a child
    /// that counts them (corepush); `None` from one that does not answer within 2 s, and
    /// at once from then on.
    pub(crate) fn frames_and_writes(&mut self) -> Option<(u64, u64)> {
        if self.silent {
            return None;
        }
        while self.stats.try_recv().is_ok() {}
        let stdin = self.stdin.as_mut()?;
        stdin
            .write_all(b"stats\n")
            .and_then(|()| stdin.flush())
            .ok()?;
        let Ok(line) = self.stats.recv_timeout(STATS_TIMEOUT) else {
            self.silent = true;
            return None;
        };
        let (frames, writes) = line.split_once(' ')?;
        Some((frames.parse().ok()?, writes.parse().ok()?))
    }

    /// User plus system CPU time of the child so far, in clock ticks.
    pub(crate) fn cpu_ticks(&self) -> Result<u64, String> {
        cpu_ticks(&self.pid.to_string())
    }

    /// The child's resident set once two readings 200 ms apart agree (within 64 KiB), at
    /// most ~3 s of trying.
    pub(crate) fn settled_rss(&self) -> Result<u64, String> {
        let mut last = rss_bytes(self.pid)?;
        for _ in 0..15 {
            std::thread::sleep(Duration::from_millis(200));
            let now = rss_bytes(self.pid)?;
            if now.abs_diff(last) <= 64 * 1024 {
                return Ok(now);
            }
            last = now;
        }
        eprintln!("note: the server's RSS did not settle within 3 s; using the last reading");
        Ok(last)
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: exits the process once stdin reaches its end, i.e. once the parent is gone.
pub(crate) fn exit_with_parent() {
    watch_stdin(None);
}

/// In the child: as [`exit_with_parent`], and answers each `stats` line on stdin with
/// `stats FRAMES WRITES` on stdout, from `count`.
pub(crate) fn exit_with_parent_answering(count: impl Fn() -> (u64, u64) + Send + 'static) {
    watch_stdin(Some(Box::new(count)));
}

/// Reads stdin's lines until its end, answering `stats` where it can count, then exits.
fn watch_stdin(count: Option<Box<dyn Fn() -> (u64, u64) + Send>>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if let (Some(count), "stats") = (&count, line.trim()) {
                let (frames, writes) = count();
                println!("{STATS_PREFIX}{frames} {writes}");
            }
        }
        std::process::exit(0);
    });
}

/// utime + stime (fields 14 and 15 of /proc/PID/stat) of `pid` ("self" for this process).
pub(crate) fn cpu_ticks(pid: &str) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let field = |n: usize| -> Result<u64, String> {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{path}: no field {n}"))
    };
    Ok(field(14)? + field(15)?)
}

/// The whole machine's busy and total CPU time (all CPUs, clock ticks) from /proc/stat.
pub(crate) fn machine_ticks() -> Result<(u64, u64), String> {
    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
    let line = stat.lines().next().unwrap_or_default();
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    if v.len() < 8 {
        return Err(format!("/proc/stat: unexpected first line {line:?}"));
    }
    // user nice system idle iowait irq softirq steal
    let idle = v[3] + v[4];
    Ok((v.iter().sum::<u64>() - idle, v.iter().sum()))
}

/// VmRSS of a process, in bytes.
pub(crate) fn rss_bytes(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| format!("{path}: no VmRSS"))
}

/// Clock ticks per second, from `getconf CLK_TCK`; 100 (Linux's usual value) if that fails.
pub(crate) fn clock_ticks() -> (u64, bool) {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .map_or((100, false), |t| (t, true))
}

/// Raises the open-file limit, soft and hard, as far as /proc/sys/fs/nr_open allows (the
/// hard limit rises only with CAP_SYS_RESOURCE; without it the soft limit goes up to the hard
/// one). The new soft limit, and whether the hard limit could be raised.
pub(crate) fn raise_nofile() -> Result<(u64, bool), String> {
    use rlimit::Resource;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let hard_raised = rlimit::setrlimit(Resource::NOFILE, nr_open, nr_open).is_ok();
    if !hard_raised {
        rlimit::increase_nofile_limit(u64::MAX)
            .map_err(|e| format!("raising RLIMIT_NOFILE: {e}"))?;
    }
    rlimit::getrlimit(Resource::NOFILE)
        .map(|(soft, _)| (soft, hard_raised))
        .map_err(|e| format!("reading RLIMIT_NOFILE: {e}"))
}

/// How many CPUs this machine has (`nproc`).
pub(crate) fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A child that listens (prints the line) but never counts: it keeps whatever it is told,
    /// and its stdout stays open, so a question waits out the timeout as with the floor.
    fn silent_child(dir: &std::path::Path) -> (ServerChild, std::path::PathBuf) {
        let told = dir.join("told");
        let exe = dir.join("silent-server");
        std::fs::write(
            &exe,
            format!(
                "#!/bin/sh\necho 'listening on ws://127.0.0.1:1/'\ncat > '{}'\n",
                told.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        (
            ServerChild::start_from(&exe, "floor", 1, &[]).unwrap(),
            told,
        )
    }

    #[test]
    fn a_server_that_leaves_the_question_unanswered_is_not_asked_again() {
        let dir = std::env::temp_dir().join(format!("load-child-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut child, told) = silent_child(&dir);
        assert_eq!(child.port, 1);
        assert_eq!(child.frames_and_writes(), None);
        assert_eq!(child.frames_and_writes(), None);
        // Closing its stdin ends `cat` and the shell, which have then kept everything told.
        drop(child.stdin.take());
        let _ = child.child.wait();
        let asked = std::fs::read_to_string(&told).unwrap();
        drop(child);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(asked, "stats\n", "asked once, not twice");
    }
}
