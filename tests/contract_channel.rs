//! The backend contract (tests/contract) against the Channel backend: a broker in the test
//! process, two instances on it, clients spread over both, calls made through both.
mod util;
#[macro_use]
mod contract;

use std::time::Duration;

use contract::{Deployment, Fixture, Instance, Kind};
use corepush::{
    BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer, Runtime, ServerConfig,
};
use util::{Cmd, wait_until};

struct ChannelFixture;

impl Fixture for ChannelFixture {
    fn start(&self, name: &str) -> Deployment {
        let broker =
            ChannelServer::start(ChannelConfig::default().addr("127.0.0.1:0".parse().unwrap()))
                .expect("a broker");
        let mut runtimes = Vec::new();
        let mut instances = Vec::new();
        for number in [1, 2] {
            let backend = BackendConfig::Channel(
                ChannelBackendConfig::default()
                    .addr(broker.local_addr().to_string())
                    .prefix(name)
                    .query_timeout(Duration::from_millis(500)),
            );
            let rt = Runtime::builder()
                .workers(2)
                .instance(number)
                .server(
                    ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                        .backend(backend)
                        .handler(|_| Cmd),
                )
                .start()
                .expect("an instance on the broker");
            instances.push(Instance {
                server: rt.server(name).expect("its handle"),
                addr: rt.local_addr(name).expect("its address"),
            });
            runtimes.push(rt);
        }
        wait_until("the instances see each other", || {
            instances
                .iter()
                .all(|i| i.server.cluster().instances() == [1, 2])
        });
        Deployment {
            instances,
            kind: Kind::Cluster,
            stop: Box::new(move || {
                for rt in runtimes {
                    rt.shutdown().expect("a clean shutdown");
                }
            }),
            keep: vec![Box::new(broker)],
        }
    }
}

contract_cases!(ChannelFixture);
