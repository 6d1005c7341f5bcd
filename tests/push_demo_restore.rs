//! push_demo's `restore` op and `--keep-ms`, on the Local and Redis backends: a client binds,
//! joins and sets data, its socket is cut, and a new client restores — on the same instance,
//! or on another instance of a Redis cluster — with the exact replies of the protocol.
mod util;

// The example itself is compiled in, as tests/push_demo.rs does.
#[path = "../examples/push_demo.rs"]
#[allow(dead_code, unreachable_pub)]
mod push_demo;

use std::net::SocketAddr;

use corepush::Runtime;
use push_demo::{Cli, SERVER, build, parse_args};
use serde_json::{Value, json};
use tungstenite::Message;
use util::{RedisServer, Ws, connect, wait_until};

/// A demo client that waits for each reply.
struct Client {
    ws: Ws,
    id: String,
    seq: u64,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let mut c = Client {
            ws: connect(addr),
            id: String::new(),
            seq: 0,
        };
        c.id = c.ok(json!({"op": "whoami"}))["clientId"]
            .as_str()
            .expect("clientId")
            .to_owned();
        c
    }

    /// The reply to `request` (pushes before it are returned with it).
    fn call(&mut self, mut request: Value) -> (Value, Vec<String>) {
        self.seq += 1;
        request["id"] = json!(self.seq);
        self.ws.send(Message::text(request.to_string())).unwrap();
        let mut pushes = Vec::new();
        loop {
            let text = util::recv_text(&mut self.ws);
            match serde_json::from_str::<Value>(&text) {
                Ok(v) if v["op"] == "reply" && v["id"] == json!(self.seq) => return (v, pushes),
                _ => pushes.push(text),
            }
        }
    }

    fn ok(&mut self, request: Value) -> Value {
        let (reply, pushes) = self.call(request.clone());
        assert!(pushes.is_empty(), "{request}: pushed {pushes:?}");
        assert!(reply.get("error").is_none(), "{request}: {reply}");
        reply["result"].clone()
    }

    fn error(&mut self, request: Value) -> String {
        let (reply, _) = self.call(request.clone());
        reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{request} must fail: {reply}"))
            .to_owned()
    }

    /// Cuts the socket, no close handshake.
    fn cut(self) -> String {
        let _ = self.ws.get_ref().shutdown(std::net::Shutdown::Both);
        self.id
    }
}

fn demo(args: &[&str]) -> (Runtime, SocketAddr) {
    let mut all = vec!["--port", "0", "--workers", "2"];
    all.extend(args);
    let Ok(Cli::Run(opts)) = parse_args(all.iter().copied()) else {
        panic!("the arguments parse")
    };
    let rt = build(&opts).expect("start push_demo");
    let addr = rt.local_addr(SERVER).expect("local addr");
    (rt, addr)
}

/// A client of `addr` bound to `flag`, in rooms a and b, with `name` set.
fn holder(addr: SocketAddr, flag: &str) -> Client {
    let mut c = Client::connect(addr);
    assert_eq!(c.ok(json!({"op": "bind", "flag": flag})), json!(true));
    assert_eq!(c.ok(json!({"op": "join", "group": "a"})), json!(true));
    assert_eq!(c.ok(json!({"op": "join", "group": "b"})), json!(true));
    assert_eq!(
        c.ok(json!({"op": "set", "key": "name", "value": {"n": "ann"}})),
        json!(true)
    );
    c
}

/// Restores `flag` into `c`, asking again while the old connection may still be live
/// (answered false then, until the server has seen the cut): the reply once it is true.
fn restore_when_kept(c: &mut Client, flag: &str) -> Value {
    let mut got = Value::Null;
    wait_until("a restore that finds the context kept", || {
        got = c.ok(json!({"op": "restore", "flag": flag}));
        got["restored"] == json!(true)
    });
    got
}

/// What a restored client holds: the flag (a push by flag reaches it), the groups (counted,
/// pushes reach it) and the data.
fn check_restored(c: &mut Client, flag: &str) {
    let got = c.ok(json!({"op": "get", "key": "name"}));
    assert_eq!(got, json!({"n": "ann"}));
    let (reply, pushes) = c.call(json!({"op": "sendByFlag", "flag": flag, "data": "by flag"}));
    assert_eq!(reply["result"], json!(1));
    assert_eq!(pushes, vec![r#""by flag""#]);
    let (reply, pushes) = c.call(json!({"op": "sendToGroup", "group": "b", "data": "to b"}));
    assert_eq!(reply["result"], json!(1));
    assert_eq!(pushes, vec![r#""to b""#]);
    assert_eq!(c.ok(json!({"op": "groupCount", "group": "a"})), json!(1));
}

#[test]
fn restore_on_local() {
    let (rt, addr) = demo(&["--keep-ms", "60000"]);
    let mut new = Client::connect(addr);
    assert_eq!(
        new.ok(json!({"op": "restore", "flag": "nobody"})),
        json!({"restored": false})
    );
    let mut live = Client::connect(addr);
    assert_eq!(live.ok(json!({"op": "bind", "flag": "held"})), json!(true));
    let gone = holder(addr, "held").cut();
    wait_until("the cut client is gone", || {
        new.ok(json!({"op": "exists", "to": gone})) == json!(false)
    });
    assert_eq!(
        new.ok(json!({"op": "restore", "flag": "held"})),
        json!({"restored": false})
    );
    assert_eq!(
        live.ok(json!({"op": "flagExists", "flag": "held"})),
        json!(true)
    );

    let old = holder(addr, "alice").cut();
    assert_eq!(
        new.ok(json!({"op": "set", "key": "name", "value": "mine"})),
        json!(true)
    );
    let got = restore_when_kept(&mut new, "alice");
    assert_eq!(
        got,
        json!({"restored": true, "from": old, "groups": ["a", "b"]})
    );
    check_restored(&mut new, "alice");
    assert_eq!(
        new.ok(json!({"op": "restore", "flag": "alice"})),
        json!({"restored": false})
    );
    let mut other = Client::connect(addr);
    assert_eq!(
        other.ok(json!({"op": "restore", "flag": "alice"})),
        json!({"restored": false})
    );
    let message = other.error(json!({"op": "restore"}));
    assert!(message.contains("flag"), "{message}");
    drop((new, live, other));
    rt.shutdown().unwrap();

    // Without --keep-ms nothing is kept.
    let (rt, addr) = demo(&[]);
    let old = holder(addr, "bob");
    let old_id = old.id.clone();
    let mut new = Client::connect(addr);
    old.cut();
    wait_until("the cut client is gone", || {
        new.ok(json!({"op": "exists", "to": old_id})) == json!(false)
    });
    assert_eq!(
        new.ok(json!({"op": "restore", "flag": "bob"})),
        json!({"restored": false})
    );
    drop(new);
    rt.shutdown().unwrap();
}

#[cfg(feature = "redis")]
#[test]
fn restore_on_another_redis_instance() {
    let Some(redis) = RedisServer::start("restore_on_another_redis_instance") else {
        return;
    };
    let url = redis.url();
    let args = [
        "--backend",
        "redis",
        "--redis-url",
        &url,
        "--keep-ms",
        "60000",
    ];
    let (a, a_addr) = demo(&args);
    let (b, b_addr) = demo(&args);
    let old = holder(a_addr, "carol").cut();
    let mut on_b = Client::connect(b_addr);
    let got = restore_when_kept(&mut on_b, "carol");
    assert_eq!(
        got,
        json!({"restored": true, "from": old, "groups": ["a", "b"]})
    );
    check_restored(&mut on_b, "carol");
    // Once across the cluster.
    let mut on_a = Client::connect(a_addr);
    assert_eq!(
        on_a.ok(json!({"op": "restore", "flag": "carol"})),
        json!({"restored": false})
    );
    assert_eq!(
        on_b.ok(json!({"op": "restore", "flag": "carol"})),
        json!({"restored": false})
    );
    drop((on_a, on_b));
    a.shutdown().unwrap();
    b.shutdown().unwrap();
}

#[test]
fn keep_ms_parses() {
    let keep = |args: &[&str]| match parse_args(args.iter().copied()) {
        Ok(Cli::Run(opts)) => opts.keep_ms,
        other => panic!("{args:?}: {other:?}"),
    };
    assert_eq!(keep(&[]), None);
    assert_eq!(keep(&["--keep-ms", "250"]), Some(250));
    assert_eq!(keep(&["--keep-ms=0"]), Some(0));
    assert!(parse_args(["--keep-ms", "soon"]).is_err());
    assert!(parse_args(["--keep-ms", "-1"]).is_err());
}
