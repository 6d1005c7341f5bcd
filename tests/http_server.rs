//! The request-scoped HTTP/1.1 server over real sockets, with hand-written requests: methods and
//! bodies (length and chunked), keep-alive and `Connection: close`, pipelining, `HEAD`,
//! `100 Continue`, the refusals (400, 408, 413, 417, 431, 501, 503), handler panics, timeouts,
//! and an idle connection giving up its thread to a waiting client.
mod http_util;
mod util;

use std::sync::mpsc;
use std::time::Duration;

use corepush::{Error, HttpConfig, HttpServer, Request, RequestContext, Response};
use http_util::*;
use serde_json::json;

/// Echoes what it was sent, as JSON; a few paths misbehave on purpose.
fn echo(request: &Request, ctx: &mut RequestContext) -> Response {
    match request.path() {
        "/panic" => panic!("a handler bug (expected by the test)"),
        "/close" => Response::text("bye").header("Connection", "close"),
        "/bad-header" => Response::text("x").header("X-Split", "a\r\nInjected: yes"),
        "/no-content" => Response::new(204).body("ignored"),
        _ => Response::json(&json!({
            "method": request.method(),
            "path": request.path(),
            "query": request.query(),
            "version": request.version(),
            "body": request.body_text(),
            "body_len": request.body().len(),
            "peer_port": ctx.peer_addr().port(),
            "x": request.header("x-test"),
        })),
    }
}

fn echo_server() -> HttpServer {
    start(
        config("echo").max_body_bytes(1024).max_header_bytes(1024),
        echo,
    )
}

#[test]
fn get_and_post_with_a_length() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    let r = c.roundtrip("GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")));
    assert!(!r.closes());
    let v = r.json();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/a/b");
    assert_eq!(v["query"], "c=d");
    assert_eq!(v["x"], "yes");
    assert_eq!(v["body_len"], 0);
    let v = c.roundtrip(post("/p", "hello body")).json();
    assert_eq!(
        (v["method"].as_str(), v["body"].as_str()),
        (Some("POST"), Some("hello body"))
    );
}

#[test]
fn chunked_bodies_are_decoded_however_they_arrive() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    let head = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = "5\r\nhello\r\n1;ext=v\r\n \r\n6\r\nworld!\r\n0\r\nTrailer: ignored\r\n\r\n";
    // All at once, then byte by byte (each write its own segment, thanks to TCP_NODELAY).
    let v = c.roundtrip(format!("{head}{body}")).json();
    assert_eq!(v["body"], "hello world!");
    c.send(head);
    for b in body.bytes() {
        c.send([b]);
    }
    let v = c.response().json();
    assert_eq!(v["body"], "hello world!");
    // The connection is still in step.
    assert_eq!(c.roundtrip(get("/after")).json()["path"], "/after");
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    for i in 0..20 {
        let r = c.roundtrip(get(&format!("/n?{i}")));
        assert_eq!(r.status, 200);
        assert!(!r.closes());
        let v = r.json();
        assert_eq!(v["query"], i.to_string());
        // The server saw the same connection every time.
        assert_eq!(v["peer_port"], c.local_port());
    }
}

#[test]
fn connection_close_is_honoured() {
    let server = echo_server();
    // Asked by the client.
    let mut c = Client::connect(server.local_addr());
    let r = c.roundtrip("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(r.closes());
    assert!(c.is_closed());
    // Asked by the handler.
    let mut c = Client::connect(server.local_addr());
    let r = c.roundtrip(get("/close"));
    assert_eq!((r.status, r.text(), r.closes()), (200, "bye", true));
    assert!(c.is_closed());
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    let r = c.roundtrip("GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(r.json()["version"], "HTTP/1.0");
    assert!(r.closes());
    assert!(c.is_closed());
    let mut c = Client::connect(server.local_addr());
    let r = c.roundtrip("GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let r = c.roundtrip("GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.json()["path"], "/again");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    c.send(format!(
        "{}{}{}",
        get("/one"),
        post("/two", "2"),
        "GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    ));
    assert_eq!(c.response().json()["path"], "/one");
    assert_eq!(c.response().json()["body"], "2");
    let last = c.response();
    assert_eq!(last.json()["path"], "/three");
    assert!(last.closes());
    assert!(c.is_closed());
}

#[test]
fn head_announces_the_length_but_sends_no_body() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    c.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.head_response();
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
    // Had a body been sent, this response would not parse as the next one.
    assert_eq!(c.roundtrip(get("/next")).json()["path"], "/next");
    // 204: no body and no length.
    let r = c.roundtrip(get("/no-content"));
    assert_eq!((r.status, r.header("content-length")), (204, None));
    assert_eq!(c.roundtrip(get("/next")).status, 200);
}

#[test]
fn expect_100_continue_is_answered_before_the_body() {
    let server = echo_server();
    let mut c = Client::connect(server.local_addr());
    c.send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    c.expect_bytes(b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send("body");
    assert_eq!(c.response().json()["body"], "body");
    // Too large: refused at once, no `100 Continue`, and the body need not be sent.
    c.send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status, 413);
    assert!(r.closes());
    assert!(c.is_closed());
}

/// Sends `raw` on a fresh connection; the answer must be `status`, closing the connection.
fn refused_with(server: &HttpServer, raw: &[u8], status: u16) {
    let mut c = Client::connect(server.local_addr());
    c.send(raw);
    let r = c.response();
    assert_eq!(
        r.status,
        status,
        "{:?} answered {}",
        String::from_utf8_lossy(raw),
        r.text()
    );
    assert!(r.closes());
    assert!(c.is_closed());
}

#[test]
fn malformed_requests_get_400() {
    let server = echo_server();
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
    ];
    for raw in cases {
        refused_with(&server, raw, 400);
    }
    refused_with(
        &server,
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\n\r\n",
        417,
    );
    let gzip = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    refused_with(&server, gzip, 501);
    // The server serves on.
    assert_eq!(
        Client::connect(server.local_addr())
            .roundtrip(get("/ok"))
            .status,
        200
    );
}

#[test]
fn oversized_heads_get_431() {
    let server = echo_server(); // max_header_bytes = 1024
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(2000));
    refused_with(&server, long_uri.as_bytes(), 431);
    let many = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: b\r\n".repeat(200)
    );
    refused_with(&server, many.as_bytes(), 431);
    // A head that never ends is refused once it passes the limit, not waited for.
    refused_with(&server, "GET / HTTP/1.1\r\nX: ".repeat(100).as_bytes(), 431);
    assert_eq!(
        Client::connect(server.local_addr())
            .roundtrip(get("/ok"))
            .status,
        200
    );
}

#[test]
fn oversized_bodies_get_413() {
    let server = echo_server(); // max_body_bytes = 1024
    let exactly = "b".repeat(1024);
    let mut c = Client::connect(server.local_addr());
    assert_eq!(c.roundtrip(post("/max", &exactly)).json()["body_len"], 1024);
    // By length, and with the body sent anyway: the answer still arrives whole.
    let over = post("/over", &"b".repeat(1025));
    refused_with(&server, over.as_bytes(), 413);
    // Chunked, found out while decoding.
    let chunk = format!("400\r\n{exactly}\r\n");
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}1\r\nx\r\n0\r\n\r\n"
    );
    refused_with(&server, raw.as_bytes(), 413);
    assert_eq!(
        Client::connect(server.local_addr())
            .roundtrip(get("/ok"))
            .status,
        200
    );
}

#[test]
fn a_handler_panic_costs_only_its_request() {
    let server = start(config("panics").threads(1), echo);
    let mut c = Client::connect(server.local_addr());
    let r = c.roundtrip(get("/panic"));
    assert_eq!(r.status, 500);
    // Same connection, same (only) thread: still serving.
    assert_eq!(c.roundtrip(get("/fine")).json()["path"], "/fine");
    let r = Client::connect(server.local_addr()).roundtrip(get("/panic"));
    assert_eq!(r.status, 500);
    assert_eq!(
        Client::connect(server.local_addr())
            .roundtrip(get("/x"))
            .status,
        200
    );
    // An answer that cannot be sent (a header that would split the head) is a 500 too.
    let r = c.roundtrip(get("/bad-header"));
    assert_eq!(r.status, 500);
    assert!(r.header("injected").is_none());
    server.shutdown().unwrap();
}

#[test]
fn a_request_that_stalls_gets_408() {
    let cfg = config("stall").request_timeout(Duration::from_millis(200));
    let server = start(cfg, echo);
    let mut c = Client::connect(server.local_addr());
    c.send("GET / HTTP/1.1\r\nHost: x\r\n"); // the blank line never comes
    let r = c.response();
    assert_eq!(r.status, 408);
    assert!(c.is_closed());
    // A body that stops short.
    let mut c = Client::connect(server.local_addr());
    c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(c.response().status, 408);
}

#[test]
fn an_idle_connection_closes_after_the_keep_alive_timeout() {
    let cfg = config("idle").keep_alive_timeout(Duration::from_millis(200));
    let server = start(cfg, echo);
    let mut c = Client::connect(server.local_addr());
    assert_eq!(c.roundtrip(get("/")).status, 200);
    // Closed quietly: no 408 for a connection that was between requests.
    assert!(c.is_closed());
}

#[test]
fn an_idle_connection_gives_its_thread_to_a_waiting_client() {
    // One thread and a keep-alive timeout far past the test's patience: the second client is
    // served only because the idle first connection is closed for it.
    let cfg = config("evict")
        .threads(1)
        .max_threads(1)
        .keep_alive_timeout(Duration::from_secs(600));
    let server = start(cfg, echo);
    let mut first = Client::connect(server.local_addr());
    assert_eq!(first.roundtrip(get("/first")).status, 200);
    let mut second = Client::connect(server.local_addr());
    assert_eq!(second.roundtrip(get("/second")).json()["path"], "/second");
    assert!(first.is_closed());
}

#[test]
fn the_pool_grows_so_keep_alive_clients_keep_their_connections() {
    // One thread always, three at most: three keep-alive clients each keep a connection (and
    // a thread); a fourth finds the limit, and an idle one gives its thread up.
    let cfg = config("grow")
        .threads(1)
        .max_threads(3)
        .keep_alive_timeout(Duration::from_secs(600));
    let server = start(cfg, echo);
    let mut clients: Vec<Client> = (0..3)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    for round in 0..3 {
        for c in &mut clients {
            let v = c.roundtrip(get(&format!("/{round}"))).json();
            assert_eq!(
                v["peer_port"],
                c.local_port(),
                "served on its first connection"
            );
        }
    }
    let mut fourth = Client::connect(server.local_addr());
    assert_eq!(fourth.roundtrip(get("/fourth")).status, 200);
    // An idle one of the three was closed to make room.
    for c in &clients {
        c.stream.set_nonblocking(true).unwrap();
    }
    let mut closed = vec![false; clients.len()];
    wait_until("one idle connection closed", || {
        for (c, closed) in clients.iter_mut().zip(&mut closed) {
            let mut byte = [0u8; 1];
            match std::io::Read::read(&mut c.stream, &mut byte) {
                Ok(0) => *closed = true,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => *closed = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        closed.iter().any(|&c| c)
    });
    // (Usually exactly one; in a race both the acceptor and a thread that has just answered
    // may free a thread for the same newcomer.)
    assert!(closed.iter().any(|&c| c), "{closed:?}");
}

#[test]
fn connections_past_the_pending_limit_get_503() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let release_rx = parking_lot::Mutex::new(release_rx);
    let handler = move |r: &Request, _: &mut RequestContext| {
        if r.path() == "/block" {
            entered_tx.send(()).unwrap();
            let _ = release_rx.lock().recv_timeout(WAIT);
        }
        Response::text("done")
    };
    let cfg = config("pending").threads(1).max_threads(1).max_pending(1);
    let server = start(cfg, handler);
    let mut busy = Client::connect(server.local_addr());
    busy.send(get("/block"));
    entered.recv_timeout(WAIT).unwrap();
    // The only thread is taken: the next connection waits in the queue, the one after is
    // refused.
    let mut queued = Client::connect(server.local_addr());
    queued.send(get("/queued"));
    let mut refused = Client::connect(server.local_addr());
    let r = refused.response();
    assert_eq!(r.status, 503);
    assert!(refused.is_closed());
    release.send(()).unwrap();
    assert_eq!(busy.response().text(), "done");
    assert_eq!(queued.response().text(), "done");
}

#[test]
fn invalid_configurations_are_errors() {
    let base = || config("cfg");
    let bad = [
        base().threads(0),
        base().name(""),
        base().max_header_bytes(10),
        base().keep_alive_timeout(Duration::ZERO),
        base().request_timeout(Duration::ZERO),
        base().write_timeout(Duration::ZERO),
    ];
    for cfg in bad {
        let described = format!("{cfg:?}");
        match HttpServer::start(cfg, echo) {
            Err(Error::Config(_)) => {}
            other => panic!("{described}: expected a configuration error, got {other:?}"),
        }
    }
    // A port in use is an I/O error.
    let server = echo_server();
    let taken = HttpConfig::new("taken", server.local_addr());
    assert!(matches!(HttpServer::start(taken, echo), Err(Error::Io(_))));
}
