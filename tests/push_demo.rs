//! push_demo: every op of its JSON protocol, over real WebSocket clients on both core loops,
//! with the exact frames each client receives — and the command-line parsing.
//!
//! "Nothing else arrives" is proven with markers, never with sleeps: after the op under test,
//! a marker is pushed along the same path (same sender, same core loop mailboxes, so FIFO), and
//! the client's very next frame must be that marker. Every reply must be the next frame of its
//! client too, so a stray or duplicated push anywhere fails the test.
mod util;

// The example itself is compiled in, so the test drives exactly the server users run. Its
// `main` is unused here (dead_code), and its `pub` items exist for its own binary crate, not
// for this test crate (unreachable_pub).
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::net::SocketAddr;
use std::time::Instant;

use corepush::Runtime;
use push_demo::{Backend, Cli, Options, build, parse_args};
use serde_json::{Value, json};
use tungstenite::Message;
use util::{WAIT, Ws, connect};

/// `check!(client, {request} => result)`: the op succeeds with exactly this result.
macro_rules! check {
    ($client:expr, $request:tt => $($result:tt)+) => {
        assert_eq!($client.ok(json!($request)), json!($($result)+), "{}", json!($request))
    };
}

/// `fails!(client, {request} => "part of the error")`: an error reply, and the connection
/// still answers afterwards.
macro_rules! fails {
    ($client:expr, $request:tt => $expected:expr) => {{
        let error = $client.err(json!($request));
        assert!(error.contains($expected), "{}: {error}", json!($request));
        let me = whoami(&$client);
        check!($client, {"op": "whoami"} => me);
    }};
}

const WORKERS: u64 = 2;
/// Connections tried before giving up on seeing every core loop (the kernel spreads them).
const MAX_CONNECT: usize = 64;

fn start() -> (Runtime, SocketAddr) {
    let opts = Options {
        port: 0,
        workers: WORKERS as usize,
        instance: "test-instance".to_owned(),
        ..Options::default()
    };
    let rt = build(&opts).expect("start push_demo");
    let addr = rt.local_addr(push_demo::SERVER).expect("local addr");
    assert_ne!(addr.port(), 0);
    (rt, addr)
}

fn finish(rt: Runtime, clients: Vec<Client>) {
    drop(clients);
    rt.shutdown().expect("clean shutdown");
}

struct Client {
    ws: Ws,
    id: String,
    worker: u64,
    seq: u64,
    /// Frames that arrived ahead of a reply: pushes the op made to this client itself.
    early: std::collections::VecDeque<Message>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut c = Client {
            ws: connect(addr),
            id: String::new(),
            worker: u64::MAX,
            seq: 0,
            early: Default::default(),
        };
        let me = c.ok(json!({"op": "whoami"}));
        c.id = me["clientId"].as_str().expect("clientId string").to_owned();
        c.worker = me["worker"].as_u64().expect("worker number");
        c
    }

    fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// Sends a request with a fresh numeric id and waits for its reply. Pushes that the op
    /// made to this client itself arrive before the reply; they are kept for `next_frame`.
    fn call(&mut self, mut request: Value) -> Value {
        self.seq += 1;
        request["id"] = json!(self.seq);
        self.send_text(&request.to_string());
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

    fn ok(&mut self, request: Value) -> Value {
        let reply = self.call(request.clone());
        assert!(reply.get("error").is_none(), "{request} failed: {reply}");
        reply["result"].clone()
    }

    fn err(&mut self, request: Value) -> String {
        let reply = self.call(request.clone());
        assert!(
            reply.get("result").is_none(),
            "{request} must fail: {reply}"
        );
        reply["error"].as_str().expect("error text").to_owned()
    }

    fn next_frame(&mut self) -> Message {
        match self.early.pop_front() {
            Some(frame) => frame,
            None => self.read_frame(),
        }
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

    fn next_json(&mut self) -> Value {
        let text = self.next_text();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// The next frame is an encoded push of `data`: exactly its compact JSON text.
    fn expect_push(&mut self, data: &Value) {
        assert_eq!(self.next_text(), data.to_string(), "client {}", self.id);
    }

    fn expect_raw(&mut self, text: &str) {
        assert_eq!(self.next_text(), text, "client {}", self.id);
    }

    fn expect_close(&mut self, code: u16) {
        match self.next_frame() {
            Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), code),
            other => panic!("client {}: expected a close frame, got {other:?}", self.id),
        }
        let _ = self.ws.flush(); // completes the close handshake
    }
}

/// Connects clients until every core loop holds at least `per_worker` of them.
fn pool(addr: SocketAddr, per_worker: usize) -> Vec<Client> {
    let mut clients: Vec<Client> = Vec::new();
    for _ in 0..MAX_CONNECT {
        if (0..WORKERS).all(|w| clients.iter().filter(|c| c.worker == w).count() >= per_worker) {
            return clients;
        }
        clients.push(Client::connect(addr));
    }
    panic!("{MAX_CONNECT} connections did not reach every core loop");
}

/// What `whoami` answers this client.
fn whoami(c: &Client) -> Value {
    json!({"clientId": c.id, "worker": c.worker, "instance": "test-instance"})
}

/// Indices of the clients on core loop `w`.
fn on(clients: &[Client], w: u64) -> Vec<usize> {
    (0..clients.len())
        .filter(|&i| clients[i].worker == w)
        .collect()
}

fn ids(clients: &[Client], which: &[usize]) -> Value {
    which
        .iter()
        .map(|&i| Value::from(clients[i].id.clone()))
        .collect()
}

/// `from` pushes a marker to `to` (itself included or not); each must see it as its next frame.
fn marker(c: &mut [Client], from: usize, to: &[usize], n: u64) {
    let data = json!({"marker": n});
    let targets = ids(c, to);
    let count = c[from].ok(json!({"op": "send", "to": targets, "data": data}));
    assert_eq!(count, json!(to.len()));
    for &i in to {
        c[i].expect_push(&data);
    }
}

/// `from` sends `pushLocal` to every core loop: every client sees `data` next, exactly once.
fn push_local_marker(c: &mut [Client], from: usize, data: &Value) {
    let n = c[from].ok(json!({"op": "sendMessage", "action": "pushLocal", "data": data}));
    assert_eq!(n, json!(WORKERS));
    for client in c.iter_mut() {
        client.expect_push(data);
    }
}

/// Every client in `which` sees the encoded push of `data` next.
fn pushed(c: &mut [Client], which: &[usize], data: &Value) {
    for &i in which {
        c[i].expect_push(data);
    }
}

/// Every client in `which` sees exactly `text` next.
fn pushed_raw(c: &mut [Client], which: &[usize], text: &str) {
    for &i in which {
        c[i].expect_raw(text);
    }
}

/// A well-formed id that no connection has: core loop 200 of this instance.
fn unknown_id() -> String {
    ((200u64 << 44) | (5 << 20) | 9).to_string()
}

#[test]
fn whoami_and_id_echo() {
    let (rt, addr) = start();
    let mut c = pool(addr, 1);
    for client in c.iter_mut() {
        assert!(
            client.id.parse::<u64>().is_ok_and(|n| n > 0),
            "{}",
            client.id
        );
        assert!(client.worker < WORKERS);
        let me = whoami(client);
        check!(client, {"op": "whoami"} => me);
    }
    let a = &mut c[0];
    for id in [
        json!("req-1"),
        json!(42),
        json!({"k": [1, "x"]}),
        json!(null),
    ] {
        a.send_text(&json!({"op": "whoami", "id": id}).to_string());
        let reply = a.next_json();
        assert_eq!(
            (&reply["id"], &reply["result"]["clientId"]),
            (&id, &json!(a.id))
        );
    }
    a.send_text(r#"{"op":"whoami"}"#);
    let reply = a.next_json();
    assert_eq!(
        reply.get("id"),
        Some(&Value::Null),
        "no id is echoed as null: {reply}"
    );
    finish(rt, c);
}

#[test]
fn flags() {
    let (rt, addr) = start();
    let mut c = pool(addr, 2);
    let (a, x, b) = (on(&c, 0)[0], on(&c, 0)[1], on(&c, 1)[0]);
    check!(c[a], {"op": "bind", "flag": "alice"} => true);
    check!(c[b], {"op": "flagExists", "flag": "alice"} => true);
    check!(c[b], {"op": "flagExists", "flag": "nobody"} => false);
    check!(c[b], {"op": "bindNx", "flag": "alice"} => false);
    check!(c[b], {"op": "bindNx", "flag": "bob"} => true);

    // From the other core loop, then to two flags at once (the sender's reply comes first).
    let d = json!({"to": "alice"});
    check!(c[b], {"op": "sendByFlag", "flag": "alice", "data": d} => 1);
    c[a].expect_push(&d);
    let d = json!(["alice", "bob"]);
    check!(c[a], {"op": "sendByFlag", "flag": ["alice", "bob"], "data": d} => 2);
    pushed(&mut c, &[a, b], &d);

    // A flag shared by two connections; except one of them.
    check!(c[x], {"op": "bind", "flag": "alice"} => true);
    check!(c[b], {"op": "sendByFlag", "flag": "alice", "data": "both"} => 2);
    pushed(&mut c, &[a, x], &json!("both"));
    let (ea, ex) = (c[a].id.clone(), c[x].id.clone());
    check!(c[b], {"op": "sendByFlag", "flag": "alice", "data": "not a", "except": ea} => 1);
    c[x].expect_push(&json!("not a"));
    marker(&mut c, b, &[a], 1);
    check!(c[b], {"op": "sendRawByFlag", "flag": "alice", "text": "raw <a>", "except": [ex]} => 1);
    c[a].expect_raw("raw <a>");
    marker(&mut c, b, &[x], 2);

    check!(c[a], {"op": "unbind", "flag": "bob"} => false);
    check!(c[a], {"op": "unbind", "flag": "alice"} => true);
    check!(c[b], {"op": "flagExists", "flag": "alice"} => true);
    check!(c[x], {"op": "unbind", "flag": "alice"} => true);
    check!(c[b], {"op": "flagExists", "flag": "alice"} => false);
    check!(c[b], {"op": "sendByFlag", "flag": "alice", "data": 1} => 0);
    check!(c[b], {"op": "bindNx", "flag": "alice"} => true);
    finish(rt, c);
}

#[test]
fn connection_data() {
    let (rt, addr) = start();
    let mut c = pool(addr, 1);
    let (a, b) = (on(&c, 0)[0], on(&c, 1)[0]);
    let (ida, idb, ghost) = (c[a].id.clone(), c[b].id.clone(), unknown_id());
    let v = json!({"n": 1, "list": [true, null]});
    check!(c[a], {"op": "set", "key": "k", "value": v} => true);
    check!(c[a], {"op": "get", "key": "k"} => v);
    check!(c[b], {"op": "get", "key": "k", "to": ida} => v);
    check!(c[b], {"op": "get", "key": "k"} => null);
    check!(c[b], {"op": "set", "key": "k", "value": [1, 2], "to": ida} => true);
    check!(c[a], {"op": "get", "key": "k"} => [1, 2]);
    check!(c[a], {"op": "get", "key": "other"} => null);
    // `to` naming oneself is this connection.
    check!(c[b], {"op": "set", "key": "s", "value": "me", "to": idb} => true);
    check!(c[b], {"op": "get", "key": "s"} => "me");
    check!(c[a], {"op": "set", "key": "k", "value": 1, "to": ghost} => false);
    check!(c[a], {"op": "get", "key": "k", "to": ghost} => null);
    finish(rt, c);
}

#[test]
fn groups() {
    let (rt, addr) = start();
    let mut c = pool(addr, 2);
    let (a, x, b) = (on(&c, 0)[0], on(&c, 0)[1], on(&c, 1)[0]);
    for (i, g) in [(a, "g1"), (b, "g1"), (b, "g2"), (x, "g2")] {
        check!(c[i], {"op": "join", "group": g} => true);
    }
    for (g, n) in [("g1", 2), ("g2", 2), ("none", 0)] {
        check!(c[a], {"op": "groupCount", "group": g} => n);
    }
    let d = json!({"room": "g1"});
    check!(c[x], {"op": "sendToGroup", "group": "g1", "data": d} => 2);
    pushed(&mut c, &[a, b], &d);
    // b is in both groups and gets it once.
    let d = json!({"room": "both"});
    check!(c[x], {"op": "sendToGroup", "group": ["g1", "g2"], "data": d} => 3);
    pushed(&mut c, &[x, a, b], &d);
    marker(&mut c, x, &[a, b, x], 1);
    let eb = c[b].id.clone();
    check!(c[x], {"op": "sendToGroup", "group": "g1", "data": "not b", "except": [eb]} => 1);
    c[a].expect_push(&json!("not b"));
    marker(&mut c, x, &[b], 2);
    check!(c[a], {"op": "sendRawToGroup", "group": "g2", "text": "raw g2"} => 2);
    pushed_raw(&mut c, &[b, x], "raw g2");
    check!(c[b], {"op": "leave", "group": "g1"} => true);
    check!(c[b], {"op": "leave", "group": "g1"} => false);
    check!(c[a], {"op": "groupCount", "group": "g1"} => 1);
    finish(rt, c);
}

#[test]
fn send_and_send_raw() {
    let (rt, addr) = start();
    let mut c = pool(addr, 1);
    let (a, b) = (on(&c, 0)[0], on(&c, 1)[0]);
    let (ida, idb, ghost) = (c[a].id.clone(), c[b].id.clone(), unknown_id());
    let d = json!({"hello": "b", "n": [1, 2.5, null]});
    check!(c[a], {"op": "send", "to": idb, "data": d} => 1);
    c[b].expect_push(&d);
    // Itself too: the reply comes first, then the push. A string arrives as JSON text.
    check!(c[a], {"op": "send", "to": [ida, idb], "data": "a \"string\""} => 2);
    pushed_raw(&mut c, &[a, b], r#""a \"string\"""#);
    // A target named twice is sent to once.
    check!(c[a], {"op": "send", "to": [idb, idb], "data": null} => 1);
    c[b].expect_raw("null");
    marker(&mut c, a, &[b], 1);
    check!(c[a], {"op": "send", "to": ghost, "data": 1} => 0);
    check!(c[a], {"op": "send", "to": [], "data": 1} => 0);
    let text = "raw \"text\" {not json} ☃";
    check!(c[a], {"op": "sendRaw", "to": [idb], "text": text} => 1);
    c[b].expect_raw(text);
    marker(&mut c, a, &[b], 2);
    finish(rt, c);
}

#[test]
fn send_to_all_with_except_and_scope() {
    let (rt, addr) = start();
    let mut c = pool(addr, 2);
    let (everyone, w0, w1): (Vec<usize>, _, _) = ((0..c.len()).collect(), on(&c, 0), on(&c, 1));
    let (a, b, n) = (w0[0], w1[0], c.len());
    let d = json!({"all": true});
    check!(c[a], {"op": "sendToAll", "data": d} => n);
    pushed(&mut c, &everyone, &d);
    marker(&mut c, a, &everyone, 1);

    let except = ids(&c, &[a, b]);
    check!(c[a], {"op": "sendToAll", "data": "not a, b", "except": except} => n - 2);
    let rest: Vec<usize> = everyone
        .iter()
        .copied()
        .filter(|&i| i != a && i != b)
        .collect();
    pushed(&mut c, &rest, &json!("not a, b"));
    marker(&mut c, a, &[a, b], 2);

    // Scope worker: only the clients of the sender's core loop (b's is 1).
    check!(c[b], {"op": "sendToAll", "data": "w1", "scope": "worker"} => w1.len());
    pushed(&mut c, &w1, &json!("w1"));
    marker(&mut c, b, &w0, 3);
    let eb = c[b].id.clone();
    check!(c[b], {"op": "sendRawToAll", "text": "w1 not b", "scope": "worker", "except": eb}
        => w1.len() - 1);
    pushed_raw(&mut c, &w1[1..], "w1 not b");
    marker(&mut c, b, &everyone, 4);
    check!(c[b], {"op": "sendRawToAll", "text": "raw all"} => n);
    pushed_raw(&mut c, &everyone, "raw all");
    marker(&mut c, a, &everyone, 5);
    finish(rt, c);
}

#[test]
fn scope_worker_on_targeted_sends_and_closes() {
    let (rt, addr) = start();
    let mut c = pool(addr, 2);
    let (a, a2, b) = (on(&c, 0)[0], on(&c, 0)[1], on(&c, 1)[0]);
    let (to, idb) = (ids(&c, &[a2, b]), c[b].id.clone());
    check!(c[a], {"op": "send", "to": to, "data": "scoped", "scope": "worker"} => 1);
    c[a2].expect_push(&json!("scoped"));
    check!(c[a], {"op": "sendRaw", "to": to, "text": "raw", "scope": "worker"} => 1);
    c[a2].expect_raw("raw");
    marker(&mut c, a, &[b], 1);
    for i in [a2, b] {
        check!(c[i], {"op": "bind", "flag": "f"} => true);
        check!(c[i], {"op": "join", "group": "g"} => true);
    }
    check!(c[a], {"op": "sendByFlag", "flag": "f", "data": "f", "scope": "worker"} => 1);
    c[a2].expect_push(&json!("f"));
    check!(c[a], {"op": "sendRawByFlag", "flag": "f", "text": "f raw", "scope": "worker"} => 1);
    c[a2].expect_raw("f raw");
    check!(c[a], {"op": "sendToGroup", "group": "g", "data": "g", "scope": "worker"} => 1);
    c[a2].expect_push(&json!("g"));
    check!(c[a], {"op": "sendRawToGroup", "group": "g", "text": "g raw", "scope": "worker"} => 1);
    c[a2].expect_raw("g raw");
    marker(&mut c, a, &[b], 2);
    // Closes: b is on the other core loop and stays open.
    check!(c[a], {"op": "close", "to": idb, "scope": "worker"} => 0);
    check!(c[a], {"op": "closeByFlag", "flag": "f", "scope": "worker"} => 1);
    c[a2].expect_close(1000);
    marker(&mut c, a, &[b], 3);
    check!(c[b], {"op": "flagExists", "flag": "f"} => true);
    finish(rt, c);
}

#[test]
fn worker_messages() {
    let (rt, addr) = start();
    let mut c = pool(addr, 2);
    let (w0, w1) = (on(&c, 0), on(&c, 1));
    let a = w0[0];
    push_local_marker(&mut c, a, &json!({"pushLocal": "everyone"}));
    push_local_marker(&mut c, a, &json!({"marker": 1}));

    // To one core loop (a number, then an array): only its clients.
    for (workers, only) in [(json!(1), &w1), (json!([0]), &w0)] {
        let d = json!({"only": workers});
        check!(c[a], {"op": "sendMessage", "action": "pushLocal", "data": d, "workers": workers}
            => 1);
        pushed(&mut c, only, &d);
        push_local_marker(&mut c, a, &json!({"marker": workers}));
    }
    // Each core loop once; indices past the last core loop are skipped.
    for (workers, reached) in [(json!([0, 1, 1]), 2), (json!([7]), 0), (json!([]), 0)] {
        check!(c[a], {"op": "sendMessage", "action": "pushLocal", "data": "n", "workers": workers}
            => reached);
        if reached == 2 {
            let all: Vec<usize> = (0..c.len()).collect();
            pushed(&mut c, &all, &json!("n"));
        }
        push_local_marker(&mut c, a, &json!({"marker": workers}));
    }
    // An action with no callback reaches the core loops and pushes nothing.
    check!(c[a], {"op": "sendMessage", "action": "nothing", "data": 1} => WORKERS);
    push_local_marker(&mut c, a, &json!({"marker": "after unknown action"}));

    let text = "raw worker message: {not json}";
    check!(c[a], {"op": "sendMessageRaw", "text": text} => WORKERS);
    for client in c.iter_mut() {
        client.expect_raw(text);
    }
    check!(c[a], {"op": "sendMessageRaw", "text": "w0 only", "workers": 0} => 1);
    pushed_raw(&mut c, &w0, "w0 only");
    // The raw path is a worker message too: a pushLocal marker follows it in every mailbox.
    push_local_marker(&mut c, a, &json!({"marker": "after raw"}));
    finish(rt, c);
}

#[test]
fn close_and_close_by_flag() {
    let (rt, addr) = start();
    let mut c = pool(addr, 2);
    let (a, a2, b, b2) = (on(&c, 0)[0], on(&c, 0)[1], on(&c, 1)[0], on(&c, 1)[1]);
    let (ida, idb, ghost, n) = (c[a].id.clone(), c[b].id.clone(), unknown_id(), c.len());
    check!(c[a], {"op": "close", "to": idb} => 1);
    c[b].expect_close(1000);
    // The registry forgets a client before its close frame is written.
    check!(c[a], {"op": "exists", "to": idb} => false);
    check!(c[a], {"op": "close", "to": idb} => 0);
    check!(c[a], {"op": "close", "to": ghost} => 0);
    check!(c[a], {"op": "count"} => n - 1);
    for i in [a2, b2] {
        check!(c[i], {"op": "bind", "flag": "bye"} => true);
    }
    check!(c[a], {"op": "closeByFlag", "flag": ["bye", "none"]} => 2);
    c[a2].expect_close(1000);
    c[b2].expect_close(1000);
    check!(c[a], {"op": "flagExists", "flag": "bye"} => false);
    check!(c[a], {"op": "count"} => n - 3);
    // Closing oneself: the reply first, then the close frame.
    check!(c[a], {"op": "close", "to": ida} => 1);
    c[a].expect_close(1000);
    finish(rt, c);
}

#[test]
fn queries() {
    let (rt, addr) = start();
    let mut c = pool(addr, 1);
    let (a, b) = (on(&c, 0)[0], on(&c, 1)[0]);
    let (ida, idb, ghost, n) = (c[a].id.clone(), c[b].id.clone(), unknown_id(), c.len());
    check!(c[a], {"op": "exists", "to": ida} => true);
    check!(c[a], {"op": "exists", "to": idb} => true);
    check!(c[a], {"op": "exists", "to": ghost} => false);
    check!(c[b], {"op": "count"} => n);
    // Sorted by id, as numbers.
    let mut expected: Vec<u64> = c.iter().map(|x| x.id.parse().unwrap()).collect();
    expected.sort_unstable();
    let expected: Vec<String> = expected.iter().map(u64::to_string).collect();
    check!(c[b], {"op": "connections"} => expected);
    finish(rt, c);
}

#[test]
fn bad_input_is_an_error_reply_and_the_connection_stays() {
    let (rt, addr) = start();
    let mut c = pool(addr, 1);
    let (a, me) = (0, c[0].id.clone());
    let not_objects = [
        ("not json", "unparseable JSON"),
        ("{\"op\": \"whoami\"", "unparseable JSON"),
        ("[1, 2]", "must be a JSON object"),
        ("42", "must be a JSON object"),
        ("\"whoami\"", "must be a JSON object"),
    ];
    for (text, expected) in not_objects {
        c[a].send_text(text);
        let reply = c[a].next_json();
        assert_eq!(reply["id"], Value::Null);
        let error = reply["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{text}: {reply}");
        check!(c[a], {"op": "count"} => c.len());
    }
    let binary = Message::binary(&b"{\"op\":\"whoami\"}"[..]);
    c[a].ws.send(binary).unwrap();
    let reply = c[a].next_json();
    assert!(
        reply["error"]
            .as_str()
            .is_some_and(|e| e.contains("binary")),
        "{reply}"
    );
    check!(c[a], {"op": "count"} => c.len());

    fails!(c[a], {} => "missing op");
    fails!(c[a], {"op": 5} => "op must be a string");
    fails!(c[a], {"op": "nope"} => "unknown op \"nope\"");
    fails!(c[a], {"op": "nope", "scope": "worker"} => "unknown op \"nope\"");
    fails!(c[a], {"op": "send", "data": 1} => "missing to");
    fails!(c[a], {"op": "send", "to": {}, "data": 1} => "client id");
    for bad in [
        "abc",
        "0",
        "-1",
        "",
        "17592186044416",
        "18446744073709551616",
    ] {
        fails!(c[a], {"op": "send", "to": bad, "data": 1} => "not a client id");
    }
    fails!(c[a], {"op": "send", "to": 12345, "data": 1} => "not JSON numbers");
    fails!(c[a], {"op": "send", "to": [me, "x"], "data": 1} => "not a client id");
    fails!(c[a], {"op": "send", "to": me} => "missing data");
    fails!(c[a], {"op": "sendRaw", "to": me, "text": {}} => "text must be a string");
    fails!(c[a], {"op": "bind"} => "missing flag");
    fails!(c[a], {"op": "bind", "flag": 5} => "flag must be a string");
    fails!(c[a], {"op": "sendByFlag", "flag": [1], "data": 1} => "flag must be a string");
    fails!(c[a], {"op": "set", "value": 1} => "missing key");
    fails!(c[a], {"op": "set", "key": "k"} => "missing value");
    fails!(c[a], {"op": "get", "key": "k", "to": "zz"} => "not a client id");
    fails!(c[a], {"op": "exists", "to": [me]} => "client id");
    fails!(c[a], {"op": "groupCount", "group": ["g"]} => "group must be a string");
    fails!(c[a], {"op": "sendMessage", "data": 1} => "missing action");
    fails!(c[a], {"op": "sendMessage", "action": "pushLocal"} => "missing data");
    for bad in [json!("x"), json!([-1]), json!(70000), json!(0.5)] {
        fails!(c[a], {"op": "sendMessageRaw", "text": "t", "workers": bad} => "workers");
    }
    fails!(c[a], {"op": "sendToAll", "data": 1, "scope": "all"} => "unknown scope");
    fails!(c[a], {"op": "sendToAll", "data": 1, "scope": 1} => "unknown scope");
    fails!(c[a], {"op": "sendToAll", "data": 1, "except": "bad"} => "not a client id");
    fails!(c[a], {"op": "whoami", "scope": "worker"} => "whoami does not take scope");
    fails!(c[a], {"op": "send", "to": me, "data": 1, "except": me} => "send does not take except");
    fails!(c[a], {"op": "count", "except": [me]} => "count does not take except");
    // An error reply echoes the id too.
    c[a].send_text(r#"{"op": "nope", "id": "e1"}"#);
    let reply = c[a].next_json();
    assert_eq!(
        (&reply["id"], reply["error"].is_string()),
        (&json!("e1"), true)
    );
    // None of the failed ops pushed anything.
    marker(&mut c, a, &[a], 1);
    finish(rt, c);
}

#[test]
fn parse_args_accepts_the_documented_flags() {
    let run = |args: &str| match parse_args(args.split_whitespace()) {
        Ok(Cli::Run(opts)) => opts,
        other => panic!("{args:?}: {other:?}"),
    };
    let defaults = run("");
    assert_eq!(defaults, Options::default());
    assert_eq!((defaults.host.as_str(), defaults.port), ("127.0.0.1", 8080));
    assert_eq!(
        (defaults.backend, defaults.instance.as_str()),
        (Backend::Local, "local")
    );
    assert!(defaults.workers >= 1);
    let all = run("--port 0 --host 0.0.0.0 --workers 3 --backend local \
        --redis-url redis://127.0.0.1:6379/ --channel 127.0.0.1:13005 --token t0 --instance eu-1 \
        --gateway a:1,b:2 --secret s3 --deflate");
    let expected = Options {
        host: "0.0.0.0".into(),
        port: 0,
        workers: 3,
        backend: Backend::Local,
        redis_url: Some("redis://127.0.0.1:6379/".into()),
        channel: Some("127.0.0.1:13005".into()),
        token: Some("t0".into()),
        instance: "eu-1".into(),
        gateway: Some("a:1,b:2".into()),
        secret: Some("s3".into()),
        config: None,
        tls_cert: None,
        tls_key: None,
        deflate: true,
        keep_ms: None,
        history: 0,
    };
    assert_eq!(all, expected);
    assert_eq!(run("--port=9000 --workers=2").port, 9000);
    assert_eq!(parse_args(["--port", "1", "--help"]), Ok(Cli::Help));
}

#[test]
fn parse_args_rejects_bad_flags_and_unavailable_backends() {
    let fails = |args: &[&str], expected: &str| match parse_args(args.iter().copied()) {
        Err(e) => assert!(e.contains(expected), "{args:?}: {e}"),
        Ok(other) => panic!("{args:?} must fail, got {other:?}"),
    };
    fails(&["--bogus"], "unknown argument \"--bogus\"");
    fails(&["extra"], "unknown argument");
    fails(&["--port"], "--port needs a value");
    fails(&["--port", "abc"], "--port expects");
    fails(&["--port", "70000"], "--port expects");
    fails(&["--workers", "0"], "--workers expects");
    fails(&["--workers", "257"], "--workers expects");
    fails(&["--host", ""], "--host");
    fails(
        &["--backend", "nope"],
        "--backend expects local, redis, channel or gateway",
    );
    // A business process needs its gateways and their secret, and holds no client port.
    fails(
        &["--backend", "gateway", "--secret", "s"],
        "needs --gateway",
    );
    fails(
        &["--backend", "gateway", "--gateway", "a:1"],
        "needs --secret",
    );
    let port = [
        "--backend",
        "gateway",
        "--gateway",
        "a:1",
        "--secret",
        "s",
        "--port",
        "1",
    ];
    fails(&port, "--port does not go with --backend gateway");
    fails(
        &[
            "--host",
            "h",
            "--backend=gateway",
            "--gateway=a:1",
            "--secret=s",
        ],
        "--host does not go with --backend gateway",
    );
    // build refuses an empty list too, whoever constructs the options.
    let opts = Options {
        backend: Backend::Gateway,
        secret: Some("s".into()),
        ..Options::default()
    };
    let e = build(&opts).unwrap_err().to_string();
    assert!(e.contains("at least one gateway"), "{e}");
}

#[test]
fn a_push_to_the_sender_arrives_before_the_ops_reply() {
    let (rt, addr) = start();
    let mut c = pool(addr, 1);
    for client in c.iter_mut() {
        let me = client.id.clone();
        for (n, request) in [
            json!({"op": "sendRaw", "to": me, "text": "pushed"}),
            json!({"op": "send", "to": [me], "data": "pushed"}),
            json!({"op": "sendByFlag", "flag": "nobody", "data": "none"}),
        ]
        .into_iter()
        .enumerate()
        {
            let mut request = request;
            request["id"] = json!(format!("order-{n}"));
            client.send_text(&request.to_string());
            if n < 2 {
                let first = client.read_frame();
                let text = match &first {
                    Message::Text(t) => t.to_string(),
                    other => panic!("expected the push, got {other:?}"),
                };
                assert!(text.contains("pushed"), "{request} → first frame {text}");
            }
            let reply = client.read_frame();
            let reply: Value = match &reply {
                Message::Text(t) => serde_json::from_str(t).expect("JSON reply"),
                other => panic!("expected the reply, got {other:?}"),
            };
            assert_eq!(reply["op"], "reply", "{request} → {reply}");
            assert_eq!(reply["id"], json!(format!("order-{n}")));
        }
    }
    finish(rt, c);
}

fn start_with_history(n: usize) -> (Runtime, SocketAddr) {
    let opts = Options {
        port: 0,
        workers: WORKERS as usize,
        history: n,
        instance: "test-instance".to_owned(),
        ..Options::default()
    };
    let rt = build(&opts).expect("start push_demo");
    let addr = rt.local_addr(push_demo::SERVER).expect("local addr");
    (rt, addr)
}

#[test]
fn history_positions_and_recover() {
    let (rt, addr) = start_with_history(3);
    let mut a = Client::connect(addr);
    let mut p = Client::connect(addr);
    let at = a.ok(json!({"op": "join", "group": "g", "position": true}));
    let epoch = at["epoch"].as_str().expect("an epoch").to_owned();
    assert!(!epoch.is_empty());
    assert_eq!(at["offset"], json!(0));
    for m in ["m1", "m2"] {
        check!(p, {"op": "sendRawToGroup", "group": "g", "text": m} => 1);
        a.expect_raw(m);
    }
    drop(a);
    // Three missed: the bound.
    for m in ["m3", "m4", "m5"] {
        p.ok(json!({"op": "sendRawToGroup", "group": "g", "text": m}));
    }
    let mut b = Client::connect(addr);
    check!(b, {"op": "recover", "group": "g", "epoch": epoch, "offset": 2}
        => {"recovered": true, "missed": 3});
    for m in ["m3", "m4", "m5"] {
        b.expect_raw(m);
    }
    check!(p, {"op": "sendRawToGroup", "group": "g", "text": "m6"} => 1);
    b.expect_raw("m6");
    // Four missed: m3 is no longer kept.
    let mut c = Client::connect(addr);
    check!(c, {"op": "recover", "group": "g", "epoch": epoch, "offset": 2} => {"recovered": false});
    check!(c, {"op": "recover", "group": "g", "epoch": epoch, "offset": 9} => {"recovered": false});
    check!(c, {"op": "recover", "group": "g", "epoch": "other", "offset": 6} => {"recovered": false});
    // Recovering joins, whatever it answers.
    check!(p, {"op": "groupCount", "group": "g"} => 2);
    check!(c, {"op": "recover", "group": "g", "epoch": epoch, "offset": 6}
        => {"recovered": true, "missed": 0});

    // Flags, the same way.
    let at = c.ok(json!({"op": "bind", "flag": "u", "position": true}));
    assert_eq!(at, json!({"epoch": epoch, "offset": 0}));
    check!(p, {"op": "sendRawByFlag", "flag": "u", "text": "f1", "except": [c.id.clone()]} => 0);
    let mut d = Client::connect(addr);
    check!(d, {"op": "recover", "flag": "u", "epoch": epoch, "offset": 0}
        => {"recovered": true, "missed": 1});
    d.expect_raw("f1");
    check!(d, {"op": "join", "group": "h"} => true);

    fails!(d, {"op": "recover", "epoch": epoch, "offset": 0} => "a group or a flag");
    fails!(d, {"op": "recover", "group": "g", "flag": "u", "epoch": epoch, "offset": 0}
        => "a group or a flag");
    fails!(d, {"op": "recover", "group": "g", "epoch": epoch, "offset": -1} => "offset");
    fails!(d, {"op": "recover", "group": "g", "offset": 0} => "epoch");
    finish(rt, vec![b, c, d, p]);
}

#[test]
fn history_off_answers_positions_and_never_recovers() {
    let (rt, addr) = start();
    let mut a = Client::connect(addr);
    check!(a, {"op": "join", "group": "g", "position": true} => {"epoch": "", "offset": 0});
    check!(a, {"op": "recover", "group": "g", "epoch": "", "offset": 0} => {"recovered": false});
    check!(a, {"op": "groupCount", "group": "g"} => 1);
    finish(rt, vec![a]);
}
