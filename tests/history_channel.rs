//! History on the Channel backend, which keeps none: a server configured with a history is
//! refused at start (a configuration error, never a history that would answer wrongly).
mod util;

use corepush::{
    BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer, Error, HistoryConfig,
    Runtime, ServerConfig,
};
use util::Cmd;

#[test]
fn a_history_on_the_channel_backend_is_refused_at_start() {
    let broker =
        ChannelServer::start(ChannelConfig::default().addr("127.0.0.1:0".parse().unwrap()))
            .expect("a broker");
    let backend = BackendConfig::Channel(
        ChannelBackendConfig::default()
            .addr(broker.local_addr().to_string())
            .prefix("history"),
    );
    let config = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
        .backend(backend)
        .history(HistoryConfig::everything(10))
        .handler(|_| Cmd);
    match Runtime::builder().workers(1).server(config).start() {
        Err(Error::Config(m)) => assert!(m.contains("history"), "{m}"),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("started with a history the backend cannot keep"),
    }
}
