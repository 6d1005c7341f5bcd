//! push_demo as one instance of a Redis cluster: two demo instances on a private
//! `redis-server`, real WebSocket clients on each, every cross-instance op driven from a client
//! of instance A against clients of instance B — what B's clients receive and what A is
//! answered — and Redis killed and restarted under them.
//!
//! "Nothing else arrives" is proven with markers, never with sleeps: after the op under test,
//! the same client pushes a marker along the same path (A's publisher, one Redis connection,
//! B's subscriber: FIFO), and each target's very next frame must be that marker. Waiting for
//! Redis to go away or come back is a bounded poll of an op, as a client would retry.
mod util;

// The example itself is compiled in, as tests/push_demo.rs does.
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corepush::{ClientId, Error, Runtime};
use push_demo::{Backend, Cli, SERVER, build, parse_args};
use serde_json::{Value, json};
use tungstenite::Message;
use util::{RedisServer, WAIT, Ws, connect, wait_until};

/// `check!(client, {request} => result)`: the op succeeds, complete, with exactly this result.
macro_rules! check {
    ($client:expr, $request:tt => $($result:tt)+) => {
        assert_eq!($client.ok(json!($request)), json!($($result)+), "{}", json!($request))
    };
}

macro_rules! redis_or_skip {
    ($name:expr) => {
        match RedisServer::start($name) {
            Some(r) => r,
            None => return,
        }
    };
}

const WORKERS: usize = 2;

/// One demo instance on `redis`; `name` None leaves `--instance` out.
fn instance(redis: &RedisServer, name: Option<&str>) -> corepush::Result<(Runtime, SocketAddr)> {
    let mut args = vec!["--port", "0", "--workers", "2", "--backend", "redis"];
    let url = redis.url();
    args.extend(["--redis-url", &url]);
    if let Some(name) = name {
        args.extend(["--instance", name]);
    }
    let Ok(Cli::Run(opts)) = parse_args(args) else {
        panic!("the arguments parse")
    };
    let rt = build(&opts)?;
    let addr = rt.local_addr(SERVER).expect("local addr");
    Ok((rt, addr))
}

/// Two instances that see each other: A named "alpha", B left to its default name.
struct Pair {
    a: Runtime,
    b: Runtime,
    addr_a: SocketAddr,
    addr_b: SocketAddr,
}

impl Pair {
    fn start(redis: &RedisServer) -> Pair {
        let (a, addr_a) = instance(redis, Some("alpha")).expect("instance A");
        let (b, addr_b) = instance(redis, None).expect("instance B");
        let (sa, sb) = (a.server(SERVER).unwrap(), b.server(SERVER).unwrap());
        wait_until("the instances see each other", || {
            sa.cluster().instances().len() == 2 && sb.cluster().instances().len() == 2
        });
        Pair {
            a,
            b,
            addr_a,
            addr_b,
        }
    }

    /// Clients `a`, `a2` on A and `b1`, `b2` on B.
    fn clients(&self) -> Vec<Client> {
        let (a, b) = (self.addr_a, self.addr_b);
        vec![
            Client::connect(a),
            Client::connect(a),
            Client::connect(b),
            Client::connect(b),
        ]
    }

    fn finish(self, clients: Vec<Client>) {
        drop(clients);
        self.a.shutdown().expect("A stops cleanly");
        self.b.shutdown().expect("B stops cleanly");
    }
}

const A: usize = 0;
const A2: usize = 1;
const B1: usize = 2;
const B2: usize = 3;

struct Client {
    ws: Ws,
    id: String,
    instance: u16,
    worker: u64,
    seq: u64,
    /// Frames that arrived ahead of a reply: pushes the op made to this client itself.
    early: VecDeque<Message>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut c = Client {
            ws: connect(addr),
            id: String::new(),
            instance: 0,
            worker: u64::MAX,
            seq: 0,
            early: VecDeque::new(),
        };
        let me = c.ok(json!({"op": "whoami"}));
        c.id = me["clientId"].as_str().expect("clientId string").to_owned();
        c.instance = c.id.parse::<ClientId>().expect("a client id").instance();
        c.worker = me["worker"].as_u64().expect("worker number");
        c
    }

    /// Sends a request with a fresh id and returns its reply; pushes ahead of it are kept.
    fn call(&mut self, mut request: Value) -> Value {
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
    fn ok(&mut self, request: Value) -> Value {
        let reply = self.call(request.clone());
        assert!(reply.get("error").is_none(), "{request} failed: {reply}");
        assert!(reply.get("partial").is_none(), "{request}: {reply}");
        reply["result"].clone()
    }

    /// The error of a request that must fail.
    fn err(&mut self, request: Value) -> String {
        let reply = self.call(request.clone());
        assert!(
            reply.get("result").is_none(),
            "{request} must fail: {reply}"
        );
        reply["error"].as_str().expect("error text").to_owned()
    }

    fn next_frame(&mut self) -> Message {
        self.early.pop_front().unwrap_or_else(|| self.read_frame())
    }

    fn read_frame(&mut self) -> Message {
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

    fn next_text(&mut self) -> String {
        match self.next_frame() {
            Message::Text(t) => t.to_string(),
            other => panic!("client {}: expected a text frame, got {other:?}", self.id),
        }
    }

    /// The next frame is an encoded push of `data`: exactly its compact JSON text.
    fn expect_push(&mut self, data: &Value) {
        assert_eq!(self.next_text(), data.to_string(), "client {}", self.id);
    }

    fn expect_raw(&mut self, text: &str) {
        assert_eq!(self.next_text(), text, "client {}", self.id);
    }

    fn expect_close(&mut self) {
        match self.next_frame() {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 1000),
            other => panic!("client {}: expected a close frame, got {other:?}", self.id),
        }
        let _ = self.ws.flush(); // completes the close handshake
    }
}

fn ids(c: &[Client], which: &[usize]) -> Value {
    which
        .iter()
        .map(|&i| Value::from(c[i].id.clone()))
        .collect()
}

/// How many of `which` are on the instance of `from`: a fire-and-forget send's answer.
fn here(c: &[Client], from: usize, which: &[usize]) -> usize {
    which
        .iter()
        .filter(|&&i| c[i].instance == c[from].instance)
        .count()
}

/// `from` pushes a marker to `to`; each must see it as its next frame.
fn marker(c: &mut [Client], from: usize, to: &[usize], n: u64) {
    let data = json!({"marker": n});
    let targets = ids(c, to);
    let count = c[from].ok(json!({"op": "send", "to": targets, "data": data}));
    assert_eq!(count, json!(here(c, from, to)));
    pushed(c, to, &data);
}

fn pushed(c: &mut [Client], which: &[usize], data: &Value) {
    for &i in which {
        c[i].expect_push(data);
    }
}

fn pushed_raw(c: &mut [Client], which: &[usize], text: &str) {
    for &i in which {
        c[i].expect_raw(text);
    }
}

/// A well-formed id of `instance` that no connection has (core loop 200).
fn ghost(instance: u16) -> String {
    ((u64::from(instance) << 52) | (200 << 44) | 9).to_string()
}

#[test]
fn parse_args_runs_redis() {
    let run = |args: &str| match parse_args(args.split_whitespace()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    let redis = run("--backend redis");
    assert_eq!(redis.backend, Backend::Redis);
    // No name given: whoami says instance-N with the claimed number.
    assert_eq!((redis.instance.as_str(), redis.redis_url), ("", None));
    let named = run("--backend=redis --redis-url redis://10.0.0.1:7000/ --instance eu-1");
    assert_eq!(named.instance, "eu-1");
    assert_eq!(named.redis_url.as_deref(), Some("redis://10.0.0.1:7000/"));
    assert_eq!(run("--instance eu-1 --backend redis").instance, "eu-1");
    assert_eq!(run("").instance, "local");
    let e = parse_args(["--backend", "redis", "--instance", ""]).unwrap_err();
    assert!(e.contains("--instance must not be empty"), "{e}");
}

#[test]
fn an_unreachable_redis_is_an_error_at_start() {
    let mut redis = redis_or_skip!("an_unreachable_redis_is_an_error_at_start");
    redis.kill();
    match instance(&redis, Some("alpha")) {
        Err(Error::Backend(e)) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("started without Redis"),
    }
}

#[test]
fn whoami_names_the_instance_and_ids_carry_claimed_numbers() {
    let redis = redis_or_skip!("whoami_names_the_instance_and_ids_carry_claimed_numbers");
    let pair = Pair::start(&redis);
    let mut c = pair.clients();
    let (na, nb) = (c[A].instance, c[B1].instance);
    // Claimed in Redis at start, the lowest free first: 1 and 2.
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

#[test]
fn sends_cross_to_the_other_instance() {
    let redis = redis_or_skip!("sends_cross_to_the_other_instance");
    let pair = Pair::start(&redis);
    let mut c = pair.clients();
    let (idb1, idb2, ida) = (c[B1].id.clone(), c[B2].id.clone(), c[A].id.clone());
    // By id: answered with this instance's part (0 for B's clients).
    let d = json!({"to": "b1"});
    check!(c[A], {"op": "send", "to": idb1, "data": d} => 0);
    c[B1].expect_push(&d);
    let to = ids(&c, &[A, B1]);
    check!(c[A], {"op": "send", "to": to, "data": "a and b1"} => 1);
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
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "bob"} => 1);
    pushed(&mut c, &[A2, B1], &json!("bob"));
    check!(c[A], {"op": "sendRawByFlag", "flag": ["bob", "carol"], "text": "bc"} => 1);
    pushed_raw(&mut c, &[A2, B1, B2], "bc");
    let except = ids(&c, &[B1]);
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "not b1", "except": except} => 1);
    c[A2].expect_push(&json!("not b1"));
    marker(&mut c, A, &[B1], 2);

    // To groups, with except.
    for i in [A2, B1, B2] {
        check!(c[i], {"op": "join", "group": "room"} => true);
    }
    check!(c[A], {"op": "sendToGroup", "group": "room", "data": "room"} => 1);
    pushed(&mut c, &[A2, B1, B2], &json!("room"));
    let except = ids(&c, &[B2]);
    check!(c[A], {"op": "sendRawToGroup", "group": ["room", "none"], "text": "not b2",
        "except": except} => 1);
    pushed_raw(&mut c, &[A2, B1], "not b2");
    marker(&mut c, A, &[B2], 3);

    // To everyone, with except: the answer counts A's clients only.
    let all = [A, A2, B1, B2];
    check!(c[A], {"op": "sendToAll", "data": "all"} => 2);
    pushed(&mut c, &all, &json!("all"));
    let except = ids(&c, &[A, B2]);
    check!(c[A], {"op": "sendToAll", "data": "not a, b2", "except": except} => 1);
    pushed(&mut c, &[A2, B1], &json!("not a, b2"));
    marker(&mut c, A2, &[A, B2], 4);
    check!(c[A], {"op": "sendRawToAll", "text": "raw all"} => 2);
    pushed_raw(&mut c, &all, "raw all");

    // scope worker stays on the core loop that handles A's op: B hears nothing.
    let w = c[A].worker;
    let local: Vec<usize> = [A, A2].into_iter().filter(|&i| c[i].worker == w).collect();
    check!(c[A], {"op": "sendToAll", "data": "w", "scope": "worker"} => local.len());
    pushed(&mut c, &local, &json!("w"));
    check!(c[A], {"op": "sendByFlag", "flag": "bob", "data": "w", "scope": "worker"}
        => usize::from(c[A2].worker == w));
    if c[A2].worker == w {
        c[A2].expect_push(&json!("w"));
    }
    check!(c[A], {"op": "sendRaw", "to": idb1, "text": "w", "scope": "worker"} => 0);
    check!(c[A], {"op": "sendToGroup", "group": "room", "data": "w", "scope": "worker",
        "wait": true} => usize::from(c[A2].worker == w));
    if c[A2].worker == w {
        c[A2].expect_push(&json!("w"));
    }
    marker(&mut c, A, &all, 5);
    // And from B the other way.
    check!(c[B1], {"op": "sendRaw", "to": ida, "text": "from b"} => 0);
    c[A].expect_raw("from b");
    marker(&mut c, B1, &[A], 6);
    pair.finish(c);
}

#[test]
fn waited_sends_count_the_cluster() {
    let redis = redis_or_skip!("waited_sends_count_the_cluster");
    let pair = Pair::start(&redis);
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
    check!(c[A], {"op": "sendToAll", "data": 1, "wait": false} => 2);
    pushed(&mut c, &all, &json!(1));
    let e = c[A].err(json!({"op": "sendToAll", "data": 1, "wait": "yes"}));
    assert!(e.contains("wait must be true or false"), "{e}");
    let e = c[A].err(json!({"op": "count", "wait": true}));
    assert!(e.contains("count does not take wait"), "{e}");
    marker(&mut c, A, &all, 1);
    pair.finish(c);
}

#[test]
fn waited_closes_release_the_clients_everywhere() {
    let redis = redis_or_skip!("waited_closes_release_the_clients_everywhere");
    let pair = Pair::start(&redis);
    let mut c = pair.clients();
    c.push(Client::connect(pair.addr_b));
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

#[test]
fn queries_and_data_answer_for_the_cluster() {
    let redis = redis_or_skip!("queries_and_data_answer_for_the_cluster");
    let pair = Pair::start(&redis);
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

#[test]
fn worker_messages_reach_this_instances_core_loops() {
    let redis = redis_or_skip!("worker_messages_reach_this_instances_core_loops");
    let pair = Pair::start(&redis);
    let mut c = pair.clients();
    let d = json!({"pushLocal": "A"});
    check!(c[A], {"op": "sendMessage", "action": "pushLocal", "data": d} => WORKERS);
    pushed(&mut c, &[A, A2], &d);
    check!(c[A], {"op": "sendMessageRaw", "text": "raw A"} => WORKERS);
    pushed_raw(&mut c, &[A, A2], "raw A");
    marker(&mut c, A, &[A, A2, B1, B2], 1);
    pair.finish(c);
}

#[test]
fn redis_going_away_is_an_error_and_coming_back_works() {
    let mut redis = redis_or_skip!("redis_going_away_is_an_error_and_coming_back_works");
    let pair = Pair::start(&redis);
    let mut c = pair.clients();
    let (ida, idb1) = (c[A].id.clone(), c[B1].id.clone());
    redis.kill();
    // A send to B fails once A's publisher has noticed (until then it is queued, and lost).
    poll("a send to B fails", || {
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
        assert!(e.contains("Redis is unreachable"), "{request}: {e}");
    }
    // What stays on this instance works.
    check!(c[A], {"op": "send", "to": ida, "data": "local"} => 1);
    c[A].expect_push(&json!("local"));
    check!(c[A], {"op": "sendMessage", "action": "pushLocal", "data": "w"} => WORKERS);
    pushed(&mut c, &[A, A2], &json!("w"));
    let me = json!({"clientId": c[A2].id, "worker": c[A2].worker, "instance": "alpha"});
    check!(c[A2], {"op": "whoami"} => me);

    redis.restart();
    poll("the cluster answers again", || {
        c[A].call(json!({"op": "count"})) == json!({"op": "reply", "id": c[A].seq, "result": 4})
    });
    check!(c[A], {"op": "send", "to": idb1, "data": "back"} => 0);
    c[B1].expect_push(&json!("back"));
    check!(c[A], {"op": "sendToAll", "data": "all", "wait": true} => 4);
    pushed(&mut c, &[A, A2, B1, B2], &json!("all"));
    marker(&mut c, A, &[B1, B2], 1);
    pair.finish(c);
}

/// Retries `f` (each attempt a bounded round trip) until it is true; fails after `WAIT`.
fn poll(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
