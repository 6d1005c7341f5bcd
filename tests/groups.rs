//! Groups (rooms): join and leave, membership queries, cleanup when members go, and
//! exclusions (`except`) on group, flag and broadcast sends.
mod util;

use corepush::WorkerId;
use serde_json::json;
use util::*;

#[test]
fn join_and_leave_across_core_loops() {
    let (rt, addr, server) = start_cmd("groups-join");
    let (mut a, mut b) = pair_across_workers(addr);
    assert!(server.groups().is_empty());
    assert_eq!(a.ask("join:room"), "ok");
    assert_eq!(a.ask("join:room"), "ok", "joining twice is harmless");
    assert_eq!(b.ask("join:room"), "ok");
    assert_eq!(a.ask("join:hall"), "ok");

    let mut both = vec![a.id, b.id];
    both.sort();
    assert_eq!(server.group_members("room"), both);
    assert_eq!(server.group_count("room"), 2);
    assert_eq!(server.group_members("hall"), vec![a.id]);
    assert_eq!(server.groups(), vec!["hall".to_owned(), "room".to_owned()]);
    assert_eq!(a.ask("groups"), "room,hall");
    assert_eq!(server.worker(WorkerId(1)).group_members("room"), vec![b.id]);
    assert_eq!(server.except(b.id).group_members("room"), vec![a.id]);
    assert_eq!(server.except(b.id).group_count("room"), 1);
    assert_eq!(server.group_count("nowhere"), 0);
    assert!(server.group_members("nowhere").is_empty());

    assert_eq!(server.send_raw_to_group("room", "in room").unwrap(), 2);
    assert_eq!(a.recv(), "in room");
    assert_eq!(b.recv(), "in room");

    assert_eq!(a.ask("leave:room"), "true");
    assert_eq!(a.ask("leave:room"), "false");
    assert_eq!(a.ask("groups"), "hall");
    assert_eq!(server.group_members("room"), vec![b.id]);
    assert_eq!(server.send_raw_to_group("room", "after leave").unwrap(), 1);
    assert_eq!(b.recv(), "after leave");
    a.assert_nothing_before_marker(&server, "marker");

    assert_eq!(b.ask("leave:room"), "true");
    assert_eq!(a.ask("leave:hall"), "true");
    assert!(server.groups().is_empty(), "empty groups are dropped");
    assert_eq!(server.send_to_group(["room", "hall"], &1).unwrap(), 0);
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn members_leave_their_groups_when_they_close() {
    let (rt, addr, server) = start_cmd("groups-close");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_eq!(a.ask("join:r1"), "ok");
    assert_eq!(a.ask("join:r2"), "ok");
    assert_eq!(b.ask("join:r2"), "ok");
    let ida = a.id;

    // A close handshake: the server releases the groups before it answers.
    a.hang_up();
    assert!(server.group_members("r1").is_empty());
    assert_eq!(server.group_members("r2"), vec![b.id]);
    assert_eq!(server.groups(), vec!["r2".to_owned()]);
    assert_eq!(server.send_to_group("r1", &json!("x")).unwrap(), 0);
    assert!(!server.group_members("r2").contains(&ida));

    // Closed by the server from its handler.
    let mut c = Client::connect(addr);
    assert_eq!(c.ask("join:r3"), "ok");
    c.say("close");
    assert_eq!(read_until_close(&mut c.ws), Some(1000));
    assert!(server.group_members("r3").is_empty());

    // A socket that just vanishes: nothing to wait on but the registry.
    drop(b);
    wait_until("r2 emptied after its last member vanished", || {
        server.groups().is_empty()
    });
    assert_eq!(server.group_count("r2"), 0);
    rt.shutdown().unwrap();
}

#[test]
fn an_excluded_client_gets_nothing_from_group_flag_and_broadcast_sends() {
    let (rt, addr, server) = start_cmd("groups-except");
    let mut by_worker = clients_by_worker(addr, 2, 2);
    // a and c on core loop 0, b and d on core loop 1.
    let (mut d, mut b) = (by_worker[1].pop().unwrap(), by_worker[1].pop().unwrap());
    let (mut c, mut a) = (by_worker[0].pop().unwrap(), by_worker[0].pop().unwrap());
    for x in [&mut a, &mut b, &mut c, &mut d] {
        assert_eq!(x.ask("join:g"), "ok");
        assert_eq!(x.ask("bind:f"), "ok");
    }
    let not_a = server.except(a.id);
    let counts = [
        not_a.send_to_group("g", &json!("group")).unwrap(),
        not_a.send_raw_to_group("g", "raw group").unwrap(),
        not_a.send_by_flag(&json!("flag"), "f").unwrap(),
        not_a.send_raw_by_flag("raw flag", "f").unwrap(),
        not_a.send_to_all(&json!("all")).unwrap(),
        not_a.send_raw_to_all("raw all").unwrap(),
    ];
    assert_eq!(counts, [3, 3, 3, 3, 3, 3]);
    for x in [&mut b, &mut c, &mut d] {
        assert_eq!(recv_json(&mut x.ws), json!("group"));
        assert_eq!(x.recv(), "raw group");
        assert_eq!(recv_json(&mut x.ws), json!("flag"));
        assert_eq!(x.recv(), "raw flag");
        assert_eq!(recv_json(&mut x.ws), json!("all"));
        assert_eq!(x.recv(), "raw all");
    }
    a.assert_nothing_before_marker(&server, "marker a");

    // Exclusions add up, and an excluded id that is not connected changes nothing.
    let gone = Client::connect(addr);
    let stale = gone.id;
    gone.hang_up();
    let only_c = server.except(a.id).except([b.id, d.id, stale]);
    assert_eq!(only_c.send_raw_to_all("just c").unwrap(), 1);
    assert_eq!(only_c.send_raw_to_group("g", "just c").unwrap(), 1);
    assert_eq!(only_c.send_raw_by_flag("just c", "f").unwrap(), 1);
    assert_eq!(only_c.connection_count(), 1);
    assert_eq!(only_c.connections(), vec![c.id]);
    for _ in 0..3 {
        assert_eq!(c.recv(), "just c");
    }

    // Excluding everyone, and an exclusion inside a core loop scope.
    let everyone = server.except([a.id, b.id, c.id, d.id]);
    assert_eq!(everyone.send_raw_to_all("nobody").unwrap(), 0);
    assert_eq!(everyone.send_raw_to_group("g", "nobody").unwrap(), 0);
    let scoped = server.worker(WorkerId(1)).except(b.id);
    assert_eq!(scoped.send_raw_to_all("scoped all").unwrap(), 1);
    assert_eq!(scoped.send_raw_to_group("g", "scoped group").unwrap(), 1);
    assert_eq!(d.recv(), "scoped all");
    assert_eq!(d.recv(), "scoped group");
    for x in [&mut a, &mut b, &mut c, &mut d] {
        x.assert_nothing_before_marker(&server, "end");
    }
    drop((a, b, c, d));
    rt.shutdown().unwrap();
}
