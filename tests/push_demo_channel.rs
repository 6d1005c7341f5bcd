//! push_demo as one instance of a Channel cluster: a broker (`ChannelServer` on 127.0.0.1:0)
//! in the test process, two demo instances on it, real WebSocket clients on each, every
//! cross-instance op driven from a client of instance A against clients of instance B (the
//! checks shared with Redis, tests/push_demo_cluster/), a wrong token and an absent broker at
//! start, and the broker stopped and started again on the same address under them.
mod push_demo_cluster;
mod util;

// The example itself is compiled in, as tests/push_demo.rs does.
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::cell::RefCell;
use std::net::SocketAddr;

use corepush::{ChannelConfig, ChannelServer, Error, Runtime};
use push_demo::{Backend, CHANNEL, Cli, SERVER, build, parse_args};
use push_demo_cluster::Pair;

const TOKEN: &str = "s3cret";

/// A broker on a free port, with [`TOKEN`].
fn broker() -> ChannelServer {
    let any = "127.0.0.1:0".parse().unwrap();
    ChannelServer::start(ChannelConfig::default().addr(any).token(TOKEN)).expect("a broker")
}

/// One demo instance on the broker at `addr`, presenting `token`; `name` None leaves
/// `--instance` out.
fn instance(
    addr: SocketAddr,
    token: &str,
    name: Option<&str>,
) -> corepush::Result<(Runtime, SocketAddr)> {
    let broker = addr.to_string();
    let mut args = vec!["--port", "0", "--workers", "2", "--backend", "channel"];
    args.extend(["--channel", &broker, "--token", token]);
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

/// Two demo instances on `broker` that see each other: A named "alpha", B left to its default.
fn pair(broker: &ChannelServer) -> Pair {
    Pair::start(|name| instance(broker.local_addr(), TOKEN, name))
}

#[test]
fn parse_args_runs_channel() {
    let run = |args: &str| match parse_args(args.split_whitespace()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    let plain = run("--backend channel");
    assert_eq!(plain.backend, Backend::Channel);
    // No name given: whoami says instance-N with the number the broker assigned.
    assert_eq!(plain.instance, "");
    assert_eq!((plain.channel, plain.token), (None, None));
    assert_eq!(CHANNEL, "127.0.0.1:13005");
    let named = run("--backend=channel --channel 10.0.0.1:7000 --token t --instance eu-1");
    assert_eq!(named.instance, "eu-1");
    assert_eq!(named.channel.as_deref(), Some("10.0.0.1:7000"));
    assert_eq!(named.token.as_deref(), Some("t"));
}

#[test]
fn no_broker_is_a_backend_error_at_start() {
    let gone = broker();
    let addr = gone.local_addr();
    drop(gone);
    match instance(addr, TOKEN, Some("alpha")) {
        Err(Error::Backend(e)) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("started without a broker"),
    }
}

#[test]
fn a_wrong_token_is_a_config_error_at_start() {
    let broker = broker();
    match instance(broker.local_addr(), "wrong", Some("alpha")) {
        Err(Error::Config(m)) => assert!(m.contains("token"), "{m}"),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("started with a wrong token"),
    }
}

#[test]
fn whoami_names_the_instance_and_ids_carry_claimed_numbers() {
    push_demo_cluster::whoami_names_the_instance_and_ids_carry_claimed_numbers(pair(&broker()));
}

#[test]
fn sends_cross_to_the_other_instance() {
    push_demo_cluster::sends_cross_to_the_other_instance(pair(&broker()));
}

#[test]
fn waited_sends_count_the_cluster() {
    push_demo_cluster::waited_sends_count_the_cluster(pair(&broker()));
}

#[test]
fn waited_closes_release_the_clients_everywhere() {
    push_demo_cluster::waited_closes_release_the_clients_everywhere(pair(&broker()));
}

#[test]
fn queries_and_data_answer_for_the_cluster() {
    push_demo_cluster::queries_and_data_answer_for_the_cluster(pair(&broker()));
}

#[test]
fn worker_messages_reach_this_instances_core_loops() {
    push_demo_cluster::worker_messages_reach_this_instances_core_loops(pair(&broker()));
}

#[test]
fn a_broker_restart_is_an_error_then_works_again() {
    let first = broker();
    let addr = first.local_addr();
    let pair = pair(&first);
    let current = RefCell::new(Some(first));
    push_demo_cluster::engine_away_and_back(
        pair,
        "the channel broker is unreachable",
        || {
            let stopped = current.borrow_mut().take().expect("running");
            stopped.shutdown();
            stopped.join();
        },
        |c| {
            // Cut off, an instance cannot tell who else is live: no cluster-wide answer.
            let e = c[push_demo_cluster::A].err(serde_json::json!({"op": "count"}));
            assert!(e.contains("unreachable"), "{e}");
        },
        || {
            let config = ChannelConfig::default().addr(addr).token(TOKEN);
            let again = ChannelServer::start(config).expect("the broker again, same address");
            *current.borrow_mut() = Some(again);
        },
    );
}
