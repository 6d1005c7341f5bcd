//! History and recovery on the Local backend: exact recovery across a reconnect raced
//! against a numbered stream (groups and flags), a new epoch after a restart, the count and
//! age bounds, and what a recovery answers where it cannot recover.
mod history_common;
mod util;

use std::thread;
use std::time::Duration;

use corepush::{HistoryConfig, Runtime, Server, ServerConfig, StreamPosition};
use util::*;

fn start(name: &str, history: HistoryConfig) -> (Runtime, std::net::SocketAddr, Server) {
    start_config(ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap()).history(history))
}

#[test]
fn group_recovery_is_exact_across_the_seam() {
    let (rt, addr, server) = start("history-group-seam", HistoryConfig::everything(100_000));
    let pusher = server.clone();
    history_common::race(
        move |n| {
            pusher.send_raw_to_group("room", n.to_string()).unwrap();
        },
        |_, since| {
            let client = Client::connect(addr);
            let recovery = server.join_recovering(client.id, "room", since).unwrap();
            (client, recovery)
        },
    );
    rt.shutdown().unwrap();
}

#[test]
fn flag_recovery_is_exact_across_the_seam() {
    let (rt, addr, server) = start("history-flag-seam", HistoryConfig::everything(100_000));
    let pusher = server.clone();
    history_common::race(
        move |n| {
            pusher
                .send_raw_by_flag(n.to_string().as_str(), "user-7")
                .unwrap();
        },
        |_, since| {
            let client = Client::connect(addr);
            let recovery = server.bind_recovering(client.id, "user-7", since).unwrap();
            (client, recovery)
        },
    );
    rt.shutdown().unwrap();
}

/// Joins a fresh client at the group's position, pushes `n` numbered messages, and returns
/// the position the client had.
fn left_behind(addr: std::net::SocketAddr, server: &Server, group: &str, n: u64) -> StreamPosition {
    let client = Client::connect(addr);
    let at = server.join_recovering(client.id, group, None).unwrap();
    assert!(!at.recovered && at.is_member);
    drop(client);
    for i in 1..=n {
        server
            .send_raw_to_group(group, format!("{}", at.position.offset + i))
            .unwrap();
    }
    at.position
}

#[test]
fn exactly_the_bound_missed_still_recovers_and_one_more_does_not() {
    let (rt, addr, server) = start("history-bound", HistoryConfig::everything(5));
    let at = left_behind(addr, &server, "g", 5);
    let mut c = Client::connect(addr);
    let r = server.join_recovering(c.id, "g", Some(&at)).unwrap();
    assert!(r.recovered, "{r:?}");
    assert_eq!((r.missed, r.position.offset), (5, at.offset + 5));
    for i in 1..=5 {
        assert_eq!(c.recv(), (at.offset + i).to_string());
    }
    // Live after the missed ones.
    server.send_raw_to_group("g", "live").unwrap();
    assert_eq!(c.recv(), "live");

    let at = left_behind(addr, &server, "g", 6);
    let mut d = Client::connect(addr);
    let r = server.join_recovering(d.id, "g", Some(&at)).unwrap();
    assert!(!r.recovered, "offset + 1 is no longer kept: {r:?}");
    assert_eq!(r.missed, 0);
    assert!(r.is_member, "a recovery joins whether or not it recovers");
    server.send_raw_to_group("g", "after").unwrap();
    assert_eq!(d.recv(), "after", "nothing was pushed but live messages");
    rt.shutdown().unwrap();
}

#[test]
fn excluded_and_unreceived_sends_are_kept_but_worker_scoped_ones_are_not() {
    let (rt, addr, server) = start("history-kept", HistoryConfig::everything(10));
    let mut c = Client::connect(addr);
    let at = server.bind_recovering(c.id, "u", None).unwrap().position;
    // Excluded: c does not receive it, but it is kept.
    assert_eq!(server.except(c.id).send_raw_by_flag("one", "u").unwrap(), 0);
    // Confined to one core loop: received, not kept.
    assert_eq!(
        server
            .worker(c.worker())
            .send_raw_by_flag("scoped", "u")
            .unwrap(),
        1
    );
    assert_eq!(c.recv(), "scoped");
    assert_eq!(server.flag_position("u").unwrap().offset, at.offset + 1);
    let mut d = Client::connect(addr);
    let r = server.bind_recovering(d.id, "u", Some(&at)).unwrap();
    assert!(r.recovered && r.missed == 1, "{r:?}");
    assert_eq!(d.recv(), "one");
    // No one holds the flag: still kept.
    drop((c, d));
    wait_until("both gone", || server.connection_count() == 0);
    assert_eq!(server.send_raw_by_flag("two", "u").unwrap(), 0);
    assert_eq!(server.flag_position("u").unwrap().offset, at.offset + 2);
    rt.shutdown().unwrap();
}

#[test]
fn ahead_or_foreign_positions_do_not_recover() {
    let (rt, addr, server) = start("history-ahead", HistoryConfig::everything(10));
    let at = left_behind(addr, &server, "g", 2);
    let c = Client::connect(addr);
    let ahead = StreamPosition {
        epoch: at.epoch.clone(),
        offset: at.offset + 3,
    };
    assert!(
        !server
            .join_recovering(c.id, "g", Some(&ahead))
            .unwrap()
            .recovered
    );
    let foreign = StreamPosition {
        epoch: "another".into(),
        offset: 0,
    };
    assert!(
        !server
            .join_recovering(c.id, "g", Some(&foreign))
            .unwrap()
            .recovered
    );
    // Nothing missed: recovered, none to send.
    let now = server.group_position("g").unwrap();
    let r = server.join_recovering(c.id, "g", Some(&now)).unwrap();
    assert!(r.recovered && r.missed == 0, "{r:?}");
    // A client that is not connected is not a member and recovers nothing.
    drop(c);
    wait_until("the client is gone", || server.connection_count() == 0);
    let gone: corepush::ClientId = "12345".parse().unwrap();
    let r = server.join_recovering(gone, "g", Some(&now)).unwrap();
    assert!(!r.is_member && !r.recovered);
    rt.shutdown().unwrap();
}

#[test]
fn a_restart_makes_a_new_epoch() {
    let (rt, addr, server) = start("history-restart", HistoryConfig::everything(10));
    let at = left_behind(addr, &server, "g", 3);
    rt.shutdown().unwrap();
    let (rt, addr, server) = start("history-restart", HistoryConfig::everything(10));
    let c = Client::connect(addr);
    let r = server.join_recovering(c.id, "g", Some(&at)).unwrap();
    assert!(!r.recovered, "{r:?}");
    assert_ne!(r.position.epoch, at.epoch);
    assert_eq!(r.position.offset, 0);
    rt.shutdown().unwrap();
}

#[test]
fn messages_older_than_the_age_bound_are_not_kept() {
    let history = HistoryConfig::default().groups("news:*", 0, Some(Duration::from_millis(300)));
    let (rt, addr, server) = start("history-age", history);
    let at = left_behind(addr, &server, "news:1", 2);
    let mut c = Client::connect(addr);
    let r = server.join_recovering(c.id, "news:1", Some(&at)).unwrap();
    assert!(r.recovered && r.missed == 2, "{r:?}");
    assert_eq!(c.recv(), (at.offset + 1).to_string());
    assert_eq!(c.recv(), (at.offset + 2).to_string());
    // The age bound is the thing under test: let the messages age past it.
    thread::sleep(Duration::from_millis(400));
    let d = Client::connect(addr);
    let r = server.join_recovering(d.id, "news:1", Some(&at)).unwrap();
    assert!(!r.recovered, "{r:?}");
    // A name no rule covers keeps nothing, but joins.
    let r = server.join_recovering(d.id, "other", None).unwrap();
    assert!(r.is_member && !r.recovered && r.position.offset == 0);
    rt.shutdown().unwrap();
}

#[test]
fn without_history_recover_answers_false_and_a_position() {
    let (rt, addr, server) = start("history-off", HistoryConfig::default());
    let c = Client::connect(addr);
    let r = server.join_recovering(c.id, "g", None).unwrap();
    assert!(r.is_member && !r.recovered);
    let again = server
        .join_recovering(c.id, "g", Some(&r.position))
        .unwrap();
    assert!(!again.recovered, "no history: never recovered");
    assert_eq!(server.group_members("g"), vec![c.id]);
    rt.shutdown().unwrap();
}

#[test]
fn a_rule_without_a_bound_is_refused_at_start() {
    let config = ServerConfig::websocket("history-unbounded", "127.0.0.1:0".parse().unwrap())
        .history(HistoryConfig::everything(0))
        .handler(|_| Cmd);
    let started = Runtime::builder().workers(1).server(config).start();
    assert!(matches!(started, Err(corepush::Error::Config(_))));
}

#[test]
fn a_history_is_configured_in_files_too() {
    let history = |line: &str| {
        let text = format!("[servers.ws]\naddr = \"127.0.0.1:0\"\n{line}");
        let file = corepush::ConfigFile::parse(&text, corepush::ConfigFormat::Toml).unwrap();
        file.server("ws").unwrap().history.clone()
    };
    assert!(history("").is_off(), "off by default");
    assert!(history("history = 0").is_off());
    assert_eq!(history("history = 50"), HistoryConfig::everything(50));
}
