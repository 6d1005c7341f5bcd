//! Context restore on the Channel backend, which keeps no contexts: with a keep time set,
//! a restore is an `Unsupported` error — never a wrong answer — and nothing changes; without
//! one, nothing to restore.
mod restore;
mod util;

use std::time::Duration;

use corepush::{
    BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer, Error, Restored, Runtime,
    ServerConfig,
};
use restore::{cut, holder, keeper_spec};
use util::Client;

#[test]
fn restore_on_the_channel_backend_is_unsupported() {
    let broker =
        ChannelServer::start(ChannelConfig::default().addr("127.0.0.1:0".parse().unwrap()))
            .expect("a broker");
    let start = |keep: Duration| {
        let backend = BackendConfig::Channel(
            ChannelBackendConfig::default()
                .addr(broker.local_addr().to_string())
                .prefix(format!("restore-{}", keep.as_millis())),
        );
        let config = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
            .backend(backend)
            .keep_context(keep);
        let rt = Runtime::builder()
            .workers(1)
            .server(keeper_spec(config).0)
            .start()
            .unwrap();
        let (addr, server) = (rt.local_addr("ws").unwrap(), rt.server("ws").unwrap());
        (rt, addr, server)
    };

    let (rt, addr, server) = start(Duration::from_secs(60));
    cut(holder(addr, "alice", &["g"], "a"), &server);
    let mut new = Client::connect(addr);
    match server.restore(new.id, "alice") {
        Err(Error::Unsupported(_)) => {}
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(new.ask("restore:alice").starts_with("error:not supported"));
    assert!(server.flag_clients("alice").is_empty(), "nothing changed");
    drop(new);
    rt.shutdown().unwrap();

    let (rt, addr, server) = start(Duration::ZERO);
    let new = Client::connect(addr);
    assert_eq!(server.restore(new.id, "alice").unwrap(), Restored::Nothing);
    drop(new);
    rt.shutdown().unwrap();
    broker.shutdown();
    broker.join();
}
