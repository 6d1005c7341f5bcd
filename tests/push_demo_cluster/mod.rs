//! The cross-instance checks of push_demo, written once for every cluster backend: each
//! function takes two demo instances that see each other and drives them from outside
//! through real WebSocket clients (tests/push_demo_redis.rs, tests/push_demo_channel.rs).
//! Behind gateways (tests/push_demo_gateway.rs) A and B are two gateway processes, and the
//! ops run in business processes that hold no clients: a fire-and-forget send there counts
//! 0, and a core loop that runs an op holds none of the connections ([`Client::handled_by`]).
//!
//! "Nothing else arrives" is proven with markers, never with sleeps: after the op under test,
//! the same client pushes a marker along the same path (A's sending side, one connection to
//! the engine, B's receiving side: FIFO), and each target's very next frame must be that
//! marker. Waiting for the engine to go away or come back is a bounded poll of an op, as a
//! client would retry.
#![allow(dead_code)] // each test file uses a different subset
#![allow(unreachable_pub)] // a test crate module: `pub` is for the test files, not a public API

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use corepush::{ClientId, Runtime};
use serde_json::{Value, json};
use tungstenite::Message;

use crate::push_demo::SERVER;
use crate::util::{WAIT, Ws, connect, wait_until};

/// `check!(client, {request} => result)`: the op succeeds, complete, with exactly this result.
macro_rules! check {
    ($client:expr, $request:tt => $($result:tt)+) => {
        assert_eq!($client.ok(json!($request)), json!($($result)+), "{}", json!($request))
    };
}

/// Core loops per instance.
pub const WORKERS: usize = 2;

/// Two instances that see each other: A named "alpha", B left to its default name; or two
/// gateways with business processes behind them.
pub struct Pair {
    pub addr_a: SocketAddr,
    pub addr_b: SocketAddr,
    /// Whether A and B are gateways, the ops running in business processes (instance 0).
    pub behind_gateways: bool,
    /// Stops the instances: runtimes in this process, or processes of their own.
    stop: Box<dyn FnOnce()>,
}

impl Pair {
    /// Starts A, then B, with `instance` (given the `--instance` name, if any) and waits
    /// until they see each other.
    pub fn start(
        mut instance: impl FnMut(Option<&str>) -> corepush::Result<(Runtime, SocketAddr)>,
    ) -> Pair {
        let (a, addr_a) = instance(Some("alpha")).expect("instance A");
        let (b, addr_b) = instance(None).expect("instance B");
        let (sa, sb) = (a.server(SERVER).unwrap(), b.server(SERVER).unwrap());
        wait_until("the instances see each other", || {
            sa.cluster().instances().len() == 2 && sb.cluster().instances().len() == 2
        });
        Pair {
            addr_a,
            addr_b,
            behind_gateways: false,
            stop: Box::new(move || {
                a.shutdown().expect("A stops cleanly");
                b.shutdown().expect("B stops cleanly");
            }),
        }
    }

    /// Gateways A and B (clients connect to `addr_a`, `addr_b`), each linked to every
    /// business process already; `stop` ends them all.
    pub fn behind_gateways(
        addr_a: SocketAddr,
        addr_b: SocketAddr,
        stop: impl FnOnce() + 'static,
    ) -> Pair {
        Pair {
            addr_a,
            addr_b,
            behind_gateways: true,
            stop: Box::new(stop),
        }
    }

    /// A client of the instance (or gateway) at `addr`.
    pub fn connect(&self, addr: SocketAddr) -> Client {
        let mut c = Client::connect(addr);
        if self.behind_gateways {
            c.handled_by = 0;
        }
        c
    }

    /// Clients `a`, `a2` on A and `b1`, `b2` on B.
    pub fn clients(&self) -> Vec<Client> {
        let (a, b) = (self.addr_a, self.addr_b);
        vec![
            self.connect(a),
            self.connect(a),
            self.connect(b),
            self.connect(b),
        ]
    }

    pub fn finish(self, clients: Vec<Client>) {
        drop(clients);
        (self.stop)();
    }
}

pub const A: usize = 0;
pub const A2: usize = 1;
pub const B1: usize = 2;
pub const B2: usize = 3;

pub struct Client {
    pub ws: Ws,
    pub id: String,
    /// The instance that holds the connection (the top bits of its id).
    pub instance: u16,
    /// The instance whose handler serves it: `instance`, or 0 (a business process) behind
    /// gateways.
    pub handled_by: u16,
    /// The core loop that runs its ops (whoami's `worker`).
    pub worker: u64,
    pub seq: u64,
    /// Frames that arrived ahead of a reply: pushes the op made to this client itself.
    early: VecDeque<Message>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let mut c = Client {
            ws: connect(addr),
            id: String::new(),
            instance: 0,
            handled_by: 0,
            worker: u64::MAX,
            seq: 0,
            early: VecDeque::new(),
        };
        let me = c.ok(json!({"op": "whoami"}));
        c.id = me["clientId"].as_str().expect("clientId string").to_owned();
        c.instance = c.id.parse::<ClientId>().expect("a client id").instance();
        c.handled_by = c.instance;
        c.worker = me["worker"].as_u64().expect("worker number");
        c
    }

    /// Sends a request with a fresh id and returns its reply; pushes ahead of it are kept.
    pub fn call(&mut self, mut request: Value) -> Value {
        self.seq += 1;
        request["id"] = json!(self.seq);
        self.ws.send(Message::text(request.to_string())).unwrap();
        loop {
            let frame = self.read_frame();
            let reply = match &frame {
                Message::Text(t) => serde_json::from_str::<Value>(t).ok(),
                _ => None,
            };
            match reply {
                Some(reply) if reply["op"] == "reply" => {
                    assert_eq!(reply["id"], json!(self.seq), "{request} → {reply}");
                    return reply;
                }
                _ => self.early.push_back(frame),
            }
        }
    }

    /// The result of a request that must succeed with a complete answer.
    pub fn ok(&mut self, request: Value) -> Value {
        let reply = self.call(request.clone());
        assert!(reply.get("error").is_none(), "{request} failed: {reply}");
        assert!(reply.get("partial").is_none(), "{request}: {reply}");
        reply["result"].clone()
    }

    /// The error of a request that must fail.
    pub fn err(&mut self, request: Value) -> String {
        let reply = self.call(request.clone());
        assert!(
            reply.get("result").is_none(),
            "{request} must fail: {reply}"
        );
        reply["error"].as_str().expect("error text").to_owned()
    }

    pub fn next_frame(&mut self) -> Message {
        self.early.pop_front().unwrap_or_else(|| self.read_frame())
    }

    pub fn read_frame(&mut self) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "client {}: no frame", self.id);
            match self.ws.read() {
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                Ok(m) => return m,
                Err(e) => panic!("client {}: expected a frame, got {e}", self.id),
            }
        }
    }

    pub fn next_text(&mut self) -> String {
        match self.next_frame() {
            Message::Text(t) => t.to_string(),
            other => panic!("client {}: expected a text frame, got {other:?}", self.id),
        }
    }

    /// The next frame is an encoded push of `data`: exactly its compact JSON text.
    pub fn expect_push(&mut self, data: &Value) {
        assert_eq!(self.next_text(), data.to_string(), "client {}", self.id);
    }

    pub fn expect_raw(&mut self, text: &str) {
        assert_eq!(self.next_text(), text, "client {}", self.id);
    }

    pub fn expect_close(&mut self) {
        match self.next_frame() {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
            other => panic!("client {}: expected a close frame, got {other:?}", self.id),
        }
        let _ = self.ws.flush(); // completes the close handshake
    }
}

pub fn ids(c: &[Client], which: &[usize]) -> Value {
    which
        .iter()
        .map(|&i| Value::from(c[i].id.clone()))
        .collect()
}

/// How many of `which` are on the instance that runs `from`'s ops: a fire-and-forget send's
/// answer (none behind gateways).
pub fn here(c: &[Client], from: usize, which: &[usize]) -> usize {
    which
        .iter()
        .filter(|&&i| c[i].instance == c[from].handled_by)
        .count()
}

/// Whether client `i`'s connection is on the core loop that runs `from`'s ops: what
/// `"scope": "worker"` reaches (nothing behind gateways).
pub fn on_loop_of(c: &[Client], from: usize, i: usize) -> bool {
    c[i].instance == c[from].handled_by && c[i].worker == c[from].worker
}

/// `from` pushes a marker to `to`; each must see it as its next frame.
pub fn marker(c: &mut [Client], from: usize, to: &[usize], n: u64) {
    let data = json!({"marker": n});
    let targets = ids(c, to);
    let count = c[from].ok(json!({"op": "send", "to": targets, "data": data}));
    assert_eq!(count, json!(here(c, from, to)));
    pushed(c, to, &data);
}

pub fn pushed(c: &mut [Client], which: &[usize], data: &Value) {
    for &i in which {
        c[i].expect_push(data);
    }
}

pub fn pushed_raw(c: &mut [Client], which: &[usize], text: &str) {
    for &i in which {
        c[i].expect_raw(text);
    }
}

/// A well-formed id of `instance` that no connection has (core loop 200).
pub fn ghost(instance: u16) -> String {
    ((u64::from(instance) << 52) | (200 << 44) | 9).to_string()
}

pub fn whoami_names_the_instance_and_ids_carry_claimed_numbers(pair: Pair) {
    let mut c = pair.clients();
    let (na, nb) = (c[A].instance, c[B1].instance);
    // Claimed at start (in Redis, or assigned by the broker), the lowest free first: 1 and 2.
    assert_eq!((na, nb), (1, 2));
    assert_eq!((c[A2].instance, c[B2].instance), (na, nb));
    for i in [A, A2, B1, B2] {
        let name = match c[i].instance {
            1 => "alpha".to_owned(),
            n => format!("instance-{n}"),
        };
        let me = json!({"clientId": c[i].id, "worker": c[i].worker, "instance": name});
        check!(c[i], {"op": "whoami"} => me);
    }
    pair.finish(c);
}

pub fn sends_cross_to_the_other_instance(pair: Pair) {
    let mut c = pair.clients();
    let (idb1, idb2, ida) = (c[B1].id.clone(), c[B2].id.clone(), c[A].id.clone());
    // By id: answered with this instance's part (0 for B's clients).
    let d = json!({"to": "b1"});
    check!(c[A], {"op": "send", "to": idb1, "data": d} => 0);
    c[B1].expect_push(&d);
    let to = ids(&c, &[A, B1]);
    let n = here(&c, A, &[A, B1]);
    check!(c[A], {"op": "send", "to": to, "data": "a and b1"} => n);
    pushed(&mut c, &[A, B1], &json!("a and b1"));
    check!(c[A], {"op": "sendRaw", "to": [idb2], "text": "raw b2"} => 0);
    c[B2].expect_raw("raw b2");
    let nobody = ghost(c[B1].instance);
    check!(c[A], {"op": "send", "to": nobody, "data": 1} => 0);
    marker(&mut c, A, &[B1, B2], 1);

    // By flag, with except.
    check!(c[B1], {"op": "bind", "flag": "bob"} => true);
    check!(c[A2], {"op": "bind", "flag": "bob"} => true);
    check!(c[B2], {"op": "bind", "flag": "carol"} => true);
    let n = here(&c, A, &[A2, B1]);
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "bob"} => n);
    pushed(&mut c, &[A2, B1], &json!("bob"));
    let n = here(&c, A, &[A2, B1, B2]);
    check!(c[A], {"op": "sendRawByFlag", "flag": ["bob", "carol"], "text": "bc"} => n);
    pushed_raw(&mut c, &[A2, B1, B2], "bc");
    let (except, n) = (ids(&c, &[B1]), here(&c, A, &[A2]));
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "not b1", "except": except} => n);
    c[A2].expect_push(&json!("not b1"));
    marker(&mut c, A, &[B1], 2);

    // To groups, with except.
    for i in [A2, B1, B2] {
        check!(c[i], {"op": "join", "group": "room"} => true);
    }
    let n = here(&c, A, &[A2, B1, B2]);
    check!(c[A], {"op": "sendToGroup", "group": "room", "data": "room"} => n);
    pushed(&mut c, &[A2, B1, B2], &json!("room"));
    let (except, n) = (ids(&c, &[B2]), here(&c, A, &[A2, B1]));
    check!(c[A], {"op": "sendRawToGroup", "group": ["room", "none"], "text": "not b2",
        "except": except} => n);
    pushed_raw(&mut c, &[A2, B1], "not b2");
    marker(&mut c, A, &[B2], 3);

    // To everyone, with except: the answer counts A's clients only (none behind gateways).
    let all = [A, A2, B1, B2];
    let n = here(&c, A, &all);
    check!(c[A], {"op": "sendToAll", "data": "all"} => n);
    pushed(&mut c, &all, &json!("all"));
    let (except, n) = (ids(&c, &[A, B2]), here(&c, A, &[A2, B1]));
    check!(c[A], {"op": "sendToAll", "data": "not a, b2", "except": except} => n);
    pushed(&mut c, &[A2, B1], &json!("not a, b2"));
    marker(&mut c, A2, &[A, B2], 4);
    let n = here(&c, A, &all);
    check!(c[A], {"op": "sendRawToAll", "text": "raw all"} => n);
    pushed_raw(&mut c, &all, "raw all");

    // scope worker stays on the core loop that handles A's op: B hears nothing (and behind
    // gateways nobody: that core loop, in a business process, holds no connection).
    let local: Vec<usize> = [A, A2]
        .into_iter()
        .filter(|&i| on_loop_of(&c, A, i))
        .collect();
    check!(c[A], {"op": "sendToAll", "data": "w", "scope": "worker"} => local.len());
    pushed(&mut c, &local, &json!("w"));
    let a2_here = on_loop_of(&c, A, A2);
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "w", "scope": "worker"}
        => usize::from(a2_here));
    if a2_here {
        c[A2].expect_push(&json!("w"));
    }
    check!(c[A], {"op": "sendRaw", "to": idb1, "text": "w", "scope": "worker"} => 0);
    check!(c[A], {"op": "sendToGroup", "group": "room", "data": "w", "scope": "worker",
        "wait": true} => usize::from(a2_here));
    if a2_here {
        c[A2].expect_push(&json!("w"));
    }
    marker(&mut c, A, &all, 5);
    // And from B the other way.
    check!(c[B1], {"op": "sendRaw", "to": ida, "text": "from b"} => 0);
    c[A].expect_raw("from b");
    marker(&mut c, B1, &[A], 6);
    pair.finish(c);
}

pub fn waited_sends_count_the_cluster(pair: Pair) {
    let mut c = pair.clients();
    let (ida, idb1, idb2) = (c[A].id.clone(), c[B1].id.clone(), c[B2].id.clone());
    check!(c[A], {"op": "send", "to": idb1, "data": "b1", "wait": true} => 1);
    c[B1].expect_push(&json!("b1"));
    let nobody = ghost(c[B1].instance);
    check!(c[A], {"op": "sendRaw", "to": [idb1, idb2, nobody], "text": "b", "wait": true} => 2);
    pushed_raw(&mut c, &[B1, B2], "b");

    // A push to the sender made on a pool thread arrives before the reply.
    c[A].ws
        .send(Message::text(
            json!({"op": "send", "to": [ida, idb1], "data": "me", "wait": true, "id": "w"})
                .to_string(),
        ))
        .unwrap();
    c[A].expect_push(&json!("me"));
    let reply: Value = serde_json::from_str(&c[A].next_text()).unwrap();
    assert_eq!(
        reply,
        json!({"op": "reply", "id": "w", "result": 2}),
        "{reply}"
    );
    c[B1].expect_push(&json!("me"));

    for (i, flag) in [(A2, "bob"), (B1, "bob"), (B2, "carol")] {
        check!(c[i], {"op": "bind", "flag": flag} => true);
        check!(c[i], {"op": "join", "group": "room"} => true);
    }
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "bob", "wait": true} => 2);
    pushed(&mut c, &[A2, B1], &json!("bob"));
    let except = ids(&c, &[B1]);
    check!(c[A], {"op": "sendRawByFlag", "flag": ["bob", "carol"], "text": "bc",
        "except": except, "wait": true} => 2);
    pushed_raw(&mut c, &[A2, B2], "bc");
    check!(c[A], {"op": "sendToGroup", "group": "room", "data": "room", "wait": true} => 3);
    pushed(&mut c, &[A2, B1, B2], &json!("room"));
    check!(c[A], {"op": "sendRawToGroup", "group": "room", "text": "r", "wait": true} => 3);
    pushed_raw(&mut c, &[A2, B1, B2], "r");
    let all = [A, A2, B1, B2];
    check!(c[A], {"op": "sendToAll", "data": "all", "wait": true} => 4);
    pushed(&mut c, &all, &json!("all"));
    let except = ids(&c, &[A, B2]);
    check!(c[A], {"op": "sendRawToAll", "text": "some", "except": except, "wait": true} => 2);
    pushed_raw(&mut c, &[A2, B1], "some");
    let n = here(&c, A, &all);
    check!(c[A], {"op": "sendToAll", "data": 1, "wait": false} => n);
    pushed(&mut c, &all, &json!(1));
    let e = c[A].err(json!({"op": "sendToAll", "data": 1, "wait": "yes"}));
    assert!(e.contains("wait must be true or false"), "{e}");
    let e = c[A].err(json!({"op": "count", "wait": true}));
    assert!(e.contains("count does not take wait"), "{e}");
    marker(&mut c, A, &all, 1);
    pair.finish(c);
}

pub fn waited_closes_release_the_clients_everywhere(pair: Pair) {
    let mut c = pair.clients();
    c.push(pair.connect(pair.addr_b));
    const B3: usize = 4;
    let (idb1, idb3) = (c[B1].id.clone(), c[B3].id.clone());
    check!(c[A], {"op": "count"} => 5);
    check!(c[A], {"op": "close", "to": idb1, "wait": true} => 1);
    check!(c[A], {"op": "exists", "to": idb1} => false);
    check!(c[B2], {"op": "exists", "to": idb1} => false);
    c[B1].expect_close();
    check!(c[A], {"op": "close", "to": idb1, "wait": true} => 0);

    for i in [A2, B2] {
        check!(c[i], {"op": "bind", "flag": "bye"} => true);
    }
    check!(c[A], {"op": "closeByFlag", "flag": ["bye", "none"], "wait": true} => 2);
    check!(c[A], {"op": "flagExists", "flag": "bye"} => false);
    check!(c[A], {"op": "count"} => 2);
    c[A2].expect_close();
    c[B2].expect_close();

    // Without wait: this instance's part at once; the owner lets go shortly after, and has
    // already forgotten the client when its close frame arrives.
    check!(c[A], {"op": "close", "to": idb3} => 0);
    c[B3].expect_close();
    check!(c[A], {"op": "exists", "to": idb3} => false);
    check!(c[A], {"op": "count"} => 1);
    let me = c[A].id.clone();
    check!(c[A], {"op": "connections"} => [me]);
    pair.finish(c);
}

pub fn queries_and_data_answer_for_the_cluster(pair: Pair) {
    let mut c = pair.clients();
    let (idb1, nb) = (c[B1].id.clone(), c[B1].instance);
    check!(c[A], {"op": "exists", "to": idb1} => true);
    check!(c[A], {"op": "exists", "to": ghost(nb)} => false);
    check!(c[A], {"op": "exists", "to": ghost(77)} => false);
    check!(c[A], {"op": "count"} => 4);
    check!(c[B2], {"op": "count"} => 4);
    let mut every: Vec<u64> = c.iter().map(|x| x.id.parse().unwrap()).collect();
    every.sort_unstable();
    let every: Vec<String> = every.iter().map(u64::to_string).collect();
    check!(c[A], {"op": "connections"} => every);
    check!(c[B1], {"op": "bind", "flag": "bob"} => true);
    check!(c[A], {"op": "flagExists", "flag": "bob"} => true);
    check!(c[A], {"op": "flagExists", "flag": "nobody"} => false);
    for i in [A2, B1, B2] {
        check!(c[i], {"op": "join", "group": "room"} => true);
    }
    check!(c[A], {"op": "groupCount", "group": "room"} => 3);
    check!(c[A], {"op": "groupCount", "group": "none"} => 0);

    // Data on a client of B, from A, and the other way.
    let v = json!({"n": 1, "list": [true, null]});
    check!(c[A], {"op": "set", "key": "k", "value": v, "to": idb1} => true);
    check!(c[B1], {"op": "get", "key": "k"} => v);
    check!(c[A], {"op": "get", "key": "k", "to": idb1} => v);
    check!(c[B1], {"op": "set", "key": "own", "value": "b1's"} => true);
    check!(c[A], {"op": "get", "key": "own", "to": idb1} => "b1's");
    check!(c[A], {"op": "get", "key": "none", "to": idb1} => null);
    check!(c[A], {"op": "set", "key": "k", "value": 1, "to": ghost(nb)} => false);
    check!(c[A], {"op": "get", "key": "k", "to": ghost(nb)} => null);
    let ida = c[A].id.clone();
    check!(c[B2], {"op": "set", "key": "x", "value": [1, 2], "to": ida} => true);
    check!(c[A], {"op": "get", "key": "x"} => [1, 2]);
    pair.finish(c);
}

pub fn worker_messages_reach_this_instances_core_loops(pair: Pair) {
    let mut c = pair.clients();
    // Each core loop pushes to its own connections: A's and A2's (behind gateways, those of
    // the business process's core loops: none).
    let local: Vec<usize> = [A, A2]
        .into_iter()
        .filter(|&i| c[i].instance == c[A].handled_by)
        .collect();
    let d = json!({"pushLocal": "A"});
    check!(c[A], {"op": "sendMessage", "action": "pushLocal", "data": d} => WORKERS);
    pushed(&mut c, &local, &d);
    check!(c[A], {"op": "sendMessageRaw", "text": "raw A"} => WORKERS);
    pushed_raw(&mut c, &local, "raw A");
    marker(&mut c, A, &[A, A2, B1, B2], 1);
    pair.finish(c);
}

/// The engine (Redis, the broker) goes away under the pair: ops that need it answer an error
/// naming it (`unreachable`), ops that stay on the instance work on, and `away` checks what a
/// backend adds; then it comes back and ops cross again within a bounded wait.
pub fn engine_away_and_back(
    pair: Pair,
    unreachable: &str,
    stop: impl FnOnce(),
    away: impl FnOnce(&mut [Client]),
    restart: impl FnOnce(),
) {
    let mut c = pair.clients();
    let (ida, idb1) = (c[A].id.clone(), c[B1].id.clone());
    stop();
    // A send to B fails once A's sending side has noticed (until then it is queued, and lost).
    wait_until("a send to B fails", || {
        c[A].call(json!({"op": "sendRaw", "to": idb1, "text": "lost?"}))
            .get("error")
            .is_some()
    });
    for request in [
        json!({"op": "sendToAll", "data": "lost?"}),
        json!({"op": "sendByFlag", "flag": "f", "data": "lost?", "wait": true}),
        json!({"op": "send", "to": idb1, "data": "lost?", "wait": true}),
        json!({"op": "close", "to": idb1, "wait": true}),
    ] {
        let e = c[A].err(request.clone());
        assert!(e.contains(unreachable), "{request}: {e}");
    }
    // What stays on this instance works.
    check!(c[A], {"op": "send", "to": ida, "data": "local"} => 1);
    c[A].expect_push(&json!("local"));
    check!(c[A], {"op": "sendMessage", "action": "pushLocal", "data": "w"} => WORKERS);
    pushed(&mut c, &[A, A2], &json!("w"));
    let w = c[A].worker;
    let local: Vec<usize> = [A, A2].into_iter().filter(|&i| c[i].worker == w).collect();
    check!(c[A], {"op": "sendToAll", "data": "w", "scope": "worker"} => local.len());
    pushed(&mut c, &local, &json!("w"));
    check!(c[A2], {"op": "bind", "flag": "kept"} => true);
    check!(c[A2], {"op": "set", "key": "k", "value": 1} => true);
    check!(c[A2], {"op": "get", "key": "k"} => 1);
    let me = json!({"clientId": c[A2].id, "worker": c[A2].worker, "instance": "alpha"});
    check!(c[A2], {"op": "whoami"} => me);
    away(&mut c);

    restart();
    wait_until("the cluster answers again", || {
        c[A].call(json!({"op": "count"})) == json!({"op": "reply", "id": c[A].seq, "result": 4})
    });
    check!(c[A], {"op": "send", "to": idb1, "data": "back"} => 0);
    c[B1].expect_push(&json!("back"));
    check!(c[A], {"op": "sendToAll", "data": "all", "wait": true} => 4);
    pushed(&mut c, &[A, A2, B1, B2], &json!("all"));
    check!(c[B1], {"op": "sendByFlag", "flag": "kept", "data": "kept", "wait": true} => 1);
    c[A2].expect_push(&json!("kept"));
    marker(&mut c, A, &[B1, B2], 1);
    pair.finish(c);
}

/// Every op of the protocol once from `from`, against all the clients of `c` (the first four
/// as [`Pair::clients`] makes them, any more after): each answers what it should and the
/// targets get exactly their pushes. `tag` keeps the flags, groups and keys of one run apart
/// from another's. Two more clients are connected to B to be closed (by id, by flag).
pub fn every_op_answers(pair: &Pair, c: &mut Vec<Client>, from: usize, tag: &str) {
    let all: Vec<usize> = (0..c.len()).collect();
    let (flag, solo, group) = (
        format!("{tag}-f"),
        format!("{tag}-solo"),
        format!("{tag}-g"),
    );
    let me = json!({"clientId": c[from].id, "worker": c[from].worker});
    let who = c[from].ok(json!({"op": "whoami"}));
    assert_eq!(
        (&who["clientId"], &who["worker"]),
        (&me["clientId"], &me["worker"])
    );

    // A connection's own state.
    check!(c[B1], {"op": "bind", "flag": flag} => true);
    check!(c[B2], {"op": "bindNx", "flag": flag} => false);
    check!(c[B2], {"op": "bindNx", "flag": solo} => true);
    check!(c[B2], {"op": "unbind", "flag": solo} => true);
    check!(c[B2], {"op": "unbind", "flag": solo} => false);
    for i in [A2, B1] {
        check!(c[i], {"op": "join", "group": group} => true);
    }
    check!(c[A2], {"op": "leave", "group": group} => true);
    check!(c[A2], {"op": "leave", "group": group} => false);
    check!(c[A2], {"op": "join", "group": group} => true);
    let v = json!({"tag": tag, "n": [1, 2]});
    check!(c[from], {"op": "set", "key": tag, "value": v} => true);
    check!(c[from], {"op": "get", "key": tag} => v);
    let idb1 = c[B1].id.clone();
    check!(c[from], {"op": "set", "key": tag, "value": "on b1", "to": idb1} => true);
    check!(c[from], {"op": "get", "key": tag, "to": idb1} => "on b1");
    check!(c[B1], {"op": "get", "key": tag} => "on b1");

    // Sends, fire-and-forget and waited.
    let to = ids(c, &[from, B1]);
    let n = here(c, from, &[from, B1]);
    check!(c[from], {"op": "send", "to": to, "data": tag} => n);
    pushed(c, &[from, B1], &json!(tag));
    let idb2 = c[B2].id.clone();
    check!(c[from], {"op": "sendRaw", "to": idb2, "text": tag, "wait": true} => 1);
    c[B2].expect_raw(tag);
    check!(c[from], {"op": "sendByFlag", "flag": flag, "data": "flag", "wait": true} => 1);
    c[B1].expect_push(&json!("flag"));
    let n = here(c, from, &[B1]);
    check!(c[from], {"op": "sendRawByFlag", "flag": [flag, "none"], "text": "flag"} => n);
    c[B1].expect_raw("flag");
    let n = here(c, from, &[A2, B1]);
    check!(c[from], {"op": "sendToGroup", "group": group, "data": "group"} => n);
    pushed(c, &[A2, B1], &json!("group"));
    let except = ids(c, &[B1]);
    check!(c[from], {"op": "sendRawToGroup", "group": group, "text": "group", "except": except,
        "wait": true} => 1);
    c[A2].expect_raw("group");
    let n = here(c, from, &all);
    check!(c[from], {"op": "sendToAll", "data": "all"} => n);
    pushed(c, &all, &json!("all"));
    let except = ids(c, &[B2]);
    let rest: Vec<usize> = all.iter().copied().filter(|&i| i != B2).collect();
    check!(c[from], {"op": "sendRawToAll", "text": "all", "except": except, "wait": true}
        => rest.len());
    pushed_raw(c, &rest, "all");

    // Queries, for the whole cluster.
    check!(c[from], {"op": "exists", "to": idb1} => true);
    check!(c[from], {"op": "flagExists", "flag": flag} => true);
    check!(c[from], {"op": "groupCount", "group": group} => 2);
    check!(c[from], {"op": "count"} => all.len());
    let mut every: Vec<u64> = c.iter().map(|x| x.id.parse().unwrap()).collect();
    every.sort_unstable();
    let every: Vec<String> = every.iter().map(u64::to_string).collect();
    check!(c[from], {"op": "connections"} => every);

    // Worker messages: the core loops of the process that runs the op.
    let local: Vec<usize> = all
        .iter()
        .copied()
        .filter(|&i| c[i].instance == c[from].handled_by)
        .collect();
    check!(c[from], {"op": "sendMessage", "action": "pushLocal", "data": tag} => WORKERS);
    pushed(c, &local, &json!(tag));
    check!(c[from], {"op": "sendMessageRaw", "text": tag, "workers": [0]} => 1);
    let first: Vec<usize> = local
        .iter()
        .copied()
        .filter(|&i| c[i].worker == 0)
        .collect();
    pushed_raw(c, &first, tag);

    // Closes: two clients of B, by id and by flag.
    let bye = format!("{tag}-bye");
    c.push(pair.connect(pair.addr_b));
    c.push(pair.connect(pair.addr_b));
    let (x, y) = (c.len() - 2, c.len() - 1);
    check!(c[y], {"op": "bind", "flag": bye} => true);
    let idx = c[x].id.clone();
    check!(c[from], {"op": "close", "to": idx, "wait": true} => 1);
    c[x].expect_close();
    check!(c[from], {"op": "exists", "to": idx} => false);
    check!(c[from], {"op": "closeByFlag", "flag": bye, "wait": true} => 1);
    c[y].expect_close();
    check!(c[from], {"op": "flagExists", "flag": bye} => false);
    c.truncate(x);
    check!(c[from], {"op": "count"} => all.len());
    marker(c, from, &all, 99);
}
