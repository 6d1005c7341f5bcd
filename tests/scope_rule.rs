//! One rule for a handle's scope (`worker(n)`, `this_worker()`) and exclusions (`except`):
//! every method applies both — sends, closes, worker messages, listings, and every call by
//! client id, where a client out of scope or excluded answers as one that is not connected.
mod util;

use corepush::{Runtime, Server, ServerConfig, WorkerId, Workers};
use util::*;

/// The `Cmd` server, plus a worker-message action `shout` that pushes its text to every
/// connection of the core loop that runs it.
fn start(name: &str) -> (Runtime, std::net::SocketAddr, Server) {
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .handler(|_| Cmd)
                .action("shout", |_, ctx, msg| {
                    let text = String::from_utf8_lossy(msg.data()).into_owned();
                    let _ = ctx.this_worker().send_raw_to_all(text);
                }),
        )
        .start()
        .expect("start");
    let addr = rt.local_addr(name).expect("address");
    let server = rt.server(name).expect("handle");
    (rt, addr, server)
}

#[test]
fn a_worker_handle_messages_only_its_core_loop() {
    let (rt, addr, server) = start("rule-message");
    let mut by_worker = clients_by_worker(addr, 2, 1);
    let zero = server.worker(WorkerId(0));
    assert_eq!(
        zero.send_message("shout", &"zero", Workers::All).unwrap(),
        1
    );
    assert_eq!(
        zero.send_message("shout", &"one", WorkerId(1)).unwrap(),
        0,
        "a core loop outside the scope is not reached"
    );
    assert_eq!(zero.send_message_raw("raw", Workers::All).unwrap(), 1);
    assert_eq!(by_worker[0][0].recv(), "\"zero\"");
    for c in by_worker.iter_mut().flatten() {
        c.assert_nothing_before_marker(&server, "marker");
    }
    drop(by_worker);
    rt.shutdown().unwrap();
}

#[test]
fn exclusions_and_scope_apply_to_every_call_by_id_and_every_listing() {
    let (rt, addr, server) = start("rule-queries");
    let mut by_worker = clients_by_worker(addr, 2, 1);
    let (a, b) = (by_worker[0][0].id, by_worker[1][0].id);
    assert_eq!(by_worker[0][0].ask("bind:alice"), "ok");
    assert_eq!(by_worker[0][0].ask("join:zero"), "ok");
    assert_eq!(by_worker[1][0].ask("join:one"), "ok");
    assert_eq!(by_worker[0][0].ask("set:k:v"), "ok");

    // Excluded: gone for every call that names it.
    let not_a = server.except(a);
    assert!(!not_a.exists(a));
    assert!(not_a.exists(b));
    assert!(!not_a.flag_exists("alice"));
    assert_eq!(not_a.flag_of(a), None);
    assert_eq!(not_a.data::<String>(a, "k"), None);
    assert!(not_a.groups_of(a).is_empty());
    assert_eq!(not_a.groups(), vec!["one".to_owned()]);
    assert!(!not_a.set_data(a, "k", "w".to_owned()));
    assert!(!not_a.remove_data(a, "k"));
    assert!(!not_a.join(a, "other"));
    assert!(!not_a.bind(a, "bob"));
    assert_eq!(not_a.unbind(a), None);
    assert_eq!(not_a.close(a).unwrap(), 0);
    assert_eq!(not_a.connection_count(), 1);

    // Out of scope: the same.
    let one = server.worker(WorkerId(1));
    assert!(!one.exists(a));
    assert!(one.exists(b));
    assert_eq!(one.groups(), vec!["one".to_owned()]);
    assert_eq!(server.worker(WorkerId(0)).groups(), vec!["zero".to_owned()]);
    assert_eq!(one.flag_of(a), None);
    assert_eq!(one.data::<String>(a, "k"), None);
    assert!(!one.leave(a, "zero"));

    // The unconfined handle still sees everything, unchanged.
    assert_eq!(server.flag_of(a).as_deref(), Some("alice"));
    assert_eq!(server.data::<String>(a, "k").as_deref(), Some("v"));
    assert_eq!(server.groups(), vec!["one".to_owned(), "zero".to_owned()]);
    assert_eq!(server.groups_of(a), vec!["zero".to_owned()]);
    for c in by_worker.iter_mut().flatten() {
        c.assert_nothing_before_marker(&server, "marker");
    }
    drop(by_worker);
    rt.shutdown().unwrap();
}
