//! A private `redis-server` for tests: on a free port of 127.0.0.1, with no persistence, in a
//! directory of its own; killed when dropped, and restartable on the same port.
//!
//! Where `redis-server` is not installed, [`RedisServer::start`] answers `None` and the test
//! returns early with a line saying it was skipped — unless `COREPUSH_REQUIRE_REDIS` is set
//! (CI sets it), where a missing Redis fails the test.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corepush::{BackendConfig, RedisConfig, Runtime, Server, ServerConfig};

use super::{Cmd, WAIT};

/// A `redis-server` of this test's own.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

/// Whether tests must fail rather than skip without Redis.
fn required() -> bool {
    std::env::var_os("COREPUSH_REQUIRE_REDIS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether `redis-server` can be started here; says why `test` is skipped when not (and fails
/// it instead where Redis is required).
pub fn redis_available(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            !required(),
            "{test}: redis-server is not installed, and COREPUSH_REQUIRE_REDIS is set"
        );
        eprintln!("{test}: skipped: redis-server is not installed");
    }
    found
}

impl RedisServer {
    /// Starts one, or `None` (after saying so) where `redis-server` is missing and Redis is
    /// not required.
    pub fn start(test: &str) -> Option<RedisServer> {
        if !redis_available(test) {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir =
            std::env::temp_dir().join(format!("corepush-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.restart();
        Some(server)
    }

    /// The URL clients connect with.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Kills the server (as a crash would: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing is persisted) and waits until it
    /// answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        // Its log says when it accepts connections.
        let out = child.stdout.take().expect("redis-server's stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(WAIT).expect("redis-server did not start");
        // Logged once its listening socket is open: connections are taken from here on.
        self.child = Some(child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a private Redis for the test, or returns from it (after saying it is skipped)
/// where `redis-server` is missing and not required.
#[macro_export]
macro_rules! redis_or_skip {
    ($name:expr) => {
        match $crate::util::RedisServer::start($name) {
            Some(r) => r,
            None => return,
        }
    };
}

/// One instance of a cluster on Redis: a runtime of two core loops serving [`Cmd`] as "ws".
#[derive(Debug)]
pub struct RedisInstance {
    pub rt: Option<Runtime>,
    pub server: Server,
    pub addr: SocketAddr,
}

impl RedisInstance {
    /// Starts instance `number` (0: the lowest free one) of the cluster `prefix` on `url`.
    pub fn start(
        url: &str,
        prefix: &str,
        number: u16,
        query_timeout: Duration,
    ) -> corepush::Result<RedisInstance> {
        let backend = BackendConfig::Redis(
            RedisConfig::default()
                .url(url)
                .prefix(prefix)
                .query_timeout(query_timeout)
                .name(format!("test-{number}")),
        );
        let rt = Runtime::builder()
            .workers(2)
            .instance(number)
            .server(
                ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                    .backend(backend)
                    .handler(|_| Cmd),
            )
            .start()?;
        let server = rt.server("ws").expect("handle");
        let addr = rt.local_addr("ws").expect("address");
        Ok(RedisInstance {
            rt: Some(rt),
            server,
            addr,
        })
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_stop(&self) {
        if let Some(rt) = &self.rt {
            rt.shutdown_handle().shutdown();
        }
    }

    /// Shuts down gracefully and waits.
    pub fn stop(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown().expect("clean shutdown");
        }
    }
}
