//! Context restore on the Redis backend: a context kept on instance A is restored on instance
//! B (its JSON data with it), or on A with its typed data; exactly one restore across the
//! instances gets it; with Redis unreachable a restore is an error, not an answer.
#![cfg(feature = "redis")]
mod restore;
mod util;

use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::Duration;

use corepush::{BackendConfig, Error, RedisConfig, Restored, Runtime, Server, ServerConfig};
use restore::{Reports, cut, holder, keeper_spec, next_restored};
use serde_json::json;
use util::{Client, RedisServer, recv_text};

const KEEP: Duration = Duration::from_secs(60);
const PREFIX: &str = "restore-test";

struct Instance {
    rt: Runtime,
    addr: SocketAddr,
    server: Server,
    reports: Reports,
}

fn instance(redis: &RedisServer) -> Instance {
    let backend = BackendConfig::Redis(RedisConfig::default().url(redis.url()).prefix(PREFIX));
    let config = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
        .keep_context(KEEP)
        .backend(backend);
    let (spec, reports) = keeper_spec(config);
    let rt = Runtime::builder().workers(2).server(spec).start().unwrap();
    let addr = rt.local_addr("ws").unwrap();
    let server = rt.server("ws").unwrap();
    Instance {
        rt,
        addr,
        server,
        reports,
    }
}

/// Restores `flag` into `id` through `server`, asking again while the context is not in Redis
/// yet (the close's write is on its way): the first answer that is not `Nothing`.
fn restore_when_kept(server: &Server, id: corepush::ClientId, flag: &str) -> Restored {
    let mut got = Restored::Nothing;
    util::wait_until("a restore that finds the context kept", || {
        got = server.restore(id, flag).expect("restore");
        got.is_done()
    });
    got
}

/// Waits until the context kept under `flag` is in Redis.
fn wait_kept(redis: &RedisServer, flag: &str) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let key = format!("{PREFIX}:ws:kept:{flag}");
    util::wait_until("the context is in Redis", || {
        redis::cmd("EXISTS")
            .arg(&key)
            .query::<bool>(&mut con)
            .unwrap()
    });
}

#[test]
fn a_context_kept_on_one_instance_is_restored_on_another() {
    let Some(redis) = RedisServer::start("a_context_kept_on_one_instance_is_restored_on_another")
    else {
        return;
    };
    let (a, b) = (instance(&redis), instance(&redis));
    let old = cut(holder(a.addr, "alice", &["room", "hall"], "ann"), &a.server);
    let mut new = Client::connect(b.addr);
    assert_eq!(new.ask("set:name:other"), "ok");
    // On a core loop the call would wait for Redis: it says so and changes nothing.
    assert!(new.ask("restore:alice").starts_with("error:"));

    let got = restore_when_kept(&b.server, new.id, "alice");
    let groups = vec!["room".to_owned(), "hall".to_owned()];
    assert_eq!(got, Restored::Done { from: old, groups });
    assert_eq!(next_restored(&b.reports), (new.id, old));
    // The flag and the groups, on B and seen from A.
    assert_eq!(b.server.flag_clients("alice"), vec![new.id]);
    assert_eq!(
        a.server.cluster().flag_clients("alice").unwrap().value,
        vec![new.id]
    );
    assert_eq!(a.server.cluster().group_count("room").unwrap().value, 1);
    assert_eq!(a.server.send_raw_by_flag("from A", "alice").unwrap(), 0);
    assert_eq!(recv_text(&mut new.ws), "from A");
    assert_eq!(
        a.server.send_raw_to_group("hall", "hall from A").unwrap(),
        0
    );
    assert_eq!(recv_text(&mut new.ws), "hall from A");
    // The data crossed as JSON; the typed value stayed behind.
    assert_eq!(
        b.server.data::<serde_json::Value>(new.id, "name"),
        Some(json!("ann"))
    );
    assert_eq!(b.server.data::<u32>(new.id, "visits"), None);

    // Held by a live connection of another instance: nothing, and the context stays kept.
    let gone = cut(holder(a.addr, "held", &[], "h"), &a.server);
    let mut live = Client::connect(b.addr);
    assert_eq!(live.ask("bind:held"), "ok");
    wait_kept(&redis, "held");
    let on_a = Client::connect(a.addr);
    assert_eq!(
        a.server.restore(on_a.id, "held").unwrap(),
        Restored::Nothing
    );
    // Unbound (a close would keep its own context, the most recent one).
    assert_eq!(b.server.unbind(live.id).as_deref(), Some("held"));
    assert_eq!(
        restore_when_kept(&a.server, on_a.id, "held"),
        Restored::Done {
            from: gone,
            groups: Vec::new()
        }
    );
    assert_eq!(next_restored(&a.reports), (on_a.id, gone));
    drop((on_a, live));

    // Restored on the instance it was kept on, typed data comes back too.
    let old = cut(holder(a.addr, "bob", &[], "bo"), &a.server);
    let on_a = Client::connect(a.addr);
    let got = restore_when_kept(&a.server, on_a.id, "bob");
    assert!(got.is_done(), "{got:?}");
    assert_eq!(next_restored(&a.reports), (on_a.id, old));
    assert_eq!(a.server.data::<u32>(on_a.id, "visits"), Some(3));
    assert_eq!(
        a.server.data::<String>(on_a.id, "name").as_deref(),
        Some("bo")
    );
    drop((new, on_a));
    a.rt.shutdown().unwrap();
    b.rt.shutdown().unwrap();
}

/// Restores on both instances at once, two connections on each: exactly one gets it, round
/// after round.
#[test]
fn exactly_one_restore_across_instances() {
    const ROUNDS: usize = 15;
    let Some(redis) = RedisServer::start("exactly_one_restore_across_instances") else {
        return;
    };
    let (a, b) = (instance(&redis), instance(&redis));
    let racers: Vec<(Client, &Server)> = [&a, &a, &b, &b]
        .iter()
        .map(|i| (Client::connect(i.addr), &i.server))
        .collect();
    for round in 0..ROUNDS {
        let flag = format!("race-{round}");
        let on = if round % 2 == 0 { &a } else { &b };
        cut(holder(on.addr, &flag, &["g"], "x"), &on.server);
        wait_kept(&redis, &flag);
        let barrier = Barrier::new(racers.len());
        let answers: Vec<Restored> = std::thread::scope(|s| {
            let handles: Vec<_> = racers
                .iter()
                .map(|(c, server)| {
                    let (barrier, flag, id) = (&barrier, &flag, c.id);
                    s.spawn(move || {
                        barrier.wait();
                        server.restore(id, flag).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..racers.len())
            .filter(|&i| answers[i].is_done())
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        let (winner, server) = (&racers[winners[0]].0, racers[winners[0]].1);
        assert_eq!(server.unbind(winner.id).as_deref(), Some(flag.as_str()));
    }
    drop(racers);
    a.rt.shutdown().unwrap();
    b.rt.shutdown().unwrap();
}

#[test]
fn with_redis_unreachable_a_restore_is_an_error() {
    let Some(mut redis) = RedisServer::start("with_redis_unreachable_a_restore_is_an_error") else {
        return;
    };
    let a = instance(&redis);
    cut(holder(a.addr, "carol", &[], "c"), &a.server);
    wait_kept(&redis, "carol");
    let new = Client::connect(a.addr);
    redis.kill();
    match a.server.restore(new.id, "carol") {
        Err(Error::Backend(_)) => {}
        other => panic!("expected a backend error, got {other:?}"),
    }
    assert!(a.server.flag_clients("carol").is_empty(), "nothing changed");
    drop(new);
    a.rt.shutdown().unwrap();
}

/// A graceful shutdown closes every connection: their contexts are in Redis before the
/// instance has stopped, and its clients restore on another instance (a rolling restart).
#[test]
fn a_stopped_instance_s_clients_restore_on_another() {
    let Some(redis) = RedisServer::start("a_stopped_instance_s_clients_restore_on_another") else {
        return;
    };
    let (a, b) = (instance(&redis), instance(&redis));
    let flags: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let holders: Vec<Client> = flags
        .iter()
        .map(|f| holder(a.addr, f, &["all"], f))
        .collect();
    a.rt.shutdown_handle().shutdown();
    for mut h in holders {
        assert_eq!(
            util::read_until_close(&mut h.ws),
            Some(1001),
            "a going-away close"
        );
    }
    a.rt.shutdown().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    for flag in &flags {
        let key = format!("{PREFIX}:ws:kept:{flag}");
        let kept: bool = redis::cmd("EXISTS").arg(&key).query(&mut con).unwrap();
        assert!(kept, "{flag} is in Redis once the instance has stopped");
    }
    let mut back = Vec::new();
    for flag in &flags {
        let new = Client::connect(b.addr);
        assert!(b.server.restore(new.id, flag).unwrap().is_done(), "{flag}");
        let name = b.server.data::<serde_json::Value>(new.id, "name");
        assert_eq!(name, Some(json!(flag)));
        assert_eq!(next_restored(&b.reports).0, new.id);
        back.push(new);
    }
    assert_eq!(b.server.group_count("all"), flags.len());
    drop(back);
    b.rt.shutdown().unwrap();
}
