//! Graceful shutdown of the HTTP server: new connections are refused at once, requests in
//! flight finish and get their whole answer (with `Connection: close`), idle keep-alive
//! connections close, and the threads are joined — by the handle, `shutdown` or a drop.
mod http_util;
mod util;

use std::sync::mpsc;
use std::time::Duration;

use corepush::{HttpServer, Request, RequestContext, Response};
use http_util::*;
use parking_lot::Mutex;

/// A server whose `/slow` requests announce themselves on `entered`, then block until the
/// test sends on `release` (bounded by `WAIT`). Other paths answer at once.
fn slow_server(threads: usize) -> (HttpServer, mpsc::Receiver<String>, mpsc::Sender<()>) {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let handler = move |r: &Request, _: &mut RequestContext| {
        if r.path() == "/slow" {
            let _ = entered_tx.lock().send(r.uri().to_owned());
            let _ = release_rx.lock().recv_timeout(WAIT);
            return Response::text(format!("finished {}", r.uri()));
        }
        Response::text("quick")
    };
    let cfg = config("shutdown")
        .threads(threads)
        .max_threads(threads)
        .keep_alive_timeout(Duration::from_secs(600));
    (start(cfg, handler), entered, release)
}

#[test]
fn a_request_in_flight_finishes_after_shutdown_is_asked() {
    let (server, entered, release) = slow_server(2);
    let addr = server.local_addr();
    let mut slow = Client::connect(addr);
    slow.send(get("/slow?1"));
    assert_eq!(entered.recv_timeout(WAIT).unwrap(), "/slow?1");

    let handle = server.shutdown_handle();
    assert!(!handle.is_shutting_down());
    handle.shutdown();
    handle.shutdown(); // idempotent
    assert!(handle.is_shutting_down());

    // The listener is closed while the request is still being handled.
    wait_until("new connections refused", || refused(addr));
    // The request finishes, and its whole answer arrives, saying the connection closes.
    release.send(()).unwrap();
    let r = slow.response();
    assert_eq!((r.status, r.text()), (200, "finished /slow?1"));
    assert!(r.closes());
    assert!(slow.is_closed());
    within_wait("join", move || server.join()).unwrap();
    assert!(refused(addr));
}

#[test]
fn several_requests_in_flight_all_finish() {
    let (server, entered, release) = slow_server(3);
    let addr = server.local_addr();
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(get(&format!("/slow?{i}")));
    }
    for _ in 0..3 {
        entered.recv_timeout(WAIT).unwrap();
    }
    // `shutdown` blocks until the threads are done, so release the handlers meanwhile.
    let stopping = std::thread::spawn(move || server.shutdown());
    wait_until("new connections refused", || refused(addr));
    for _ in 0..3 {
        release.send(()).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.response();
        assert_eq!(r.text(), format!("finished /slow?{i}"));
        assert!(r.closes());
    }
    within_wait("shutdown", move || stopping.join().unwrap()).unwrap();
}

#[test]
fn idle_keep_alive_connections_close_at_once() {
    // The keep-alive timeout is 600 s: only shutdown can close these within the test's wait.
    let (server, _entered, _release) = slow_server(2);
    let mut idle: Vec<Client> = (0..2)
        .map(|_| Client::connect(server.local_addr()))
        .collect();
    for c in &mut idle {
        let r = c.roundtrip(get("/quick"));
        assert_eq!(r.text(), "quick");
        assert!(!r.closes());
    }
    within_wait("shutdown", move || server.shutdown()).unwrap();
    for c in &mut idle {
        assert!(c.is_closed());
    }
}

#[test]
fn a_request_that_has_arrived_is_answered_even_from_the_queue() {
    // One thread, held by a slow request; a second connection waits in the queue with its
    // request already sent when shutdown is asked. It is still answered, with a close.
    let (server, entered, release) = slow_server(1);
    let addr = server.local_addr();
    let mut slow = Client::connect(addr);
    slow.send(get("/slow?held"));
    entered.recv_timeout(WAIT).unwrap();
    let mut queued = Client::connect(addr);
    queued.send(get("/quick"));
    let stopping = std::thread::spawn(move || server.shutdown());
    wait_until("new connections refused", || refused(addr));
    release.send(()).unwrap();
    assert_eq!(slow.response().text(), "finished /slow?held");
    let r = queued.response();
    assert_eq!(r.text(), "quick");
    assert!(r.closes());
    within_wait("shutdown", move || stopping.join().unwrap()).unwrap();
}

#[test]
fn dropping_the_server_shuts_it_down() {
    let (server, _entered, _release) = slow_server(2);
    let addr = server.local_addr();
    assert_eq!(
        Client::connect(addr).roundtrip(get("/quick")).text(),
        "quick"
    );
    within_wait("drop", move || drop(server));
    assert!(refused(addr));
}
