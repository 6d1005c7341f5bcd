//! The facade's sends: to ids, flags, groups and everyone, encoded and raw, from a foreign
//! thread and from inside a handler, across both core loops, with exact counts and ordering.
mod util;

use std::thread;

use corepush::{ClientId, MAX_INSTANCES, Raw, Runtime, ServerConfig, WorkerId};
use serde_json::json;
use tungstenite::Message as WsMessage;
use util::*;

/// Runs `f` on a thread that is not part of any runtime and returns its result.
fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    thread::scope(|s| s.spawn(f).join().expect("the pushing thread panicked"))
}

#[test]
fn send_to_one_and_many_ids_counts_each_connection_once() {
    let (rt, addr, server) = start_cmd("send-ids");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_ne!(a.worker(), b.worker());

    let (one, two, dup) = off_thread(|| {
        (
            server.send(&json!({"to": "a"}), a.id).unwrap(),
            server.send(&json!({"to": "both"}), [a.id, b.id]).unwrap(),
            server
                .send(&json!({"to": "dup"}), vec![b.id, a.id, b.id, a.id, a.id])
                .unwrap(),
        )
    });
    assert_eq!((one, two, dup), (1, 2, 2));
    assert_eq!(recv_json(&mut a.ws), json!({"to": "a"}));
    assert_eq!(recv_json(&mut a.ws), json!({"to": "both"}));
    assert_eq!(recv_json(&mut a.ws), json!({"to": "dup"}));
    assert_eq!(recv_json(&mut b.ws), json!({"to": "both"}));
    assert_eq!(recv_json(&mut b.ws), json!({"to": "dup"}));
    // A duplicated id is delivered once: the marker comes right after.
    a.assert_nothing_before_marker(&server, "marker");
    b.assert_nothing_before_marker(&server, "marker");
    assert_eq!(server.send(&1, Vec::<ClientId>::new()).unwrap(), 0);
    assert_eq!(server.send(&1, None::<ClientId>).unwrap(), 0);
    assert_eq!(server.send(&1, Some(b.id)).unwrap(), 1);
    assert_eq!(recv_json(&mut b.ws), json!(1));
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn unknown_stale_and_foreign_ids_count_zero() {
    let (rt, addr, server) = start_cmd("send-unknown");
    let mut live = Client::connect(addr);
    let gone = Client::connect(addr);
    let stale = gone.id;
    gone.hang_up();
    assert!(!server.exists(stale));

    // Well-formed ids nobody holds: a serial never issued, and a core loop the runtime lacks.
    let unissued = ClientId::from_u64((1 << 44) | ((1 << 44) - 1)).unwrap();
    let no_such_worker = ClientId::from_u64((9 << 44) | 1).unwrap();
    assert_eq!(unissued.worker(), WorkerId(1));
    assert_eq!(no_such_worker.worker(), WorkerId(9));

    // A client of another instance (another runtime, with the highest instance number).
    let other = Runtime::builder()
        .workers(2)
        .instance(MAX_INSTANCES - 1)
        .server(
            ServerConfig::websocket("send-other", "127.0.0.1:0".parse().unwrap()).handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let mut foreign = Client::connect(other.local_addr("send-other").unwrap());
    assert_eq!(foreign.id.instance(), 4095);
    assert_eq!(live.id.instance(), 0);

    let counts = off_thread(|| {
        [
            server.send(&"x", stale).unwrap(),
            server.send_raw("x", stale).unwrap(),
            server.send(&"x", unissued).unwrap(),
            server.send(&"x", no_such_worker).unwrap(),
            server.send(&"x", foreign.id).unwrap(),
            server.close(foreign.id).unwrap(),
            server
                .send(&"mixed", [stale, foreign.id, live.id, unissued])
                .unwrap(),
        ]
    });
    assert_eq!(counts, [0, 0, 0, 0, 0, 0, 1]);
    assert!(!server.exists(foreign.id));
    assert!(!server.exists(no_such_worker));
    assert_eq!(recv_json(&mut live.ws), json!("mixed"));
    live.assert_nothing_before_marker(&server, "marker");
    // The foreign client got nothing from this server and is still open on its own.
    assert_eq!(foreign.ask("echo:still here"), "still here");
    drop((live, foreign));
    other.shutdown().unwrap();
    rt.shutdown().unwrap();
}

#[test]
fn send_raw_keeps_text_as_text_and_bytes_as_binary_frames() {
    let (rt, addr, server) = start_cmd("send-raw");
    let (mut a, mut b) = pair_across_workers(addr);
    let bytes: Vec<u8> = vec![0, 1, 2, 0xfe, 0xff];
    let counts = off_thread(|| {
        [
            server.send_raw("plain text", a.id).unwrap(),
            server.send_raw(&bytes[..], a.id).unwrap(),
            server.send_raw(bytes.clone(), [a.id, b.id]).unwrap(),
            server
                .send_raw(Raw::text(String::from("owned")), b.id)
                .unwrap(),
            server.send_raw(Raw::binary(&b"\n\r"[..]), b.id).unwrap(),
            server.send_raw(&[7u8; 3], b.id).unwrap(),
        ]
    });
    assert_eq!(counts, [1, 1, 2, 1, 1, 1]);
    assert_eq!(a.recv_message(), WsMessage::text("plain text"));
    assert_eq!(a.recv_message(), WsMessage::binary(bytes.clone()));
    assert_eq!(a.recv_message(), WsMessage::binary(bytes.clone()));
    assert_eq!(b.recv_message(), WsMessage::binary(bytes.clone()));
    assert_eq!(b.recv_message(), WsMessage::text("owned"));
    assert_eq!(b.recv_message(), WsMessage::binary(b"\n\r".to_vec()));
    assert_eq!(b.recv_message(), WsMessage::binary(vec![7u8; 3]));
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn send_to_all_reaches_every_connection_on_both_core_loops() {
    let (rt, addr, server) = start_cmd("send-all");
    let mut clients: Vec<Client> = clients_by_worker(addr, 2, 2)
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(server.connection_count(), 4);
    let (encoded, raw_text, raw_binary) = off_thread(|| {
        (
            server.send_to_all(&json!({"all": true})).unwrap(),
            server.send_raw_to_all("everyone").unwrap(),
            server.send_raw_to_all(vec![1u8, 2, 3]).unwrap(),
        )
    });
    assert_eq!((encoded, raw_text, raw_binary), (4, 4, 4));
    for c in &mut clients {
        assert_eq!(c.recv_message(), WsMessage::text(r#"{"all":true}"#));
        assert_eq!(c.recv_message(), WsMessage::text("everyone"));
        assert_eq!(c.recv_message(), WsMessage::binary(vec![1u8, 2, 3]));
        c.assert_nothing_before_marker(&server, "marker");
    }
    drop(clients);
    rt.shutdown().unwrap();
}

#[test]
fn send_by_flag_counts_the_connections_bound_to_the_flags() {
    let (rt, addr, server) = start_cmd("send-flag");
    let (mut a, mut b) = pair_across_workers(addr);
    let mut c = Client::connect(addr);
    assert_eq!(a.ask("bind:alice"), "ok");
    assert_eq!(b.ask("bind:bob"), "ok");
    let counts = off_thread(|| {
        [
            server.send_by_flag(&json!("for alice"), "alice").unwrap(),
            server
                .send_by_flag(&json!("for both"), ["alice", "bob"])
                .unwrap(),
            server
                .send_raw_by_flag("raw bob", vec!["bob", "nobody"])
                .unwrap(),
            server
                .send_raw_by_flag(vec![9u8], String::from("alice"))
                .unwrap(),
            server.send_by_flag(&json!("none"), "nobody").unwrap(),
            server
                .send_by_flag(&json!("none"), Vec::<String>::new())
                .unwrap(),
        ]
    });
    assert_eq!(counts, [1, 2, 1, 1, 0, 0]);
    assert_eq!(recv_json(&mut a.ws), json!("for alice"));
    assert_eq!(recv_json(&mut a.ws), json!("for both"));
    assert_eq!(a.recv_message(), WsMessage::binary(vec![9u8]));
    assert_eq!(recv_json(&mut b.ws), json!("for both"));
    assert_eq!(b.recv(), "raw bob");
    for x in [&mut a, &mut b, &mut c] {
        x.assert_nothing_before_marker(&server, "marker");
    }
    drop((a, b, c));
    rt.shutdown().unwrap();
}

#[test]
fn send_to_group_reaches_a_member_of_two_groups_once() {
    let (rt, addr, server) = start_cmd("send-group");
    let (mut a, mut b) = pair_across_workers(addr);
    let mut c = Client::connect(addr);
    assert_eq!(a.ask("join:red"), "ok");
    assert_eq!(a.ask("join:blue"), "ok");
    assert_eq!(b.ask("join:blue"), "ok");
    let counts = off_thread(|| {
        [
            server
                .send_to_group(["red", "blue"], &json!("both"))
                .unwrap(),
            server.send_raw_to_group("red", "red only").unwrap(),
            server
                .send_raw_to_group(vec!["blue", "blue"], vec![5u8])
                .unwrap(),
            server.send_to_group("green", &json!("nobody")).unwrap(),
        ]
    });
    assert_eq!(counts, [2, 1, 2, 0]);
    assert_eq!(recv_json(&mut a.ws), json!("both"));
    assert_eq!(a.recv(), "red only");
    assert_eq!(a.recv_message(), WsMessage::binary(vec![5u8]));
    assert_eq!(recv_json(&mut b.ws), json!("both"));
    assert_eq!(b.recv_message(), WsMessage::binary(vec![5u8]));
    for x in [&mut a, &mut b, &mut c] {
        x.assert_nothing_before_marker(&server, "marker");
    }
    drop((a, b, c));
    rt.shutdown().unwrap();
}

#[test]
fn a_handler_pushes_to_the_other_core_loop_through_its_context() {
    let (rt, addr, server) = start_cmd("send-handler");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_eq!(a.ask(&format!("to:{}:from a", b.id)), "sent:1");
    assert_eq!(b.recv(), "from a");
    assert_eq!(b.ask(&format!("to:{}:from b", a.id)), "sent:1");
    assert_eq!(a.recv(), "from b");
    let gone = Client::connect(addr);
    let stale = gone.id;
    gone.hang_up();
    assert_eq!(a.ask(&format!("to:{stale}:lost")), "sent:0");

    // To everyone, the sender included: the push, made first, arrives before the reply.
    b.say("all:hello all");
    assert_eq!(b.recv(), "hello all");
    assert_eq!(b.recv(), "sent:2");
    assert_eq!(a.recv(), "hello all");
    assert_eq!(a.ask("except-all:not to a"), "sent:1");
    assert_eq!(b.recv(), "not to a");
    a.assert_nothing_before_marker(&server, "marker");
    b.assert_nothing_before_marker(&server, "marker");
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn sends_from_one_thread_arrive_in_order_whatever_the_call() {
    const N: usize = 600;
    let (rt, addr, server) = start_cmd("send-order");
    let (mut a, mut b) = pair_across_workers(addr);
    assert_eq!(a.ask("bind:fa"), "ok");
    assert_eq!(b.ask("bind:fb"), "ok");
    assert_eq!(a.ask("join:ga"), "ok");
    let total = off_thread(|| {
        let mut total = 0;
        for i in 0..N {
            let text = i.to_string();
            total += match i % 4 {
                0 => server.send(&i, [a.id, b.id]).unwrap(),
                1 => server.send_raw(&text, [a.id, b.id]).unwrap(),
                2 => server.send_by_flag(&i, ["fa", "fb"]).unwrap(),
                _ => server.send_to_all(&i).unwrap(),
            };
        }
        total
    });
    assert_eq!(total, 2 * N);
    for c in [&mut a, &mut b] {
        for i in 0..N {
            assert_eq!(c.recv(), i.to_string(), "client {} out of order", c.id);
        }
        c.assert_nothing_before_marker(&server, "marker");
    }
    // A single group member in order with pushes to it by id.
    let n = off_thread(|| {
        (0..N)
            .map(|i| match i % 2 {
                0 => server.send_raw_to_group("ga", i.to_string()).unwrap(),
                _ => server.send_raw(i.to_string(), a.id).unwrap(),
            })
            .sum::<usize>()
    });
    assert_eq!(n, N);
    for i in 0..N {
        assert_eq!(a.recv(), i.to_string());
    }
    drop((a, b));
    rt.shutdown().unwrap();
}
