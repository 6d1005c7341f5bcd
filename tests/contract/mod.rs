//! The backend contract: one set of cases that every backend must pass, each a `pub fn` taking
//! a [`Fixture`]. A backend's test file (`tests/contract_<backend>.rs`) implements [`Fixture`]
//! and calls [`contract_cases!`], which makes one `#[test]` per case.
//!
//! Cases speak of the deployment's instances: client `i` connects to instance `i % n` (or
//! [`Deployment::spread`] puts clients on both core loops of every instance), calls go through
//! every instance in turn, and what a call should answer is stated per instance —
//! [`Deployment::count`] for sends, [`Deployment::seen`] for queries — so that a cluster
//! backend reuses every case unchanged. Under Gateway an instance is a pair: calls go through
//! a business process, clients connect to a gateway; the business process holds none of
//! them ([`Deployment::holds`]).
#![allow(dead_code)] // each fixture file is its own crate and names only its own `Kind`
#![allow(unreachable_pub)] // a test crate module: `pub` is for the fixture files

mod history;
mod lifecycle;
mod membership;
mod sends;

use std::any::Any;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};

use corepush::{Answer, BackendConfig, ClientId, Runtime, Server, ServerConfig};
use serde_json::Value;
use tungstenite::Message as WsMessage;

use crate::util::{Client, Cmd, clients_by_worker, recv_json, wait_until};

pub use history::*;
pub use lifecycle::*;
pub use membership::*;
pub use sends::*;

/// Core loops per instance: every fixture starts its instances with this many.
pub const WORKERS: usize = 2;

/// A way to start a deployment of one backend.
pub trait Fixture {
    /// Starts a fresh deployment of this backend serving the `Cmd` handler as server `name`
    /// (WebSocket, 127.0.0.1:0, [`WORKERS`] core loops per instance).
    fn start(&self, name: &str) -> Deployment;

    /// Whether this backend can run here; a fixture that needs something outside the crate
    /// (a Redis server) says no — after printing why the case is skipped — where it is
    /// missing.
    fn available(&self, _case: &str) -> bool {
        true
    }
}

/// What a backend does with a push, which decides what a case expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One instance that delivers to its own clients (Local).
    Delivers,
    /// Several instances acting as one server (Redis, Channel). Pushes reach their targets on
    /// every instance, but a fire-and-forget send counts only what it queued on the calling
    /// instance (the exact cluster-wide number is the counted form, [`Deployment::counted`]),
    /// and queries answer for the calling instance's clients.
    Cluster,
    /// A cluster whose calls go through business processes behind gateways (Gateway): as
    /// [`Kind::Cluster`], but the instances calls go through hold no clients — the gateways
    /// do — so fire-and-forget sends count 0, plain queries and calls by id answer as for a
    /// client that is not there, and worker messages reach the calling process's core loops.
    Gateway,
    /// Nothing is delivered: every send counts 0, every query is empty (Fpm).
    NoOp,
}

/// A running deployment of one backend.
pub struct Deployment {
    /// The instances, each serving the same server name; 1 for Local and Fpm.
    pub instances: Vec<Instance>,
    pub kind: Kind,
    /// Shuts every instance down gracefully and returns once they have stopped: afterwards
    /// every handle in `instances` answers as after shutdown. It owns what it stops (the
    /// runtimes), so a deployment dropped without [`shutdown`](Deployment::shutdown) stops
    /// them too. Runs, or is dropped, before `keep`.
    pub stop: Box<dyn FnOnce()>,
    /// Whatever else must live as long as the deployment (a Redis process, a broker …).
    pub keep: Vec<Box<dyn Any>>,
}

/// A cluster of two instances, numbers 1 and 2, serving `name` (the `Cmd` handler,
/// WebSocket, 127.0.0.1:0, [`WORKERS`] core loops each) on the backend `backend` makes for
/// each; returns once each instance sees both. `engine` is what they meet on (a Redis
/// process, a broker): the deployment keeps it, and it stops after the instances.
pub fn two_instances(
    name: &str,
    backend: impl Fn() -> BackendConfig,
    engine: Box<dyn Any>,
) -> Deployment {
    let mut runtimes = Vec::new();
    let mut instances = Vec::new();
    for number in [1, 2] {
        let rt = Runtime::builder()
            .workers(WORKERS)
            .instance(number)
            .server(
                ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                    .backend(backend())
                    .handler(|_| Cmd),
            )
            .start()
            .unwrap_or_else(|e| panic!("instance {number}: {e}"));
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
        keep: vec![engine],
    }
}

/// One instance: its push handle and the address its clients connect to.
#[derive(Debug, Clone)]
pub struct Instance {
    pub server: Server,
    pub addr: SocketAddr,
}

impl Deployment {
    /// What a fire-and-forget send through one instance returns when `here` of its targets
    /// are connected to that instance and `everywhere` to the whole deployment:
    ///
    /// * `Kind::Delivers` answers `everywhere` (a single instance, so `here == everywhere`);
    /// * `Kind::Cluster` and `Kind::Gateway` answer `here`: a cluster's fire-and-forget send
    ///   counts what it queued on the calling instance, and publishes the rest to the other
    ///   instances uncounted (the exact cluster-wide number is the counted form). Under
    ///   Gateway `here` is 0 for connections (see [`holds`](Deployment::holds)) and the
    ///   calling process's core loops for worker messages;
    /// * `Kind::NoOp` answers 0.
    ///
    /// Worker messages follow the same rule, counting core loops instead of connections.
    pub fn count(&self, here: usize, everywhere: usize) -> usize {
        match self.kind {
            Kind::Delivers => {
                assert_eq!(here, everywhere, "Kind::Delivers is a single instance");
                everywhere
            }
            Kind::Cluster | Kind::Gateway => here,
            Kind::NoOp => 0,
        }
    }

    /// What the counted form of a send (`server.cluster().send…`) answers when `everywhere`
    /// of its targets are connected to the deployment: all of them where the backend
    /// delivers, 0 on Fpm.
    pub fn counted(&self, everywhere: usize) -> usize {
        if self.delivers() { everywhere } else { 0 }
    }

    /// Checks the answer of a counted send to these targets (each once): the
    /// cluster-wide number, from every instance that could know.
    pub fn assert_counted<'a>(
        &self,
        answer: corepush::Result<Answer<usize>>,
        targets: impl IntoIterator<Item = &'a Client>,
    ) {
        let answer = answer.expect("a counted send");
        let everywhere = targets.into_iter().count();
        assert_eq!(
            answer,
            Answer {
                value: self.counted(everywhere),
                complete: true
            }
        );
    }

    /// Whether the instances calls go through hold clients: all but Gateway's business
    /// processes do.
    pub fn holds_clients(&self) -> bool {
        self.kind != Kind::Gateway
    }

    /// Whether the client's connection is held by instance `via`, the one calls go through:
    /// it is connected there (under Gateway, never: the gateway holds it).
    pub fn holds(&self, via: usize, client: &Client) -> bool {
        self.holds_clients() && self.home(client) == via
    }

    /// Whether calls by id through the client's own instance ([`home`](Deployment::home))
    /// act on it: the backend delivers and that instance holds it.
    pub fn acts_by_id(&self) -> bool {
        self.delivers() && self.holds_clients()
    }

    /// Whether targets get what is sent to them.
    pub fn delivers(&self) -> bool {
        self.kind != Kind::NoOp
    }

    /// The indices of the instances, to call through each in turn.
    pub fn vias(&self) -> Range<usize> {
        0..self.instances.len()
    }

    /// The push handle of instance `at`.
    pub fn via(&self, at: usize) -> &Server {
        &self.instances[at].server
    }

    /// Connects `k` clients, client `i` to instance `i % n`.
    pub fn connect(&self, k: usize) -> Vec<Client> {
        let n = self.instances.len();
        (0..k)
            .map(|i| Client::connect(self.instances[i % n].addr))
            .collect()
    }

    /// `per_worker` clients on each core loop of each instance: instance 0's core loop 0
    /// first, then its core loop 1, then instance 1's …
    pub fn spread(&self, per_worker: usize) -> Vec<Client> {
        self.instances
            .iter()
            .flat_map(|i| clients_by_worker(i.addr, WORKERS, per_worker))
            .flatten()
            .collect()
    }

    /// The instance a client is connected to (under Gateway, the index of its gateway).
    pub fn home(&self, client: &Client) -> usize {
        let peer = client.ws.get_ref().peer_addr().expect("a connected client");
        self.vias()
            .find(|&i| self.instances[i].addr == peer)
            .expect("a client of this deployment")
    }

    /// What a send through instance `via` to these targets (each once) returns.
    pub fn expected<'a>(&self, via: usize, targets: impl IntoIterator<Item = &'a Client>) -> usize {
        let (mut here, mut everywhere) = (0, 0);
        for c in targets {
            everywhere += 1;
            here += usize::from(self.holds(via, c));
        }
        self.count(here, everywhere)
    }

    /// Whether queries through instance `via` see the client: that instance holds it and the
    /// backend delivers.
    pub fn sees(&self, via: usize, client: &Client) -> bool {
        self.delivers() && self.holds(via, client)
    }

    /// The ids of these clients that queries through instance `via` see, sorted.
    pub fn seen<'a>(
        &self,
        via: usize,
        clients: impl IntoIterator<Item = &'a Client>,
    ) -> Vec<ClientId> {
        let mut ids: Vec<ClientId> = clients
            .into_iter()
            .filter(|c| self.sees(via, c))
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Where the backend delivers, the client's next message is this text message.
    pub fn read_text(&self, client: &mut Client, text: &str) {
        if self.delivers() {
            match client.recv_message() {
                WsMessage::Text(t) => assert_eq!(t.as_str(), text, "client {}", client.id),
                other => panic!(
                    "client {}: expected text {text:?}, got {other:?}",
                    client.id
                ),
            }
        }
    }

    /// Where the backend delivers, the client's next message is this binary message.
    pub fn read_binary(&self, client: &mut Client, bytes: &[u8]) {
        if self.delivers() {
            match client.recv_message() {
                WsMessage::Binary(b) => assert_eq!(&b[..], bytes, "client {}", client.id),
                other => panic!(
                    "client {}: expected binary {bytes:?}, got {other:?}",
                    client.id
                ),
            }
        }
    }

    /// Where the backend delivers, the client's next message is this JSON value.
    pub fn read_json(&self, client: &mut Client, value: &Value) {
        if self.delivers() {
            assert_eq!(&recv_json(&mut client.ws), value, "client {}", client.id);
        }
    }

    /// Proves that nothing else was queued to the client through instance `via`: sends it a
    /// marker through `via` (one thread's sends arrive in order) and, where the backend
    /// delivers, asserts that the marker is its next message. Nothing can be proved silent on
    /// a backend that delivers nothing, so there only the marker's count is checked.
    pub fn quiet(&self, via: usize, client: &mut Client) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let marker = format!("marker-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let sent = self.via(via).send_raw(&marker, client.id).expect("marker");
        assert_eq!(sent, self.expected(via, [&*client]), "the marker's count");
        self.read_text(client, &marker);
    }

    /// Where the backend delivers, the client's next message is a close frame with this code
    /// (answered, completing the close handshake); elsewhere the client is still served.
    pub fn read_close(&self, client: &mut Client, code: u16) {
        if self.delivers() {
            match client.recv_message() {
                WsMessage::Close(frame) => {
                    let _ = client.ws.flush();
                    assert_eq!(frame.map(|f| u16::from(f.code)), Some(code));
                }
                other => panic!("client {}: expected a close, got {other:?}", client.id),
            }
        } else {
            assert_eq!(client.ask("echo:open"), "open", "client {}", client.id);
        }
    }

    /// Shuts the deployment down (see [`stop`](Deployment::stop)), then drops `keep`. The
    /// instances' handles stay usable, to see how they answer afterwards.
    pub fn shutdown(&mut self) {
        let stop = std::mem::replace(&mut self.stop, Box::new(|| {}));
        stop();
        self.keep.clear();
    }
}

/// The clients of `clients` whose index passes `pick`.
pub fn pick<'a>(
    clients: &'a [Client],
    pick: impl Fn(usize) -> bool + 'a,
) -> impl Iterator<Item = &'a Client> + 'a {
    clients
        .iter()
        .enumerate()
        .filter(move |(i, _)| pick(*i))
        .map(|(_, c)| c)
}

/// A client id that no connection has: the top of the id space (instance 4095, core loop 255).
pub fn nobody() -> ClientId {
    ClientId::from_u64(u64::MAX).expect("non-zero")
}

/// An id routed like `id` (same instance and core loop) whose serial is never handed out
/// before 2059: the 44 serial bits all set.
pub fn beside(id: ClientId) -> ClientId {
    ClientId::from_u64(id.as_u64() | ((1 << 44) - 1)).expect("non-zero")
}

/// One `#[test]` per contract case, each running the case against `$fixture`.
macro_rules! contract_cases {
    ($fixture:expr) => {
        contract_cases!(@each $fixture;
            send_by_id,
            send_to_several_ids,
            send_raw_text_and_binary,
            unknown_ids_count_zero,
            send_by_flag_reaches_every_holder,
            flags_named_twice_deliver_once,
            unknown_flags_count_zero,
            send_to_groups_counts_each_member_once,
            leave_takes_a_client_out_of_group_sends,
            empty_groups_count_zero,
            send_to_all_reaches_every_client,
            except_skips_clients_on_all_flag_and_group_sends,
            one_threads_sends_arrive_in_call_order,
            close_by_id,
            close_by_flag,
            queries_answer_for_the_instances_clients,
            bind_by_id,
            join_and_leave_by_id,
            data_by_id,
            recovery_without_history_joins_and_never_recovers,
            worker_messages_count_core_loops,
            worker_scope_confines_to_one_core_loop,
            this_worker_needs_a_core_loop,
            after_shutdown,
        );
    };
    (@each $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if $crate::contract::Fixture::available(&$fixture, stringify!($case)) {
                    $crate::contract::$case(&$fixture);
                }
            }
        )*
    };
}
