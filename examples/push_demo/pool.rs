//! The demo's own threads for the ops that wait for other instances of a cluster, which a core
//! loop must never do: each takes a request the core loop handed over, makes its call, and
//! pushes the reply to the client that sent it.

use std::thread;

use corepush::{ClientId, Server};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde_json::{Map, Value};

use super::args::Args;
use super::history::history_op;
use super::ops::{Failure, facade_op};
use super::reply;

/// Requests waiting for a thread; past it a request is refused at once (a core loop never
/// waits for room either).
const QUEUE: usize = 1024;

/// A request handed over by a core loop.
pub(crate) struct Job {
    /// The facade the op goes through (confined by `scope`, excluding `except`).
    pub(crate) server: Server,
    /// The plain facade, for the reply: `except` must not keep it from its client.
    pub(crate) replies: Server,
    /// Who sent the request.
    pub(crate) client: ClientId,
    /// The request's `id`, echoed in the reply.
    pub(crate) id: Value,
    pub(crate) request: Map<String, Value>,
}

/// The sending end of the pool; its threads end once every clone of it is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    tx: Sender<Job>,
}

impl Pool {
    /// Starts `threads` threads.
    pub(crate) fn start(threads: usize) -> Pool {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        for n in 0..threads {
            let rx = rx.clone();
            let spawned = thread::Builder::new()
                .name(format!("push_demo-cluster-{n}"))
                .spawn(move || run(&rx));
            if let Err(e) = spawned {
                log::error!("push_demo: cannot start a cluster thread: {e}");
            }
        }
        Pool { tx }
    }

    /// Hands a request over, or says why it cannot be.
    pub(crate) fn submit(&self, job: Job) -> Result<(), String> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => {
                "busy: too many cluster-wide ops are waiting; try again".to_owned()
            }
            TrySendError::Disconnected(_) => "the server is stopping".to_owned(),
        })
    }
}

fn run(rx: &Receiver<Job>) {
    for job in rx {
        // One thread makes the op's pushes and then its reply, so they arrive in that order.
        let args = Args(&job.request);
        let outcome = history_op(&args, &job.replies, job.client)
            .unwrap_or_else(|| facade_op(&args, &job.server, true));
        let text = reply(job.id, outcome.map_err(Failure::text)).to_string();
        if let Err(e) = job.replies.send_raw(&text, job.client) {
            log::debug!("reply to {} failed: {e}", job.client);
        }
    }
}
