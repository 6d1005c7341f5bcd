//! A connection's life as the facade sees it: `exists`, ids that are never reused, closing by
//! id and by flag, the connection listings, per-connection data, and the handshake request.
mod util;

use std::collections::HashSet;

use corepush::{ClientId, Runtime, ServerConfig, WorkerId};
use util::*;

/// The serial of an id (the lowest 44 bits, see `ClientId`'s docs).
fn serial(id: ClientId) -> u64 {
    id.as_u64() & ((1 << 44) - 1)
}

#[test]
fn exists_turns_false_when_a_client_closes() {
    let (rt, addr, server) = start_cmd("life-exists");
    let (a, mut b) = pair_across_workers(addr);
    let c = Client::connect(addr);
    assert!(server.exists(a.id) && server.exists(b.id) && server.exists(c.id));
    assert!(server.worker(a.worker()).exists(a.id));
    assert!(!server.worker(b.worker()).exists(a.id), "out of scope");

    let ida = a.id;
    a.hang_up();
    assert!(!server.exists(ida));

    b.say("close");
    assert_eq!(read_until_close(&mut b.ws), Some(1000));
    assert!(!server.exists(b.id));

    let idc = c.id;
    drop(c);
    wait_until("the vanished client is gone", || !server.exists(idc));
    assert_eq!(server.connection_count(), 0);
    rt.shutdown().unwrap();
}

#[test]
fn ids_are_never_reused() {
    let rt = Runtime::builder()
        .workers(1)
        .server(
            ServerConfig::websocket("life-ids", "127.0.0.1:0".parse().unwrap()).handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr("life-ids").unwrap();
    let server = rt.server("life-ids").unwrap();
    let mut ids = Vec::new();
    for _ in 0..30 {
        let c = Client::connect(addr);
        ids.push(c.id);
        // The server frees the connection's slot (its poll token) once it is gone, so the next
        // connection reuses the slot, but never the id.
        c.hang_up();
    }
    let distinct: HashSet<ClientId> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "an id was issued twice: {ids:?}");
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(id.worker(), WorkerId(0));
        if i > 0 {
            assert!(serial(*id) > serial(ids[i - 1]), "serials grow: {ids:?}");
        }
    }

    // A new connection: stale ids must not reach it.
    let mut live = Client::connect(addr);
    assert!(serial(live.id) > serial(ids[29]));
    for stale in &ids {
        assert!(!server.exists(*stale));
        assert_eq!(server.send_raw("stale", *stale).unwrap(), 0);
        assert_eq!(server.close(*stale).unwrap(), 0);
        assert!(!server.set_data(*stale, "k", 1u8));
    }
    assert_eq!(server.send_raw("stale", ids.clone()).unwrap(), 0);
    live.assert_nothing_before_marker(&server, "only this");
    drop(live);
    rt.shutdown().unwrap();
}

#[test]
fn close_and_close_by_flag_count_and_close_with_1000() {
    let (rt, addr, server) = start_cmd("life-close");
    let mut by_worker = clients_by_worker(addr, 2, 2);
    let (mut d, mut b) = (by_worker[1].pop().unwrap(), by_worker[1].pop().unwrap());
    let (mut c, mut a) = (by_worker[0].pop().unwrap(), by_worker[0].pop().unwrap());
    let gone = Client::connect(addr);
    let stale = gone.id;
    gone.hang_up();

    // What is queued before the close is delivered before the close frame.
    assert_eq!(server.send_raw("last words", [a.id, b.id]).unwrap(), 2);
    let n = std::thread::scope(|s| {
        s.spawn(|| server.close([a.id, b.id, a.id, stale]).unwrap())
            .join()
            .unwrap()
    });
    assert_eq!(n, 2);
    for x in [&mut a, &mut b] {
        assert_eq!(x.recv(), "last words");
        assert_eq!(read_until_close(&mut x.ws), Some(1000));
    }
    assert!(!server.exists(a.id) && !server.exists(b.id));
    assert_eq!(server.close([a.id, b.id]).unwrap(), 0, "already closed");

    assert_eq!(c.ask("bind:z"), "ok");
    assert_eq!(d.ask("bind:z"), "ok");
    assert_eq!(server.close_by_flag("nobody").unwrap(), 0);
    assert_eq!(server.close_by_flag(["z", "nobody"]).unwrap(), 2);
    for x in [&mut c, &mut d] {
        assert_eq!(read_until_close(&mut x.ws), Some(1000));
    }
    assert!(!server.flag_exists("z"));
    assert_eq!(server.close_by_flag("z").unwrap(), 0);
    assert_eq!(server.connection_count(), 0);
    assert!(server.connections().is_empty());
    rt.shutdown().unwrap();
}

#[test]
fn connections_and_counts_span_both_core_loops() {
    let (rt, addr, server) = start_cmd("life-conns");
    let by_worker = clients_by_worker(addr, 2, 2);
    let ids_of = |w: usize| -> Vec<ClientId> {
        let mut v: Vec<ClientId> = by_worker[w].iter().map(|c| c.id).collect();
        v.sort();
        v
    };
    let mut all: Vec<ClientId> = ids_of(0).into_iter().chain(ids_of(1)).collect();
    all.sort();
    assert_eq!(server.connections(), all);
    assert_eq!(server.connection_count(), 4);
    assert_eq!(server.worker(WorkerId(0)).connections(), ids_of(0));
    assert_eq!(server.worker(WorkerId(1)).connections(), ids_of(1));
    assert_eq!(server.worker(WorkerId(0)).connection_count(), 2);
    assert_eq!(server.worker(WorkerId(1)).connection_count(), 2);
    assert_eq!(server.worker(WorkerId(5)).connection_count(), 0);
    assert_eq!(server.except(all[0]).connection_count(), 3);

    let mut by_worker = by_worker;
    let leaving = by_worker[1].pop().unwrap();
    let left = leaving.id;
    leaving.hang_up();
    all.retain(|&id| id != left);
    assert_eq!(server.connections(), all);
    assert_eq!(server.connection_count(), 3);
    assert_eq!(server.worker(WorkerId(1)).connection_count(), 1);
    drop(by_worker);
    rt.shutdown().unwrap();
}

#[test]
fn connection_data_is_shared_between_facade_and_handler() {
    let (rt, addr, server) = start_cmd("life-data");
    let (mut a, mut b) = pair_across_workers(addr);
    // Facade → handler, on both core loops.
    for x in [&mut a, &mut b] {
        assert!(server.set_data(x.id, "color", format!("blue-{}", x.worker())));
        assert_eq!(x.ask("get:color"), format!("blue-{}", x.worker()));
    }
    // Handler → facade.
    assert_eq!(a.ask("set:size:large"), "ok");
    assert_eq!(
        server.data::<String>(a.id, "size").as_deref(),
        Some("large")
    );
    assert_eq!(server.data::<u32>(a.id, "size"), None, "wrong type");
    assert_eq!(
        server.data::<String>(b.id, "size"),
        None,
        "other connection"
    );
    assert_eq!(server.data::<String>(a.id, "missing"), None);
    // Overwrite and remove through the facade.
    assert!(server.set_data(a.id, "size", "small".to_owned()));
    assert_eq!(a.ask("get:size"), "small");
    assert!(server.remove_data(a.id, "size"));
    assert!(!server.remove_data(a.id, "size"));
    assert_eq!(a.ask("get:size"), "none");
    // A typed value the handler does not read as a String.
    assert!(server.set_data(b.id, "n", 42u64));
    assert_eq!(server.data::<u64>(b.id, "n"), Some(42));
    assert_eq!(b.ask("get:n"), "none");

    let ida = a.id;
    a.hang_up();
    assert_eq!(server.data::<String>(ida, "color"), None);
    assert!(!server.set_data(ida, "color", "red".to_owned()));
    drop(b);
    rt.shutdown().unwrap();
}

#[test]
fn the_handshake_request_is_available_in_on_open() {
    let (rt, addr, server) = start_cmd("life-request");
    let mut a = Client::connect_path(addr, "/chat/room?token=abc&x=1");
    assert_eq!(a.ask("path"), "/chat/room");
    assert_eq!(a.ask("get:query"), "token=abc&x=1");
    assert_eq!(
        server.data::<String>(a.id, "path").as_deref(),
        Some("/chat/room")
    );
    assert_eq!(server.data::<String>(a.id, "host"), Some(addr.to_string()));
    let mut b = Client::connect(addr);
    assert_eq!(b.ask("path"), "/");
    assert_eq!(b.ask("get:query"), "none");
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn a_message_over_the_limit_closes_the_connection_with_1009() {
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket("life-limit", "127.0.0.1:0".parse().unwrap())
                .max_message_size(64)
                .handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr("life-limit").unwrap();
    let server = rt.server("life-limit").unwrap();
    let (mut a, mut b) = pair_across_workers(addr);
    let at_limit = format!("echo:{}", "x".repeat(59));
    assert_eq!(at_limit.len(), 64);
    assert_eq!(a.ask(&at_limit), "x".repeat(59));
    a.say(&format!("echo:{}", "x".repeat(100)));
    assert_eq!(read_until_close(&mut a.ws), Some(1009));
    assert!(!server.exists(a.id));
    assert_eq!(b.ask("echo:unaffected"), "unaffected");
    assert_eq!(server.connections(), vec![b.id]);
    // The server ignores what follows a protocol error, a close reply included, and lets go
    // at the client's end of stream: hang up now rather than make the shutdown wait for it.
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn two_runtimes_in_one_process_never_issue_the_same_id() {
    let (rt_a, addr_a, server_a) = start_cmd("life-twin-a");
    let (rt_b, addr_b, server_b) = start_cmd("life-twin-b");
    let mut a: Vec<Client> = (0..4).map(|_| Client::connect(addr_a)).collect();
    let b: Vec<Client> = (0..4).map(|_| Client::connect(addr_b)).collect();
    let ids_a: HashSet<ClientId> = a.iter().map(|c| c.id).collect();
    assert!(
        b.iter().all(|c| !ids_a.contains(&c.id)),
        "an id was issued by both runtimes"
    );
    // An id of runtime A names nobody on runtime B.
    for c in &a {
        assert!(!server_b.exists(c.id));
        assert_eq!(server_b.send_raw("stranger", c.id).unwrap(), 0);
    }
    assert_eq!(server_a.send_raw("mine", a[0].id).unwrap(), 1);
    assert_eq!(recv_text(&mut a[0].ws), "mine");
    // Hang up first: a client that neither reads nor closes would hold shutdown to its timeout.
    drop((a, b));
    rt_a.shutdown().unwrap();
    rt_b.shutdown().unwrap();
}

/// Answers every message with the path of the upgrade request, if it is still kept.
struct PathLater;
impl corepush::Handler for PathLater {
    fn on_message(&mut self, ctx: &mut corepush::Context<'_>, _: corepush::Message<'_>) {
        let path = ctx
            .request()
            .map_or("none".to_owned(), |r| r.path().to_owned());
        ctx.send_raw(path).unwrap();
    }
}

#[test]
fn the_request_is_freed_after_on_open_unless_kept() {
    for (keep, expected) in [(false, "none"), (true, "/kept")] {
        let rt = Runtime::builder()
            .workers(1)
            .server(
                ServerConfig::websocket("life-keep", "127.0.0.1:0".parse().unwrap())
                    .keep_request(keep)
                    .handler(|_| PathLater),
            )
            .start()
            .unwrap();
        let mut ws = connect_path(rt.local_addr("life-keep").unwrap(), "/kept");
        ws.send(tungstenite::Message::text("path?")).unwrap();
        assert_eq!(recv_text(&mut ws), expected, "keep_request({keep})");
        drop(ws);
        rt.shutdown().unwrap();
    }
}
