//! Faults of a gateway deployment: a business process restarted (the clients stay, their
//! events wait and are served in order by the next one), the bound on events kept while no
//! business process is connected, a gateway restarted on the same internal port (the business
//! process relinks by itself), and a wrong secret refused.
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{
    BackendConfig, Error, GatewayBackendConfig, GatewayConfig, GatewayHandle, Runtime, ServerConfig,
};
use tungstenite::Message as WsMessage;
use util::{Client, Cmd, connect, read_until_close, recv_text, wait_until};

const SECRET: &str = "faults";
const NAME: &str = "ws";

/// A gateway, instance `number`, taking business processes on `internal`.
fn gateway(number: u16, config: GatewayConfig) -> Runtime {
    Runtime::builder()
        .workers(2)
        .instance(number)
        .server(ServerConfig::websocket(NAME, "127.0.0.1:0".parse().unwrap()).gateway(config))
        .start()
        .expect("a gateway")
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A business process of these gateways, with this secret.
fn business(gateways: &[SocketAddr], secret: &str) -> corepush::Result<Runtime> {
    let backend = BackendConfig::Gateway(
        GatewayBackendConfig::new(gateways.iter().map(ToString::to_string), secret)
            .query_timeout(Duration::from_millis(500)),
    );
    Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(NAME, any_port())
                .listen(false)
                .backend(backend)
                .handler(|_| Cmd),
        )
        .start()
}

fn hub(rt: &Runtime) -> GatewayHandle {
    rt.gateway(NAME).expect("a gateway server")
}

fn internal(rt: &Runtime) -> SocketAddr {
    hub(rt).internal_addr().expect("listening")
}

#[test]
fn a_business_restart_drops_no_client() {
    const CLIENTS: usize = 6;
    const N: usize = 20;
    let gw = gateway(1, GatewayConfig::new(any_port(), SECRET));
    let addr = gw.local_addr(NAME).unwrap();
    let first = business(&[internal(&gw)], SECRET).expect("business 1");
    let second = business(&[internal(&gw)], SECRET).expect("business 2");
    wait_until("both business processes linked", || {
        hub(&gw).businesses() == 2
    });
    let mut cs: Vec<Client> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    for (i, c) in cs.iter_mut().enumerate() {
        assert_eq!(c.ask(&format!("echo:{i}")), i.to_string());
    }
    // One goes away: every client is served by the other.
    first.shutdown().expect("business 1 stops");
    wait_until("the gateway sees business 1 leave", || {
        hub(&gw).businesses() == 1
    });
    for (i, c) in cs.iter_mut().enumerate() {
        assert_eq!(c.ask(&format!("echo:again-{i}")), format!("again-{i}"));
    }
    // None: what the clients send waits at the gateway.
    second.shutdown().expect("business 2 stops");
    wait_until("the gateway sees business 2 leave", || {
        hub(&gw).businesses() == 0
    });
    let forwarded = hub(&gw).forwarded_events();
    for c in cs.iter_mut() {
        for k in 0..N {
            c.say(&format!("echo:{k}"));
        }
    }
    wait_until("every message waits at the gateway", || {
        hub(&gw).pending_events() == CLIENTS * N
    });
    assert_eq!(hub(&gw).forwarded_events(), forwarded);
    assert_eq!(gw.server(NAME).unwrap().connection_count(), CLIENTS);
    // A new business process serves every waiting message, in order.
    let third = business(&[internal(&gw)], SECRET).expect("business 3");
    for c in cs.iter_mut() {
        for k in 0..N {
            assert_eq!(c.recv(), k.to_string(), "client {}", c.id);
        }
        assert_eq!(c.ask("echo:after"), "after");
    }
    assert_eq!(hub(&gw).pending_events(), 0);
    assert_eq!(hub(&gw).dropped_events(), 0);
    assert_eq!(gw.server(NAME).unwrap().connection_count(), CLIENTS);
    let ids: Vec<_> = cs.iter().map(|c| c.id).collect();
    let all = third.server(NAME).unwrap().cluster().connections().unwrap();
    assert!(all.complete);
    let mut want = ids.clone();
    want.sort_unstable();
    assert_eq!(all.value, want, "no client was disconnected");
    drop(cs);
    third.shutdown().unwrap();
    gw.shutdown().unwrap();
}

#[test]
fn events_past_the_pending_bound_are_dropped_and_counted() {
    const SENT: usize = 7;
    let gw = gateway(
        1,
        GatewayConfig::new(any_port(), SECRET).max_pending_events(3),
    );
    let mut ws = connect(gw.local_addr(NAME).unwrap());
    for k in 0..SENT {
        ws.send(WsMessage::text(format!("echo:{k}"))).unwrap();
    }
    // The open is an event too: it and the first two messages are kept, the rest dropped.
    wait_until("the bound is reached and the rest counted", || {
        hub(&gw).pending_events() == 3 && hub(&gw).dropped_events() == (SENT - 2) as u64
    });
    let biz = business(&[internal(&gw)], SECRET).expect("a business process");
    assert_eq!(recv_text(&mut ws), "0");
    assert_eq!(recv_text(&mut ws), "1");
    // Later events are served as usual, and nothing more is dropped.
    ws.send(WsMessage::text("echo:later")).unwrap();
    assert_eq!(recv_text(&mut ws), "later");
    ws.send(WsMessage::text("path")).unwrap();
    assert_eq!(recv_text(&mut ws), "/", "the kept open ran on_open");
    assert_eq!(hub(&gw).pending_events(), 0);
    assert_eq!(hub(&gw).dropped_events(), (SENT - 2) as u64);
    drop(ws);
    biz.shutdown().unwrap();
    gw.shutdown().unwrap();
}

#[test]
fn a_gateway_restart_on_the_same_port_is_relinked() {
    let gw1 = gateway(1, GatewayConfig::new(any_port(), SECRET));
    let gw2 = gateway(2, GatewayConfig::new(any_port(), SECRET));
    let port1 = internal(&gw1);
    let biz = business(&[port1, internal(&gw2)], SECRET).expect("a business process");
    let server = biz.server(NAME).unwrap();
    wait_until("both gateways live", || {
        server.cluster().instances() == [0, 1, 2]
    });
    let mut on1 = Client::connect(gw1.local_addr(NAME).unwrap());
    let mut on2 = Client::connect(gw2.local_addr(NAME).unwrap());
    assert_eq!(on1.id.instance(), 1);
    assert_eq!(on2.id.instance(), 2);
    assert_eq!(on1.ask("echo:one"), "one");
    assert_eq!(on2.ask("bind:u"), "ok");
    assert_eq!(on2.ask("join:g"), "ok");
    // Gateway 1 stops: its client sees its connection end.
    let reader = std::thread::spawn(move || read_until_close(&mut on1.ws));
    gw1.shutdown().expect("gateway 1 stops");
    assert_eq!(reader.join().expect("the reader"), Some(1001));
    wait_until("the business process drops gateway 1", || {
        server.cluster().instances() == [0, 2]
    });
    // Gateway 2's clients are served on.
    assert_eq!(on2.ask("echo:two"), "two");
    server.send_raw_by_flag("by-flag", "u").unwrap();
    assert_eq!(on2.recv(), "by-flag");
    let sent = server.cluster().send_raw_to_group("g", "to-g").unwrap();
    assert_eq!((sent.value, sent.complete), (1, true));
    assert_eq!(on2.recv(), "to-g");
    // Gateway 1 again, on the same internal port: the business process relinks by itself.
    let gw1 = gateway(1, GatewayConfig::new(port1, SECRET));
    assert_eq!(internal(&gw1), port1);
    wait_until("the business process relinks gateway 1", || {
        hub(&gw1).businesses() == 1 && server.cluster().instances() == [0, 1, 2]
    });
    let mut again = Client::connect(gw1.local_addr(NAME).unwrap());
    assert_eq!(again.id.instance(), 1);
    assert_eq!(again.ask("echo:back"), "back");
    assert_eq!(again.ask("bind:u"), "ok");
    let sent = server.cluster().send_raw_by_flag("both", "u").unwrap();
    assert_eq!((sent.value, sent.complete), (2, true));
    assert_eq!(again.recv(), "both");
    assert_eq!(on2.recv(), "both");
    drop((again, on2));
    biz.shutdown().unwrap();
    gw1.shutdown().unwrap();
    gw2.shutdown().unwrap();
}

#[test]
fn a_wrong_secret_is_refused() {
    let gw = gateway(1, GatewayConfig::new(any_port(), SECRET));
    match business(&[internal(&gw)], "not the secret") {
        Err(Error::Config(msg)) => assert!(msg.contains("wrong secret"), "{msg}"),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("a business process with a wrong secret was linked"),
    }
    assert_eq!(hub(&gw).businesses(), 0);
    // The gateway still takes the right one.
    let biz = business(&[internal(&gw)], SECRET).expect("a business process");
    wait_until("the right secret is linked", || hub(&gw).businesses() == 1);
    biz.shutdown().unwrap();
    gw.shutdown().unwrap();
}

#[test]
fn clients_whose_events_waited_stay_with_the_business_process_that_took_them() {
    const CLIENTS: usize = 4;
    let gw = gateway(1, GatewayConfig::new(any_port(), SECRET));
    let addr = gw.local_addr(NAME).unwrap();
    // No business process yet: each client's open and first message wait.
    let mut ws: Vec<_> = (0..CLIENTS).map(|_| connect(addr)).collect();
    for (i, w) in ws.iter_mut().enumerate() {
        w.send(WsMessage::text(format!("set:k:{i}"))).unwrap();
    }
    wait_until("the opens and messages wait", || {
        hub(&gw).pending_events() == 2 * CLIENTS
    });
    let first = business(&[internal(&gw)], SECRET).expect("business 1");
    for w in ws.iter_mut() {
        assert_eq!(recv_text(w), "ok");
    }
    // A second business process connects: the clients the first one took stay with it, so
    // what its handler stored for them is there.
    let second = business(&[internal(&gw)], SECRET).expect("business 2");
    wait_until("both business processes linked", || {
        hub(&gw).businesses() == 2
    });
    for (i, w) in ws.iter_mut().enumerate() {
        w.send(WsMessage::text("get:k")).unwrap();
        assert_eq!(recv_text(w), i.to_string(), "client {i} moved");
        w.send(WsMessage::text("path")).unwrap();
        assert_eq!(recv_text(w), "/", "client {i}");
    }
    drop(ws);
    second.shutdown().unwrap();
    first.shutdown().unwrap();
    gw.shutdown().unwrap();
}

#[test]
fn a_business_process_that_stops_under_traffic_loses_no_event() {
    const CLIENTS: usize = 4;
    const K: usize = 3000;
    let gw = gateway(1, GatewayConfig::new(any_port(), SECRET));
    let addr = gw.local_addr(NAME).unwrap();
    let leaving = business(&[internal(&gw)], SECRET).expect("business 1");
    let staying = business(&[internal(&gw)], SECRET).expect("business 2");
    wait_until("both business processes linked", || {
        hub(&gw).businesses() == 2
    });
    // Clients on both business processes (round robin at open), each sending a numbered
    // stream without waiting for the replies.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let mut client = Client::connect(addr);
            std::thread::spawn(move || {
                for i in 0..K {
                    client.say(&format!("echo:{c}-{i}"));
                }
                let mut got: Vec<String> = (0..K).map(|_| client.recv()).collect();
                got.sort();
                let mut want: Vec<String> = (0..K).map(|i| format!("{c}-{i}")).collect();
                want.sort();
                assert_eq!(got, want, "client {c}: every message answered once");
            })
        })
        .collect();
    // Stop one business process while the streams flow.
    let before = hub(&gw).forwarded_events();
    wait_until("the streams are flowing", || {
        hub(&gw).forwarded_events() >= before + (CLIENTS * K / 8) as u64
    });
    leaving.shutdown().expect("business 1 stops");
    for c in clients {
        c.join().expect("every reply arrived");
    }
    assert_eq!(hub(&gw).dropped_events(), 0);
    assert_eq!(hub(&gw).businesses(), 1);
    drop(staying);
}
