//! Flags, groups and data by client id from any thread — `Server::bind`, `bind_nx`, `unbind`,
//! `join`, `leave`, `groups_of` — with the answers of the `Context` forms, as a login handled
//! on another thread (an HTTP request, say) would use them; and what a closing connection's
//! own `on_close` sees of itself through the facade.
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use corepush::{ClientId, Context, Handler, Message, Runtime, ServerConfig};
use util::*;

#[test]
fn a_foreign_thread_binds_joins_and_leaves_for_a_client() {
    let (rt, addr, server) = start_config(
        ServerConfig::websocket("membership", "127.0.0.1:0".parse().unwrap())
            .max_groups_per_connection(2),
    );
    let mut by_worker = clients_by_worker(addr, 2, 1);
    let (a, b) = (by_worker[0][0].id, by_worker[1][0].id);
    let login = server.clone();
    std::thread::spawn(move || {
        assert!(login.bind(a, "alice"));
        assert!(
            login.bind(b, "alice"),
            "a flag may cover several connections"
        );
        assert!(login.bind_nx(b, "carol"), "nobody else holds it");
        assert!(login.bind(b, "bob"));
        assert!(
            !login.bind_nx(a, "bob"),
            "bind_nx refuses a flag another holds"
        );
        assert!(login.join(a, "room"));
        assert!(login.join(a, "room"), "joining twice is still a member");
        assert!(login.join(a, "hall"));
        assert!(!login.join(a, "attic"), "over max_groups_per_connection");
        assert!(login.join(b, "room"));
        assert!(login.leave(a, "hall"));
        assert!(!login.leave(a, "hall"));
    })
    .join()
    .expect("the login thread");

    // The handler sees what the foreign thread did, and sends reach the new members.
    assert_eq!(by_worker[0][0].ask("flag"), "alice");
    assert_eq!(by_worker[1][0].ask("flag"), "bob");
    assert_eq!(by_worker[0][0].ask("groups"), "room");
    assert_eq!(server.groups_of(a), vec!["room".to_owned()]);
    assert_eq!(server.send_raw_by_flag("to alice", "alice").unwrap(), 1);
    assert_eq!(server.send_raw_to_group("room", "to room").unwrap(), 2);
    assert_eq!(by_worker[0][0].recv(), "to alice");
    assert_eq!(by_worker[0][0].recv(), "to room");
    assert_eq!(by_worker[1][0].recv(), "to room");
    assert_eq!(server.unbind(a).as_deref(), Some("alice"));
    assert_eq!(server.unbind(a), None);
    assert!(!server.flag_exists("alice"));

    // Nobody answers for a client that is not connected.
    let gone = Client::connect(addr);
    let stale = gone.id;
    gone.hang_up();
    wait_until("the hung-up client is gone", || !server.exists(stale));
    assert!(!server.bind(stale, "x"));
    assert!(!server.bind_nx(stale, "x"));
    assert!(!server.join(stale, "room"));
    assert!(!server.leave(stale, "room"));
    assert!(server.groups_of(stale).is_empty());
    let unknown = ClientId::from_u64(u64::MAX).unwrap();
    assert!(!server.bind(unknown, "x"));
    assert!(!server.join(unknown, "x"));
    drop(by_worker);
    rt.shutdown().unwrap();
}

/// On close, pushes to itself through the facade and reports the count to a watcher.
struct SelfPush {
    counted: Arc<AtomicUsize>,
}

impl Handler for SelfPush {
    fn on_message(&mut self, ctx: &mut Context<'_>, _: Message<'_>) {
        ctx.close();
    }

    fn on_close(&mut self, ctx: &mut Context<'_>) {
        let me = ctx.client_id();
        let n = ctx.server().send_raw("after close", me).unwrap_or(99);
        // +1 so that the watcher can tell "counted 0" from "not run yet".
        self.counted.store(n + 1, Ordering::Release);
    }
}

#[test]
fn a_closing_connection_is_gone_for_its_own_on_close() {
    let counted = Arc::new(AtomicUsize::new(0));
    let shared = counted.clone();
    let rt = Runtime::builder()
        .workers(1)
        .server(
            ServerConfig::websocket("on-close", "127.0.0.1:0".parse().unwrap()).handler(
                move |_| SelfPush {
                    counted: shared.clone(),
                },
            ),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr("on-close").unwrap();
    let mut c = connect(addr);
    c.send(tungstenite::Message::text("bye")).unwrap();
    // Only the close frame arrives: the push from on_close is neither counted nor sent.
    assert_eq!(read_until_close(&mut c), Some(1000));
    assert_eq!(counted.load(Ordering::Acquire), 1, "counted 0 plus one");
    rt.shutdown().unwrap();
}
