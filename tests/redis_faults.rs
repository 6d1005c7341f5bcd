//! Faults of the Redis backend, with real processes on a private `redis-server`: an instance
//! killed without a goodbye costs a cluster query no more than its deadline and is dropped
//! within a few seconds, one stopped gracefully is dropped at once; Redis killed and
//! restarted under a stream of pushes stops no instance, fails sends only with
//! `Error::Backend`, lets pushes flow again soon after, and finds the instance numbers
//! claimed again; each transition is logged once per outage, not once per send.
//!
//! The killed instance is this test binary again, running the ignored `instance_child` test
//! in a process of its own, so that SIGKILL takes it whole.
mod util;

use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use corepush::Error;
use log::Level;
use tungstenite::Message;
use util::*;

/// How long a cluster-wide answer waits for the other instances.
const QUERY_TIMEOUT: Duration = Duration::from_millis(400);
/// What a partial answer may take beyond its deadline.
const MARGIN: Duration = Duration::from_millis(500);
/// How long an instance stays live unheard (the backend's three heartbeats).
const LIVE_FOR: Duration = Duration::from_secs(3);
/// How soon pushes must flow again once Redis is back.
const RECOVERY: Duration = Duration::from_secs(2);
/// Redis outages in the restart test.
const OUTAGES: usize = 2;
/// The pause between two pushes of the restart test: a steady stream that leaves the shared
/// cores to the instances (pacing a load, not waiting for anything).
const PACE: Duration = Duration::from_millis(2);
/// Pushes that must arrive in a row before each kill, and after the last restart.
const STREAM: usize = 100;

/// In the child's environment: the ignored `instance_child` then runs as an instance on this
/// Redis URL, under this prefix, as this instance number.
const CHILD_URL: &str = "COREPUSH_REDIS_FAULTS_URL";
const CHILD_PREFIX: &str = "COREPUSH_REDIS_FAULTS_PREFIX";
const CHILD_NUMBER: &str = "COREPUSH_REDIS_FAULTS_NUMBER";

#[test]
fn a_killed_instance_costs_a_query_its_deadline_then_is_dropped() {
    let redis = redis_or_skip!("a_killed_instance_costs_a_query_its_deadline_then_is_dropped");
    let a = RedisInstance::start(&redis.url(), "killed", 1, QUERY_TIMEOUT).expect("instance 1");
    let child = ChildInstance::start(&redis, "killed", 2);
    let mut on_a = Client::connect(a.addr);
    let on_child = Client::connect(child.addr);
    assert_eq!((on_a.id.instance(), on_child.id.instance()), (1, 2));
    let cluster = a.server.cluster();
    wait_until("instance 1 sees instance 2", || {
        cluster.instances() == [1, 2]
    });
    let both = cluster.connection_count().unwrap();
    assert_eq!((both.value, both.complete), (2, true));

    child.kill();
    let killed = Instant::now();
    // Heard from within LIVE_FOR, so still expected: asked, and waited for until the deadline.
    assert_eq!(cluster.instances(), [1, 2], "instance 2 dropped too soon");
    let (partial, waited) = timed(|| cluster.connection_count().unwrap());
    assert!(!partial.complete, "an answer without instance 2 is partial");
    assert_eq!(partial.value, 1, "only instance 1's client counts");
    assert!(
        waited >= QUERY_TIMEOUT && waited < QUERY_TIMEOUT + MARGIN,
        "a partial answer took {waited:?} (deadline {QUERY_TIMEOUT:?})"
    );

    // Silent for LIVE_FOR: dropped, and no longer waited for.
    wait_until("instance 2 dropped", || cluster.instances() == [1]);
    let dropped = killed.elapsed();
    assert!(
        dropped <= LIVE_FOR + Duration::from_secs(2),
        "instance 2 was dropped {dropped:?} after the kill"
    );
    let (count, answered) = timed(|| cluster.connection_count().unwrap());
    assert_eq!((count.value, count.complete), (1, true));
    assert!(
        answered < QUERY_TIMEOUT / 4,
        "a complete answer took {answered:?}"
    );
    // Calls naming a client of the dead instance answer at once, as for one not connected.
    let (exists, by_id) = timed(|| cluster.exists(on_child.id).unwrap());
    assert_eq!((exists.value, exists.complete), (false, true));
    assert!(by_id < QUERY_TIMEOUT / 4, "a call by id took {by_id:?}");
    let (sent, counted) = timed(|| cluster.send_raw("gone", on_child.id).unwrap());
    assert_eq!((sent.value, sent.complete), (0, true));
    assert!(
        counted < QUERY_TIMEOUT / 4,
        "a counted send took {counted:?}"
    );
    // Instance 1 serves on.
    assert_eq!(on_a.ask("echo:still here"), "still here");
    on_a.assert_nothing_before_marker(&a.server, "marker");
    eprintln!(
        "killed instance: partial answer in {waited:?} (deadline {QUERY_TIMEOUT:?}), dropped \
         {dropped:?} after the kill, then a complete answer in {answered:?}, a call by id in \
         {by_id:?}, a counted send in {counted:?}"
    );
    drop((on_a, on_child));
    a.stop();
}

#[test]
fn a_stopped_instance_says_goodbye_and_is_dropped_at_once() {
    let redis = redis_or_skip!("a_stopped_instance_says_goodbye_and_is_dropped_at_once");
    let url = redis.url();
    let a = RedisInstance::start(&url, "goodbye", 1, QUERY_TIMEOUT).expect("instance 1");
    let b = RedisInstance::start(&url, "goodbye", 2, QUERY_TIMEOUT).expect("instance 2");
    wait_until("instance 1 sees instance 2", || {
        a.server.cluster().instances() == [1, 2]
    });
    let on_a = Client::connect(a.addr);
    let mut on_b = Client::connect(b.addr);

    // Another thread asks for the cluster's count, over and over, across the stop.
    let asking = Arc::new(AtomicBool::new(true));
    let (answer_tx, answers) = channel();
    let asker = {
        let (server, asking) = (a.server.clone(), asking.clone());
        thread::spawn(move || {
            while asking.load(Ordering::Acquire) {
                let (answer, took) = timed(|| server.cluster().connection_count());
                let answer = answer.map(|got| (got.value, got.complete));
                if answer_tx.send((answer, took)).is_err() {
                    return;
                }
            }
        })
    };
    let (first, _) = answers.recv_timeout(WAIT).expect("a first answer");
    assert_eq!(
        first.unwrap(),
        (2, true),
        "both instances answer before the stop"
    );

    b.begin_stop();
    let stopped = Instant::now();
    wait_until("instance 2 dropped", || {
        a.server.cluster().instances() == [1]
    });
    let dropped = stopped.elapsed();
    asking.store(false, Ordering::Release);
    asker.join().expect("the asking thread");
    // At once: a silent instance would stay live for LIVE_FOR after its last heartbeat.
    assert!(
        dropped < Duration::from_secs(1),
        "instance 2 was dropped {dropped:?} after its stop began"
    );
    let answers: Vec<_> = answers.try_iter().collect();
    let slowest = answers
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    for (answer, took) in &answers {
        let (value, complete) = *answer.as_ref().expect("a cluster count");
        assert!(
            complete,
            "a partial answer ({value}, after {took:?}) during the stop"
        );
        assert!(
            (1..=2).contains(&value),
            "a count of {value} during the stop"
        );
    }
    assert!(slowest < QUERY_TIMEOUT, "an answer waited {slowest:?}");
    let (count, answered) = timed(|| a.server.cluster().connection_count().unwrap());
    assert_eq!((count.value, count.complete), (1, true));
    assert!(
        answered < QUERY_TIMEOUT / 4,
        "a complete answer took {answered:?}"
    );
    eprintln!(
        "graceful stop: dropped {dropped:?} after the stop began; {} answers across it, all \
         complete, the slowest in {slowest:?}",
        answers.len() + 1
    );
    assert_eq!(read_until_close(&mut on_b.ws), Some(1001));
    b.stop();
    drop(on_a);
    a.stop();
}

#[test]
fn a_redis_restart_under_load_stops_no_instance_and_is_logged_once() {
    let mut redis =
        redis_or_skip!("a_redis_restart_under_load_stops_no_instance_and_is_logged_once");
    capture_logs();
    let url = redis.url();
    let a = RedisInstance::start(&url, "load", 1, QUERY_TIMEOUT).expect("instance 1");
    let b = RedisInstance::start(&url, "load", 2, QUERY_TIMEOUT).expect("instance 2");
    wait_until("the instances see each other", || {
        a.server.cluster().instances() == [1, 2] && b.server.cluster().instances() == [1, 2]
    });
    let mut on_a = Client::connect(a.addr);
    let mut on_b = Client::connect(b.addr);
    let target = Client::connect(b.addr);
    let target_id = target.id;

    // The target's pushes, by number, with the time each arrived.
    let socket = target
        .ws
        .get_ref()
        .try_clone()
        .expect("the target's socket");
    socket.set_read_timeout(None).unwrap(); // silent through outages; ended by a shutdown
    let (arrival_tx, arrival_rx) = channel();
    let reader = thread::spawn(move || {
        let mut ws = target.ws;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let n: u64 = t
                        .strip_prefix("push ")
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| panic!("the target got {t:?}"));
                    if arrival_tx.send((n, Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });

    // Instance 1 pushes to the target on instance 2, numbered from 1, until told to stop.
    let pushed = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let pushing = Arc::new(AtomicBool::new(true));
    let pusher = {
        let server = a.server.clone();
        let (pushed, refused, pushing) = (pushed.clone(), refused.clone(), pushing.clone());
        thread::spawn(move || {
            let mut tally = Tally::default();
            while pushing.load(Ordering::Acquire) {
                let n = pushed.load(Ordering::Acquire) + 1;
                match server.send_raw(format!("push {n}"), target_id) {
                    // The plain send counts this instance's part: none.
                    Ok(0) => tally.ok += 1,
                    Err(Error::Backend(_)) => {
                        tally.refused += 1;
                        refused.fetch_add(1, Ordering::AcqRel);
                    }
                    other => tally.unexpected.push(format!("push {n}: {other:?}")),
                }
                pushed.store(n, Ordering::Release);
                thread::sleep(PACE);
            }
            tally
        })
    };

    let mut arrivals = Arrivals {
        rx: arrival_rx,
        last: 0,
    };
    let mut report = Vec::new();
    for outage in 1..=OUTAGES {
        // Pushes stream across: a run of them made from now on arrives.
        arrivals.stream(pushed.load(Ordering::Acquire), STREAM);
        let refused_before = refused.load(Ordering::Acquire);
        redis.kill();
        let killed = Instant::now();
        wait_until("a push is refused", || {
            refused.load(Ordering::Acquire) > refused_before
        });
        let refusing = killed.elapsed();
        // Both instances serve their own clients meanwhile.
        assert_eq!(on_a.ask("echo:down"), "down");
        assert_eq!(on_b.ask("echo:down"), "down");
        assert_eq!(a.server.send_raw("local", on_a.id).unwrap(), 1);
        assert_eq!(on_a.recv(), "local");
        assert_eq!(b.server.send_raw("local", on_b.id).unwrap(), 1);
        assert_eq!(on_b.recv(), "local");
        // Every thread of both instances has met the outage (instance 2's publisher at its
        // next heartbeat) before Redis comes back.
        for i in [1, 2] {
            wait_until("the outage is logged", || {
                logged(&unreachable(i, &url)) == outage && logged(&subscription_lost(i)) == outage
            });
        }
        let down = killed.elapsed();

        let mark = pushed.load(Ordering::Acquire);
        redis.restart();
        let back = Instant::now();
        let flowing = arrivals.stream(mark, 1).saturating_duration_since(back);
        assert!(
            flowing < RECOVERY,
            "outage {outage}: pushes flowed again only {flowing:?} after Redis was back"
        );
        for i in [1, 2] {
            wait_until("the recovery is logged", || {
                logged(&reachable(i, &url)) == outage && logged(&resubscribed(i)) == outage
            });
        }
        report.push(format!(
            "outage {outage}: sends refused {refusing:?} after the kill, Redis down for \
             {down:?}, pushes crossing {flowing:?} after the restart"
        ));
    }

    arrivals.stream(pushed.load(Ordering::Acquire), STREAM);

    // Both numbers are claimed again: a third instance cannot take either.
    for number in [1, 2] {
        match RedisInstance::start(&url, "load", number, QUERY_TIMEOUT) {
            Err(Error::Config(m)) => assert!(m.contains("already claimed"), "{m}"),
            Err(e) => panic!("expected a configuration error for {number}, got {e}"),
            Ok(_) => panic!("instance {number} was claimed twice after the restart"),
        }
    }

    pushing.store(false, Ordering::Release);
    let tally = pusher.join().expect("the pusher never panics");
    assert!(
        tally.unexpected.is_empty(),
        "sends failed otherwise than with Error::Backend: {:?}",
        tally.unexpected
    );
    assert!(tally.ok > 0 && tally.refused > 0, "{tally:?}");
    // One line per transition and instance, however many sends were refused.
    for i in [1, 2] {
        assert_eq!(logged(&unreachable(i, &url)), OUTAGES, "instance {i}");
        assert_eq!(logged(&reachable(i, &url)), OUTAGES, "instance {i}");
        assert_eq!(logged(&subscription_lost(i)), OUTAGES, "instance {i}");
        assert_eq!(logged(&resubscribed(i)), OUTAGES, "instance {i}");
    }
    for line in &report {
        eprintln!("{line}");
    }
    eprintln!(
        "pushes: {} accepted, {} refused with Error::Backend; {} outage(s) logged once each",
        tally.ok, tally.refused, OUTAGES
    );

    socket.shutdown(Shutdown::Both).unwrap();
    reader.join().expect("the reader");
    drop((on_a, on_b));
    a.stop();
    b.stop();
}

/// Instance `number` of a cluster, as the ignored test runs it in a child process: prints
/// `instance N listening on ADDR`, then serves until killed (or until stdin closes, when the
/// parent is gone).
#[test]
#[ignore = "an instance for the tests above, run in a process of its own"]
fn instance_child() {
    let (Ok(url), Ok(prefix), Ok(number)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_PREFIX),
        std::env::var(CHILD_NUMBER),
    ) else {
        return;
    };
    let number: u16 = number.parse().expect("an instance number");
    let instance =
        RedisInstance::start(&url, &prefix, number, QUERY_TIMEOUT).expect("the child instance");
    println!("instance {number} listening on {}", instance.addr);
    for _ in std::io::stdin().lock().lines() {}
    instance.stop();
}

/// An instance in a child process; killed when dropped.
struct ChildInstance {
    child: Child,
    /// Held open: the child serves until killed, or until this closes.
    _stdin: ChildStdin,
    addr: SocketAddr,
}

impl ChildInstance {
    fn start(redis: &RedisServer, prefix: &str, number: u16) -> ChildInstance {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "instance_child", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD_URL, redis.url())
            .env(CHILD_PREFIX, prefix)
            .env(CHILD_NUMBER, number.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the instance child");
        let stdin = child.stdin.take().unwrap();
        let lines = lines(child.stdout.take().unwrap());
        let needle = format!("instance {number} listening on ");
        let Some(line) = next_line_with(&lines, &needle) else {
            let _ = child.kill();
            let status = child.wait();
            panic!("the instance child never listened ({status:?})");
        };
        let addr = line
            .rsplit(' ')
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        ChildInstance {
            child,
            _stdin: stdin,
            addr,
        }
    }

    /// SIGKILL: no goodbye, no lease released; the kernel closes its sockets.
    fn kill(mut self) {
        self.child.kill().expect("kill the instance child");
        self.child.wait().expect("reap the instance child");
    }
}

impl Drop for ChildInstance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the pusher's sends came to.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    refused: u64,
    unexpected: Vec<String>,
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

/// The numbered pushes a client received, with the time each arrived.
struct Arrivals {
    rx: Receiver<(u64, Instant)>,
    /// The number of the last one: they arrive in the order they were made, each once (an
    /// outage may lose some, never reorder or repeat them).
    last: u64,
}

impl Arrivals {
    /// Waits until `count` pushes numbered above `after` have arrived; when the first did.
    /// Panics after `WAIT`.
    fn stream(&mut self, after: u64, count: usize) -> Instant {
        let deadline = Instant::now() + WAIT;
        let mut first = None;
        let mut seen = 0;
        while seen < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let (n, at) = self.rx.recv_timeout(left).unwrap_or_else(|e| {
                panic!("{seen} of {count} pushes after number {after} arrived: {e}")
            });
            assert!(n > self.last, "push {n} arrived after push {}", self.last);
            self.last = n;
            if n > after {
                first.get_or_insert(at);
                seen += 1;
            }
        }
        first.expect("a push arrived")
    }
}

/// Lines of a child's pipe, read on their own thread.
fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line holding `needle` (other lines skipped), or `None` after `WAIT` or when the
/// pipe closes.
fn next_line_with(rx: &Receiver<String>, needle: &str) -> Option<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return Some(line),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// How many lines at info or above hold `part`.
fn logged(part: &str) -> usize {
    log_lines(Level::Info, &[part]).len()
}

// The transitions' lines. The subscriber's do not name the URL; this is the one test of the
// file whose Redis goes away.
fn unreachable(instance: u16, url: &str) -> String {
    format!("instance {instance}: Redis at {url} is unreachable")
}

fn reachable(instance: u16, url: &str) -> String {
    format!("instance {instance}: Redis at {url} is reachable again")
}

fn subscription_lost(instance: u16) -> String {
    format!("instance {instance}: lost the Redis subscription")
}

fn resubscribed(instance: u16) -> String {
    format!("instance {instance}: subscribed to Redis again")
}
