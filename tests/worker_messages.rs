//! Worker messages: `send_message` to one, some or all core loops runs the action callback
//! once per targeted loop, unregistered actions reach `on_worker_message`, raw messages reach
//! `on_worker_message_raw`, and core loops that do not exist are skipped.
mod util;

use std::time::Instant;

use corepush::{
    Context, Handler, Message, Runtime, Server, ServerConfig, WorkerContext, WorkerId,
    WorkerMessage, Workers,
};
use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};
use util::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
    n: u32,
}

/// What a callback saw: the core loop it ran on, which callback, and the payload as text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    worker: usize,
    kind: &'static str,
    payload: String,
}

/// Records every worker-message callback into a channel the test reads.
struct Recorder {
    events: Sender<Event>,
}

impl Recorder {
    fn record(&self, ctx: &WorkerContext<'_>, kind: &'static str, payload: String) {
        let event = Event {
            worker: ctx.worker().index(),
            kind,
            payload,
        };
        self.events.send(event).expect("the test is listening");
    }
}

impl Handler for Recorder {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let text = message.as_text().unwrap_or("");
        let reply = match text.split_once(':') {
            None if text == "id" => ctx.client_id().to_string(),
            // Tells another core loop from inside a handler.
            Some(("tell", w)) => {
                let w = WorkerId(w.parse().unwrap());
                let note = Note {
                    text: format!("from {}", ctx.worker()),
                    n: 0,
                };
                let n = ctx.server().send_message("note", &note, w).unwrap();
                format!("sent:{n}")
            }
            _ => format!("unknown:{text}"),
        };
        ctx.send_raw(reply).unwrap();
    }

    fn on_worker_message(&mut self, ctx: &mut WorkerContext<'_>, message: &WorkerMessage<'_>) {
        let payload = String::from_utf8(message.data().to_vec()).unwrap();
        let kind = if message.action() == "marker" {
            "marker"
        } else {
            "unregistered"
        };
        self.record(ctx, kind, format!("{}={payload}", message.action()));
    }

    fn on_worker_message_raw(&mut self, ctx: &mut WorkerContext<'_>, data: &[u8]) {
        self.record(ctx, "raw", format!("{data:?}"));
    }
}

fn start(name: &str) -> (Runtime, Server, Receiver<Event>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let spec = ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
        .handler(move |_| Recorder { events: tx.clone() })
        .action("note", |h, ctx, msg| {
            let note: Note = msg.decode().expect("a Note");
            h.record(ctx, "note", format!("{}#{}", note.text, note.n));
        })
        .action("broadcast", |_, ctx, msg| {
            let text: String = msg.decode().unwrap();
            let reply = format!("{text} from {}", ctx.worker());
            ctx.this_worker().send_raw_to_all(reply).unwrap();
        });
    let rt = Runtime::builder().workers(2).server(spec).start().unwrap();
    let server = rt.server(name).unwrap();
    (rt, server, rx)
}

/// Sends a `marker` worker message to every core loop and returns, sorted, every event
/// recorded before each loop's marker. A core loop runs its mailbox in order, so whatever an
/// earlier call caused on a loop is recorded before that loop's marker.
fn events_until_marker(server: &Server, rx: &Receiver<Event>) -> Vec<Event> {
    assert_eq!(server.send_message("marker", &0, Workers::All).unwrap(), 2);
    let deadline = Instant::now() + WAIT;
    let mut before = Vec::new();
    let mut markers = 0;
    while markers < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no marker within {WAIT:?}; got {before:?}"));
        if event.kind == "marker" {
            markers += 1;
        } else {
            before.push(event);
        }
    }
    before.sort();
    before
}

fn note(worker: usize, text: &str, n: u32) -> Event {
    Event {
        worker,
        kind: "note",
        payload: format!("{text}#{n}"),
    }
}

#[test]
fn an_action_runs_once_on_each_targeted_core_loop() {
    let (rt, server, rx) = start("wm-action");
    let hi = Note {
        text: "hi".into(),
        n: 7,
    };
    let n = std::thread::scope(|s| {
        s.spawn(|| server.send_message("note", &hi, Workers::All).unwrap())
            .join()
            .unwrap()
    });
    assert_eq!(n, 2);
    assert_eq!(
        events_until_marker(&server, &rx),
        vec![note(0, "hi", 7), note(1, "hi", 7)]
    );
    // None means every core loop too.
    assert_eq!(server.send_message("note", &hi, None).unwrap(), 2);
    assert_eq!(
        events_until_marker(&server, &rx),
        vec![note(0, "hi", 7), note(1, "hi", 7)]
    );
    rt.shutdown().unwrap();
}

#[test]
fn one_or_some_core_loops_and_out_of_range_indices_are_skipped() {
    let (rt, server, rx) = start("wm-some");
    let n = |text: &str, workers: Workers| {
        let note = Note {
            text: text.into(),
            n: 1,
        };
        server.send_message("note", &note, workers).unwrap()
    };
    let counts = [
        n("one", WorkerId(1).into()),
        n("both", [WorkerId(0), WorkerId(1)].into()),
        n("dup", vec![WorkerId(1), WorkerId(1), WorkerId(1)].into()),
        n(
            "partly",
            vec![WorkerId(9), WorkerId(0), WorkerId(200)].into(),
        ),
        n("nowhere", [WorkerId(2), WorkerId(255)].into()),
        n("empty", Vec::new().into()),
    ];
    assert_eq!(counts, [1, 2, 1, 1, 0, 0]);
    assert_eq!(
        events_until_marker(&server, &rx),
        vec![
            note(0, "both", 1),
            note(0, "partly", 1),
            note(1, "both", 1),
            note(1, "dup", 1),
            note(1, "one", 1),
        ]
    );
    let raw = server.send_message_raw("x", [WorkerId(3)]).unwrap();
    assert_eq!(raw, 0);
    assert!(events_until_marker(&server, &rx).is_empty());
    rt.shutdown().unwrap();
}

#[test]
fn unregistered_actions_and_raw_messages_reach_the_handler() {
    let (rt, server, rx) = start("wm-fallback");
    assert_eq!(
        server
            .send_message(
                "no-such-action",
                &serde_json::json!({"k": [1, 2]}),
                WorkerId(0)
            )
            .unwrap(),
        1
    );
    assert_eq!(
        server.send_message_raw("raw text", Workers::All).unwrap(),
        2
    );
    assert_eq!(
        server
            .send_message_raw(vec![0u8, 255], [WorkerId(1)])
            .unwrap(),
        1
    );
    let unregistered = Event {
        worker: 0,
        kind: "unregistered",
        payload: r#"no-such-action={"k":[1,2]}"#.into(),
    };
    let raw = |worker, payload: &str| Event {
        worker,
        kind: "raw",
        payload: payload.into(),
    };
    let text_bytes = format!("{:?}", b"raw text");
    let mut expected = vec![
        unregistered,
        raw(0, &text_bytes),
        raw(1, &text_bytes),
        raw(1, "[0, 255]"),
    ];
    expected.sort();
    assert_eq!(events_until_marker(&server, &rx), expected);
    rt.shutdown().unwrap();
}

#[test]
fn an_action_pushes_to_the_connections_of_its_own_core_loop() {
    let (rt, server, rx) = start("wm-push");
    let addr = rt.local_addr("wm-push").unwrap();
    let mut by_worker = clients_by_worker(addr, 2, 2);
    assert_eq!(
        server
            .send_message("broadcast", &"hello", Workers::All)
            .unwrap(),
        2
    );
    for (w, clients) in by_worker.iter_mut().enumerate() {
        for c in clients {
            assert_eq!(c.recv(), format!("hello from {w}"));
        }
    }
    assert_eq!(
        server
            .send_message("broadcast", &"only", WorkerId(1))
            .unwrap(),
        1
    );
    for c in &mut by_worker[1] {
        assert_eq!(c.recv(), "only from 1");
    }
    for c in by_worker.iter_mut().flatten() {
        c.assert_nothing_before_marker(&server, "marker");
    }

    // From inside a handler, to the other core loop.
    let from0 = &mut by_worker[0][0];
    assert_eq!(from0.ask("tell:1"), "sent:1");
    let from1 = &mut by_worker[1][0];
    assert_eq!(from1.ask("tell:0"), "sent:1");
    assert_eq!(
        events_until_marker(&server, &rx),
        vec![note(0, "from 1", 0), note(1, "from 0", 0)]
    );
    drop(by_worker);
    rt.shutdown().unwrap();
}
