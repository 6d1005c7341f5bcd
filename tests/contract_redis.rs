//! The backend contract (tests/contract) against the Redis backend: two instances on a
//! private `redis-server`, clients spread over both, calls made through both.
mod util;
#[macro_use]
mod contract;

use std::time::Duration;

use contract::{Deployment, Fixture};
use corepush::{BackendConfig, RedisConfig};
use util::RedisServer;

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
        let url = redis.url();
        let backend = || {
            BackendConfig::Redis(
                RedisConfig::default()
                    .url(url.clone())
                    .prefix(name)
                    .query_timeout(Duration::from_millis(500)),
            )
        };
        contract::two_instances(name, backend, Box::new(redis))
    }
}

contract_cases!(RedisFixture);
