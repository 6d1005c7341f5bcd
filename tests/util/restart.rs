//! What every cluster backend owes when the engine its instances meet on (Redis, a channel
//! broker) goes away and comes back.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corepush::{Error, Server};

use super::{Client, WAIT, wait_until};

/// Two instances of one cluster, `a` and the one listening on `b_addr`: while the engine
/// (`engine`, for the messages) is down — `up(false)` takes it away — a send that needs it
/// fails with [`Error::Backend`] and a local one still arrives; once `up(true)` has brought it
/// back, a push from `a` crosses to a client of the other instance within 2 s.
pub fn an_engine_restart_is_survived(
    engine: &str,
    a: &Server,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    mut up: impl FnMut(bool),
) {
    let mut on_a = Client::connect(a_addr);
    let mut on_b = Client::connect(b_addr);
    up(false);
    // Sends that need the engine fail visibly once the transport has noticed; local ones go on.
    wait_until(&format!("a send that needs {engine} fails"), || {
        matches!(a.send_raw_to_all("lost?"), Err(Error::Backend(_)))
    });
    // Whatever the failed attempts left behind, the next marker proves the order.
    assert_eq!(
        a.worker(on_a.id.worker())
            .send_raw("local", on_a.id)
            .unwrap(),
        1
    );
    loop {
        if on_a.recv() == "local" {
            break;
        }
    }
    up(true);
    let back = Instant::now();
    // Pushes flow again: keep trying until one crosses (every attempt is bounded).
    let mut n = 0;
    on_b.ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let crossed = loop {
        assert!(
            back.elapsed() < WAIT,
            "no push crossed after {engine} came back"
        );
        n += 1;
        let _ = a.send_raw(format!("again {n}"), on_b.id);
        match on_b.ws.read() {
            Ok(tungstenite::Message::Text(t)) if t.starts_with("again") => break back.elapsed(),
            _ => {}
        }
    };
    assert!(
        crossed < Duration::from_secs(2),
        "pushes flowed again only after {crossed:?}"
    );
}
