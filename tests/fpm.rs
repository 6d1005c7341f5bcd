//! The Fpm backend's no-op answers, through `Server::fpm` and through a runtime server
//! configured with `BackendConfig::Fpm`: every push returns 0 and every query is empty.
mod util;

use std::collections::HashMap;

use corepush::{
    BackendConfig, ClientId, Error, Runtime, Server, ServerConfig, WorkerId, Workers, get_server,
};
use serde_json::json;
use util::*;

/// Asserts every no-op answer of the facade, for a client id that may even be connected.
fn assert_no_op(server: &Server, id: ClientId) {
    let sends = [
        server.send(&json!({"a": 1}), id).unwrap(),
        server.send(&1, [id, id]).unwrap(),
        server.send_raw("text", id).unwrap(),
        server.send_raw(vec![1u8, 2], id).unwrap(),
        server.send_raw("with\nnewline", id).unwrap(),
        server.send_by_flag(&1, "f").unwrap(),
        server.send_raw_by_flag("x", ["f", "g"]).unwrap(),
        server.send_to_group("g", &1).unwrap(),
        server.send_raw_to_group(["g", "h"], "x").unwrap(),
        server.send_to_all(&1).unwrap(),
        server.send_raw_to_all("x").unwrap(),
        server.close(id).unwrap(),
        server.close_by_flag("f").unwrap(),
        server.send_message("action", &1, Workers::All).unwrap(),
        server.send_message("action", &1, WorkerId(0)).unwrap(),
        server.send_message_raw("raw", Workers::All).unwrap(),
        server.connection_count(),
        server.group_count("g"),
        server.workers(),
    ];
    assert_eq!(sends, [0; 19]);
    assert!(!server.exists(id));
    assert!(!server.flag_exists("f"));
    assert!(server.flag_clients("f").is_empty());
    assert_eq!(server.flag_of(id), None);
    assert!(server.connections().is_empty());
    assert!(server.group_members("g").is_empty());
    assert!(server.groups().is_empty());
    assert!(!server.set_data(id, "k", 1u32));
    assert_eq!(server.data::<u32>(id, "k"), None);
    assert!(!server.remove_data(id, "k"));
    // Scopes are accepted and change nothing.
    let local = server.this_worker().expect("this_worker is fine on Fpm");
    assert_eq!(local.scope(), None);
    assert_eq!(local.send_to_all(&1).unwrap(), 0);
    assert_eq!(server.worker(WorkerId(1)).send_raw_to_all("x").unwrap(), 0);
    assert_eq!(server.except(id).send_raw_to_all("x").unwrap(), 0);
    assert_eq!(server.worker(WorkerId(1)).connection_count(), 0);
}

#[test]
fn a_standalone_fpm_handle_pushes_nothing() {
    let server = Server::fpm("x");
    assert_eq!(server.name(), "x");
    let id = ClientId::from_u64(1).unwrap();
    assert_no_op(&server, id);
    // From another thread too: the handle is Send + Sync.
    let server2 = server.clone();
    std::thread::spawn(move || assert_no_op(&server2, id))
        .join()
        .unwrap();
    // Encoding still happens, so a value the parser cannot encode is still an error.
    let bad: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
    assert!(matches!(server.send(&bad, id), Err(Error::Encode(_))));
    assert!(matches!(server.send_to_all(&bad), Err(Error::Encode(_))));
}

#[test]
fn a_runtime_server_on_the_fpm_backend_pushes_nothing() {
    let name = "fpm-runtime";
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .backend(BackendConfig::Fpm)
                .handler(|_| Cmd),
        )
        .start()
        .unwrap();
    let server = rt.server(name).unwrap();
    let found = get_server(name).expect("registered like any server");
    // The server still listens and its handler still runs; only the facade is a no-op.
    let (mut a, mut b) = pair_across_workers(rt.local_addr(name).unwrap());
    assert_eq!(a.ask("bind:f"), "ok");
    assert_eq!(a.ask("join:g"), "ok");
    assert_eq!(a.ask("flag"), "f");
    for x in [&a, &b] {
        assert_no_op(&server, x.id);
        assert_no_op(&found, x.id);
    }
    assert!(!server.set_data(b.id, "k", "v".to_owned()));
    assert_eq!(b.ask("get:k"), "none");
    // From inside a handler, on a core loop.
    assert_eq!(a.ask(&format!("to:{}:x", b.id)), "sent:0");
    assert_eq!(a.ask("all:x"), "sent:0");
    assert_eq!(b.ask("local-all:x"), "sent:0");
    assert_eq!(b.ask("local-count"), "0");
    // Nothing was queued to either client: the next message is the reply to an echo.
    assert_eq!(a.ask("echo:next"), "next");
    assert_eq!(b.ask("echo:next"), "next");
    drop((a, b));
    rt.shutdown().unwrap();
}
