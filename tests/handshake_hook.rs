//! The handshake hook (`ServerSpec::on_handshake`): an upgrade is accepted or refused by
//! query token, path or Origin before the connection counts as open. A refused client gets
//! the HTTP status and body of its `Rejection`, never appears in the connections, the counts
//! or `on_open`, and is counted in `Stats::rejected`; accepted clients work as usual.
mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use corepush::{
    Context, Handler, HandshakeRequest, Message, Rejection, Runtime, Server, ServerConfig,
};
use tungstenite::client::IntoClientRequest;
use util::*;

/// The command handler, counting its `on_open` calls.
struct Counting {
    opened: Arc<AtomicUsize>,
}

impl Handler for Counting {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.opened.fetch_add(1, Ordering::SeqCst);
        Cmd.on_open(ctx);
    }
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        Cmd.on_message(ctx, message);
    }
}

/// The application's check: no `/admin`, only our own Origin (when one is sent), and a
/// `token=secret` query parameter.
fn check(request: &HandshakeRequest) -> Result<(), Rejection> {
    match request.path() {
        "/admin" => return Err(Rejection::forbidden().body("no admin")),
        // An out-of-range status becomes 403.
        "/odd" => return Err(Rejection::new(200).body("odd")),
        "/panic" => panic!("the handshake hook was asked to panic"),
        _ => {}
    }
    if request
        .header("origin")
        .is_some_and(|o| o != "https://app.example")
    {
        return Err(Rejection::forbidden().body("bad origin"));
    }
    let has_token = request
        .query()
        .is_some_and(|q| q.split('&').any(|pair| pair == "token=secret"));
    if has_token {
        Ok(())
    } else {
        Err(Rejection::unauthorized().body("bad token"))
    }
}

struct Hooked {
    rt: Runtime,
    addr: SocketAddr,
    server: Server,
    opened: Arc<AtomicUsize>,
}

fn start(name: &str) -> Hooked {
    let opened = Arc::new(AtomicUsize::new(0));
    let counter = opened.clone();
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .handler(move |_| Counting {
                    opened: counter.clone(),
                })
                .on_handshake(check),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr(name).unwrap();
    let server = rt.server(name).unwrap();
    Hooked {
        rt,
        addr,
        server,
        opened,
    }
}

/// The raw answer to an upgrade request: status code, head, body (read until the close).
fn raw_answer(addr: SocketAddr, path: &str, extra: &[&str]) -> (u16, String, String) {
    let mut s = tcp(addr);
    s.write_all(upgrade_request(addr, path, extra).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    let body = String::from_utf8(read_to_close(&mut s)).expect("a text body");
    (status_of(&head), head, body)
}

/// The answer tungstenite's client gets: status and body of `Error::Http`. The server counts
/// the refusal right after it wrote the answer, so this may return a moment before.
fn client_refusal(request: tungstenite::handshake::client::Request) -> (u16, String) {
    let addr = request
        .uri()
        .authority()
        .expect("an authority")
        .as_str()
        .to_owned();
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    match tungstenite::client(request, stream) {
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let body = response.body().clone().unwrap_or_default();
            (
                response.status().as_u16(),
                String::from_utf8(body).expect("a text body"),
            )
        }
        Ok(_) => panic!("the upgrade was accepted"),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

fn ws_request(addr: SocketAddr, path: &str) -> tungstenite::handshake::client::Request {
    format!("ws://{addr}{path}").into_client_request().unwrap()
}

/// Nobody refused shows anywhere a connection would.
fn assert_only(h: &Hooked, accepted: &[&Client]) {
    let mut ids: Vec<_> = accepted.iter().map(|c| c.id).collect();
    ids.sort();
    assert_eq!(h.server.connections(), ids);
    assert_eq!(h.server.connection_count(), accepted.len());
    assert_eq!(h.server.stats().connections, accepted.len() as u64);
    assert_eq!(h.opened.load(Ordering::SeqCst), accepted.len());
}

#[test]
fn a_valid_token_is_accepted_and_the_client_works() {
    let h = start("hook-accept");
    let mut a = Client::connect_path(h.addr, "/chat?token=secret");
    let mut b = Client::connect_path(h.addr, "/chat?room=1&token=secret");
    assert_eq!(a.ask("path"), "/chat");
    assert_eq!(a.ask("get:query"), "token=secret");
    assert_eq!(b.ask(&format!("to:{}:hi", a.id)), "sent:1");
    assert_eq!(a.recv(), "hi");
    assert_only(&h, &[&a, &b]);
    assert_eq!(h.server.stats().rejected, 0);
    drop((a, b));
    h.rt.shutdown().unwrap();
}

#[test]
fn a_missing_or_wrong_token_gets_401_with_its_body() {
    let h = start("hook-token");
    let mut bystander = Client::connect_path(h.addr, "/?token=secret");
    let (status, head, body) = raw_answer(h.addr, "/chat", &[]);
    assert_eq!(status, 401);
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    assert_eq!(body, "bad token");
    assert_eq!(
        client_refusal(ws_request(h.addr, "/chat?token=wrong")),
        (401, "bad token".to_owned())
    );
    assert_eq!(
        client_refusal(ws_request(h.addr, "/chat?token=secretive")),
        (401, "bad token".to_owned())
    );
    // Counted once the answer is written: tungstenite's client may have it a moment before.
    wait_until("3 refusals", || h.server.stats().rejected == 3);
    assert_eq!(h.server.stats().handshake_failures, 0);
    assert_only(&h, &[&bystander]);
    assert_eq!(bystander.ask("echo:served"), "served");
    drop(bystander);
    h.rt.shutdown().unwrap();
}

#[test]
fn a_refused_path_or_origin_gets_403() {
    let h = start("hook-path-origin");
    let (status, _, body) = raw_answer(h.addr, "/admin?token=secret", &[]);
    assert_eq!((status, body.as_str()), (403, "no admin"));
    assert_eq!(
        client_refusal(ws_request(h.addr, "/admin?token=secret")),
        (403, "no admin".to_owned())
    );
    let (status, _, body) = raw_answer(h.addr, "/odd", &[]);
    assert_eq!((status, body.as_str()), (403, "odd"));

    let (status, _, body) = raw_answer(
        h.addr,
        "/chat?token=secret",
        &["Origin: https://evil.example"],
    );
    assert_eq!((status, body.as_str()), (403, "bad origin"));
    let mut foreign = ws_request(h.addr, "/chat?token=secret");
    foreign
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert_eq!(client_refusal(foreign), (403, "bad origin".to_owned()));

    // Our own origin with the token is welcome.
    let mut own = ws_request(h.addr, "/chat?token=secret");
    own.headers_mut()
        .insert("Origin", "https://app.example".parse().unwrap());
    let stream = TcpStream::connect(h.addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, response) = tungstenite::client(own, stream).expect("accepted");
    assert_eq!(response.status().as_u16(), 101);
    ws.send(tungstenite::Message::text("id")).unwrap();
    let id = recv_text(&mut ws).parse().expect("an id");
    assert_eq!(h.server.connections(), vec![id]);
    assert_eq!(h.opened.load(Ordering::SeqCst), 1);
    wait_until("5 refusals", || h.server.stats().rejected == 5);
    drop(ws);
    h.rt.shutdown().unwrap();
}

#[test]
fn refused_clients_never_count_as_connections() {
    let h = start("hook-never-counted");
    let mut accepted = Vec::new();
    for i in 0..6 {
        if i % 2 == 0 {
            accepted.push(Client::connect_path(h.addr, "/?token=secret"));
        } else {
            let (status, _, _) = raw_answer(h.addr, "/", &[]);
            assert_eq!(status, 401);
        }
        assert_only(&h, &accepted.iter().collect::<Vec<_>>());
    }
    let stats = h.server.stats();
    assert_eq!(stats.rejected, 3);
    // Accepted counts sockets taken from the listener, refused upgrades included.
    assert_eq!(stats.accepted, 6);
    assert_eq!(h.server.send_raw_to_all("to all").unwrap(), 3);
    for c in &mut accepted {
        assert_eq!(c.recv(), "to all");
    }
    drop(accepted);
    h.rt.shutdown().unwrap();
}

/// The hook is application code: a panic in it refuses that client (500) and is counted, and
/// the core loop goes on.
#[test]
fn a_panic_in_the_hook_refuses_only_that_client() {
    let h = start("hook-panic");
    // One client on each core loop, so that both loops have to survive a panic. Bounded:
    // the kernel spreads connections over the two listeners by hash.
    let mut a = Client::connect_path(h.addr, "/?token=secret");
    let mut b = (0..200)
        .map(|_| Client::connect_path(h.addr, "/?token=secret"))
        .find(|b| b.worker() != a.worker())
        .expect("a client on the other core loop");
    for _ in 0..4 {
        let (status, _, _) = raw_answer(h.addr, "/panic", &[]);
        assert_eq!(status, 500);
    }
    let stats = h.server.stats();
    assert_eq!(stats.handler_panics, 4);
    assert_eq!(stats.rejected, 4);
    assert_eq!(a.ask("echo:a"), "a");
    assert_eq!(b.ask("echo:b"), "b");
    let mut c = Client::connect_path(h.addr, "/?token=secret");
    assert_eq!(c.ask("echo:c"), "c");
    assert_eq!(h.server.connection_count(), 3);
    drop((a, b, c));
    h.rt.shutdown().unwrap();
}
