//! The servers running in this process, by runtime: what [`get_server`](crate::get_server)
//! looks names up in. Runtimes add their servers once started and remove them once joined.

use parking_lot::RwLock;

use crate::facade::Server;
use crate::mailbox::current_worker_runtime;

/// Every running server, with the id of its runtime, in the order the runtimes started.
static RUNNING: RwLock<Vec<(u64, Server)>> = RwLock::new(Vec::new());

/// Adds a started runtime's servers.
pub(crate) fn register(runtime: u64, servers: &[Server]) {
    let mut running = RUNNING.write();
    running.extend(servers.iter().map(|s| (runtime, s.clone())));
}

/// Removes a runtime's servers once it has stopped.
pub(crate) fn unregister(runtime: u64) {
    RUNNING.write().retain(|(rt, _)| *rt != runtime);
}

/// A running server by name, or with `None` the default (first) server of a runtime. On a
/// core loop thread, the servers of that core loop's runtime come first; elsewhere the most
/// recently started runtime that has the name.
pub(crate) fn find(name: Option<&str>) -> Option<Server> {
    let running = RUNNING.read();
    let pick = |it: &mut dyn Iterator<Item = &(u64, Server)>| -> Option<Server> {
        match name {
            Some(_) => it.last().map(|(_, s)| s.clone()),
            None => {
                // The first server of the chosen runtime.
                let all: Vec<&(u64, Server)> = it.collect();
                let rt = all.last()?.0;
                all.into_iter()
                    .find(|(r, _)| *r == rt)
                    .map(|(_, s)| s.clone())
            }
        }
    };
    // Within one runtime (`Some`) or across all of them (`None`).
    let find = |runtime: Option<u64>| {
        let matches = |(rt, s): &&(u64, Server)| {
            name.is_none_or(|n| s.name() == n) && runtime.is_none_or(|r| r == *rt)
        };
        pick(&mut running.iter().filter(matches))
    };
    current_worker_runtime()
        .and_then(|rt| find(Some(rt)))
        .or_else(|| find(None))
}
