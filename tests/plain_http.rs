//! Plain HTTP on a WebSocket server's port: `/metrics` agrees with `Server::stats` after a
//! known sequence, `/health` turns 503 once shutdown has begun, static files and a route are
//! served (traversal refused), and what is switched off answers 404 or 400.
mod util;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use corepush::{PlainHttp, Response, ServerConfig};
use util::*;

/// A response read to the end of its connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `raw` on a fresh connection and reads the answer until the server closes.
fn send(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut s = tcp(addr);
    s.write_all(raw).unwrap();
    parse(&read_to_close(&mut s))
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    send(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
    )
}

fn parse(bytes: &[u8]) -> Reply {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: bytes[end + 4..].to_vec(),
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// The samples of an exposition, by `name{labels}`; checks that every sample's family has
/// its HELP and TYPE lines first, and that counters are named `…_total`.
fn samples(text: &str) -> HashMap<String, u64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helped = Vec::new();
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(helped.iter().any(|h| h == name), "TYPE before HELP: {line}");
            assert!(kind == "counter" || kind == "gauge", "{line}");
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            types.insert(name.to_owned(), kind.to_owned());
        } else {
            let (key, value) = line.rsplit_once(' ').unwrap();
            let family = key.split('{').next().unwrap();
            assert!(types.contains_key(family), "no TYPE for {line}");
            out.insert(key.to_owned(), value.parse().unwrap());
        }
    }
    out
}

#[test]
fn metrics_agree_with_stats_after_a_known_sequence() {
    let name = "plain-metrics";
    let (rt, addr, server) =
        start_config(ServerConfig::websocket(name, local()).idle_timeout(None));
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    let c = Client::connect(addr);
    assert_eq!(a.ask("bind:alice"), "ok");
    assert_eq!(a.ask("join:room"), "ok");
    assert_eq!(b.ask("join:room"), "ok");
    assert_eq!(b.ask("echo:hi"), "hi");
    c.hang_up();
    settle("the close counted", 1, || server.stats().closed);
    // Out: a reply to each of 3 `id`s (every Client asks its own) and 4 commands, and the
    // close frame that answered c's.
    settle("the replies counted", 8, || server.stats().messages_out);

    let before = server.stats();
    let reply = get(addr, "/metrics");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(reply.header("connection"), Some("close"));
    let m = samples(&reply.text());
    let label = format!("{{server=\"{name}\"}}");
    let at = |family: &str| -> u64 {
        *m.get(&format!("{family}{label}"))
            .unwrap_or_else(|| panic!("no {family} in {}", reply.text()))
    };
    // The request itself was accepted before the render, and counted after it.
    assert_eq!(at("corepush_accepted_total"), before.accepted + 1);
    assert_eq!(at("corepush_http_requests_total"), before.http_requests);
    assert_eq!(before.http_requests, 0);
    let same = [
        ("corepush_connections", before.connections),
        ("corepush_rejected_total", before.rejected),
        (
            "corepush_handshake_failures_total",
            before.handshake_failures,
        ),
        ("corepush_http_refused_total", before.http_refused),
        ("corepush_closed_total", before.closed),
        ("corepush_messages_in_total", before.messages_in),
        ("corepush_bytes_in_total", before.bytes_in),
        ("corepush_messages_out_total", before.messages_out),
        ("corepush_dropped_total", before.dropped),
        (
            "corepush_slow_consumer_closes_total",
            before.slow_consumer_closes,
        ),
        ("corepush_protocol_errors_total", before.protocol_errors),
        ("corepush_idle_closes_total", before.idle_closes),
        ("corepush_handler_panics_total", before.handler_panics),
        ("corepush_mailbox_full_total", before.mailbox_full),
        ("corepush_mailbox_timeouts_total", before.mailbox_timeouts),
    ];
    for (family, value) in same {
        assert_eq!(at(family), value, "{family}");
    }
    assert_eq!((before.connections, before.closed), (2, 1));
    assert_eq!((before.accepted, before.messages_in), (3, 7));
    assert_eq!(at("corepush_clients"), 2);
    assert_eq!(at("corepush_groups"), 1);
    assert_eq!(at("corepush_flags"), 1);
    for w in 0..rt.workers() {
        assert!(m.contains_key(&format!("corepush_mailbox_depth{{worker=\"{w}\"}}")));
    }
    assert_eq!(m.get("corepush_shutting_down"), Some(&0));

    settle("the request counted", 1, || server.stats().http_requests);
    let after = server.stats();
    assert_eq!(after.accepted, before.accepted + 1);
    // Bytes and writes are counted once a write returns, so the close frame that answered c
    // may be counted after `before` was read (and settles by `after`). HTTP answers are not
    // frames: like the 101, they count in neither.
    let out = at("corepush_bytes_out_total");
    assert!(before.bytes_out <= out && out <= after.bytes_out, "{out}");
    let writes = at("corepush_writes_total");
    assert!(
        before.writes <= writes && writes <= after.writes,
        "{writes}"
    );

    assert_eq!(after.handshake_failures + after.http_refused, 0);
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn health_is_503_once_shutdown_has_begun() {
    let (rt, addr, server) = start_cmd("plain-health");
    let ok = get(addr, "/health");
    assert_eq!((ok.status, ok.text().as_str()), (200, "ok\n"));
    let head = send(addr, b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("3"))
    );
    assert!(head.body.is_empty());

    // Connections taken in before the shutdown send their requests after it began: the port
    // is closed to new ones by then, but a head on its way is still answered.
    let mut bystander = Client::connect(addr);
    let accepted = server.stats().accepted;
    let mut health = tcp(addr);
    let mut metrics = tcp(addr);
    let mut upgrade = tcp(addr);
    settle("three connections taken in", accepted + 3, || {
        server.stats().accepted
    });
    let stop = rt.shutdown_handle();
    stop.shutdown();
    assert!(stop.is_shutting_down());
    health
        .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let reply = parse(&read_to_close(&mut health));
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (503, "shutting down\n")
    );
    metrics
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let reply = parse(&read_to_close(&mut metrics));
    assert_eq!(reply.status, 200);
    assert_eq!(
        samples(&reply.text()).get("corepush_shutting_down"),
        Some(&1)
    );
    upgrade
        .write_all(upgrade_request(addr, "/", &[]).as_bytes())
        .unwrap();
    assert_eq!(status_of(&read_head(&mut upgrade)), 503);
    assert_eq!(read_until_close(&mut bystander.ws), Some(1001));
    // The server waits for each client's end of the connection (up to the shutdown timeout).
    drop((health, metrics, upgrade, bystander));
    rt.join().unwrap();
}

/// A fresh directory under the system's temporary one, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("corepush-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn static_files_and_a_route_are_served_and_traversal_is_refused() {
    let tmp = TempDir::new("static");
    let www = tmp.0.join("www");
    std::fs::create_dir_all(www.join("js")).unwrap();
    let files: [(&str, &[u8], &str); 7] = [
        ("index.html", b"<h1>demo</h1>", "text/html; charset=utf-8"),
        ("js/app.js", b"connect()", "text/javascript; charset=utf-8"),
        ("style.css", b"h1{}", "text/css; charset=utf-8"),
        ("logo.png", b"\x89PNG\r\n", "image/png"),
        ("logo.svg", b"<svg/>", "image/svg+xml"),
        ("data.json", b"{}", "application/json"),
        ("notes.txt", b"notes", "text/plain; charset=utf-8"),
    ];
    for (path, body, _) in files {
        std::fs::write(www.join(path), body).unwrap();
    }
    std::fs::write(www.join(".env"), "secret").unwrap();
    std::fs::write(tmp.0.join("secret.txt"), "secret").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(tmp.0.join("secret.txt"), www.join("link.txt")).unwrap();

    let name = "plain-static";
    let plain = PlainHttp::default()
        .static_dir(&www)
        .route(|request| match request.path() {
            "/hello" => Some(Response::text(format!("hello {}", request.method()))),
            "/boom" => panic!("the route was asked to panic"),
            _ => None,
        });
    let (rt, addr, server) = start_spec(
        name,
        ServerConfig::websocket(name, local())
            .handler(|_| Cmd)
            .plain_http(plain),
    );
    let mut client = Client::connect(addr);

    for (path, body, content_type) in files {
        let reply = get(addr, &format!("/{path}"));
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.body, body, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
    }
    assert_eq!(get(addr, "/").body, b"<h1>demo</h1>");
    assert_eq!(get(addr, "/js/../index.html").status, 404);
    let head = send(addr, b"HEAD /js/app.js HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("9"))
    );
    assert!(head.body.is_empty());
    for refused in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/js/%2E%2E/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/.env",
        "/link.txt",
        "/js",
        "/missing.html",
    ] {
        let reply = get(addr, refused);
        assert_eq!(reply.status, 404, "{refused}");
        assert!(!reply.text().contains("secret"), "{refused}");
    }
    let post = send(addr, b"POST /index.html HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (post.status, post.header("allow")),
        (405, Some("GET, HEAD"))
    );
    assert_eq!(get(addr, "/hello").text(), "hello GET");
    let posted = send(addr, b"POST /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(posted.text(), "hello POST", "the route answers any method");
    assert_eq!(get(addr, "/boom").status, 500);
    assert_eq!(get(addr, "/health").status, 200);

    assert_eq!(client.ask("echo:undisturbed"), "undisturbed");
    let s = server.stats();
    assert_eq!(
        (s.http_requests, s.http_refused, s.handshake_failures),
        (23, 0, 0)
    );
    assert_eq!(s.connections, 1);
    drop(client);
    rt.shutdown().unwrap();
}

#[test]
fn what_is_switched_off_is_404_or_400() {
    // Metrics off, health on: /metrics is an unknown path.
    let name = "plain-partly";
    let (rt, addr, server) = start_spec(
        name,
        ServerConfig::websocket(name, local())
            .handler(|_| Cmd)
            .plain_http(PlainHttp::default().metrics(false)),
    );
    assert_eq!(get(addr, "/metrics").status, 404);
    assert_eq!(get(addr, "/health").status, 200);
    assert_eq!(get(addr, "/anything").status, 404);
    assert_eq!(server.stats().http_requests, 3);
    rt.shutdown().unwrap();

    // Everything off: a plain request is a failed handshake, as on a WebSocket-only port.
    let name = "plain-off";
    let (rt, addr, server) = start_spec(
        name,
        ServerConfig::websocket(name, local())
            .handler(|_| Cmd)
            .plain_http(PlainHttp::off()),
    );
    for path in ["/metrics", "/health", "/"] {
        assert_eq!(get(addr, path).status, 400, "{path}");
    }
    let s = server.stats();
    assert_eq!((s.http_requests, s.handshake_failures), (0, 3));
    let mut client = Client::connect(addr);
    assert_eq!(client.ask("echo:ws still works"), "ws still works");
    drop(client);
    rt.shutdown().unwrap();

    // The default answers both.
    let (rt, addr, _) = start_cmd("plain-default");
    assert_eq!(get(addr, "/metrics").status, 200);
    assert_eq!(get(addr, "/health").status, 200);
    assert_eq!(get(addr, "/").status, 404);
    rt.shutdown().unwrap();
}
