//! Flags (user ids bound to connections): several connections per flag, exclusive binding,
//! rebinding, the facade's flag queries, and release of the flag when a client goes away.
mod util;

use corepush::WorkerId;
use serde_json::json;
use util::*;

#[test]
fn a_flag_on_two_connections_reaches_both_core_loops() {
    let (rt, addr, server) = start_cmd("flags-two");
    let (mut a, mut b) = pair_across_workers(addr);
    let mut other = Client::connect(addr);
    assert!(!server.flag_exists("alice"));
    assert_eq!(a.ask("bind:alice"), "ok");
    assert_eq!(b.ask("bind:alice"), "ok");
    assert_eq!(other.ask("bind:carol"), "ok");

    assert!(server.flag_exists("alice"));
    let mut both = vec![a.id, b.id];
    both.sort();
    assert_eq!(server.flag_clients("alice"), both);
    assert_eq!(server.flag_of(a.id).as_deref(), Some("alice"));
    assert_eq!(server.flag_of(b.id).as_deref(), Some("alice"));
    assert_eq!(server.flag_of(other.id).as_deref(), Some("carol"));
    assert_eq!(b.ask("flag"), "alice");
    // Scopes and exclusions apply to the listing.
    assert_eq!(server.except(a.id).flag_clients("alice"), vec![b.id]);
    assert_eq!(server.worker(WorkerId(1)).flag_clients("alice"), vec![b.id]);
    assert_eq!(server.worker(WorkerId(0)).flag_clients("alice"), vec![a.id]);
    assert!(!server.except([a.id, b.id]).flag_exists("alice"));

    let n = std::thread::scope(|s| {
        s.spawn(|| {
            server
                .send_by_flag(&json!({"hi": "alice"}), "alice")
                .unwrap()
        })
        .join()
        .unwrap()
    });
    assert_eq!(n, 2);
    assert_eq!(recv_json(&mut a.ws), json!({"hi": "alice"}));
    assert_eq!(recv_json(&mut b.ws), json!({"hi": "alice"}));
    other.assert_nothing_before_marker(&server, "marker");
    drop((a, b, other));
    rt.shutdown().unwrap();
}

#[test]
fn bind_nx_is_refused_while_held_and_granted_after_the_holder_closes() {
    let (rt, addr, server) = start_cmd("flags-nx");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_eq!(a.ask("bindnx:solo"), "true");
    assert_eq!(b.ask("bindnx:solo"), "false");
    assert_eq!(b.ask("flag"), "none");
    assert_eq!(a.ask("bindnx:solo"), "true", "the holder may bind it again");
    assert_eq!(server.flag_clients("solo"), vec![a.id]);
    assert_eq!(server.flag_of(b.id), None);

    // A plain bind is not exclusive: it joins the holder.
    let mut c = Client::connect(addr);
    assert_eq!(c.ask("bind:solo"), "ok");
    assert_eq!(server.flag_clients("solo").len(), 2);
    assert_eq!(b.ask("bindnx:solo"), "false");
    c.hang_up();

    a.hang_up();
    assert!(!server.flag_exists("solo"));
    assert_eq!(b.ask("bindnx:solo"), "true");
    assert_eq!(server.flag_clients("solo"), vec![b.id]);

    // Closed by the server this time: the flag is free once the close frame arrives.
    let mut d = Client::connect(addr);
    assert_eq!(d.ask("bindnx:solo"), "false");
    assert_eq!(server.close_by_flag("solo").unwrap(), 1);
    assert_eq!(read_until_close(&mut b.ws), Some(1000));
    assert_eq!(d.ask("bindnx:solo"), "true");
    assert_eq!(server.flag_clients("solo"), vec![d.id]);
    drop(d);
    rt.shutdown().unwrap();
}

#[test]
fn rebinding_releases_the_old_flag() {
    let (rt, addr, server) = start_cmd("flags-rebind");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_eq!(a.ask("bind:x"), "ok");
    assert_eq!(b.ask("bind:x"), "ok");
    assert_eq!(a.ask("bind:y"), "ok");
    assert_eq!(server.flag_clients("x"), vec![b.id]);
    assert_eq!(server.flag_clients("y"), vec![a.id]);
    assert_eq!(server.flag_of(a.id).as_deref(), Some("y"));
    assert_eq!(server.send_raw_by_flag("to x", "x").unwrap(), 1);
    assert_eq!(b.recv(), "to x");
    a.assert_nothing_before_marker(&server, "marker");

    assert_eq!(b.ask("bind:y"), "ok");
    assert!(!server.flag_exists("x"), "the last holder left x");
    assert_eq!(server.flag_clients("y").len(), 2);
    assert_eq!(a.ask("unbind"), "y");
    assert_eq!(a.ask("unbind"), "none");
    assert_eq!(server.flag_of(a.id), None);
    assert_eq!(server.flag_clients("y"), vec![b.id]);
    assert_eq!(b.ask("unbind"), "y");
    assert!(!server.flag_exists("y"));
    assert_eq!(server.send_by_flag(&1, ["x", "y"]).unwrap(), 0);
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn a_flag_is_unbound_when_its_client_disconnects() {
    let (rt, addr, server) = start_cmd("flags-close");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_eq!(a.ask("bind:gone0"), "ok");
    assert_eq!(b.ask("bind:gone1"), "ok");
    let (ida, idb) = (a.id, b.id);
    // No close handshake: the sockets just go, and nothing tells the test when the server
    // noticed, so poll the registry.
    drop(a);
    drop(b);
    wait_until("flags released after the clients vanished", || {
        !server.flag_exists("gone0") && !server.flag_exists("gone1")
    });
    assert_eq!(server.flag_of(ida), None);
    assert_eq!(server.flag_of(idb), None);
    assert!(server.flag_clients("gone0").is_empty());
    assert_eq!(server.send_by_flag(&1, ["gone0", "gone1"]).unwrap(), 0);
    // The flag can be taken exclusively by a newcomer.
    let mut c = Client::connect(addr);
    assert_eq!(c.ask("bindnx:gone0"), "true");
    drop(c);
    rt.shutdown().unwrap();
}

#[test]
fn racing_bind_nx_from_both_core_loops_grants_the_flag_once() {
    let (rt, addr, server) = start_cmd("flags-race");
    let mut clients: Vec<Client> = clients_by_worker(addr, 2, 4)
        .into_iter()
        .flatten()
        .collect();
    // All requests go out before any reply is read, so the two core loops race.
    for c in &mut clients {
        c.say("bindnx:race");
    }
    let winners: Vec<_> = clients
        .iter_mut()
        .filter_map(|c| match c.recv().as_str() {
            "true" => Some(c.id),
            "false" => None,
            other => panic!("unexpected reply {other:?}"),
        })
        .collect();
    assert_eq!(winners.len(), 1, "granted to {winners:?}");
    assert_eq!(server.flag_clients("race"), winners);
    drop(clients);
    rt.shutdown().unwrap();
}
