//! Slow consumers: a client that stops reading while a foreign thread pushes 64 KiB messages
//! at everyone. Past `max_outbound_bytes` its policy applies — closed (1008) or its messages
//! dropped — counted in `Stats` and logged once; the healthy clients, one of them on the
//! slow client's own core loop, get every message in order and on time, and the process's
//! resident memory stays bounded.
mod util;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corepush::{ClientId, Raw, Runtime, Server, ServerConfig, SlowConsumer};
use log::Level;
use parking_lot::Mutex;
use socket2::{Domain, Socket, Type};
use tungstenite::Message as WsMessage;
use util::*;

/// Size of each pushed message.
const MESSAGE: usize = 64 << 10;
/// `max_outbound_bytes` of the server.
const LIMIT: usize = 1 << 20;
/// At most this many bytes are pushed (1024 messages, 64 times the limit).
const TOTAL: usize = 64 << 20;
/// How many messages a healthy client may be behind the pusher. 8 × 64 KiB is half the
/// limit, so a client that reads never reaches it, however the threads are scheduled.
const WINDOW: u64 = 8;
/// The most a healthy client may wait for a message: generous, a check that it is not
/// starved behind the slow one, not a benchmark.
const LATENCY: Duration = Duration::from_secs(2);
/// The longest the pushing may take, even on a loaded machine.
const PUSH_TIME: Duration = Duration::from_secs(60);

/// Resident memory is process-wide: the tests of this file take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn start(name: &str, policy: SlowConsumer) -> (Runtime, SocketAddr, Server) {
    capture_logs();
    start_config(
        ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
            .max_outbound_bytes(LIMIT)
            .slow_consumer(policy)
            // Nobody sends during the test: keepalive pings would only add noise.
            .idle_timeout(None),
    )
}

/// A client whose receive buffer is small (64 KiB asked, the kernel doubles it), so that
/// the server's queue, not the kernel's buffers, takes the backlog once it stops reading.
fn small_buffer_client(addr: SocketAddr) -> Client {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(64 << 10).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), stream).expect("handshake");
    ws.send(WsMessage::text("id")).unwrap();
    let id = recv_text(&mut ws).parse().expect("an id");
    Client { ws, id }
}

/// A pushed message: its sequence number and when it was pushed, in microseconds since
/// `epoch`, then padding.
fn message(seq: u64, epoch: Instant) -> Vec<u8> {
    let mut bytes = vec![0u8; MESSAGE];
    bytes[..8].copy_from_slice(&seq.to_be_bytes());
    let micros = epoch.elapsed().as_micros() as u64;
    bytes[8..16].copy_from_slice(&micros.to_be_bytes());
    bytes
}

fn seq_of(bytes: &[u8]) -> u64 {
    u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"))
}

fn latency_of(bytes: &[u8], epoch: Instant) -> Duration {
    let pushed = Duration::from_micros(u64::from_be_bytes(
        bytes[8..16].try_into().expect("8 bytes"),
    ));
    epoch.elapsed().saturating_sub(pushed)
}

/// A reading client on its own thread: it checks that messages come in order, none
/// missing, each within `LATENCY`, until the text `end`; returns how many it got, and the
/// client, still connected.
struct Healthy {
    id: ClientId,
    received: Arc<AtomicU64>,
    thread: JoinHandle<(u64, Ws)>,
}

impl Healthy {
    fn spawn(client: Client, epoch: Instant) -> Healthy {
        let Client { mut ws, id } = client;
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let thread = std::thread::spawn(move || {
            loop {
                match ws.read() {
                    Ok(WsMessage::Binary(bytes)) => {
                        let expected = count.load(Ordering::Acquire);
                        assert_eq!(seq_of(&bytes), expected, "client {id}: out of order");
                        let latency = latency_of(&bytes, epoch);
                        assert!(
                            latency < LATENCY,
                            "client {id}: message {expected} took {latency:?}"
                        );
                        count.store(expected + 1, Ordering::Release);
                    }
                    Ok(WsMessage::Text(t)) if t.as_str() == "end" => {
                        return (count.load(Ordering::Acquire), ws);
                    }
                    other => panic!("client {id}: unexpected {other:?}"),
                }
            }
        });
        Healthy {
            id,
            received,
            thread,
        }
    }
}

/// What a run of pushes came to.
struct Pushed {
    sent: u64,
    /// Peak resident memory above the level before the pushes, in bytes.
    growth: usize,
}

/// Pushes 64 KiB messages at everyone, never more than `WINDOW` ahead of the healthy
/// clients, until `TOTAL` bytes or `done` (bounded by `PUSH_TIME`); then `end` to the healthy
/// clients, and waits for them to get it. Samples the resident memory on the way.
fn push(server: &Server, healthy: &[Healthy], epoch: Instant, done: impl Fn() -> bool) -> Pushed {
    let before = vm_rss();
    let mut peak = before;
    let mut sent = 0;
    let started = Instant::now();
    while sent < (TOTAL / MESSAGE) as u64 && !done() {
        assert!(
            started.elapsed() < PUSH_TIME,
            "pushed only {sent} messages in {PUSH_TIME:?}"
        );
        wait_until("the healthy clients keep up", || {
            healthy
                .iter()
                .all(|h| h.received.load(Ordering::Acquire) + WINDOW > sent)
        });
        server
            .send_raw_to_all(Raw::binary(message(sent, epoch)))
            .unwrap();
        sent += 1;
        if sent % 16 == 0 {
            peak = peak.max(vm_rss());
        }
    }
    peak = peak.max(vm_rss());
    let ids: Vec<ClientId> = healthy.iter().map(|h| h.id).collect();
    assert_eq!(server.send_raw("end", ids).unwrap(), healthy.len());
    Pushed {
        sent,
        growth: peak.saturating_sub(before),
    }
}

/// The bound on resident memory growth while pushing. What the server holds: the slow
/// client's queue, at most `LIMIT` plus one message; the healthy clients' queues and the
/// mailboxes, at most `WINDOW` messages, shared with the slow queue (a push is framed once
/// for all its receivers). What the test holds: one message being built and framed, and the
/// readers' buffers. All that is under 4 MiB; the rest is room for the allocator and the
/// threads. Without the limit, the slow client's queue alone would grow past 50 MiB (64 MiB
/// pushed, a few in the kernel's socket buffers).
const MAX_GROWTH: usize = 16 * LIMIT;

/// One healthy client on each core loop, and a slow one that shares a loop with one of them.
fn clients(addr: SocketAddr, epoch: Instant) -> (Vec<Healthy>, Client) {
    let healthy = clients_by_worker(addr, 2, 1)
        .into_iter()
        .flatten()
        .map(|c| Healthy::spawn(c, epoch))
        .collect();
    (healthy, small_buffer_client(addr))
}

/// How many messages each healthy client got, and the clients.
fn join(healthy: Vec<Healthy>) -> (Vec<u64>, Vec<Ws>) {
    healthy
        .into_iter()
        .map(|h| h.thread.join().expect("a healthy client failed"))
        .unzip()
}

#[test]
fn a_slow_consumer_is_closed_with_1008() {
    let _turn = ONE_AT_A_TIME.lock();
    let (rt, addr, server) = start("slow-close", SlowConsumer::Close);
    let epoch = Instant::now();
    let (healthy, mut slow) = clients(addr, epoch);
    let pushed = push(&server, &healthy, epoch, || {
        server.stats().slow_consumer_closes > 0
    });
    let (received, healthy) = join(healthy);
    assert_eq!(
        received,
        vec![pushed.sent; 2],
        "messages per healthy client"
    );
    let stats = server.stats();
    assert_eq!(
        stats.slow_consumer_closes, 1,
        "after {} messages",
        pushed.sent
    );
    // The message that found its queue full, and any counted to it before the close took its
    // place, are dropped and counted.
    assert!(stats.dropped >= 1, "dropped {}", stats.dropped);
    // Unregistered at once, though its socket stays until it takes its close frame.
    assert!(!server.exists(slow.id));
    assert_eq!(server.connection_count(), 2);
    assert!(
        pushed.growth < MAX_GROWTH,
        "resident memory grew by {} bytes",
        pushed.growth
    );
    let closing = log_lines(
        Level::Warn,
        &[&format!("client {} is not keeping up", slow.id)],
    );
    assert_eq!(closing.len(), 1, "{closing:?}");

    // Reading again, it gets what was queued before the limit, in order and without a gap,
    // then the close frame.
    let mut next = 0;
    let code = loop {
        match slow.ws.read() {
            Ok(WsMessage::Binary(bytes)) => {
                assert_eq!(seq_of(&bytes), next);
                next += 1;
            }
            Ok(WsMessage::Close(frame)) => break frame.map(|f| u16::from(f.code)),
            other => panic!("the slow client got {other:?} after {next} messages"),
        }
    };
    assert_eq!(code, Some(1008));
    assert!(next < pushed.sent, "{next} of {} messages", pushed.sent);

    drop((slow, healthy));
    rt.shutdown().unwrap();
}

#[test]
fn a_slow_consumer_misses_messages_with_drop() {
    let _turn = ONE_AT_A_TIME.lock();
    let (rt, addr, server) = start("slow-drop", SlowConsumer::Drop);
    let epoch = Instant::now();
    let (healthy, slow) = clients(addr, epoch);
    let pushed = push(&server, &healthy, epoch, || false);
    assert_eq!(pushed.sent, (TOTAL / MESSAGE) as u64);
    // Every push has gone through the core loops once the healthy clients have it all.
    let (received, healthy) = join(healthy);
    assert_eq!(
        received,
        vec![pushed.sent; 2],
        "messages per healthy client"
    );
    let stats = server.stats();
    assert!(stats.dropped > 0);
    assert_eq!(stats.slow_consumer_closes, 0);
    assert!(server.exists(slow.id));
    assert_eq!(server.connection_count(), 3);
    assert!(
        pushed.growth < MAX_GROWTH,
        "resident memory grew by {} bytes ({} dropped)",
        pushed.growth,
        stats.dropped
    );
    let dropping = log_lines(
        Level::Warn,
        &[&format!("client {} is not keeping up", slow.id)],
    );
    assert_eq!(dropping.len(), 1, "{dropping:?}");

    // Reading again, it gets messages in order with gaps, each either delivered or counted
    // as dropped, and then pushes again.
    let Client { mut ws, id } = slow;
    let got_end = Arc::new(AtomicBool::new(false));
    let reading = got_end.clone();
    let reader = std::thread::spawn(move || {
        let mut seqs = Vec::new();
        loop {
            match ws.read() {
                Ok(WsMessage::Binary(bytes)) => seqs.push(seq_of(&bytes)),
                Ok(WsMessage::Text(t)) if t.as_str() == "end" => {
                    reading.store(true, Ordering::Release);
                    return (seqs, ws);
                }
                other => panic!("the slow client got {other:?} after {}", seqs.len()),
            }
        }
    });
    wait_until("a push reaches the slow client again", || {
        got_end.load(Ordering::Acquire) || {
            server.send_raw("end", id).unwrap();
            false
        }
    });
    let (seqs, slow) = reader.join().expect("the slow client's reader");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "out of order");
    assert_eq!(seqs.len() as u64 + stats.dropped, pushed.sent);
    assert!(server.exists(id));
    drop((slow, healthy));
    rt.shutdown().unwrap();
}
