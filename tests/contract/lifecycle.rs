//! Contract cases for closing clients, worker messages, core-loop scopes and shutdown.

use corepush::{Error, Server, WorkerId, Workers};
use serde_json::json;

use super::{Fixture, Kind, WORKERS, nobody, pick};
use crate::util::{Client, read_until_close};

/// Clients per instance in `spread(2)`: two on each core loop.
const BLOCK: usize = 2 * WORKERS;

/// Right after a close returned, the client is gone for every query and send through `s`.
fn assert_gone(s: &Server, c: &Client) {
    assert!(!s.exists(c.id), "client {}", c.id);
    assert!(!s.connections().contains(&c.id));
    assert_eq!(s.flag_of(c.id), None);
    assert!(!s.flag_clients("shared").contains(&c.id));
    assert!(!s.group_members("g").contains(&c.id));
    assert!(s.groups_of(c.id).is_empty());
    assert_eq!(s.data::<String>(c.id, "k"), None);
    assert_eq!(s.send_raw("late", c.id).unwrap(), 0);
    assert_eq!(s.close(c.id).unwrap(), 0, "closed already");
}

/// `close` by one id or several, through the client's instance, closes it with 1000; the
/// moment `close` returns the client is gone (not listed, its flag, groups and data
/// released, a send to it counts 0), and the others stay.
pub fn close_by_id(f: &dyn Fixture) {
    let d = f.start("close_by_id");
    let mut cs = d.spread(2);
    for c in cs.iter_mut() {
        assert_eq!(c.ask("bind:shared"), "ok");
        assert_eq!(c.ask("join:g"), "ok");
        assert_eq!(c.ask("set:k:v"), "ok");
    }
    // Per instance: the first client of each core loop alone, then the other two together.
    let mut rest: Vec<Client> = Vec::new();
    for (i, mut c) in cs.into_iter().enumerate() {
        if i % 2 == 1 {
            rest.push(c);
            continue;
        }
        let home = d.home(&c);
        let s = d.via(home);
        assert_eq!(s.close(c.id).unwrap(), d.expected(home, [&c]));
        assert_gone(s, &c);
        d.read_close(&mut c, 1000);
    }
    for via in d.vias() {
        let s = d.via(via);
        assert_eq!(s.connections(), d.seen(via, &rest));
        assert_eq!(s.connection_count(), d.seen(via, &rest).len());
        assert_eq!(s.group_members("g"), d.seen(via, &rest));
        for c in rest.iter_mut() {
            assert_eq!(s.exists(c.id), d.sees(via, c));
            d.quiet(via, c);
        }
    }
    for via in d.vias() {
        let mine: Vec<usize> = (0..rest.len())
            .filter(|&i| d.home(&rest[i]) == via)
            .collect();
        // Each named twice: a connection is closed, and counted, once.
        let ids: Vec<_> = mine.iter().chain(&mine).map(|&i| rest[i].id).collect();
        let s = d.via(via);
        assert_eq!(
            s.close(&ids).unwrap(),
            d.expected(via, pick(&rest, |i| mine.contains(&i)))
        );
        for &i in &mine {
            assert_gone(s, &rest[i]);
        }
        for &i in &mine {
            d.read_close(&mut rest[i], 1000);
        }
    }
}

/// `close_by_flag` closes every holder of the flag, on every core loop, with 1000; the moment
/// it returns the flag is gone and sends to it count 0; other clients stay.
pub fn close_by_flag(f: &dyn Fixture) {
    let d = f.start("close_by_flag");
    let mut cs = d.spread(2);
    // Per instance: "leaving" on both core loops, "staying" on one, no flag on the last.
    let leaving = |i: usize| i % BLOCK == 0 || i % BLOCK == 2;
    for (i, c) in cs.iter_mut().enumerate() {
        let flag = if leaving(i) { "leaving" } else { "staying" };
        if i % BLOCK != BLOCK - 1 {
            assert_eq!(c.ask(&format!("bind:{flag}")), "ok");
        }
    }
    // Through one instance: what another instance sees of a cluster-wide close is not
    // promised at the moment the call returns.
    let s = d.via(0);
    assert_eq!(
        s.close_by_flag("leaving").unwrap(),
        d.expected(0, pick(&cs, leaving))
    );
    assert!(!s.flag_exists("leaving"));
    assert!(s.flag_clients("leaving").is_empty());
    assert_eq!(s.send_raw_by_flag("late", "leaving").unwrap(), 0);
    assert_eq!(s.close_by_flag("leaving").unwrap(), 0);
    for c in pick(&cs, leaving) {
        assert!(!s.exists(c.id));
        assert_eq!(s.send_raw("late", c.id).unwrap(), 0);
    }
    let staying = d.seen(0, pick(&cs, |i| !leaving(i) && i % BLOCK != BLOCK - 1));
    assert_eq!(s.flag_exists("staying"), !staying.is_empty());
    assert_eq!(s.connections(), d.seen(0, pick(&cs, |i| !leaving(i))));
    for (i, c) in cs.iter_mut().enumerate() {
        if leaving(i) {
            d.read_close(c, 1000);
        } else {
            d.quiet(0, c);
        }
    }
}

/// `send_message` / `send_message_raw` count the core loops they reach: all, some (each
/// once), one, none that exist; a handle confined to a core loop reaches only that one.
pub fn worker_messages_count_core_loops(f: &dyn Fixture) {
    let d = f.start("worker_messages_count_core_loops");
    let n = d.instances.len();
    for via in d.vias() {
        let s = d.via(via);
        let all = d.count(WORKERS, WORKERS * n);
        assert_eq!(
            s.send_message("nobody-listens", &json!({"via": via}), Workers::All)
                .unwrap(),
            all
        );
        assert_eq!(s.send_message_raw("raw", Workers::All).unwrap(), all);
        assert_eq!(s.send_message("a", &1, None::<WorkerId>).unwrap(), all);
        let some = [WorkerId(0), WorkerId(1), WorkerId(1)];
        assert_eq!(s.send_message("a", &1, some).unwrap(), all);
        assert_eq!(s.send_message("a", &1, WorkerId(1)).unwrap(), d.count(1, n));
        assert_eq!(
            s.send_message_raw(b"r", WorkerId(0)).unwrap(),
            d.count(1, n)
        );
        assert_eq!(s.send_message("a", &1, WorkerId(7)).unwrap(), 0);
        assert_eq!(s.send_message_raw("r", Vec::<WorkerId>::new()).unwrap(), 0);
        let one = s.worker(WorkerId(1));
        assert_eq!(
            one.send_message("a", &1, Workers::All).unwrap(),
            d.count(1, 1)
        );
        assert_eq!(
            one.send_message_raw("r", WorkerId(1)).unwrap(),
            d.count(1, 1)
        );
        assert_eq!(one.send_message("a", &1, WorkerId(0)).unwrap(), 0);
    }
}

/// A handle from `worker(n)` sees and reaches only that core loop's clients of its instance:
/// the others do not exist for it. A core loop that does not exist has no clients.
pub fn worker_scope_confines_to_one_core_loop(f: &dyn Fixture) {
    let d = f.start("worker_scope_confines_to_one_core_loop");
    let mut cs = d.spread(2);
    for c in cs.iter_mut() {
        assert_eq!(c.ask("bind:u"), "ok");
        assert_eq!(c.ask("join:g"), "ok");
    }
    for via in d.vias() {
        for w in 0..WORKERS {
            let h = d.via(via).worker(WorkerId(w as u16));
            assert_eq!(h.scope(), Some(WorkerId(w as u16)));
            let inside = |c: &Client| d.holds(via, c) && c.worker().index() == w;
            let k = cs.iter().filter(|c| inside(c)).count();
            let n = d.count(k, k);
            let seen = d.seen(via, cs.iter().filter(|c| inside(c)));
            assert_eq!(h.connections(), seen);
            assert_eq!(h.connection_count(), seen.len());
            assert_eq!(h.group_members("g"), seen);
            let mut holders = h.flag_clients("u");
            holders.sort_unstable();
            assert_eq!(holders, seen);
            assert_eq!(h.send_raw_to_all("all").unwrap(), n);
            assert_eq!(h.send_raw_by_flag("flag", "u").unwrap(), n);
            assert_eq!(h.send_raw_to_group("g", "group").unwrap(), n);
            let ids: Vec<_> = cs.iter().map(|c| c.id).collect();
            assert_eq!(h.send_raw("ids", &ids).unwrap(), n);
            assert_eq!(
                h.send_message_raw("r", Workers::All).unwrap(),
                d.count(1, 1)
            );
            for c in cs.iter().filter(|c| !inside(c)) {
                assert!(!h.exists(c.id));
                assert_eq!(h.flag_of(c.id), None);
                assert!(h.groups_of(c.id).is_empty());
                assert_eq!(h.send_raw("x", c.id).unwrap(), 0);
                assert!(!h.bind(c.id, "z"));
                assert!(!h.join(c.id, "z"));
                assert!(!h.set_data(c.id, "z", 1u8));
                assert_eq!(h.close(c.id).unwrap(), 0);
            }
            for c in cs.iter_mut() {
                if inside(c) {
                    for text in ["all", "flag", "group", "ids"] {
                        d.read_text(c, text);
                    }
                }
                // Out of scope: untouched, and still there.
                let u = d.sees(via, c).then(|| "u".to_owned());
                assert_eq!(d.via(via).flag_of(c.id), u);
                d.quiet(via, c);
            }
        }
        let none = d.via(via).worker(WorkerId(9));
        assert_eq!(none.connection_count(), 0);
        assert!(none.connections().is_empty());
        assert_eq!(none.send_raw_to_all("x").unwrap(), 0);
        assert_eq!(none.send_message_raw("x", Workers::All).unwrap(), 0);
    }
}

/// `this_worker()` needs a core loop of the server's runtime: off one it fails with
/// `NotOnWorker` where the backend delivers (Fpm hands back its no-op handle); on one it is
/// confined to that core loop's clients of the instance.
pub fn this_worker_needs_a_core_loop(f: &dyn Fixture) {
    let d = f.start("this_worker_needs_a_core_loop");
    let mut cs = d.spread(2);
    let check = |s: &Server| match (d.kind, s.this_worker()) {
        (Kind::NoOp, Ok(h)) => {
            assert_eq!(h.scope(), None);
            assert_eq!(h.send_raw_to_all("x").unwrap(), 0);
            assert_eq!(h.connection_count(), 0);
        }
        (Kind::NoOp, Err(e)) => panic!("expected the no-op handle, got {e}"),
        (_, Err(Error::NotOnWorker)) => {}
        (_, other) => panic!("expected NotOnWorker, got {other:?}"),
    };
    for via in d.vias() {
        let s = d.via(via);
        check(s);
        std::thread::scope(|t| {
            t.spawn(|| check(s));
        });
    }
    // On a core loop, through the handler: its own core loop's clients of its instance only.
    for i in 0..cs.len() {
        let (home, w) = (d.home(&cs[i]), cs[i].worker());
        let same: Vec<bool> = cs
            .iter()
            .map(|c| d.holds(home, c) && c.worker() == w)
            .collect();
        let k = same.iter().filter(|&&b| b).count();
        assert_eq!(cs[i].ask("local-count"), d.count(k, k).to_string());
        cs[i].say("local-all:here");
        // The push to itself arrives before the reply it sends next (where the core loop
        // running its handler holds it: not under Gateway).
        if same[i] {
            d.read_text(&mut cs[i], "here");
        }
        assert_eq!(cs[i].recv(), format!("sent:{}", d.count(k, k)));
        for (j, c) in cs.iter_mut().enumerate() {
            if j != i && same[j] {
                d.read_text(c, "here");
            }
            d.quiet(home, c);
        }
    }
}

/// After the deployment shut down, sends, closes and worker messages fail with `Shutdown`
/// where the backend delivers (Fpm keeps answering 0), and queries answer as for an empty
/// server.
pub fn after_shutdown(f: &dyn Fixture) {
    let mut d = f.start("after_shutdown");
    let mut cs = d.spread(1);
    for c in cs.iter_mut() {
        assert_eq!(c.ask("bind:f"), "ok");
        assert_eq!(c.ask("join:g"), "ok");
    }
    let ids: Vec<_> = cs.iter().map(|c| c.id).collect();
    // The clients answer the server's close on their own threads while it shuts down.
    let readers: Vec<_> = cs
        .into_iter()
        .map(|mut c| std::thread::spawn(move || read_until_close(&mut c.ws)))
        .collect();
    d.shutdown();
    for r in readers {
        let code = r.join().expect("a reader failed");
        if d.delivers() {
            assert_eq!(code, Some(1001), "a graceful shutdown closes with 1001");
        }
    }
    let fails = |r: corepush::Result<usize>| match d.kind {
        Kind::NoOp => assert_eq!(r.unwrap(), 0),
        _ => assert!(
            matches!(r, Err(Error::Shutdown)),
            "expected Shutdown, got {r:?}"
        ),
    };
    for via in d.vias() {
        let s = d.via(via);
        let id = ids[0];
        fails(s.send(&1, id));
        fails(s.send_raw("x", &ids));
        fails(s.send_by_flag(&1, "f"));
        fails(s.send_raw_by_flag("x", "f"));
        fails(s.send_to_group("g", &1));
        fails(s.send_raw_to_group("g", "x"));
        fails(s.send_to_all(&1));
        fails(s.send_raw_to_all("x"));
        fails(s.close(id));
        fails(s.close_by_flag("f"));
        fails(s.send_message("a", &1, Workers::All));
        fails(s.send_message_raw("x", WorkerId(0)));
        fails(s.worker(WorkerId(0)).send_raw_to_all("x"));
        fails(s.except(id).send_to_all(&1));
        for &id in &ids {
            assert!(!s.exists(id));
            assert_eq!(s.flag_of(id), None);
            assert!(s.groups_of(id).is_empty());
            assert!(!s.bind(id, "f"));
            assert!(!s.join(id, "g"));
            assert!(!s.set_data(id, "k", 1u8));
            assert_eq!(s.data::<u8>(id, "k"), None);
        }
        assert!(!s.flag_exists("f"));
        assert!(s.flag_clients("f").is_empty());
        assert!(s.connections().is_empty());
        assert_eq!(s.connection_count(), 0);
        assert!(s.group_members("g").is_empty());
        assert!(s.groups().is_empty());
    }
    assert!(!d.via(0).exists(nobody()));
}
