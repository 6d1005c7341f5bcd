//! Subprotocol negotiation (RFC 6455 §4.2.2): a client offering `b, a` gets the server's
//! preferred one it offered back, and `Context::subprotocol` says which; an offer the server
//! does not speak gets no header and the connection still opens; a hook's choice wins when the
//! client offered it, and a hook's extra headers reach the 101.
mod util;

use std::io::Write;
use std::net::SocketAddr;

use corepush::{Accept, Context, Handler, Message, Runtime, ServerConfig};
use tungstenite::client::IntoClientRequest;
use util::*;

/// Sends the subprotocol it sees in `on_open`.
struct Tell;

impl Handler for Tell {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let protocol = ctx.subprotocol().unwrap_or("none").to_owned();
        let _ = ctx.send_raw(protocol.as_str());
    }
    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

fn start(name: &str, hooked: bool) -> (Runtime, SocketAddr) {
    let config =
        ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap()).subprotocols(["a", "b"]);
    let spec = config.handler(|_| Tell);
    let spec = if hooked {
        spec.on_handshake_accept(|request| {
            Ok(match request.path() {
                "/b" => Accept::new()
                    .subprotocol("b")
                    .header("X-Served-By", "edge-1"),
                // Not offered by the client: left out, the server's choice applies.
                _ => Accept::new()
                    .subprotocol("zzz")
                    .header("Connection", "keep-alive"),
            })
        })
    } else {
        spec
    };
    let rt = Runtime::builder().workers(1).server(spec).start().unwrap();
    let addr = rt.local_addr(name).unwrap();
    (rt, addr)
}

/// A browser-style client offering `offer`: the 101's subprotocol and the first message.
fn browser(addr: SocketAddr, path: &str, offer: &str) -> (Option<String>, String, Ws) {
    let mut request = format!("ws://{addr}{path}").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", offer.parse().unwrap());
    let stream = tcp(addr);
    let (mut ws, response) = tungstenite::client(request, stream).expect("handshake");
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    let told = recv_text(&mut ws);
    assert!(response.headers().get("X-Served-By").is_none() || path == "/b");
    (chosen, told, ws)
}

#[test]
fn the_servers_preference_among_the_offers_comes_back() {
    let (_rt, addr) = start("sub-pref", false);
    let (chosen, told, _ws) = browser(addr, "/", "b, a");
    assert_eq!(chosen.as_deref(), Some("a"));
    assert_eq!(told, "a");
    let (chosen, told, _ws) = browser(addr, "/", "c, b");
    assert_eq!(chosen.as_deref(), Some("b"));
    assert_eq!(told, "b");
}

#[test]
fn an_offer_the_server_does_not_speak_gets_no_header_and_opens() {
    let (_rt, addr) = start("sub-none", false);
    let mut s = tcp(addr);
    s.write_all(upgrade_request(addr, "/", &["Sec-WebSocket-Protocol: x, y"]).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert_eq!(status_of(&head), 101, "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("sec-websocket-protocol"),
        "{head}"
    );
    let frame = read_server_frame(&mut s).expect("the on_open message");
    assert_eq!(frame.payload, b"none");
}

#[test]
fn a_hooks_choice_wins_and_its_headers_are_sent() {
    capture_logs();
    let (_rt, addr) = start("sub-hook", true);
    let mut request = format!("ws://{addr}/b").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "a, b".parse().unwrap());
    let (mut ws, response) = tungstenite::client(request, tcp(addr)).expect("handshake");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("Sec-WebSocket-Protocol").as_deref(), Some("b"));
    assert_eq!(header("X-Served-By").as_deref(), Some("edge-1"));
    assert_eq!(recv_text(&mut ws), "b");

    // A choice the client did not offer is logged and left out; a reserved header too.
    let (chosen, told, _ws) = browser(addr, "/other", "b, a");
    assert_eq!(chosen.as_deref(), Some("a"));
    assert_eq!(told, "a");
    assert_logged(log::Level::Warn, &["subprotocol \"zzz\"", "did not offer"]);
    assert_logged(log::Level::Warn, &["\"Connection\"", "left out"]);
}
