//! The history's bounds hold under a flood: many threads push far more than is kept, and
//! each name keeps exactly its last N (the one before is gone, the N are all there), with the
//! process's memory bounded by what is kept, not by what was pushed; on Redis, each name's
//! list never exceeds N.
mod util;

use std::thread;

use corepush::{HistoryConfig, ServerConfig, StreamPosition};
use util::*;

const GROUPS: usize = 20;
const KEPT: usize = 200;
const THREADS: usize = 4;
const PER_THREAD: usize = 50_000;
const PAYLOAD: usize = 1024;

#[test]
fn bounds_hold_under_a_flood() {
    let (rt, addr, server) = start_config(
        ServerConfig::websocket("history-flood", "127.0.0.1:0".parse().unwrap())
            .history(HistoryConfig::everything(KEPT)),
    );
    let before = vm_rss();
    let pushers: Vec<_> = (0..THREADS)
        .map(|t| {
            let server = server.clone();
            thread::spawn(move || {
                let payload = vec![b'x'; PAYLOAD];
                for i in 0..PER_THREAD {
                    let group = format!("g{}", (i + t) % GROUPS);
                    server
                        .send_raw_to_group(group.as_str(), payload.as_slice())
                        .unwrap();
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    let grown = vm_rss().saturating_sub(before);
    let pushed = THREADS * PER_THREAD * PAYLOAD;
    let kept = GROUPS * KEPT * PAYLOAD;
    eprintln!(
        "pushed {} MiB, kept {} MiB, RSS grew {} MiB",
        pushed >> 20,
        kept >> 20,
        grown >> 20
    );
    // Kept: ~4 MiB; pushed: ~195 MiB. Allow the allocator its slack, far below what an
    // unbounded history would hold.
    assert!(grown < 48 << 20, "RSS grew {} MiB", grown >> 20);

    let mut total = 0;
    for g in 0..GROUPS {
        let group = format!("g{g}");
        let now = server.group_position(&group).unwrap();
        total += now.offset;
        let behind = |by: u64| StreamPosition {
            epoch: now.epoch.clone(),
            offset: now.offset - by,
        };
        let c = Client::connect(addr);
        let r = server
            .join_recovering(c.id, &group, Some(&behind(KEPT as u64 + 1)))
            .unwrap();
        assert!(!r.recovered, "{group}: more than {KEPT} kept");
        if g == 0 {
            let mut c = c;
            let r = server
                .join_recovering(c.id, &group, Some(&behind(KEPT as u64)))
                .unwrap();
            assert!(r.recovered && r.missed == KEPT, "{group}: {r:?}");
            for _ in 0..KEPT {
                assert_eq!(c.recv_message().into_data().len(), PAYLOAD);
            }
        }
    }
    assert_eq!(
        total as usize,
        THREADS * PER_THREAD,
        "every push got an offset"
    );
    rt.shutdown().unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn redis_lists_stay_within_the_bound() {
    use corepush::{BackendConfig, RedisConfig, Runtime};
    use std::time::Duration;

    let redis = redis_or_skip!("redis_lists_stay_within_the_bound");
    let backend = BackendConfig::Redis(RedisConfig::default().url(redis.url()).prefix("flood"));
    let rt = Runtime::builder()
        .workers(1)
        .instance(1)
        .server(
            ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                .backend(backend)
                .history(HistoryConfig::everything(5))
                .handler(|_| Cmd),
        )
        .start()
        .expect("an instance");
    let server = rt.server("ws").unwrap();
    let con = redis::Client::open(redis.url()).unwrap();
    let mut con = con
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    let key = "flood:ws:h:g:room:l";
    let mut longest = 0usize;
    for round in 0..20 {
        for i in 0..500 {
            server
                .send_raw_to_group("room", format!("{round}-{i}"))
                .unwrap();
        }
        let len: usize = redis::cmd("LLEN").arg(key).query(&mut con).unwrap();
        longest = longest.max(len);
    }
    wait_until("every append is in", || {
        server
            .group_position("room")
            .is_ok_and(|p| p.offset == 10_000)
    });
    let len: usize = redis::cmd("LLEN").arg(key).query(&mut con).unwrap();
    assert_eq!(len, 5);
    assert!(longest <= 5, "a list held {longest}");
    rt.shutdown().unwrap();
}
