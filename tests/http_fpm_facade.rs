//! Inside a request of the HTTP server, with no push server of its name in the process, its own
//! name is the Fpm backend: `get_server(name)`, `get_server(None)` and `ctx.server()` all answer
//! "nothing happened" to every method, and a name that runs nowhere is `None`; per-request data
//! does not outlive its request.
mod http_util;
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use corepush::{ClientId, Request, RequestContext, Response, Server, Workers, get_server};
use http_util::{Client, config, get, start};
use serde_json::json;

/// Every facade call, with the answer each must give on the Fpm backend; the mismatches.
fn fpm_mismatches(server: &Server) -> Vec<String> {
    let id = ClientId::from_u64(1).expect("a valid id");
    let mut bad = Vec::new();
    let mut count = |what: &str, got: corepush::Result<usize>| match got {
        Ok(0) => {}
        other => bad.push(format!("{what}: {other:?}")),
    };
    count("send", server.send(&json!({"a": 1}), id));
    count("send_raw", server.send_raw("x", [id, id]));
    count("send_by_flag", server.send_by_flag(&1, "f"));
    count("send_raw_by_flag", server.send_raw_by_flag("x", ["f", "g"]));
    count("send_to_group", server.send_to_group("g", &1));
    count(
        "send_raw_to_group",
        server.send_raw_to_group(["g", "h"], "x"),
    );
    count("send_to_all", server.send_to_all(&1));
    count("send_raw_to_all", server.send_raw_to_all(vec![1u8, 2]));
    count("close", server.close(id));
    count("close_by_flag", server.close_by_flag("f"));
    count("send_message", server.send_message("act", &1, Workers::All));
    count(
        "send_message_raw",
        server.send_message_raw("x", Workers::All),
    );
    count("except.send_to_all", server.except(id).send_to_all(&1));
    count(
        "this_worker.send_to_all",
        server.this_worker().and_then(|s| s.send_to_all(&1)),
    );
    let mut check = |what: &str, ok: bool| {
        if !ok {
            bad.push(what.to_owned());
        }
    };
    check("exists", !server.exists(id));
    check("flag_exists", !server.flag_exists("f"));
    check("flag_clients", server.flag_clients("f").is_empty());
    check("flag_of", server.flag_of(id).is_none());
    check("connections", server.connections().is_empty());
    check("connection_count", server.connection_count() == 0);
    check("group_members", server.group_members("g").is_empty());
    check("group_count", server.group_count("g") == 0);
    check("groups", server.groups().is_empty());
    check("workers", server.workers() == 0);
    check("set_data", !server.set_data(id, "k", 1u32));
    check("data", server.data::<u32>(id, "k").is_none());
    check("remove_data", !server.remove_data(id, "k"));
    bad
}

#[test]
fn the_own_name_inside_a_request_is_the_fpm_backend() {
    let name = "facade-http";
    let handler = move |_: &Request, ctx: &mut RequestContext| {
        let handles = [
            get_server(name),
            get_server(None),
            Some(ctx.server().clone()),
        ];
        let mut names = Vec::new();
        let mut mismatches = Vec::new();
        for handle in handles {
            match handle {
                Some(server) => {
                    names.push(server.name().to_owned());
                    mismatches.extend(fpm_mismatches(&server));
                }
                None => mismatches.push("get_server answered None".to_owned()),
            }
        }
        let other = get_server("another-name").map(|s| s.name().to_owned());
        Response::json(&json!({ "names": names, "mismatches": mismatches, "other": other }))
    };
    let server = start(config(name), handler);
    let mut c = Client::connect(server.local_addr());
    let v = c.roundtrip(get("/")).json();
    assert_eq!(v["mismatches"], json!([]));
    assert_eq!(v["names"], json!([name, name, name]));
    assert_eq!(v["other"], json!(null));
    // The HTTP server's own handle is the same no-op.
    assert!(fpm_mismatches(&server.server()).is_empty());
    // Off the pool threads there is no request scope: no runtime has this name.
    assert!(get_server(name).is_none());
}

/// Counts its drops, to see when per-request data goes away.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn per_request_data_lives_and_dies_with_its_request() {
    let drops = Arc::new(AtomicUsize::new(0));
    let handler_drops = drops.clone();
    let handler = move |request: &Request, ctx: &mut RequestContext| {
        let inherited = ctx.get::<String>("user");
        let user = request.query().unwrap_or("nobody").to_owned();
        ctx.set("user", user.clone());
        ctx.set("tracked", Tracked(handler_drops.clone()));
        // Within the request, the data is there.
        let read_back = ctx.get::<String>("user");
        Response::json(&json!({ "inherited": inherited, "read_back": read_back }))
    };
    // One thread: every request runs on the same thread, so a leak would show.
    let server = start(config("request-data").threads(1).max_threads(1), handler);
    let mut c = Client::connect(server.local_addr());
    for (i, user) in ["alice", "bob", "carol"].iter().enumerate() {
        let v = c.roundtrip(get(&format!("/?{user}"))).json();
        assert_eq!(v, json!({ "inherited": null, "read_back": user }));
        // Dropped before the response was written.
        assert_eq!(drops.load(Ordering::SeqCst), i + 1);
    }
    drop(c);
    let mut other = Client::connect(server.local_addr());
    let v = other.roundtrip(get("/?dave")).json();
    assert_eq!(v["inherited"], json!(null));
}

#[test]
fn the_request_scope_belongs_to_the_pool_thread() {
    let name = "facade-scope";
    let handler = move |_: &Request, _: &mut RequestContext| {
        let here = get_server(name).map(|s| s.name().to_owned());
        // A thread the handler starts is not a pool thread: no scope there, and no runtime
        // of that name exists.
        let spawned = std::thread::spawn(move || get_server(name).is_none())
            .join()
            .unwrap_or(false);
        Response::json(&json!({ "here": here, "spawned_has_none": spawned }))
    };
    let server = start(config(name), handler);
    let v = Client::connect(server.local_addr())
        .roundtrip(get("/"))
        .json();
    assert_eq!(v, json!({ "here": name, "spawned_has_none": true }));
}
