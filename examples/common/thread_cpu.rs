//! A core loop's own CPU time, read from `/proc/self/task` (Linux), for the examples that
//! divide it by the deliveries they count; and the median of their runs.

use std::collections::HashMap;
use std::error::Error;
use std::time::{Duration, Instant};

/// The id of this process's thread of that name, waiting for it until `deadline` (a core loop
/// names its thread once it runs).
pub(crate) fn wait_for_thread(name: &str, deadline: Instant) -> Result<u32, Box<dyn Error>> {
    loop {
        match thread_id(name) {
            Some(tid) => return Ok(tid),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
            None => return Err(format!("no thread named {name}").into()),
        }
    }
}

/// The id of this process's thread of that name.
fn thread_id(name: &str) -> Option<u32> {
    let names: HashMap<u32, String> = std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(|e| {
            let tid = e.ok()?.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).ok()?;
            Some((tid, comm.trim().to_owned()))
        })
        .collect();
    names.into_iter().find(|(_, n)| n == name).map(|(t, _)| t)
}

/// A thread's time on CPU, in nanoseconds.
pub(crate) fn cpu_ns(tid: u32) -> Result<u64, Box<dyn Error>> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))?;
    Ok(text
        .split_whitespace()
        .next()
        .ok_or("empty schedstat")?
        .parse()?)
}

/// The median of the runs (the upper one of an even count).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
