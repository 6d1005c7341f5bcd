//! The backend contract (tests/contract) against the Local backend: one instance, two core
//! loops, every push delivered in process.
mod util;
#[macro_use]
mod contract;

use contract::{Deployment, Fixture, Instance, Kind};
use corepush::ServerConfig;
use util::start_config;

struct LocalFixture;

impl Fixture for LocalFixture {
    fn start(&self, name: &str) -> Deployment {
        let (runtime, addr, server) = start_config(ServerConfig::websocket(
            name,
            "127.0.0.1:0".parse().unwrap(),
        ));
        Deployment {
            instances: vec![Instance { server, addr }],
            kind: Kind::Delivers,
            stop: Box::new(move || runtime.shutdown().expect("a clean shutdown")),
            keep: Vec::new(),
        }
    }
}

contract_cases!(LocalFixture);
