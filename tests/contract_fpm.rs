//! The backend contract (tests/contract) against the Fpm backend: a runtime whose server is
//! configured with `BackendConfig::Fpm`, so clients connect and are served by their handler,
//! but every facade call is a no-op (sends count 0, queries are empty).
mod util;
#[macro_use]
mod contract;

use contract::{Deployment, Fixture, Instance, Kind};
use corepush::{BackendConfig, ServerConfig};
use util::start_config;

struct FpmFixture;

impl Fixture for FpmFixture {
    fn start(&self, name: &str) -> Deployment {
        let (runtime, addr, server) = start_config(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .backend(BackendConfig::Fpm),
        );
        Deployment {
            instances: vec![Instance { server, addr }],
            kind: Kind::NoOp,
            stop: Box::new(move || runtime.shutdown().expect("a clean shutdown")),
            keep: Vec::new(),
        }
    }
}

contract_cases!(FpmFixture);
