//! The server under test, in the child process: a corepush WebSocket server whose clients
//! each bind a flag and join two groups, a pusher thread, and a control channel on stdin.
//!
//! Three sequences are pushed in turn, each numbered on its own: `a:N` to everyone
//! (`send_raw_to_all`), `g:N` to every group (`send_raw_to_group` naming all six groups, so
//! each client is named twice and must get it once), `f:N` to every flag (`send_raw_by_flag`).
//! A client's membership only grows while it is connected, so each sequence must reach it
//! without a gap from the first number it sees to the last one pushed.
//!
//! Control lines on stdin, answered by one line on stdout:
//!
//! * `push` starts the pusher: `pushing`;
//! * `stop` stops it and sends `end:a=A,g=G,f=F` (the last numbers) to everyone:
//!   `stopped a=A g=G f=F queued=Q` (Q: the sum of the counts the sends returned);
//! * `stats`: `stats pushed=P key=value …` with the server's [`corepush::Stats`] and what its
//!   registries hold (non-empty groups, group members, bound flags, listed connections);
//! * `exit` or end of input: a graceful shutdown, then `exited`.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corepush::{Context, Handler, Message, Runtime, Server, ServerConfig, ShutdownHandle};

use crate::Res;

/// The server's name in its runtime.
const NAME: &str = "soak";
/// Flags clients bind (several clients share one, as devices of one user do).
const FLAGS: u64 = 64;
/// Groups: every client is in one of the four and in one of even/odd.
const GROUPS: [&str; 6] = ["g0", "g1", "g2", "g3", "even", "odd"];

/// The child's main: serves until `exit`, end of input or a signal.
pub(crate) fn serve(workers: usize, push_every: Duration) -> Res<()> {
    let config = ServerConfig::websocket(NAME, SocketAddr::from(([127, 0, 0, 1], 0)));
    let runtime = Runtime::builder()
        .workers(workers)
        .server(config.handler(|_| Soak { opened: 0 }))
        .start()?;
    let addr = runtime.local_addr(NAME).ok_or("no local address")?;
    let server = runtime.server(NAME).ok_or("no server handle")?;
    println!("listening on ws://{addr}/ (workers={workers})");
    let shutdown = runtime.shutdown_handle();
    let control = std::thread::spawn(move || control(server, shutdown, push_every));
    let result = runtime.run();
    // The control thread returns once it has seen `exit` or end of input.
    let _ = control.join();
    say("exited");
    Ok(result?)
}

/// One per core loop.
struct Soak {
    /// Connections this core loop has opened, to spread them over flags and groups.
    opened: u64,
}

impl Handler for Soak {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.opened += 1;
        let n = self.opened;
        ctx.bind(&format!("u{}", n % FLAGS));
        ctx.join(GROUPS[(n % 4) as usize]);
        ctx.join(if n % 2 == 0 { "even" } else { "odd" });
    }

    fn on_message(&mut self, _ctx: &mut Context<'_>, _message: Message<'_>) {
        // Clients only answer pings, which the runtime handles.
    }
}

/// The pusher thread and its counters.
struct Pusher {
    stop: Arc<AtomicBool>,
    /// Last number pushed per sequence (a, g, f).
    last: Arc<[AtomicU64; 3]>,
    /// Sum of the counts returned by the sends.
    queued: Arc<AtomicU64>,
    thread: JoinHandle<()>,
}

fn control(server: Server, shutdown: ShutdownHandle, push_every: Duration) {
    let mut pusher: Option<Pusher> = None;
    let mut pushed = [0u64; 3];
    let mut queued = 0u64;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "push" if pusher.is_none() => {
                pusher = Some(start_pusher(server.clone(), push_every));
                say("pushing");
            }
            "stop" => {
                if let Some(p) = pusher.take() {
                    p.stop.store(true, Ordering::Relaxed);
                    let _ = p.thread.join();
                    pushed = [0, 1, 2].map(|i| p.last[i].load(Ordering::Relaxed));
                    queued = p.queued.load(Ordering::Relaxed);
                }
                let [a, g, f] = pushed;
                let end = format!("end:a={a},g={g},f={f}");
                let n = server.send_raw_to_all(end.as_str()).unwrap_or(0);
                say(&format!(
                    "stopped a={a} g={g} f={f} queued={queued} end={n}"
                ));
            }
            "stats" => {
                let now = match &pusher {
                    Some(p) => [0, 1, 2].map(|i| p.last[i].load(Ordering::Relaxed)),
                    None => pushed,
                };
                say(&stats_line(&server, now.iter().sum()));
            }
            "exit" => break,
            other => say(&format!("error unknown command {other:?}")),
        }
    }
    if let Some(p) = pusher {
        p.stop.store(true, Ordering::Relaxed);
        let _ = p.thread.join();
    }
    shutdown.shutdown();
}

/// Pushes `a:N`, `g:N`, `f:N` in turn, one every `every`, until stopped. When it falls
/// behind it catches up by at most one second's worth, so it never bursts without bound.
fn start_pusher(server: Server, every: Duration) -> Pusher {
    let stop = Arc::new(AtomicBool::new(false));
    let last = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let queued = Arc::new(AtomicU64::new(0));
    let (s, l, q) = (stop.clone(), last.clone(), queued.clone());
    let flags: Vec<String> = (0..FLAGS).map(|i| format!("u{i}")).collect();
    let thread = std::thread::spawn(move || {
        let mut next = Instant::now();
        let mut turn = 0usize;
        while !s.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now < next {
                std::thread::sleep((next - now).min(Duration::from_millis(50)));
                continue;
            }
            next = (next + every).max(now - Duration::from_secs(1));
            let k = turn % 3;
            turn += 1;
            let n = l[k].load(Ordering::Relaxed) + 1;
            let sent = match k {
                0 => server.send_raw_to_all(format!("a:{n}").as_str()),
                1 => server.send_raw_to_group(GROUPS, format!("g:{n}").as_str()),
                _ => server.send_raw_by_flag(format!("f:{n}").as_str(), flags.as_slice()),
            };
            match sent {
                Ok(count) => {
                    l[k].store(n, Ordering::Relaxed);
                    q.fetch_add(count as u64, Ordering::Relaxed);
                }
                Err(e) => say(&format!("error push: {e}")),
            }
        }
    });
    Pusher {
        stop,
        last,
        queued,
        thread,
    }
}

/// The counters, and what the registries hold: once every client has gone, no group, no flag
/// and no connection may be left in them.
fn stats_line(server: &Server, pushed: u64) -> String {
    let s = server.stats();
    let groups = server.groups().len();
    let members: usize = GROUPS.iter().map(|g| server.group_count(g)).sum();
    let flags = (0..FLAGS)
        .filter(|i| server.flag_exists(&format!("u{i}")))
        .count();
    let listed = server.connections().len();
    format!(
        "stats pushed={pushed} groups={groups} members={members} flags={flags} listed={listed} \
         connections={} accepted={} closed={} rejected={} \
         handshake_failures={} messages_in={} messages_out={} bytes_out={} dropped={} \
         slow_consumer_closes={} protocol_errors={} idle_closes={} handler_panics={} \
         mailbox_timeouts={}",
        s.connections,
        s.accepted,
        s.closed,
        s.rejected,
        s.handshake_failures,
        s.messages_in,
        s.messages_out,
        s.bytes_out,
        s.dropped,
        s.slow_consumer_closes,
        s.protocol_errors,
        s.idle_closes,
        s.handler_panics,
        s.mailbox_timeouts,
    )
}

/// One line on stdout, flushed at once: the parent waits for it.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
