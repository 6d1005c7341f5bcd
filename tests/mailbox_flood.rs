//! Bounded mailboxes under a flood: foreign threads pushing faster than the core loops can
//! carry the pushes out wait for room or fail with `Error::MailboxFull`, every outcome is
//! accounted for at the clients (delivered in order, or counted as dropped), and resident
//! memory stays bounded; a core loop that floods another one gets the error at once and goes
//! on serving its clients.
mod util;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corepush::{
    ClientId, Context, Error, Handler, Message, Raw, Runtime, RuntimeConfig, Server, ServerConfig,
    SlowConsumer,
};
use parking_lot::Mutex;
use socket2::{Domain, Socket, Type};
use tungstenite::Message as WsMessage;
use util::*;

/// Size of each numbered message.
const PAYLOAD: usize = 64 << 10;
/// Its WebSocket frame: a 2-byte header and a 64-bit length, unmasked from the server.
const FRAME: usize = PAYLOAD + 10;
/// How many numbered frames a connection's outbound queue holds before `SlowConsumer::Drop`
/// acts: enough that a slow reader's pause is often absorbed, few enough that some are not.
const QUEUE_FRAMES: usize = 16;
/// `max_outbound_bytes`: `QUEUE_FRAMES` frames, plus room that a full queue of numbered frames
/// always leaves for the `end` marker (a queue refuses a frame only past the limit), so the
/// marker is never dropped and every reader gets it.
const MAX_OUTBOUND: usize = QUEUE_FRAMES * FRAME + 1024;
/// `mailbox_capacity`: small, so that the flood finds it full.
const CAPACITY: usize = 64;
/// `mailbox_timeout`: short, so that some waits for room fail.
const TIMEOUT: Duration = Duration::from_millis(50);
/// Calls per pushing thread (4 threads: 4,000 calls, 250 MiB of payload)...
const PER_PUSHER: u64 = 1000;
/// ...or fewer if they take longer than this.
const PUSH_TIME: Duration = Duration::from_secs(8);
/// Clients per core loop that read nothing until the flood is over (see `idle_clients`).
const IDLE_PER_LOOP: usize = 100;
/// The slow readers pause this long every `READ_EVERY` messages.
const READ_PAUSE: Duration = Duration::from_millis(5);
const READ_EVERY: usize = 64;

/// The bound on resident memory growth during the flood, a quarter of the payload pushed.
/// What the server can hold: two mailboxes of `CAPACITY` commands, one frame each (8 MiB);
/// the five reading clients' queues, `QUEUE_FRAMES` frames each (5 MiB); the idle clients'
/// queues, all holding much the same first frames of the flood (2 MiB or so). What the test
/// holds: a message and a frame per pushing thread, a message and read buffers per reading
/// thread (2 MiB or so). That is under 20 MiB; the rest is room for the allocator.
///
/// Measured (release, 2 shared cores): the peak growth stays at 14–25 MiB. With
/// `mailbox_capacity` at `1 << 20`, an effectively unbounded mailbox (its slots are allocated
/// before the first sample), it reaches 130–215 MiB: the pushers run ahead of the core loops
/// and the mailboxes hold most of the 250 MiB pushed.
const MAX_GROWTH: usize = 64 << 20;

/// Resident memory is process-wide, and the flood wants the cores: the tests of this file take
/// turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// What one call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// `Ok(n)`: queued to `n` connections.
    Sent(usize),
    /// `Err(MailboxFull { queued })`.
    Full(usize),
}

/// Whom one pushing thread's calls are for.
#[derive(Debug, Clone)]
enum Aim {
    /// `send_raw_to_all`.
    All,
    /// `send_raw` with these ids.
    Ids(Vec<ClientId>),
    /// `send_raw` to one of these ids, each in turn.
    Each(Vec<ClientId>),
}

impl Aim {
    /// The clients call `seq` is for, everyone being `all`.
    fn target(&self, seq: u64, all: &[ClientId]) -> Vec<ClientId> {
        match self {
            Aim::All => all.to_vec(),
            Aim::Ids(ids) => ids.clone(),
            Aim::Each(ids) => vec![ids[seq as usize % ids.len()]],
        }
    }

    fn push(&self, server: &Server, seq: u64, bytes: &[u8]) -> corepush::Result<usize> {
        let raw = Raw::binary(bytes);
        match self {
            Aim::All => server.send_raw_to_all(raw),
            Aim::Ids(ids) => server.send_raw(raw, ids),
            Aim::Each(ids) => server.send_raw(raw, ids[seq as usize % ids.len()]),
        }
    }
}

/// The numbered messages a client got: (pushing thread, sequence number), as they came.
type Got = Vec<(usize, u64)>;

/// Numbers a message: the pushing thread, then its sequence number; the rest is padding.
fn stamp(bytes: &mut [u8], pusher: usize, seq: u64) {
    bytes[0] = pusher as u8;
    bytes[1..9].copy_from_slice(&seq.to_be_bytes());
}

fn unstamp(bytes: &[u8]) -> (usize, u64) {
    assert_eq!(bytes.len(), PAYLOAD, "a numbered message");
    let seq = u64::from_be_bytes(bytes[1..9].try_into().expect("8 bytes"));
    (bytes[0] as usize, seq)
}

/// Reads numbered messages until the text `end`; returns them. With `pause`, sleeps that long
/// every `READ_EVERY` messages: a stimulus that lets the server's queue for this client fill
/// (then `SlowConsumer::Drop` acts), not a synchronisation — nothing waits on it.
fn read_until_end(client: &mut Client, pause: Option<Duration>) -> Got {
    let mut got = Vec::new();
    loop {
        match client.ws.read() {
            Ok(WsMessage::Binary(bytes)) => {
                got.push(unstamp(&bytes));
                if let Some(pause) = pause.filter(|_| got.len() % READ_EVERY == 0) {
                    std::thread::sleep(pause);
                }
            }
            Ok(WsMessage::Text(t)) if t.as_str() == "end" => return got,
            other => panic!(
                "client {}: {other:?} after {} messages",
                client.id,
                got.len()
            ),
        }
    }
}

/// A client with a small receive buffer (64 KiB asked, the kernel doubles it), so that the
/// server's queue, not the kernel's buffers, takes what it does not read.
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

/// `per_loop` clients on each of the two core loops that read nothing until the flood is over.
///
/// They are what makes the core loops slower than the pushers: a push costs its thread one
/// frame whatever the number of receivers, and a core loop one queue (or one drop) per
/// connection. With the five slow readers alone, a core loop drops their messages about as
/// fast as the pushes come, and an unbounded mailbox stays small too (measured: 40–80 MiB of
/// growth where the bounded one has 20), which would prove little.
fn idle_clients(addr: SocketAddr, per_loop: usize) -> [Vec<Client>; 2] {
    let mut by_loop = [Vec::new(), Vec::new()];
    let mut extra = Vec::new();
    for _ in 0..4 * per_loop + 100 {
        if by_loop.iter().all(|v| v.len() == per_loop) {
            break;
        }
        let c = small_buffer_client(addr);
        let w = c.worker().index();
        if by_loop[w].len() < per_loop {
            by_loop[w].push(c);
        } else {
            extra.push(c);
        }
    }
    let counts = by_loop.each_ref().map(Vec::len);
    assert_eq!(counts, [per_loop; 2], "idle clients per core loop");
    for c in extra {
        c.hang_up();
    }
    by_loop
}

/// The calls of every pushing thread and whom each reached.
struct Flood {
    aims: Vec<Aim>,
    outcomes: Vec<Vec<Outcome>>,
    /// The clients of core loop 0 and of core loop 1.
    on: [Vec<ClientId>; 2],
}

impl Flood {
    /// The clients that call `seq` of thread `p` was queued to: all of its target if it
    /// returned `Ok`; none if it failed before queueing anything; else those of the core loop
    /// whose clients in the target number `queued` (a call queues on whole core loops, and
    /// the two core loops' counts differ, so that `queued` tells which one it was).
    fn queued_to(&self, p: usize, seq: u64) -> Vec<ClientId> {
        let all: Vec<ClientId> = self.on.concat();
        let target = self.aims[p].target(seq, &all);
        match self.outcomes[p][seq as usize] {
            Outcome::Sent(n) => {
                assert_eq!(n, target.len(), "thread {p}, call {seq}: Ok({n})");
                target
            }
            Outcome::Full(0) => Vec::new(),
            Outcome::Full(queued) => {
                let per_loop = self.on.each_ref().map(|on| {
                    target
                        .iter()
                        .copied()
                        .filter(|id| on.contains(id))
                        .collect()
                });
                let mut matching = per_loop
                    .into_iter()
                    .filter(|ids: &Vec<ClientId>| ids.len() == queued);
                let ids = matching.next().expect("a core loop with that many targets");
                assert!(
                    matching.next().is_none(),
                    "thread {p}, call {seq}: ambiguous"
                );
                ids
            }
        }
    }

    /// For each client, for each thread, the sequence numbers queued to it, ascending.
    fn expected(&self) -> HashMap<ClientId, Vec<Vec<u64>>> {
        let mut expected: HashMap<ClientId, Vec<Vec<u64>>> = HashMap::new();
        for p in 0..self.aims.len() {
            for seq in 0..self.outcomes[p].len() as u64 {
                for id in self.queued_to(p, seq) {
                    expected
                        .entry(id)
                        .or_insert_with(|| vec![Vec::new(); self.aims.len()])[p]
                        .push(seq);
                }
            }
        }
        expected
    }
}

#[test]
fn a_foreign_flood_waits_or_fails_loses_nothing_silently_and_stays_bounded() {
    let _turn = ONE_AT_A_TIME.lock();
    let name = "flood";
    let rt = Runtime::builder()
        .config(
            RuntimeConfig::default()
                .workers(2)
                .mailbox_capacity(CAPACITY)
                .mailbox_timeout(TIMEOUT),
        )
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                .max_outbound_bytes(MAX_OUTBOUND)
                .slow_consumer(SlowConsumer::Drop)
                // Nobody sends during the flood: keepalive pings would only add frames.
                .idle_timeout(None)
                .handler(|_| Cmd),
        )
        .start()
        .expect("start the runtime");
    let addr = rt.local_addr(name).unwrap();
    let server = rt.server(name).unwrap();

    // Slow readers: three on core loop 0, two on core loop 1; then the idle clients.
    let mut readers = clients_by_worker(addr, 2, 3);
    readers[1].pop().expect("a third client").hang_up();
    let idle = idle_clients(addr, IDLE_PER_LOOP);
    let ids = |clients: &[Client]| clients.iter().map(|c| c.id).collect::<Vec<_>>();
    let on = [0, 1].map(|w| [ids(&readers[w]), ids(&idle[w])].concat());
    let reading = [ids(&readers[0]), ids(&readers[1])].concat();
    let aims = vec![
        Aim::All,
        Aim::All,
        Aim::Ids(vec![reading[0], reading[1], reading[3]]),
        Aim::Each(reading.clone()),
    ];
    let readers: Vec<JoinHandle<(Client, Got)>> = readers
        .into_iter()
        .flatten()
        .map(|mut c| {
            std::thread::spawn(move || {
                let got = read_until_end(&mut c, Some(READ_PAUSE));
                (c, got)
            })
        })
        .collect();

    let before = server.stats();
    let rss_before = vm_rss();
    let mut rss_peak = rss_before;
    // Sampled every millisecond until the reading clients have everything: a sampling
    // interval, not a synchronisation (`is_finished` says when to stop).
    let mut sample_until = |threads: &dyn Fn() -> bool| {
        while !threads() {
            rss_peak = rss_peak.max(vm_rss());
            std::thread::sleep(Duration::from_millis(1));
        }
        rss_peak = rss_peak.max(vm_rss());
    };
    let started = Instant::now();
    let pushers: Vec<JoinHandle<Vec<Outcome>>> = aims
        .iter()
        .enumerate()
        .map(|(p, aim)| {
            let (aim, server) = (aim.clone(), server.clone());
            std::thread::spawn(move || {
                let mut bytes = vec![0u8; PAYLOAD];
                let mut outcomes = Vec::new();
                for seq in 0..PER_PUSHER {
                    if started.elapsed() > PUSH_TIME {
                        break;
                    }
                    stamp(&mut bytes, p, seq);
                    outcomes.push(match aim.push(&server, seq, &bytes) {
                        Ok(n) => Outcome::Sent(n),
                        Err(Error::MailboxFull { queued }) => Outcome::Full(queued),
                        Err(e) => panic!("thread {p}, call {seq}: {e}"),
                    });
                }
                outcomes
            })
        })
        .collect();
    sample_until(&|| pushers.iter().all(JoinHandle::is_finished));
    let outcomes: Vec<Vec<Outcome>> = pushers
        .into_iter()
        .map(|p| p.join().expect("a pushing thread"))
        .collect();
    let flooded = server.stats();
    let pushed_in = started.elapsed();

    // The marker, behind every numbered message in each client's queue. One client per call,
    // so a call that finds a mailbox full queued nothing and is simply made again.
    let deadline = Instant::now() + WAIT;
    for id in on.concat() {
        while let Err(e) = server.send_raw("end", id) {
            assert!(matches!(e, Error::MailboxFull { queued: 0 }), "{e}");
            assert!(Instant::now() < deadline, "no room for the marker");
        }
    }
    sample_until(&|| readers.iter().all(JoinHandle::is_finished));
    let growth = rss_peak - rss_before;
    let mut received: HashMap<ClientId, Got> = readers
        .into_iter()
        .map(|r| {
            let (c, got) = r.join().expect("a reading client");
            (c.id, got)
        })
        .collect();
    // The idle clients read at last, a few at a time.
    let mut idle: Vec<Client> = idle.into_iter().flatten().collect();
    std::thread::scope(|s| {
        let drains: Vec<_> = idle
            .chunks_mut(IDLE_PER_LOOP / 4)
            .map(|chunk| {
                s.spawn(|| {
                    chunk
                        .iter_mut()
                        .map(|c| (c.id, read_until_end(c, None)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for d in drains {
            received.extend(d.join().expect("an idle client"));
        }
    });
    let after = server.stats();

    let flood = Flood { aims, outcomes, on };
    let calls: Vec<Outcome> = flood.outcomes.concat();
    let failed = calls
        .iter()
        .filter(|o| matches!(o, Outcome::Full(_)))
        .count() as u64;
    let summary = format!(
        "{} calls in {pushed_in:?}: {} found a mailbox full, {failed} failed ({} after \
         queueing on one core loop); {} deliveries dropped; peak growth {} KiB",
        calls.len(),
        flooded.mailbox_full - before.mailbox_full,
        calls
            .iter()
            .filter(|o| matches!(o, Outcome::Full(q) if *q > 0))
            .count(),
        after.dropped - before.dropped,
        growth >> 10,
    );

    // (a) The flood outran the core loops, or the test proves nothing.
    assert!(
        flooded.mailbox_full > before.mailbox_full,
        "no call found a mailbox full: {summary}"
    );
    // (b) Every failure the threads saw is counted, and nothing else.
    assert_eq!(
        flooded.mailbox_timeouts - before.mailbox_timeouts,
        failed,
        "{summary}"
    );
    // (c) Nothing silently lost: each client got, from each thread, part of what was queued
    // to it (so nothing whose call failed before queueing to it), in order, once; what it
    // missed is exactly what the server counted as dropped.
    let expected = flood.expected();
    let (mut missed, mut missed_reading) = (0, 0);
    for (id, got) in &received {
        let none = vec![Vec::new(); flood.aims.len()];
        let queued = expected.get(id).unwrap_or(&none);
        for (p, queued) in queued.iter().enumerate() {
            let from_p: Vec<u64> = got.iter().filter(|m| m.0 == p).map(|m| m.1).collect();
            assert!(
                from_p.windows(2).all(|w| w[0] < w[1]),
                "client {id}: thread {p}'s messages out of order or repeated"
            );
            for seq in &from_p {
                assert!(
                    queued.binary_search(seq).is_ok(),
                    "client {id} got thread {p}'s message {seq}, which its call did not \
                     queue to it: {:?}",
                    flood.outcomes[p][*seq as usize]
                );
            }
            let n = (queued.len() - from_p.len()) as u64;
            missed += n;
            if reading.contains(id) {
                missed_reading += n;
            }
        }
    }
    assert_eq!(
        missed,
        after.dropped - before.dropped,
        "deliveries missed vs dropped: {summary}"
    );
    // (d) Memory bounded.
    assert!(growth < MAX_GROWTH, "resident memory: {summary}");
    eprintln!("{summary}; {missed_reading} of the drops for the slow readers");
    drop(idle);
    rt.shutdown().unwrap();
}

/// The most calls the core-loop flood makes.
const MAX_CALLS: u64 = 100_000;

/// A handler for the core-loop flood. It answers `id` with the client id, `echo:X` with `X`,
/// and `flood:ID,ID,…` with the outcome of [`flood`] to those clients.
#[derive(Debug)]
struct Flooder;

impl Handler for Flooder {
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Message<'_>) {
        let text = message.as_text().unwrap_or_default().to_owned();
        let (verb, arg) = text.split_once(':').unwrap_or((&text, ""));
        let reply = match verb {
            "id" => ctx.client_id().to_string(),
            "echo" => arg.to_owned(),
            "flood" => {
                let ids: Vec<ClientId> = arg.split(',').map(|s| s.parse().unwrap()).collect();
                flood(ctx.server(), &ids)
            }
            _ => format!("unknown:{text}"),
        };
        ctx.send_raw(reply).expect("reply");
    }
}

/// Pushes numbered messages to `ids` in a tight loop until a call fails, at most `MAX_CALLS`
/// calls; returns `full:CALLS:QUEUED:MICROS` (the calls that succeeded, the error's `queued`,
/// how long the failing call took), `error:E` or `none`.
fn flood(server: &Server, ids: &[ClientId]) -> String {
    let mut bytes = vec![0u8; PAYLOAD];
    for seq in 0..MAX_CALLS {
        stamp(&mut bytes, 0, seq);
        let call = Instant::now();
        match server.send_raw(Raw::binary(&bytes[..]), ids) {
            Ok(n) => assert_eq!(n, ids.len()),
            Err(Error::MailboxFull { queued }) => {
                return format!("full:{seq}:{queued}:{}", call.elapsed().as_micros());
            }
            Err(e) => return format!("error:{e}"),
        }
    }
    "none".into()
}

#[test]
fn a_core_loop_flooding_another_fails_at_once_and_goes_on() {
    let _turn = ONE_AT_A_TIME.lock();
    let name = "flood-core";
    // Long: a core loop that waited for room would show.
    let timeout = Duration::from_secs(10);
    let rt = Runtime::builder()
        .config(
            RuntimeConfig::default()
                .workers(2)
                .mailbox_capacity(CAPACITY)
                .mailbox_timeout(timeout),
        )
        .server(
            ServerConfig::websocket(name, "127.0.0.1:0".parse().unwrap())
                // Room for a thousand frames: the mailbox, not the queues, is what fills.
                .max_outbound_bytes(1000 * FRAME)
                .idle_timeout(None)
                .handler(|_| Flooder),
        )
        .start()
        .expect("start the runtime");
    let addr = rt.local_addr(name).unwrap();
    let server = rt.server(name).unwrap();

    // The flooder and a bystander on core loop 0; two reading clients on core loop 1.
    let mut by_loop = clients_by_worker(addr, 2, 2);
    let targets = by_loop.pop().expect("core loop 1's clients");
    let mut bystander = by_loop[0].pop().expect("a bystander");
    let mut flooder = by_loop[0].pop().expect("a flooder");
    let target_ids: Vec<ClientId> = targets.iter().map(|c| c.id).collect();
    let readers: Vec<JoinHandle<Got>> = targets
        .into_iter()
        .map(|mut c| std::thread::spawn(move || read_until_end(&mut c, None)))
        .collect();

    let list: Vec<String> = target_ids.iter().map(ClientId::to_string).collect();
    let asked = Instant::now();
    let reply = flooder.ask(&format!("flood:{}", list.join(",")));
    let took = asked.elapsed();
    let parts: Vec<&str> = reply.split(':').collect();
    assert_eq!(
        parts[0], "full",
        "no MailboxFull in {MAX_CALLS} calls: {reply}"
    );
    let sent: u64 = parts[1].parse().unwrap();
    let queued: usize = parts[2].parse().unwrap();
    let failing_call = Duration::from_micros(parts[3].parse().unwrap());
    assert_eq!(queued, 0, "only core loop 1 was a target");
    // It did not wait: a wait ends with room (then the call succeeds) or after `timeout`.
    assert!(
        failing_call < timeout / 10,
        "the failing call took {failing_call:?}"
    );
    assert!(took < timeout, "the flood took {took:?}");
    let stats = server.stats();
    assert_eq!((stats.mailbox_full, stats.mailbox_timeouts), (1, 1));

    // Core loop 0 still answers, the flooder and the bystander alike.
    assert_eq!(bystander.ask("echo:still here"), "still here");
    assert_eq!(flooder.ask("echo:me too"), "me too");

    // Core loop 1's clients got every call that succeeded, in order, and not the failed one.
    assert_eq!(server.send_raw("end", &target_ids).unwrap(), 2);
    for r in readers {
        let got = r.join().expect("a reading client");
        assert_eq!(got, (0..sent).map(|s| (0, s)).collect::<Vec<_>>());
    }
    assert_eq!(server.stats().dropped, 0);
    eprintln!("core-loop flood: {sent} calls, then MailboxFull after {failing_call:?}; {took:?}");
    drop((flooder, bystander));
    rt.shutdown().unwrap();
}
