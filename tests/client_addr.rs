//! Addresses: `Context::peer_addr` is the socket's peer; `Context::client_addr` is the
//! address a trusted proxy forwarded the request for (`X-Forwarded-For`, `Forwarded: for=`),
//! and the peer's own otherwise — without trusted proxies, or for a hostile header value; a
//! trusted proxy that does not parse fails the start.
mod util;

use std::io::Write;
use std::net::SocketAddr;

use corepush::{Context, Error, Handler, Message, Runtime, ServerConfig};
use util::*;

/// Sends `peer client` from `on_open`.
struct Tell;

impl Handler for Tell {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let text = format!("{:?} {:?}", ctx.peer_addr(), ctx.client_addr());
        let _ = ctx.send_raw(text.as_str());
    }
    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

fn start(name: &str, trusted: &[&str]) -> (Runtime, SocketAddr) {
    let config = ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
        .trusted_proxies(trusted.iter().copied());
    let rt = Runtime::builder()
        .workers(1)
        .server(config.handler(|_| Tell))
        .start()
        .unwrap();
    let addr = rt.local_addr(name).unwrap();
    (rt, addr)
}

/// Upgrades with these extra header lines: what `on_open` told, and the client's own address.
fn told(addr: SocketAddr, extra: &[&str]) -> (String, SocketAddr) {
    let mut s = tcp(addr);
    s.write_all(upgrade_request(addr, "/", extra).as_bytes())
        .unwrap();
    let head = read_head(&mut s);
    assert_eq!(status_of(&head), 101, "{head}");
    let frame = read_server_frame(&mut s).expect("the on_open message");
    (
        String::from_utf8(frame.payload).unwrap(),
        s.local_addr().unwrap(),
    )
}

#[test]
fn the_peer_is_the_socket_and_forwarding_is_ignored_by_default() {
    let (_rt, addr) = start("addr-default", &[]);
    let (text, me) = told(addr, &["X-Forwarded-For: 203.0.113.7"]);
    assert_eq!(text, format!("Some({me}) Some({})", me.ip()));
}

#[test]
fn a_trusted_proxy_forwards_the_client_address() {
    let (_rt, addr) = start("addr-trusted", &["127.0.0.0/8", "10.0.0.0/8"]);
    let (text, me) = told(
        addr,
        &["X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.1.1.1"],
    );
    assert_eq!(text, format!("Some({me}) Some(203.0.113.7)"));
    let (text, me) = told(addr, &["Forwarded: for=\"[2001:db8::9]:1234\";proto=https"]);
    assert_eq!(text, format!("Some({me}) Some(2001:db8::9)"));
    // No header, or one that does not parse: the peer's own address.
    let (text, me) = told(addr, &[]);
    assert_eq!(text, format!("Some({me}) Some({})", me.ip()));
    let hostile = ["X-Forwarded-For: ]]]:[::%%, 999.1.1.1, unknown"];
    let (text, me) = told(addr, &hostile);
    assert_eq!(text, format!("Some({me}) Some({})", me.ip()));
}

#[test]
fn a_trusted_proxy_that_does_not_parse_fails_the_start() {
    let config = ServerConfig::websocket("addr-bad", "127.0.0.1:0".parse().unwrap())
        .trusted_proxies(["10.0.0.0/99"]);
    match Runtime::builder().server(config.handler(|_| Tell)).start() {
        Err(Error::Config(e)) => assert!(e.contains("10.0.0.0/99"), "{e}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}
