//! The backend contract (tests/contract) against the Channel backend: a broker in the test
//! process, two instances on it, clients spread over both, calls made through both.
mod util;
#[macro_use]
mod contract;

use std::time::Duration;

use contract::{Deployment, Fixture};
use corepush::{BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer};

struct ChannelFixture;

impl Fixture for ChannelFixture {
    fn start(&self, name: &str) -> Deployment {
        let broker =
            ChannelServer::start(ChannelConfig::default().addr("127.0.0.1:0".parse().unwrap()))
                .expect("a broker");
        let addr = broker.local_addr().to_string();
        let backend = || {
            BackendConfig::Channel(
                ChannelBackendConfig::default()
                    .addr(addr.clone())
                    .prefix(name)
                    .query_timeout(Duration::from_millis(500)),
            )
        };
        contract::two_instances(name, backend, Box::new(broker))
    }
}

contract_cases!(ChannelFixture);
