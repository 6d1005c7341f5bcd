//! The backend contract (tests/contract) against the Gateway backend: two gateways
//! (instances 1 and 2) hold the clients, two business processes linked to both run the
//! handler; client `i` connects to gateway `i % 2` and calls go through the business
//! processes, which hold no clients themselves.
mod util;
#[macro_use]
mod contract;

use std::time::Duration;

use contract::{Deployment, Fixture, Instance, Kind, WORKERS};
use corepush::{BackendConfig, GatewayBackendConfig, GatewayConfig, Runtime, ServerConfig};
use util::{Cmd, wait_until};

const SECRET: &str = "contract";

struct GatewayFixture;

impl Fixture for GatewayFixture {
    fn start(&self, name: &str) -> Deployment {
        let mut gateways = Vec::new();
        for number in [1, 2] {
            let rt = Runtime::builder()
                .workers(WORKERS)
                .instance(number)
                .server(
                    ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                        .gateway(GatewayConfig::new("127.0.0.1:0".parse().unwrap(), SECRET)),
                )
                .start()
                .expect("a gateway");
            gateways.push(rt);
        }
        let internal: Vec<String> = gateways
            .iter()
            .map(|g| {
                g.gateway(name)
                    .unwrap()
                    .internal_addr()
                    .unwrap()
                    .to_string()
            })
            .collect();
        let mut businesses = Vec::new();
        for _ in 0..2 {
            let backend = BackendConfig::Gateway(
                GatewayBackendConfig::new(internal.clone(), SECRET)
                    .query_timeout(Duration::from_millis(500)),
            );
            let rt = Runtime::builder()
                .workers(WORKERS)
                .server(
                    ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                        .listen(false)
                        .backend(backend)
                        .handler(|_| Cmd),
                )
                .start()
                .expect("a business process linked to the gateways");
            businesses.push(rt);
        }
        wait_until("both gateways serve both business processes", || {
            gateways
                .iter()
                .all(|g| g.gateway(name).unwrap().businesses() == 2)
        });
        // Instance `i`: calls through business process `i`, clients of gateway `i`.
        let instances: Vec<Instance> = businesses
            .iter()
            .zip(&gateways)
            .map(|(b, g)| Instance {
                server: b.server(name).expect("its handle"),
                addr: g.local_addr(name).expect("the gateway's address"),
            })
            .collect();
        wait_until("the business processes count both gateways live", || {
            instances
                .iter()
                .all(|i| i.server.cluster().instances() == [0, 1, 2])
        });
        Deployment {
            instances,
            kind: Kind::Gateway,
            stop: Box::new(move || {
                for rt in businesses.into_iter().chain(gateways) {
                    rt.shutdown().expect("a clean shutdown");
                }
            }),
            keep: Vec::new(),
        }
    }
}

contract_cases!(GatewayFixture);
