//! History and recovery on the Redis backend, on a private `redis-server`: exact recovery
//! raced against a numbered stream while the client leaves one instance and recovers on
//! another and a third one pushes (groups and flags); the count bound; a new epoch when Redis
//! loses its keys; an error, not an answer, when Redis is unreachable.
#![cfg(feature = "redis")]
mod history_common;
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{
    BackendConfig, Error, HistoryConfig, RedisConfig, Runtime, Server, ServerConfig, StreamPosition,
};
use util::*;

struct Instance {
    rt: Runtime,
    addr: SocketAddr,
    server: Server,
}

fn instance(redis: &RedisServer, number: u16, history: HistoryConfig) -> Instance {
    let backend = BackendConfig::Redis(
        RedisConfig::default()
            .url(redis.url())
            .prefix("hist")
            .query_timeout(Duration::from_millis(300)),
    );
    let rt = Runtime::builder()
        .workers(2)
        .instance(number)
        .server(
            ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                .backend(backend)
                .history(history)
                .handler(|_| Cmd),
        )
        .start()
        .expect("an instance");
    let server = rt.server("ws").expect("handle");
    let addr = rt.local_addr("ws").expect("address");
    Instance { rt, addr, server }
}

fn three(redis: &RedisServer, history: HistoryConfig) -> [Instance; 3] {
    [1, 2, 3].map(|n| instance(redis, n, history.clone()))
}

#[test]
fn group_recovery_on_another_instance_is_exact() {
    let redis = redis_or_skip!("group_recovery_on_another_instance_is_exact");
    let [a, b, c] = three(&redis, HistoryConfig::everything(100_000));
    let pusher = c.server.clone();
    let hosts = [(a.addr, a.server.clone()), (b.addr, b.server.clone())];
    history_common::race(
        move |n| {
            pusher.send_raw_to_group("room", n.to_string()).unwrap();
        },
        |round, since| {
            // Leaves one instance, comes back on the other.
            let (addr, server) = &hosts[(round % 2) as usize];
            let client = Client::connect(*addr);
            let recovery = server.join_recovering(client.id, "room", since).unwrap();
            (client, recovery)
        },
    );
    for i in [a, b, c] {
        i.rt.shutdown().unwrap();
    }
}

#[test]
fn flag_recovery_on_another_instance_is_exact() {
    let redis = redis_or_skip!("flag_recovery_on_another_instance_is_exact");
    let [a, b, c] = three(&redis, HistoryConfig::everything(100_000));
    let pusher = c.server.clone();
    let hosts = [(a.addr, a.server.clone()), (b.addr, b.server.clone())];
    history_common::race(
        move |n| {
            pusher
                .send_raw_by_flag(n.to_string().as_str(), "user-7")
                .unwrap();
        },
        |round, since| {
            let (addr, server) = &hosts[(round % 2) as usize];
            let client = Client::connect(*addr);
            let recovery = server.bind_recovering(client.id, "user-7", since).unwrap();
            (client, recovery)
        },
    );
    for i in [a, b, c] {
        i.rt.shutdown().unwrap();
    }
}

/// Joins a fresh client of `on` at the group's position; `by` then pushes `n` numbers.
fn left_behind(on: &Instance, by: &Server, group: &str, n: u64) -> StreamPosition {
    let mut client = Client::connect(on.addr);
    let at = on.server.join_recovering(client.id, group, None).unwrap();
    assert!(at.is_member && !at.recovered);
    for i in 1..=n {
        by.send_raw_to_group(group, (at.position.offset + i).to_string())
            .unwrap();
    }
    // Delivered live to the client while it was there: the stream works.
    for i in 1..=n {
        assert_eq!(client.recv(), (at.position.offset + i).to_string());
    }
    at.position
}

#[test]
fn the_bound_holds_in_redis() {
    let redis = redis_or_skip!("the_bound_holds_in_redis");
    let [a, b, c] = three(&redis, HistoryConfig::everything(5));
    let at = left_behind(&a, &c.server, "g", 5);
    let mut on_b = Client::connect(b.addr);
    let r = b.server.join_recovering(on_b.id, "g", Some(&at)).unwrap();
    assert!(r.recovered && r.missed == 5, "{r:?}");
    for i in 1..=5 {
        assert_eq!(on_b.recv(), (at.offset + i).to_string());
    }
    c.server.send_raw_to_group("g", "live").unwrap();
    assert_eq!(on_b.recv(), "live");

    let at = left_behind(&a, &c.server, "g", 6);
    let late = Client::connect(b.addr);
    let r = b.server.join_recovering(late.id, "g", Some(&at)).unwrap();
    assert!(!r.recovered && r.is_member, "{r:?}");
    for i in [a, b, c] {
        i.rt.shutdown().unwrap();
    }
}

#[test]
fn redis_losing_its_keys_makes_a_new_epoch() {
    let mut redis = redis_or_skip!("redis_losing_its_keys_makes_a_new_epoch");
    let a = instance(&redis, 1, HistoryConfig::everything(10));
    let at = left_behind(&a, &a.server, "g", 3);
    redis.restart();
    // Reachable again once a read goes through (the first may meet the dead connection).
    wait_until("Redis is back for the history", || {
        a.server.group_position("g").is_ok()
    });
    let c = Client::connect(a.addr);
    let r = a.server.join_recovering(c.id, "g", Some(&at)).unwrap();
    assert!(!r.recovered, "{r:?}");
    assert_ne!(r.position.epoch, at.epoch);
    assert_eq!(r.position.offset, 0);
    a.rt.shutdown().unwrap();
}

#[test]
fn an_unreachable_redis_is_an_error_not_an_answer() {
    let mut redis = redis_or_skip!("an_unreachable_redis_is_an_error_not_an_answer");
    let a = instance(&redis, 1, HistoryConfig::everything(10));
    let at = left_behind(&a, &a.server, "g", 2);
    let c = Client::connect(a.addr);
    redis.kill();
    let r = a.server.join_recovering(c.id, "g", Some(&at));
    assert!(matches!(r, Err(Error::Backend(_))), "{r:?}");
    let p = a.server.group_position("g");
    assert!(matches!(p, Err(Error::Backend(_))), "{p:?}");
    a.rt.shutdown().unwrap();
}
