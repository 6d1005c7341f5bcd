//! A gateway and a business process in one test process: a client of the gateway is served
//! by the business process's handler, and the business process's facade reaches it.
mod util;

use corepush::{BackendConfig, Error, GatewayBackendConfig, GatewayConfig, Runtime, ServerConfig};
use util::{Client, Cmd, wait_until};

#[test]
fn a_business_process_serves_the_clients_of_a_gateway() {
    let gw = Runtime::builder()
        .workers(2)
        .instance(1)
        .server(
            ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                .gateway(GatewayConfig::new("127.0.0.1:0".parse().unwrap(), "s3cret")),
        )
        .start()
        .expect("a gateway");
    let internal = gw.gateway("ws").unwrap().internal_addr().unwrap();
    let biz = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                .listen(false)
                .backend(BackendConfig::Gateway(GatewayBackendConfig::new(
                    [internal.to_string()],
                    "s3cret",
                )))
                .handler(|_| Cmd),
        )
        .start()
        .expect("a business process");
    wait_until("the gateway sees the business process", || {
        gw.gateway("ws").unwrap().businesses() == 1
    });
    let server = biz.server("ws").unwrap();
    let mut c = Client::connect_path(gw.local_addr("ws").unwrap(), "/room?x=1");
    assert_eq!(c.id.instance(), 1);
    assert_eq!(c.ask("echo:hi"), "hi");
    assert_eq!(c.ask("path"), "/room");
    assert_eq!(c.ask("bind:u1"), "ok");
    assert_eq!(c.ask("flag"), "u1");
    assert_eq!(c.ask("join:g"), "ok");
    assert_eq!(c.ask("groups"), "g");
    assert_eq!(c.ask("set:k:v"), "ok");
    assert_eq!(c.ask("get:k"), "v");
    let flag = server.cluster().flag_clients("u1").unwrap();
    assert_eq!(flag.value, vec![c.id]);
    assert!(flag.complete);
    server.send_raw_by_flag("by-flag", "u1").unwrap();
    assert_eq!(c.recv(), "by-flag");
    assert_eq!(
        server
            .cluster()
            .send_raw_to_group("g", "to-g")
            .unwrap()
            .value,
        1
    );
    assert_eq!(c.recv(), "to-g");
    // The handler's push, then its reply: one thread's calls keep their order. A business
    // process holds no clients, so its fire-and-forget send counts none.
    assert_eq!(c.ask("all:x"), "x");
    assert_eq!(c.recv(), "sent:0");
    drop(c);
    biz.shutdown().unwrap();
    gw.shutdown().unwrap();
}

#[test]
fn a_gateway_relays_framed_tcp_clients_too() {
    use std::io::{BufRead, BufReader, Write};
    let gw = Runtime::builder()
        .workers(1)
        .instance(3)
        .server(
            ServerConfig::tcp_lines("tcp", "127.0.0.1:0".parse().unwrap())
                .gateway(GatewayConfig::new("127.0.0.1:0".parse().unwrap(), "k")),
        )
        .start()
        .expect("a gateway");
    let internal = gw.gateway("tcp").unwrap().internal_addr().unwrap();
    let biz = Runtime::builder()
        .workers(1)
        .server(
            ServerConfig::tcp_lines("tcp", "127.0.0.1:0".parse().unwrap())
                .listen(false)
                .backend(BackendConfig::Gateway(GatewayBackendConfig::new(
                    [internal.to_string()],
                    "k",
                )))
                .handler(|_| Cmd),
        )
        .start()
        .expect("a business process");
    assert_eq!(
        biz.local_addr("tcp"),
        None,
        "a business process does not listen"
    );
    let stream = std::net::TcpStream::connect(gw.local_addr("tcp").unwrap()).unwrap();
    let mut lines = BufReader::new(stream.try_clone().unwrap()).lines();
    let mut ask = |command: &str| {
        (&stream)
            .write_all(format!("{command}\n").as_bytes())
            .unwrap();
        lines.next().expect("a reply").unwrap()
    };
    let id: corepush::ClientId = ask("id").parse().unwrap();
    assert_eq!(id.instance(), 3);
    // A TCP client has no upgrade request, behind a gateway as anywhere.
    assert_eq!(ask("path"), "none");
    assert_eq!(ask("echo:over tcp"), "over tcp");
    drop(lines);
    drop(stream);
    biz.shutdown().unwrap();
    gw.shutdown().unwrap();
}

#[test]
fn no_reachable_gateway_is_a_backend_error_at_start() {
    // A port nobody listens on: bound, then let go.
    let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = gone.local_addr().unwrap();
    drop(gone);
    let started = Runtime::builder()
        .workers(1)
        .server(
            ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                .listen(false)
                .backend(BackendConfig::Gateway(GatewayBackendConfig::new(
                    [addr.to_string()],
                    "s3cret",
                )))
                .handler(|_| Cmd),
        )
        .start();
    match started {
        Err(Error::Backend(_)) => {}
        Err(e) => panic!("expected a backend error, got {e:?}"),
        Ok(_) => panic!("started with no gateway"),
    }
}
