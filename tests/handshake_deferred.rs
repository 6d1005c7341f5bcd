//! The deferred handshake hook (`ServerSpec::on_handshake_deferred`): an answer from another
//! thread 200 ms later opens the client with its flag and data in place in `on_open` and
//! visible to other threads as soon as the client holds its 101; no answer drops the client
//! at the handshake timeout (a handshake failure; a late answer does nothing); a refusal and
//! a dropped reply reach the client as their HTTP status.
mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use corepush::{
    Accept, Context, Handler, HandshakeReply, Message, Rejection, Runtime, Server, ServerConfig,
};
use crossbeam_channel::{Receiver, Sender, unbounded};
use util::*;

/// What `on_open` saw: the flag and the `role` data.
type Opened = (Option<String>, Option<String>);

struct Recorder {
    opened: Sender<Opened>,
}

impl Handler for Recorder {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = self.opened.send((ctx.flag(), ctx.get::<String>("role")));
    }
    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

struct Deferred {
    _rt: Runtime,
    addr: SocketAddr,
    server: Server,
    opened: Receiver<Opened>,
    /// The replies of `/hold` clients, kept unanswered.
    held: Receiver<HandshakeReply>,
}

/// The hook by path: `/later` accepts as alice from another thread after 200 ms, `/hold`
/// never answers, `/refuse` refuses from another thread, `/drop` drops its reply, anything
/// else is accepted at once on the core loop.
fn start(name: &str) -> Deferred {
    let (opened_tx, opened) = unbounded();
    let (held_tx, held) = unbounded::<HandshakeReply>();
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .handshake_timeout(Duration::from_millis(300))
                .handler(move |_| Recorder {
                    opened: opened_tx.clone(),
                })
                .on_handshake_deferred(move |request, reply| match request.path() {
                    "/later" => {
                        std::thread::spawn(move || {
                            // The delay is what this test is about, not a synchronisation.
                            std::thread::sleep(Duration::from_millis(200));
                            reply.accept(
                                Accept::new().flag("alice").data("role", "admin".to_owned()),
                            );
                        });
                    }
                    "/hold" => {
                        let _ = held_tx.send(reply);
                    }
                    "/refuse" => {
                        std::thread::spawn(move || {
                            reply.reject(Rejection::unauthorized().body("who are you"));
                        });
                    }
                    "/drop" => drop(reply),
                    _ => reply.accept(Accept::new().flag("now")),
                }),
        )
        .start()
        .unwrap();
    let addr = rt.local_addr(name).unwrap();
    let server = corepush::get_server(name).unwrap();
    Deferred {
        _rt: rt,
        addr,
        server,
        opened,
        held,
    }
}

#[test]
fn an_answer_from_another_thread_opens_the_client_bound() {
    let d = start("deferred-later");
    let began = Instant::now();
    let _ws = connect_path(d.addr, "/later");
    // The client holds its 101: the flag is visible to this thread already.
    assert_eq!(d.server.flag_clients("alice").len(), 1);
    assert!(began.elapsed() >= Duration::from_millis(200));
    let seen = d.opened.recv_timeout(WAIT).expect("on_open");
    assert_eq!(seen, (Some("alice".into()), Some("admin".into())));
    let id = d.server.flag_clients("alice")[0];
    assert_eq!(
        d.server.data::<String>(id, "role").as_deref(),
        Some("admin")
    );
}

#[test]
fn an_answer_on_the_core_loop_itself_opens_the_client() {
    let d = start("deferred-now");
    let _ws = connect_path(d.addr, "/");
    assert_eq!(d.server.flag_clients("now").len(), 1);
    let seen = d.opened.recv_timeout(WAIT).expect("on_open");
    assert_eq!(seen.0.as_deref(), Some("now"));
}

#[test]
fn no_answer_drops_the_client_at_the_handshake_timeout() {
    let d = start("deferred-hold");
    let mut s = tcp(d.addr);
    s.write_all(upgrade_request(d.addr, "/hold", &[]).as_bytes())
        .unwrap();
    let reply = d.held.recv_timeout(WAIT).expect("the hook ran");
    let began = Instant::now();
    let answer = read_to_close(&mut s);
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    assert!(began.elapsed() < WAIT);
    settle("handshake failures", 1, || {
        d.server.stats().handshake_failures
    });
    // Too late: nothing opens.
    reply.accept(Accept::new().flag("late"));
    let _ws = connect_path(d.addr, "/");
    assert_eq!(
        d.opened.recv_timeout(WAIT).unwrap().0.as_deref(),
        Some("now")
    );
    assert!(d.server.flag_clients("late").is_empty());
    assert_eq!(d.server.connection_count(), 1);
}

#[test]
fn a_refusal_from_another_thread_reaches_the_client() {
    let d = start("deferred-refuse");
    let mut s = tcp(d.addr);
    s.write_all(upgrade_request(d.addr, "/refuse", &[]).as_bytes())
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert_eq!(status_of(&answer), 401, "{answer}");
    assert!(answer.ends_with("who are you"), "{answer}");
    settle("rejected", 1, || d.server.stats().rejected);
    assert_eq!(d.server.connection_count(), 0);
}

#[test]
fn a_dropped_reply_refuses_with_500() {
    let d = start("deferred-drop");
    let mut s = tcp(d.addr);
    s.write_all(upgrade_request(d.addr, "/drop", &[]).as_bytes())
        .unwrap();
    let answer = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert_eq!(status_of(&answer), 500, "{answer}");
    assert!(d.opened.try_recv().is_err());
}
