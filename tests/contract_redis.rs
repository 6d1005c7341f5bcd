//! The backend contract (tests/contract) against the Redis backend: two instances on a
//! private `redis-server`, clients spread over both, calls made through both.
mod util;
#[macro_use]
mod contract;

use std::time::Duration;

use contract::{Deployment, Fixture, Instance, Kind};
use corepush::{BackendConfig, RedisConfig, Runtime, ServerConfig};
use util::{Cmd, RedisServer, wait_until};

struct RedisFixture;

impl Fixture for RedisFixture {
    fn available(&self, case: &str) -> bool {
        util::redis_available(case)
    }

    fn start(&self, name: &str) -> Deployment {
        let redis = RedisServer::start(name).expect(
            "redis-server is needed for the Redis contract (install it, e.g. apt-get install \
             redis-server)",
        );
        let mut runtimes = Vec::new();
        let mut instances = Vec::new();
        for number in [1, 2] {
            let backend = BackendConfig::Redis(
                RedisConfig::default()
                    .url(redis.url())
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
                .expect("an instance on Redis");
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
            keep: vec![Box::new(redis)],
        }
    }
}

contract_cases!(RedisFixture);
