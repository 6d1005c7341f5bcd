//! push_demo behind gateways, as it is deployed: two `examples/gateway` processes and two
//! `push_demo --backend gateway` business processes linked to both, real WebSocket clients on
//! each gateway; every op of the demo protocol across the two gateways (the checks shared
//! with Redis and Channel, tests/push_demo_cluster/), and a business process killed and
//! started again under connected clients: none is dropped and every op still answers.
//!
//! Each process is this test binary again, running the ignored `child` test, which runs the
//! example's own `serve` (the examples are compiled in, as in tests/push_demo.rs). The test
//! waits for their output lines (`listening on …`, `connected to N gateway(s)`, the gateways'
//! log of business processes coming and going), never for time.
mod push_demo_cluster;
mod util;

#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

// Both examples bring the examples' command-line helper: two copies here, one per binary
// elsewhere.
#[path = "../examples/gateway.rs"]
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
mod gateway;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use push_demo::{Backend, Cli, parse_args};
use push_demo_cluster::{A, A2, B1, B2, Client, Pair, every_op_answers};
use serde_json::json;
use util::WAIT;

/// Set in a child's environment: which example the ignored `child` test runs.
const CHILD: &str = "COREPUSH_PUSH_DEMO_GATEWAY_CHILD";
/// Its arguments, separated by spaces.
const CHILD_ARGS: &str = "COREPUSH_PUSH_DEMO_GATEWAY_ARGS";
const SECRET: &str = "s3cret";
/// The business processes' names.
const BIZ: [&str; 2] = ["biz-a", "biz-b"];

/// Lines of a pipe, read on their own thread to the end (so the child never blocks on it).
fn lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// One example running in a process of its own; killed when dropped.
struct Proc {
    what: String,
    child: Child,
    out: Receiver<String>,
    err: Receiver<String>,
}

impl Proc {
    fn spawn(example: &str, args: &[String]) -> Proc {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "--exact",
                "child",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, example)
            .env(CHILD_ARGS, args.join(" "))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a child");
        let out = lines(child.stdout.take().expect("its stdout"));
        let err = lines(child.stderr.take().expect("its stderr"));
        Proc {
            what: format!("{example} {}", args.join(" ")),
            child,
            out,
            err,
        }
    }

    /// The next line of stdout that holds `needle`.
    fn line_with(&self, needle: &str) -> String {
        next_line(&self.out, &self.what, |l| l.contains(needle))
    }

    /// Reads the log (stderr) until a line for each of `wanted` has come, in any order.
    fn logged(&self, mut wanted: Vec<String>) {
        while !wanted.is_empty() {
            let line = next_line(&self.err, &self.what, |l| {
                wanted.iter().any(|w| l.contains(w))
            });
            wanted.retain(|w| !line.contains(w.as_str()));
        }
    }

    /// SIGKILL, then reaped: the kernel has closed its sockets when this returns.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn next_line(rx: &Receiver<String>, what: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if want(&line) => return line,
            Ok(_) => {}
            Err(e) => panic!("{what}: no awaited line ({e})"),
        }
    }
}

/// The address after `prefix` in `line`, up to `end`.
fn addr_in(line: &str, prefix: &str, end: char) -> SocketAddr {
    let (_, rest) = line
        .split_once(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {line:?}"));
    let addr = rest.split(end).next().unwrap_or("");
    addr.parse()
        .unwrap_or_else(|_| panic!("an address in {line:?}"))
}

/// The gateway log lines saying that business process `name` came (or left).
fn came(name: &str) -> String {
    format!("business process {name:?} connected")
}

/// Two gateways (instances 1 and 2) and the two business processes [`BIZ`], each linked to
/// both gateways, and both gateways knowing both of them.
struct Deployment {
    gateways: Vec<Proc>,
    /// The clients' addresses of the gateways.
    addrs: [SocketAddr; 2],
    /// The business processes' arguments, to start one again.
    business_args: Vec<String>,
    businesses: Vec<Proc>,
}

impl Deployment {
    fn start() -> Deployment {
        let mut gateways = Vec::new();
        let mut addrs = Vec::new();
        let mut internal = Vec::new();
        for k in 1..=2 {
            let args =
                format!("--port 0 --internal-port 0 --workers 2 --secret {SECRET} --instance {k}");
            let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
            let gw = Proc::spawn("gateway", &args);
            let line = gw.line_with("listening on ws://");
            addrs.push(addr_in(&line, "listening on ws://", '/'));
            internal.push(addr_in(&line, "(internal ", ',').to_string());
            gateways.push(gw);
        }
        let business_args = vec![
            "--backend".into(),
            "gateway".into(),
            "--gateway".into(),
            internal.join(","),
            "--secret".into(),
            SECRET.into(),
            "--workers".into(),
            push_demo_cluster::WORKERS.to_string(),
        ];
        let mut d = Deployment {
            gateways,
            addrs: [addrs[0], addrs[1]],
            business_args,
            businesses: Vec::new(),
        };
        for name in BIZ {
            let biz = d.business(name);
            d.businesses.push(biz);
        }
        d
    }

    /// Starts business process `name`; returns once it is linked to both gateways and both
    /// have taken it in (a client that opens from then on may be given to it).
    fn business(&self, name: &str) -> Proc {
        let mut args = self.business_args.clone();
        args.extend(["--instance".to_owned(), name.to_owned()]);
        let biz = Proc::spawn("push_demo", &args);
        biz.line_with("connected to 2 gateway(s)");
        for gw in &self.gateways {
            gw.logged(vec![came(name)]);
        }
        biz
    }

    /// The shared checks' pair: gateway 1 is A, gateway 2 is B; everything ends with it.
    fn pair(self) -> Pair {
        Pair::behind_gateways(self.addrs[0], self.addrs[1], move || drop(self))
    }
}

/// Runs as one of the processes of the tests above when [`CHILD`] says which.
#[test]
#[ignore = "a gateway or business process of the tests above, run in its own process"]
fn child() {
    let Some(example) = std::env::var_os(CHILD) else {
        return;
    };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .try_init();
    let args: Vec<String> = std::env::var(CHILD_ARGS)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let status = match example.to_str() {
        Some("gateway") => gateway::serve(args),
        Some("push_demo") => push_demo::serve(args),
        other => panic!("no example {other:?}"),
    };
    std::process::exit(status);
}

#[test]
fn parse_args_runs_a_business_process_and_the_gateway() {
    let Ok(Cli::Run(opts)) = parse_args(
        "--backend gateway --gateway 10.0.0.1:9000,10.0.0.2:9000 --secret s --workers 3".split(' '),
    ) else {
        panic!("the arguments parse")
    };
    assert_eq!(opts.backend, Backend::Gateway);
    assert_eq!(opts.instance, push_demo::BUSINESS);
    assert_eq!(
        push_demo::gateways(&opts),
        ["10.0.0.1:9000", "10.0.0.2:9000"]
    );
    assert_eq!(opts.secret.as_deref(), Some("s"));

    let gateway::Cli::Run(gw) =
        gateway::parse_args("--port 8080 --internal-port=9080 --workers 2 --secret s".split(' '))
            .unwrap()
    else {
        panic!("the gateway's arguments parse")
    };
    assert_eq!((gw.port, gw.internal_port, gw.workers), (8080, 9080, 2));
    assert_eq!((gw.instance, gw.host.as_str()), (1, "127.0.0.1"));
    let Ok(gateway::Cli::Run(v6)) = gateway::parse_args([
        "--host",
        "::1",
        "--port=0",
        "--internal-port",
        "0",
        "--secret=s",
    ]) else {
        panic!("--host ::1 parses")
    };
    assert_eq!(
        (v6.host.as_str(), v6.port, v6.secret.as_str()),
        ("::1", 0, "s")
    );
    let gw_fails = |args: &str, expected: &str| match gateway::parse_args(args.split(' ')) {
        Err(e) => assert!(e.contains(expected), "{args:?}: {e}"),
        Ok(other) => panic!("{args:?} must fail, got {other:?}"),
    };
    gw_fails("--internal-port 1 --secret s", "--port is required");
    gw_fails("--port 1 --secret s", "--internal-port is required");
    gw_fails("--port 1 --internal-port 2", "--secret is required");
    gw_fails(
        "--port 1 --internal-port 2 --secret s --instance 0",
        "--instance",
    );
    gw_fails(
        "--port 1 --internal-port 2 --secret s --instance 4096",
        "--instance",
    );
    gw_fails("--port 1 --bogus 2", "unknown argument");
    gw_fails("--port", "--port needs a value");
}

#[test]
fn bad_arguments_exit_with_status_2() {
    for (example, args) in [
        ("gateway", "--port 1"),
        ("push_demo", "--backend gateway --secret s"),
    ] {
        let args: Vec<String> = args.split(' ').map(str::to_owned).collect();
        let mut p = Proc::spawn(example, &args);
        let status = p.child.wait().expect("the child exits");
        assert_eq!(status.code(), Some(2), "{example} {args:?}");
    }
}

#[test]
fn a_wrong_secret_or_no_gateway_fails_the_start() {
    let d = Deployment::start();
    let mut args = d.business_args.clone();
    let at = args.iter().position(|a| a == SECRET).unwrap();
    args[at] = "wrong".into();
    let mut p = Proc::spawn("push_demo", &args);
    let line = next_line(&p.err, "wrong secret", |l| l.contains("cannot start"));
    assert!(line.contains("wrong secret"), "{line}");
    assert_eq!(p.child.wait().unwrap().code(), Some(1));
    drop(d);
    // Nothing listens there any more.
    let mut p = Proc::spawn("push_demo", &args);
    let line = next_line(&p.err, "no gateway", |l| l.contains("cannot start"));
    assert!(line.contains("gateways at"), "{line}");
    assert_eq!(p.child.wait().unwrap().code(), Some(1));
}

#[test]
fn whoami_names_the_business_process_and_ids_carry_the_gateways_numbers() {
    let pair = Deployment::start().pair();
    let mut c = pair.clients();
    assert_eq!(
        [A, A2, B1, B2].map(|i| c[i].instance),
        [1, 1, 2, 2],
        "ids carry the gateway's number"
    );
    // Each gateway gives its clients to the business processes in turn: A and A2 are served
    // by different ones, and so are B1 and B2.
    let mut names = Vec::new();
    for i in [A, A2, B1, B2] {
        let me = c[i].ok(json!({"op": "whoami"}));
        assert_eq!(me["clientId"], json!(c[i].id));
        assert!(me["worker"].as_u64().unwrap() < push_demo_cluster::WORKERS as u64);
        names.push(me["instance"].as_str().unwrap().to_owned());
    }
    for pair_of in names.chunks(2) {
        let mut seen = pair_of.to_vec();
        seen.sort();
        assert_eq!(seen, BIZ, "{names:?}");
    }
    pair.finish(c);
}

#[test]
fn sends_cross_to_the_other_gateway() {
    push_demo_cluster::sends_cross_to_the_other_instance(Deployment::start().pair());
}

#[test]
fn waited_sends_count_the_cluster() {
    push_demo_cluster::waited_sends_count_the_cluster(Deployment::start().pair());
}

#[test]
fn waited_closes_release_the_clients_everywhere() {
    push_demo_cluster::waited_closes_release_the_clients_everywhere(Deployment::start().pair());
}

#[test]
fn queries_and_data_answer_for_the_cluster() {
    push_demo_cluster::queries_and_data_answer_for_the_cluster(Deployment::start().pair());
}

#[test]
fn worker_messages_reach_the_business_processs_core_loops() {
    push_demo_cluster::worker_messages_reach_this_instances_core_loops(Deployment::start().pair());
}

#[test]
fn every_op_answers_from_either_gateway() {
    let pair = Deployment::start().pair();
    let mut c = pair.clients();
    every_op_answers(&pair, &mut c, A, "from-a");
    every_op_answers(&pair, &mut c, B2, "from-b2");
    pair.finish(c);
}

/// The name of the business process serving `c` (whoami's `instance`).
fn served_by(c: &mut Client) -> String {
    let me = c.ok(json!({"op": "whoami"}));
    me["instance"].as_str().expect("a name").to_owned()
}

#[test]
fn a_business_restart_drops_no_client() {
    let mut d = Deployment::start();
    let pair = Pair::behind_gateways(d.addrs[0], d.addrs[1], || {});
    let mut c = pair.clients();
    // State kept on the gateways: flags, groups, data.
    check_state_survives(&mut c, true, &[A, A2, B1, B2]);
    let victim = served_by(&mut c[A]);
    let at = BIZ.iter().position(|&n| n == victim).unwrap();
    let survivor = BIZ[1 - at];
    let before: Vec<String> = c.iter().map(|x| x.id.clone()).collect();

    d.businesses[at].kill();
    // Each gateway has let it go (its log says so) before the next op.
    let who = format!("business process {victim:?}");
    for gw in &d.gateways {
        next_line(&gw.err, &gw.what, |l| {
            l.contains(&who) && l.contains(" left")
        });
    }
    // Every client is still connected, with its id, served by the survivor now.
    for x in c.iter_mut() {
        assert_eq!(served_by(x), survivor, "client {}", x.id);
    }
    assert_eq!(c.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), before);
    check_state_survives(&mut c, false, &[A, A2, B1, B2]);
    every_op_answers(&pair, &mut c, A, "after-kill");
    every_op_answers(&pair, &mut c, B2, "after-kill-b2");

    // Started again: it serves new clients (each gateway gives them in turn), old ones stay.
    d.businesses[at] = d.business(victim.as_str());
    let mut fresh = Vec::new();
    for addr in d.addrs {
        for _ in 0..2 {
            let mut x = pair.connect(addr);
            let name = served_by(&mut x);
            fresh.push((x, name));
        }
    }
    assert!(
        fresh.iter().filter(|(_, n)| *n == victim).count() >= 2,
        "each gateway gives the restarted process a new client"
    );
    let mut restarted_client = None;
    for (x, name) in fresh {
        if name == victim && restarted_client.is_none() {
            restarted_client = Some(c.len());
        }
        c.push(x);
    }
    for x in c.iter_mut().take(4) {
        assert_eq!(served_by(x), survivor);
    }
    check_state_survives(&mut c, false, &[A, A2]);
    every_op_answers(&pair, &mut c, restarted_client.unwrap(), "after-restart");
    every_op_answers(&pair, &mut c, A2, "after-restart-a2");
    assert_eq!(
        c.iter().take(4).map(|x| x.id.clone()).collect::<Vec<_>>(),
        before
    );
    pair.finish(c);
    drop(d);
}

/// Sets (when `set`) then checks the flags, groups and data of A, A2, B1, B2; the flags of
/// `flagged` only (`every_op_answers` binds B1 and B2 to others).
fn check_state_survives(c: &mut [Client], set: bool, flagged: &[usize]) {
    for (i, name) in [(A, "fa"), (A2, "fa2"), (B1, "fb1"), (B2, "fb2")] {
        if set {
            assert_eq!(c[i].ok(json!({"op": "bind", "flag": name})), json!(true));
            assert_eq!(c[i].ok(json!({"op": "join", "group": "kept"})), json!(true));
            let set = json!({"op": "set", "key": "mine", "value": name});
            assert_eq!(c[i].ok(set), json!(true));
        }
        assert_eq!(
            c[i].ok(json!({"op": "get", "key": "mine"})),
            json!(name),
            "{name}"
        );
        if flagged.contains(&i) {
            let exists = json!({"op": "flagExists", "flag": name});
            assert_eq!(c[A].ok(exists), json!(true), "{name}");
        }
    }
    assert_eq!(
        c[B2].ok(json!({"op": "groupCount", "group": "kept"})),
        json!(4)
    );
}
