//! Context restore on the Local backend: a connection whose socket is cut keeps its flag,
//! groups and data for the keep time, and a new connection takes them over once — across
//! core loops, in races with other restores and with `bind_nx`, and not past the keep time.
mod restore;
mod util;

use std::sync::Barrier;
use std::time::Duration;

use corepush::{ConfigFile, ConfigFormat, Restored, Runtime, Server, ServerConfig};
use restore::{Keeper, cut, holder, keeper, next_restored};
use serde_json::json;
use util::{Client, recv_text};

const KEEP: Duration = Duration::from_secs(60);

fn start(name: &str, keep: Duration) -> (Runtime, std::net::SocketAddr, Server, restore::Reports) {
    let (spec, rx) = keeper(name, keep);
    let rt = Runtime::builder().workers(2).server(spec).start().unwrap();
    let addr = rt.local_addr(name).unwrap();
    let server = rt.server(name).unwrap();
    (rt, addr, server, rx)
}

#[test]
fn a_new_connection_gets_the_flag_the_groups_and_the_data_back() {
    let (rt, addr, server, reports) = start("restore-all", KEEP);
    let old = holder(addr, "alice", &["room", "hall"], "ann");
    let mut new = Client::connect(addr);
    assert_eq!(new.ask("set:name:other"), "ok");
    assert_eq!(new.ask("set:own:mine"), "ok");
    let old_id = cut(old, &server);

    // While kept, the flag is bound to no one and the groups do not count the old connection.
    assert!(!server.flag_exists("alice"));
    assert_eq!(server.group_count("room"), 0);

    let groups = "room,hall";
    assert_eq!(new.ask("restore:alice"), format!("from:{old_id}:{groups}"));
    assert_eq!(next_restored(&reports), (new.id, old_id));
    assert_eq!(server.flag_clients("alice"), vec![new.id]);
    assert_eq!(server.groups_of(new.id), vec!["hall", "room"]);
    assert_eq!(server.group_count("room"), 1);
    // The old data overwrote the new connection's; its own other keys stay; typed data too.
    assert_eq!(
        server.data::<String>(new.id, "name").as_deref(),
        Some("ann")
    );
    assert_eq!(
        server.data::<String>(new.id, "own").as_deref(),
        Some("mine")
    );
    assert_eq!(server.data::<u32>(new.id, "visits"), Some(3));

    // Pushes by flag and to the groups reach it.
    assert_eq!(
        server
            .send_by_flag(&json!({"to": "alice"}), "alice")
            .unwrap(),
        1
    );
    assert_eq!(recv_text(&mut new.ws), r#"{"to":"alice"}"#);
    assert_eq!(server.send_raw_to_group("hall", "in the hall").unwrap(), 1);
    assert_eq!(recv_text(&mut new.ws), "in the hall");

    // Once only: the kept context is gone, for the restorer as for anyone else.
    let mut other = Client::connect(addr);
    assert_eq!(other.ask("restore:alice"), "nothing");
    assert_eq!(new.ask("restore:alice"), "nothing");
    assert_eq!(
        server.restore(other.id, "alice").unwrap(),
        Restored::Nothing
    );
    assert!(reports.try_recv().is_err(), "one on_restore per restore");
    drop((new, other));
    rt.shutdown().unwrap();
}

#[test]
fn never_bound_held_live_expired_or_keeping_off_restore_nothing() {
    let keep = Duration::from_millis(300);
    let (rt, addr, server, reports) = start("restore-nothing", keep);
    let mut new = Client::connect(addr);
    assert_eq!(new.ask("restore:nobody"), "nothing", "never bound");

    // Held by a live connection: another holder of the flag closed, but this one is live.
    let mut live = holder(addr, "bob", &[], "live");
    let gone = holder(addr, "bob", &["g"], "gone");
    cut(gone, &server);
    assert_eq!(
        new.ask("restore:bob"),
        "nothing",
        "held by a live connection"
    );
    assert_eq!(server.flag_clients("bob"), vec![live.id]);
    // Once the live holder is gone too, its context (the most recent close) is the one kept.
    let live_id = live.id;
    assert_eq!(live.ask("join:h"), "ok");
    cut(live, &server);
    assert_eq!(new.ask("restore:bob"), format!("from:{live_id}:h"));
    assert_eq!(next_restored(&reports), (new.id, live_id));

    // Past the keep time. The context was kept before `cut` saw the client gone, so it has
    // expired once `keep` has passed since then.
    let expiring = holder(addr, "carol", &[], "c");
    cut(expiring, &server);
    // The keep time passing is the thing under test: no event announces an expiry.
    std::thread::sleep(keep + Duration::from_millis(20));
    let mut late = Client::connect(addr);
    assert_eq!(
        late.ask("restore:carol"),
        "nothing",
        "kept longer than the keep time"
    );
    drop((new, late));
    rt.shutdown().unwrap();

    // Keeping is off by default.
    let (tx, _rx) = crossbeam_channel::unbounded();
    let name = "restore-off";
    let config = ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap());
    let spec = config.handler(move |_| Keeper {
        restored: tx.clone(),
    });
    let rt = Runtime::builder().workers(1).server(spec).start().unwrap();
    let addr = rt.local_addr(name).unwrap();
    let server = rt.server(name).unwrap();
    let gone = holder(addr, "dave", &["g"], "d");
    cut(gone, &server);
    let mut new = Client::connect(addr);
    assert_eq!(new.ask("restore:dave"), "nothing");
    assert!(server.flag_clients("dave").is_empty());
    drop(new);
    rt.shutdown().unwrap();
}

#[test]
fn the_most_recently_closed_holder_wins() {
    let (rt, addr, server, reports) = start("restore-recent", KEEP);
    let first = holder(addr, "erin", &["first"], "one");
    let second = holder(addr, "erin", &["second"], "two");
    cut(first, &server);
    let second_id = cut(second, &server);
    let mut new = Client::connect(addr);
    assert_eq!(new.ask("restore:erin"), format!("from:{second_id}:second"));
    assert_eq!(next_restored(&reports).1, second_id);
    assert_eq!(
        server.data::<String>(new.id, "name").as_deref(),
        Some("two")
    );
    assert_eq!(server.groups_of(new.id), vec!["second"]);
    drop(new);
    rt.shutdown().unwrap();
}

/// Many threads restore one kept flag at once, each into a connection of its own: exactly
/// one gets it, round after round.
#[test]
fn of_many_restores_at_once_exactly_one_wins() {
    const ROUNDS: usize = 30;
    const RACERS: usize = 6;
    let (rt, addr, server, reports) = start("restore-race", KEEP);
    let racers: Vec<Client> = (0..RACERS).map(|_| Client::connect(addr)).collect();
    for round in 0..ROUNDS {
        let flag = format!("race-{round}");
        let old_id = cut(holder(addr, &flag, &["g"], "x"), &server);
        let barrier = Barrier::new(RACERS);
        let answers: Vec<Restored> = std::thread::scope(|s| {
            let handles: Vec<_> = racers
                .iter()
                .map(|c| {
                    let (server, barrier, flag, id) = (&server, &barrier, &flag, c.id);
                    s.spawn(move || {
                        barrier.wait();
                        server.restore(id, flag).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> = (0..RACERS).filter(|&i| answers[i].is_done()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {answers:?}");
        let winner = racers[winners[0]].id;
        assert_eq!(server.flag_clients(&flag), vec![winner], "round {round}");
        assert_eq!(next_restored(&reports), (winner, old_id));
        // Give the flag back for the next round's connection.
        assert!(server.unbind(winner).is_some());
    }
    drop(racers);
    rt.shutdown().unwrap();
}

/// `bind_nx` by another connection while a flag is kept: the flag is bound to no one, so it
/// succeeds — and then a restore finds it held. Raced against a restore, exactly one of the
/// two wins, never both.
#[test]
fn bind_nx_during_keep_and_against_a_restore() {
    const ROUNDS: usize = 200;
    let (rt, addr, server, reports) = start("restore-bindnx", KEEP);
    // On two core loops: two table locks, so only the flags lock orders the two calls.
    let (mut restorer, mut binder) = util::pair_across_workers(addr);
    cut(holder(addr, "kept", &["g"], "k"), &server);
    assert_eq!(
        binder.ask("bindnx:kept"),
        "true",
        "a kept flag is bound to no one"
    );
    assert_eq!(
        restorer.ask("restore:kept"),
        "nothing",
        "now held by a live connection"
    );
    assert_eq!(server.unbind(binder.id).as_deref(), Some("kept"));

    let (mut restored, mut bound) = (0, 0);
    for round in 0..ROUNDS {
        let flag = format!("nx-{round}");
        cut(holder(addr, &flag, &["g"], "x"), &server);
        let barrier = Barrier::new(2);
        let (r, b) = std::thread::scope(|s| {
            let r = s.spawn(|| {
                barrier.wait();
                server.restore(restorer.id, &flag).unwrap()
            });
            let b = s.spawn(|| {
                barrier.wait();
                server.bind_nx(binder.id, &flag)
            });
            (r.join().unwrap(), b.join().unwrap())
        });
        assert!(
            r.is_done() != b,
            "round {round}: restore {r:?}, bind_nx {b}"
        );
        let holder = if b { binder.id } else { restorer.id };
        assert_eq!(server.flag_clients(&flag), vec![holder], "round {round}");
        if r.is_done() {
            restored += 1;
            assert_eq!(next_restored(&reports).0, restorer.id);
        } else {
            bound += 1;
        }
        server.unbind(holder);
    }
    assert!(reports.try_recv().is_err());
    println!("{ROUNDS} rounds: restore won {restored}, bind_nx won {bound}");
    drop((restorer.ask("id"), binder.ask("id")));
    drop((restorer, binder));
    rt.shutdown().unwrap();
}

#[test]
fn the_keep_time_is_configured_in_code_and_in_files() {
    let config = |keep: Duration| {
        ServerConfig::websocket("k", "127.0.0.1:0".parse().unwrap()).keep_context(keep)
    };
    assert_eq!(
        config(Duration::from_secs(5)).keep_context,
        Some(Duration::from_secs(5))
    );
    assert_eq!(config(Duration::ZERO).keep_context, None, "zero is off");
    let file = |keep: &str| {
        let text = format!("[servers.ws]\naddr = \"127.0.0.1:0\"\n{keep}");
        let file = ConfigFile::parse(&text, ConfigFormat::Toml).unwrap();
        file.server("ws").unwrap().keep_context
    };
    assert_eq!(file(""), None, "off by default");
    assert_eq!(
        file("keep_context = \"30s\""),
        Some(Duration::from_secs(30))
    );
    assert_eq!(file("keep_context = \"off\""), None);
    assert_eq!(file("keep_context = 250"), Some(Duration::from_millis(250)));
}

/// A client that names its flag in the upgrade request is restored by `on_open`, before its
/// first message; `on_restore` follows `on_open`.
#[test]
fn a_restore_in_on_open() {
    let (rt, addr, server, reports) = start("restore-open", KEEP);
    let old = cut(holder(addr, "fay", &["g"], "f"), &server);
    let mut ws = util::connect_path(addr, "/?restore=fay");
    let answer = recv_text(&mut ws);
    let (new, _) = next_restored(&reports);
    assert_eq!(answer, format!("from:{old}:g"));
    assert_eq!(server.flag_clients("fay"), vec![new]);
    assert_eq!(server.data::<String>(new, "name").as_deref(), Some("f"));
    let mut again = util::connect_path(addr, "/?restore=fay");
    assert_eq!(recv_text(&mut again), "nothing");
    drop((ws, again));
    rt.shutdown().unwrap();
}
