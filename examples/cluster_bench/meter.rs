//! CPU time of the processes under test, read from /proc.
//!
//! A single push costs a few microseconds of CPU, far below the 10 ms clock tick that
//! /proc/PID/stat counts in, so a process's CPU time is the sum over its threads of
//! /proc/PID/task/TID/schedstat's first field: nanoseconds on a CPU, user and system alike
//! (the scheduler's exact count, which /proc/PID/stat rounds to ticks). Where schedstat is
//! missing, the ticks of /proc/PID/stat are used instead.
//!
//! Its third field counts how often the thread was put on a CPU: the wake-ups of the
//! servers' threads (a thread that sleeps between pushes is put on a CPU once per wake-up,
//! plus any preemption).

use std::time::Instant;

use crate::child;

/// Which processes a [`Meter`] reads: the servers measured, Redis, and every other process
/// of this benchmark (for the share of the machine that others took meanwhile).
#[derive(Debug, Clone)]
pub(crate) struct Meter {
    pub(crate) servers: Vec<u32>,
    pub(crate) redis: u32,
    /// Every child of the benchmark (servers included) and Redis.
    pub(crate) ours: Vec<u32>,
    /// Clock ticks per second.
    pub(crate) tck: u64,
}

/// One reading of a [`Meter`].
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// Per server: CPU time (ns) and how often its threads were put on a CPU.
    each: Vec<(u64, u64)>,
    servers: u64,
    servers_runs: u64,
    redis: u64,
    redis_runs: u64,
    ours: u64,
    me_ticks: u64,
    machine_ticks: u64,
    at: Instant,
}

/// What happened between two readings (or over several such intervals, added up).
#[derive(Debug, Clone, Default)]
pub(crate) struct Usage {
    /// Per server measured, in the [`Meter`]'s order: CPU time (ns) and wake-ups.
    pub(crate) each: Vec<(u64, u64)>,
    /// CPU time of the servers measured, ns.
    pub(crate) servers_ns: u64,
    /// CPU time of Redis, ns.
    pub(crate) redis_ns: u64,
    /// How often the servers' threads, and Redis', were put on a CPU (0 without schedstat).
    pub(crate) servers_runs: u64,
    pub(crate) redis_runs: u64,
    /// Busy time of the whole machine, and of this benchmark's processes, ns.
    machine_ns: f64,
    ours_ns: f64,
    wall_ns: f64,
}

impl Usage {
    /// CPU of everything else on the machine, in percent of one core.
    pub(crate) fn others_pct(&self) -> f64 {
        (100.0 * (self.machine_ns - self.ours_ns) / self.wall_ns.max(1.0)).max(0.0)
    }
}

impl Meter {
    pub(crate) fn read(&self) -> Result<Reading, String> {
        let sum = |pids: &[u32]| -> Result<(u64, u64), String> {
            pids.iter().try_fold((0, 0), |(ns, runs), &p| {
                let (n, r) = cpu(p, self.tck)?;
                Ok((ns + n, runs + r))
            })
        };
        let each = self
            .servers
            .iter()
            .map(|&p| cpu(p, self.tck))
            .collect::<Result<Vec<_>, _>>()?;
        let (servers, servers_runs) = each
            .iter()
            .fold((0, 0), |(ns, runs), (n, r)| (ns + n, runs + r));
        let (redis, redis_runs) = cpu(self.redis, self.tck)?;
        Ok(Reading {
            each,
            servers,
            servers_runs,
            redis,
            redis_runs,
            ours: sum(&self.ours)?.0,
            me_ticks: child::cpu_ticks("self")?,
            machine_ticks: child::machine_ticks()?.0,
            at: Instant::now(),
        })
    }

    /// The usage from `before` to now.
    pub(crate) fn since(&self, before: &Reading) -> Result<Usage, String> {
        let now = self.read()?;
        Ok(self.between(before, &now))
    }

    fn between(&self, a: &Reading, b: &Reading) -> Usage {
        let tick_ns = 1e9 / self.tck as f64;
        let me = (b.me_ticks - a.me_ticks) as f64 * tick_ns;
        Usage {
            each: a
                .each
                .iter()
                .zip(&b.each)
                .map(|(x, y)| (y.0.saturating_sub(x.0), y.1.saturating_sub(x.1)))
                .collect(),
            servers_ns: b.servers.saturating_sub(a.servers),
            redis_ns: b.redis.saturating_sub(a.redis),
            servers_runs: b.servers_runs.saturating_sub(a.servers_runs),
            redis_runs: b.redis_runs.saturating_sub(a.redis_runs),
            machine_ns: (b.machine_ticks - a.machine_ticks) as f64 * tick_ns,
            ours_ns: b.ours.saturating_sub(a.ours) as f64 + me,
            wall_ns: b.at.duration_since(a.at).as_nanos() as f64,
        }
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        if self.each.is_empty() {
            self.each = vec![(0, 0); other.each.len()];
        }
        for (mine, theirs) in self.each.iter_mut().zip(&other.each) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        self.servers_ns += other.servers_ns;
        self.redis_ns += other.redis_ns;
        self.servers_runs += other.servers_runs;
        self.redis_runs += other.redis_runs;
        self.machine_ns += other.machine_ns;
        self.ours_ns += other.ours_ns;
        self.wall_ns += other.wall_ns;
    }
}

/// CPU time of every thread of `pid` so far, in ns, and how often they were put on a CPU.
fn cpu(pid: u32, tck: u64) -> Result<(u64, u64), String> {
    match schedstat(pid) {
        Some(both) => Ok(both),
        None => Ok((
            child::cpu_ticks(&pid.to_string())? * 1_000_000_000 / tck.max(1),
            0,
        )),
    }
}

fn schedstat(pid: u32) -> Option<(u64, u64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut ns, mut runs) = (0, 0);
    for task in tasks {
        let path = task.ok()?.path().join("schedstat");
        // A thread that ended since the listing counts nothing more.
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue;
        };
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        ns += fields.next()??;
        runs += fields.nth(1)??;
    }
    Some((ns, runs))
}
