//! Inside a request of the HTTP server, `get_server` finds the live push servers of the process:
//! a POST pushes to a WebSocket room for real; an unknown name is `None` (`require_server`:
//! `UnknownServer`); the HTTP server's own name is its Fpm handle unless a push server shares it.
mod http_util;
mod util;

use std::collections::HashSet;

use corepush::{Error, Request, RequestContext, Response, get_server, require_server};
use http_util::{Client, config, get, post, start};
use serde_json::json;

#[test]
fn a_post_to_the_http_server_pushes_to_a_room_of_the_push_server() {
    let (_runtime, ws_addr, _) = util::start_cmd("ws");
    let mut member = util::Client::connect(ws_addr);
    assert_eq!(member.ask("join:room"), "ok");

    let handler = |request: &Request, _: &mut RequestContext| {
        let Some(body) = request.body_text() else {
            return Response::text("not UTF-8").status(400);
        };
        let Some(server) = get_server("ws") else {
            return Response::text("no server named ws").status(500);
        };
        match server.send_raw_to_group("room", body) {
            Ok(pushed) => Response::text(pushed.to_string()),
            Err(e) => Response::text(e.to_string()).status(500),
        }
    };
    let http = start(config("http-beside-ws"), handler);
    let answer = Client::connect(http.local_addr()).roundtrip(post("/push", "hello, room"));
    assert_eq!((answer.status, answer.text()), (200, "1"));
    assert_eq!(member.recv(), "hello, room");
}

#[test]
fn inside_a_request_an_unknown_name_is_none_and_the_own_name_is_the_fpm_handle() {
    let own = "http-alone";
    let handler = move |_: &Request, ctx: &mut RequestContext| {
        let required = match require_server("nowhere") {
            Err(Error::UnknownServer(name)) => json!({ "unknown_server": name }),
            other => json!(format!("{other:?}")),
        };
        // On the Fpm backend: no core loops, and a send reaches nobody without failing.
        let fpm = |server: Option<corepush::Server>| {
            server.map(|s| json!([s.name(), s.workers(), s.send_raw_to_all("x").ok()]))
        };
        Response::json(&json!({
            "nowhere": get_server("nowhere").map(|s| s.name().to_owned()),
            "required": required,
            "own": fpm(get_server(own)),
            "default": fpm(get_server(None)),
            "ctx": fpm(Some(ctx.server().clone())),
        }))
    };
    let http = start(config(own), handler);
    let v = Client::connect(http.local_addr())
        .roundtrip(get("/"))
        .json();
    assert_eq!(
        v,
        json!({
            "nowhere": null,
            "required": { "unknown_server": "nowhere" },
            "own": [own, 0, 0],
            "default": [own, 0, 0],
            "ctx": [own, 0, 0],
        })
    );
}

#[test]
fn a_push_server_sharing_the_http_servers_name_is_what_a_request_reaches() {
    let name = "shared-name";
    let (_runtime, ws_addr, _) = util::start_cmd(name);
    let mut member = util::Client::connect(ws_addr);
    assert_eq!(member.ask("join:room"), "ok");
    assert_eq!(member.ask("bind:alice"), "ok");
    let member_id = member.id;

    let handler = move |_: &Request, ctx: &mut RequestContext| {
        let by_ctx = ctx.server().send_raw_to_group("room", "via ctx.server()");
        let by_default =
            get_server(None).map(|s| s.send_raw_by_flag("via get_server(None)", "alice"));
        let by_name = get_server(name).map(|s| s.send_raw("via get_server(name)", member_id));
        Response::json(&json!({
            "workers": ctx.server().workers(),
            "exists": ctx.server().exists(member_id),
            "ctx": by_ctx.ok(),
            "default": by_default.and_then(Result::ok),
            "name": by_name.and_then(Result::ok),
        }))
    };
    let http = start(config(name), handler);
    let v = Client::connect(http.local_addr())
        .roundtrip(get("/"))
        .json();
    assert_eq!(
        v,
        json!({ "workers": 2, "exists": true, "ctx": 1, "default": 1, "name": 1 })
    );
    // In any order: a push to a group may wait for the core loop's next fan-out round.
    let got: HashSet<String> = (0..3).map(|_| member.recv()).collect();
    let expected = [
        "via ctx.server()",
        "via get_server(None)",
        "via get_server(name)",
    ];
    assert_eq!(got, expected.map(str::to_owned).into());
    // The HTTP server's own handle is still the Fpm one, for whoever holds it.
    assert_eq!(http.server().workers(), 0);
}
