//! push_demo as one instance of a Redis cluster: two demo instances on a private
//! `redis-server`, real WebSocket clients on each, every cross-instance op driven from a client
//! of instance A against clients of instance B — what B's clients receive and what A is
//! answered — and Redis killed and restarted under them. The checks themselves are shared
//! with the Channel backend's (tests/push_demo_cluster/).
mod push_demo_cluster;
mod util;

// The example itself is compiled in, as tests/push_demo.rs does.
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::net::SocketAddr;

use corepush::{Error, Runtime};
use push_demo::{Backend, Cli, SERVER, build, parse_args};
use push_demo_cluster::Pair;
use util::RedisServer;

macro_rules! redis_or_skip {
    ($name:expr) => {
        match RedisServer::start($name) {
            Some(r) => r,
            None => return,
        }
    };
}

/// One demo instance on `redis`; `name` None leaves `--instance` out.
fn instance(redis: &RedisServer, name: Option<&str>) -> corepush::Result<(Runtime, SocketAddr)> {
    let mut args = vec!["--port", "0", "--workers", "2", "--backend", "redis"];
    let url = redis.url();
    args.extend(["--redis-url", &url]);
    if let Some(name) = name {
        args.extend(["--instance", name]);
    }
    let Ok(Cli::Run(opts)) = parse_args(args) else {
        panic!("the arguments parse")
    };
    let rt = build(&opts)?;
    let addr = rt.local_addr(SERVER).expect("local addr");
    Ok((rt, addr))
}

#[test]
fn parse_args_runs_redis() {
    let run = |args: &str| match parse_args(args.split_whitespace()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    let redis = run("--backend redis");
    assert_eq!(redis.backend, Backend::Redis);
    // No name given: whoami says instance-N with the claimed number.
    assert_eq!((redis.instance.as_str(), redis.redis_url), ("", None));
    let named = run("--backend=redis --redis-url redis://10.0.0.1:7000/ --instance eu-1");
    assert_eq!(named.instance, "eu-1");
    assert_eq!(named.redis_url.as_deref(), Some("redis://10.0.0.1:7000/"));
    assert_eq!(run("--instance eu-1 --backend redis").instance, "eu-1");
    assert_eq!(run("").instance, "local");
    let e = parse_args(["--backend", "redis", "--instance", ""]).unwrap_err();
    assert!(e.contains("--instance must not be empty"), "{e}");
}

#[test]
fn an_unreachable_redis_is_an_error_at_start() {
    let mut redis = redis_or_skip!("an_unreachable_redis_is_an_error_at_start");
    redis.kill();
    match instance(&redis, Some("alpha")) {
        Err(Error::Backend(e)) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("started without Redis"),
    }
}

#[test]
fn whoami_names_the_instance_and_ids_carry_claimed_numbers() {
    let redis = redis_or_skip!("whoami_names_the_instance_and_ids_carry_claimed_numbers");
    push_demo_cluster::whoami_names_the_instance_and_ids_carry_claimed_numbers(pair(&redis));
}

#[test]
fn sends_cross_to_the_other_instance() {
    let redis = redis_or_skip!("sends_cross_to_the_other_instance");
    push_demo_cluster::sends_cross_to_the_other_instance(pair(&redis));
}

#[test]
fn waited_sends_count_the_cluster() {
    let redis = redis_or_skip!("waited_sends_count_the_cluster");
    push_demo_cluster::waited_sends_count_the_cluster(pair(&redis));
}

#[test]
fn waited_closes_release_the_clients_everywhere() {
    let redis = redis_or_skip!("waited_closes_release_the_clients_everywhere");
    push_demo_cluster::waited_closes_release_the_clients_everywhere(pair(&redis));
}

#[test]
fn queries_and_data_answer_for_the_cluster() {
    let redis = redis_or_skip!("queries_and_data_answer_for_the_cluster");
    push_demo_cluster::queries_and_data_answer_for_the_cluster(pair(&redis));
}

#[test]
fn worker_messages_reach_this_instances_core_loops() {
    let redis = redis_or_skip!("worker_messages_reach_this_instances_core_loops");
    push_demo_cluster::worker_messages_reach_this_instances_core_loops(pair(&redis));
}

#[test]
fn redis_going_away_is_an_error_and_coming_back_works() {
    let redis = redis_or_skip!("redis_going_away_is_an_error_and_coming_back_works");
    let pair = pair(&redis);
    let redis = std::cell::RefCell::new(redis);
    push_demo_cluster::engine_away_and_back(
        pair,
        "Redis is unreachable",
        || redis.borrow_mut().kill(),
        |_| {},
        || redis.borrow_mut().restart(),
    );
}

/// Two demo instances on `redis` that see each other: A named "alpha", B left to its default.
fn pair(redis: &RedisServer) -> Pair {
    Pair::start(|name| instance(redis, name))
}

/// One demo instance on `redis` keeping the last `n` messages of every group and flag.
fn with_history(redis: &RedisServer, n: usize) -> (Runtime, SocketAddr) {
    let url = redis.url();
    let n = n.to_string();
    let args = [
        "--port",
        "0",
        "--workers",
        "2",
        "--backend",
        "redis",
        "--redis-url",
        &url,
        "--history",
        &n,
    ];
    let Ok(Cli::Run(opts)) = parse_args(args) else {
        panic!("the arguments parse")
    };
    let rt = build(&opts).expect("an instance");
    let addr = rt.local_addr(SERVER).expect("local addr");
    (rt, addr)
}

#[cfg(feature = "redis")]
#[test]
fn recover_on_another_instance() {
    use push_demo_cluster::Client;
    use serde_json::json;
    let redis = redis_or_skip!("recover_on_another_instance");
    let (a, addr_a) = with_history(&redis, 3);
    let (b, addr_b) = with_history(&redis, 3);
    let mut x = Client::connect(addr_a);
    let mut p = Client::connect(addr_b);
    let at = x.ok(json!({"op": "join", "group": "g", "position": true}));
    let epoch = at["epoch"].as_str().expect("an epoch").to_owned();
    assert!(!epoch.is_empty());
    assert_eq!(at["offset"], json!(0));
    p.ok(json!({"op": "sendRawToGroup", "group": "g", "text": "m1"}));
    x.expect_raw("m1");
    drop(x);
    for m in ["m2", "m3", "m4"] {
        p.ok(json!({"op": "sendRawToGroup", "group": "g", "text": m}));
    }
    // Left instance A, comes back on B.
    let mut y = Client::connect(addr_b);
    let r = y.ok(json!({"op": "recover", "group": "g", "epoch": epoch, "offset": 1}));
    // Pushes to kept names are kept by Redis after the op answered: those not yet kept at
    // the recovery arrive live, after the missed ones.
    assert_eq!(r["recovered"], json!(true), "{r}");
    let missed = r["missed"].as_u64().expect("missed");
    assert!((1..=3).contains(&missed), "{r}");
    for m in ["m2", "m3", "m4"] {
        y.expect_raw(m);
    }
    p.ok(json!({"op": "sendRawToGroup", "group": "g", "text": "m5"}));
    y.expect_raw("m5");
    let mut z = Client::connect(addr_a);
    let r = z.ok(json!({"op": "recover", "group": "g", "epoch": epoch, "offset": 1}));
    assert_eq!(r, json!({"recovered": false}), "m2 is no longer kept");
    // Flags, with the position from bind.
    let at = z.ok(json!({"op": "bind", "flag": "u", "position": true}));
    assert_eq!(at, json!({"epoch": epoch, "offset": 0}));
    drop(z);
    p.ok(json!({"op": "sendRawByFlag", "flag": "u", "text": "f1"}));
    let mut w = Client::connect(addr_b);
    let r = w.ok(json!({"op": "recover", "flag": "u", "epoch": epoch, "offset": 0}));
    assert_eq!(r["recovered"], json!(true), "{r}");
    w.expect_raw("f1");
    drop((y, w, p));
    a.shutdown().expect("clean shutdown");
    b.shutdown().expect("clean shutdown");
}
