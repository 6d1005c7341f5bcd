//! The Redis backend, with two instances on a private `redis-server`: pushes of every kind
//! cross instances, counted sends and cluster queries answer for the whole cluster, calls by
//! id reach the owner, an instance number is claimed once, two prefixes never meet, and a
//! Redis that goes away and comes back is survived.
mod util;

use std::time::Duration;

use corepush::{ClientId, Error, Workers};
use util::*;

/// One instance of cluster `prefix` on the test's Redis.
fn start(redis: &RedisServer, prefix: &str, number: u16) -> corepush::Result<RedisInstance> {
    RedisInstance::start(&redis.url(), prefix, number, Duration::from_millis(300))
}

/// Two instances (1 and 2) that see each other.
fn pair(redis: &RedisServer, prefix: &str) -> (RedisInstance, RedisInstance) {
    let a = start(redis, prefix, 1).expect("instance 1");
    let b = start(redis, prefix, 2).expect("instance 2");
    wait_until("the instances see each other", || {
        a.server.cluster().instances() == [1, 2] && b.server.cluster().instances() == [1, 2]
    });
    (a, b)
}

#[test]
fn pushes_of_every_kind_cross_instances() {
    let redis = redis_or_skip!("pushes_of_every_kind_cross_instances");
    let (a, b) = pair(&redis, "push");
    let mut on_a = Client::connect(a.addr);
    let mut on_b = Client::connect(b.addr);
    assert_eq!(on_a.id.instance(), 1);
    assert_eq!(on_b.id.instance(), 2);
    assert_eq!(on_a.ask("bind:alice"), "ok");
    assert_eq!(on_b.ask("bind:alice"), "ok");
    assert_eq!(on_b.ask("join:room"), "ok");

    // By id, to the owner only: the plain send counts this instance's part.
    assert_eq!(a.server.send_raw("to b", on_b.id).unwrap(), 0);
    assert_eq!(on_b.recv(), "to b");
    assert_eq!(a.server.send_raw("to both", [on_a.id, on_b.id]).unwrap(), 1);
    assert_eq!(on_a.recv(), "to both");
    assert_eq!(on_b.recv(), "to both");
    // By flag, to a group, to everyone, with exclusions.
    assert_eq!(a.server.send_raw_by_flag("alice", "alice").unwrap(), 1);
    assert_eq!(on_a.recv(), "alice");
    assert_eq!(on_b.recv(), "alice");
    assert_eq!(a.server.send_raw_to_group("room", "room").unwrap(), 0);
    assert_eq!(on_b.recv(), "room");
    assert_eq!(
        b.server.except(on_a.id).send_raw_to_all("not a").unwrap(),
        1
    );
    assert_eq!(on_b.recv(), "not a");
    assert_eq!(b.server.send_raw_to_all("all").unwrap(), 1);
    assert_eq!(on_a.recv(), "all");
    assert_eq!(on_b.recv(), "all");
    // A handle confined to a core loop never leaves its instance.
    assert_eq!(
        a.server
            .worker(on_b.id.worker())
            .send_raw("local only", on_b.id)
            .unwrap(),
        0
    );
    // Worker messages: this instance's core loops, or every instance's.
    assert_eq!(a.server.send_message_raw("tick", Workers::All).unwrap(), 2);
    let everywhere = a
        .server
        .cluster()
        .send_message_raw("tick", Workers::All)
        .unwrap();
    assert_eq!((everywhere.value, everywhere.complete), (4, true));
    // Counted: the whole cluster's number.
    let counted = a.server.cluster().send_raw_to_all("counted").unwrap();
    assert_eq!((counted.value, counted.complete), (2, true));
    assert_eq!(on_a.recv(), "counted");
    assert_eq!(on_b.recv(), "counted");
    // Nothing else arrived (the confined push above included): one marker each, in order.
    on_a.assert_nothing_before_marker(&a.server, "marker");
    on_b.assert_nothing_before_marker(&b.server, "marker");
    drop((on_a, on_b));
    a.stop();
    b.stop();
}

#[test]
fn queries_and_calls_by_id_answer_for_the_cluster() {
    let redis = redis_or_skip!("queries_and_calls_by_id_answer_for_the_cluster");
    let (a, b) = pair(&redis, "query");
    let mut on_a = Client::connect(a.addr);
    let mut on_b = Client::connect(b.addr);
    let cluster = a.server.cluster();
    assert!(cluster.exists(on_b.id).unwrap().value);
    assert!(
        !a.server.exists(on_b.id),
        "the plain query answers for this instance"
    );
    let count = cluster.connection_count().unwrap();
    assert_eq!((count.value, count.complete), (2, true));
    let mut both = vec![on_a.id, on_b.id];
    both.sort();
    assert_eq!(cluster.connections().unwrap().value, both);

    // Calls by id reach the owner, and its handler sees them.
    assert!(cluster.bind(on_b.id, "bob").unwrap().value);
    assert!(cluster.join(on_b.id, "room").unwrap().value);
    assert_eq!(on_b.ask("flag"), "bob");
    assert_eq!(on_b.ask("groups"), "room");
    assert!(cluster.flag_exists("bob").unwrap().value);
    assert_eq!(
        cluster.flag_of(on_b.id).unwrap().value.as_deref(),
        Some("bob")
    );
    assert_eq!(cluster.group_count("room").unwrap().value, 1);
    assert_eq!(cluster.groups().unwrap().value, vec!["room".to_owned()]);
    assert!(cluster.set_data(on_b.id, "score", &42).unwrap().value);
    assert_eq!(
        cluster.data::<i64>(on_b.id, "score").unwrap().value,
        Some(42)
    );
    assert_eq!(on_b.ask("set:k:v"), "ok");
    assert_eq!(
        cluster
            .data::<String>(on_b.id, "k")
            .unwrap()
            .value
            .as_deref(),
        Some("v")
    );
    assert!(cluster.leave(on_b.id, "room").unwrap().value);
    assert_eq!(
        cluster.unbind(on_b.id).unwrap().value.as_deref(),
        Some("bob")
    );

    // A counted close: when it returns, the owner has let the client go.
    let closed = cluster.close(on_b.id).unwrap();
    assert_eq!(closed.value, 1);
    assert!(!b.server.exists(on_b.id));
    assert!(!cluster.exists(on_b.id).unwrap().value);
    assert_eq!(read_until_close(&mut on_b.ws), Some(1000));
    // An id of nobody.
    let ghost = ClientId::from_u64((2u64 << 52) | 99).unwrap();
    assert!(!cluster.exists(ghost).unwrap().value);
    on_a.assert_nothing_before_marker(&a.server, "marker");

    // On a core loop, a call that would wait for another instance fails at once.
    let remote = b.server.cluster().connections().unwrap();
    assert!(remote.complete);
    drop(on_a);
    a.stop();
    b.stop();
}

#[test]
fn an_instance_number_is_claimed_once_and_prefixes_never_meet() {
    let redis = redis_or_skip!("an_instance_number_is_claimed_once_and_prefixes_never_meet");
    let a = start(&redis, "claim", 1).expect("instance 1");
    match start(&redis, "claim", 1) {
        Err(Error::Config(m)) => assert!(m.contains("already claimed"), "{m}"),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("two instances claimed number 1"),
    }
    // The same number under another prefix is another cluster.
    let other = start(&redis, "elsewhere", 1).expect("another prefix");
    let mut on_a = Client::connect(a.addr);
    let mut on_other = Client::connect(other.addr);
    assert_eq!(other.server.send_raw_to_all("other").unwrap(), 1);
    assert_eq!(on_other.recv(), "other");
    assert_eq!(other.server.cluster().instances(), vec![1]);
    on_a.assert_nothing_before_marker(&a.server, "marker");
    drop((on_a, on_other));
    a.stop();
    other.stop();
    // Released at shutdown: the number can be claimed again.
    let again = start(&redis, "claim", 1).expect("claimed again after a stop");
    again.stop();
}

#[test]
fn an_unreachable_redis_is_an_error_at_start() {
    let Some(mut redis) = RedisServer::start("an_unreachable_redis_is_an_error_at_start") else {
        return;
    };
    redis.kill();
    match start(&redis, "down", 1) {
        Err(Error::Backend(e)) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("started without Redis"),
    }
}

#[test]
fn a_redis_restart_is_survived() {
    let mut redis = redis_or_skip!("a_redis_restart_is_survived");
    let (a, b) = pair(&redis, "restart");
    an_engine_restart_is_survived("Redis", &a.server, a.addr, b.addr, |up| {
        if up { redis.restart() } else { redis.kill() }
    });
    a.stop();
    b.stop();
}

#[test]
fn instance_zero_claims_the_lowest_free_number() {
    let redis = redis_or_skip!("instance_zero_claims_the_lowest_free_number");
    let a = start(&redis, "auto", 0).expect("first");
    let b = start(&redis, "auto", 0).expect("second");
    let (on_a, on_b) = (Client::connect(a.addr), Client::connect(b.addr));
    assert_eq!((on_a.id.instance(), on_b.id.instance()), (1, 2));
    wait_until("the instances see each other", || {
        a.server.cluster().instances() == [1, 2]
    });
    drop((on_a, on_b));
    a.stop();
    b.stop();
}

#[test]
fn cut_off_from_redis_cluster_answers_fail_rather_than_answer_alone() {
    let mut redis =
        redis_or_skip!("cut_off_from_redis_cluster_answers_fail_rather_than_answer_alone");
    let (a, b) = pair(&redis, "cutoff");
    let on_b = Client::connect(b.addr);
    redis.kill();
    // Once the other instance has expired, this one alone is left in its view — and still it
    // must not pass its own clients off as the cluster's.
    wait_until("the other instance has expired", || {
        a.server.cluster().instances() == [1]
    });
    assert!(matches!(
        a.server.cluster().connection_count(),
        Err(Error::Backend(_))
    ));
    assert!(matches!(
        a.server.cluster().exists(on_b.id),
        Err(Error::Backend(_))
    ));
    drop(on_b);
    a.stop();
    b.stop();
}
