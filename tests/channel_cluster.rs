//! The Channel backend, with two instances on a broker in the test process: pushes of every
//! kind cross instances, cluster queries and calls by id answer for the whole cluster, an
//! instance number is held once and 0 is assigned, a wrong token or an absent broker fails
//! the start, and a broker that restarts is survived.
mod util;

use std::net::SocketAddr;
use std::time::Duration;

use corepush::{
    BackendConfig, ChannelBackendConfig, ChannelConfig, ChannelServer, Error, Runtime, Server,
    ServerConfig, Workers,
};
use util::*;

/// A broker that can be stopped and started again on the same address.
struct Broker {
    server: Option<ChannelServer>,
    addr: SocketAddr,
    token: Option<&'static str>,
}

impl Broker {
    fn start(token: Option<&'static str>) -> Broker {
        let mut config = ChannelConfig::default().addr("127.0.0.1:0".parse().unwrap());
        if let Some(t) = token {
            config = config.token(t);
        }
        let server = ChannelServer::start(config).expect("a broker");
        Broker {
            addr: server.local_addr(),
            server: Some(server),
            token,
        }
    }

    fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown();
            s.join();
        }
    }

    fn restart(&mut self) {
        let mut config = ChannelConfig::default().addr(self.addr);
        if let Some(t) = self.token {
            config = config.token(t);
        }
        self.server = Some(ChannelServer::start(config).expect("the broker again"));
    }
}

struct Instance {
    rt: Option<Runtime>,
    server: Server,
    addr: SocketAddr,
}

impl Instance {
    fn start(broker: &Broker, prefix: &str, number: u16) -> corepush::Result<Instance> {
        Self::start_with(broker, prefix, number, broker.token.unwrap_or(""))
    }

    fn start_with(
        broker: &Broker,
        prefix: &str,
        number: u16,
        token: &str,
    ) -> corepush::Result<Instance> {
        let backend = BackendConfig::Channel(
            ChannelBackendConfig::default()
                .addr(broker.addr.to_string())
                .prefix(prefix)
                .token(token)
                .query_timeout(Duration::from_millis(300))
                .name(format!("test-{number}")),
        );
        let rt = Runtime::builder()
            .workers(2)
            .instance(number)
            .server(
                ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
                    .backend(backend)
                    .handler(|_| Cmd),
            )
            .start()?;
        let server = rt.server("ws").expect("handle");
        let addr = rt.local_addr("ws").expect("address");
        Ok(Instance {
            rt: Some(rt),
            server,
            addr,
        })
    }

    fn stop(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown().expect("clean shutdown");
        }
    }
}

fn pair(broker: &Broker, prefix: &str) -> (Instance, Instance) {
    let a = Instance::start(broker, prefix, 1).expect("instance 1");
    let b = Instance::start(broker, prefix, 2).expect("instance 2");
    wait_until("the instances see each other", || {
        a.server.cluster().instances() == [1, 2] && b.server.cluster().instances() == [1, 2]
    });
    (a, b)
}

#[test]
fn pushes_of_every_kind_cross_instances() {
    let broker = Broker::start(Some("secret"));
    let (a, b) = pair(&broker, "push");
    let mut on_a = Client::connect(a.addr);
    let mut on_b = Client::connect(b.addr);
    assert_eq!((on_a.id.instance(), on_b.id.instance()), (1, 2));
    assert_eq!(on_a.ask("bind:alice"), "ok");
    assert_eq!(on_b.ask("bind:alice"), "ok");
    assert_eq!(on_b.ask("join:room"), "ok");

    assert_eq!(a.server.send_raw("to b", on_b.id).unwrap(), 0);
    assert_eq!(on_b.recv(), "to b");
    assert_eq!(a.server.send_raw_by_flag("alice", "alice").unwrap(), 1);
    assert_eq!(on_a.recv(), "alice");
    assert_eq!(on_b.recv(), "alice");
    assert_eq!(a.server.send_raw_to_group("room", "room").unwrap(), 0);
    assert_eq!(on_b.recv(), "room");
    assert_eq!(
        b.server.except(on_a.id).send_raw_to_all("not a").unwrap(),
        1
    );
    assert_eq!(on_b.recv(), "not a");
    let everywhere = a
        .server
        .cluster()
        .send_message_raw("tick", Workers::All)
        .unwrap();
    assert_eq!((everywhere.value, everywhere.complete), (4, true));
    let counted = a.server.cluster().send_raw_to_all("counted").unwrap();
    assert_eq!((counted.value, counted.complete), (2, true));
    assert_eq!(on_a.recv(), "counted");
    assert_eq!(on_b.recv(), "counted");
    on_a.assert_nothing_before_marker(&a.server, "marker");
    on_b.assert_nothing_before_marker(&b.server, "marker");
    drop((on_a, on_b));
    a.stop();
    b.stop();
}

#[test]
fn queries_and_calls_by_id_answer_for_the_cluster() {
    let broker = Broker::start(None);
    let (a, b) = pair(&broker, "query");
    let on_a = Client::connect(a.addr);
    let mut on_b = Client::connect(b.addr);
    let cluster = a.server.cluster();
    assert!(cluster.exists(on_b.id).unwrap().value);
    let count = cluster.connection_count().unwrap();
    assert_eq!((count.value, count.complete), (2, true));
    let mut both = vec![on_a.id, on_b.id];
    both.sort();
    assert_eq!(cluster.connections().unwrap().value, both);
    assert!(cluster.bind(on_b.id, "bob").unwrap().value);
    assert_eq!(on_b.ask("flag"), "bob");
    assert!(cluster.flag_exists("bob").unwrap().value);
    let closed = cluster.close(on_b.id).unwrap();
    assert_eq!(closed.value, 1);
    assert_eq!(read_until_close(&mut on_b.ws), Some(1000));
    drop(on_a);
    a.stop();
    b.stop();
}

#[test]
fn an_instance_number_is_held_once_and_zero_is_assigned() {
    let broker = Broker::start(None);
    let a = Instance::start(&broker, "claim", 1).expect("instance 1");
    match Instance::start(&broker, "claim", 1) {
        Err(Error::Config(m)) => assert!(m.contains("refused instance 1"), "{m}"),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("two instances hold number 1"),
    }
    let other = Instance::start(&broker, "elsewhere", 1).expect("another prefix");
    let auto = Instance::start(&broker, "claim", 0).expect("a number assigned");
    let on_auto = Client::connect(auto.addr);
    assert_eq!(on_auto.id.instance(), 2);
    drop(on_auto);
    auto.stop();
    other.stop();
    a.stop();
    // Given back at shutdown: the number can be held again at once.
    let again = Instance::start(&broker, "claim", 1).expect("held again after a stop");
    again.stop();
}

#[test]
fn a_wrong_token_or_no_broker_fails_the_start() {
    let mut broker = Broker::start(Some("secret"));
    match Instance::start_with(&broker, "token", 1, "guess") {
        Err(Error::Config(m)) => assert!(m.contains("token"), "{m}"),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("started with a wrong token"),
    }
    broker.stop();
    match Instance::start(&broker, "token", 1) {
        Err(Error::Backend(e)) => assert!(!e.to_string().is_empty()),
        Err(e) => panic!("expected a backend error, got {e}"),
        Ok(_) => panic!("started without a broker"),
    }
}

#[test]
fn a_broker_restart_is_survived() {
    let mut broker = Broker::start(Some("secret"));
    let (a, b) = pair(&broker, "restart");
    an_engine_restart_is_survived("the broker", &a.server, a.addr, b.addr, |up| {
        if up { broker.restart() } else { broker.stop() }
    });
    a.stop();
    b.stop();
}

#[test]
fn cut_off_from_the_broker_cluster_answers_fail_rather_than_answer_alone() {
    let mut broker = Broker::start(None);
    let (a, b) = pair(&broker, "cutoff");
    let on_b = Client::connect(b.addr);
    broker.stop();
    wait_until("the other instance has expired", || {
        a.server.cluster().instances() == [1]
    });
    assert!(matches!(
        a.server.cluster().connection_count(),
        Err(Error::Backend(_))
    ));
    drop(on_b);
    a.stop();
    b.stop();
}
