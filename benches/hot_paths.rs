//! Criterion benches of the hot paths, through the public API on real loopback sockets:
//! encoding and framing a push, the cross-core hand-off of commands, and routing one
//! broadcast to N local connections.

use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corepush::{
    Context, Handler, Message, Raw, Runtime, RuntimeConfig, ServerConfig, WorkerContext, WorkerId,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

struct Quiet;
impl Handler for Quiet {
    fn on_message(&mut self, _: &mut Context<'_>, _: Message<'_>) {}
}

fn runtime(workers: usize, counter: Arc<AtomicU64>) -> Runtime {
    // Each bench waits for one push before the next, so a fan-out window would only measure
    // its own length: every frame is written in the turn that queued it.
    let config = RuntimeConfig::default().fanout_coalesce(Duration::ZERO);
    Runtime::builder()
        .config(config)
        .workers(workers)
        .server(
            ServerConfig::tcp_length("bench", "127.0.0.1:0".parse().unwrap())
                .handler(|_| Quiet)
                .action(
                    "count",
                    move |_: &mut Quiet, _: &mut WorkerContext<'_>, _| {
                        counter.fetch_add(1, Ordering::Relaxed);
                    },
                ),
        )
        .start()
        .expect("start runtime")
}

/// Encoding with the JSON parser and framing, with no receivers (nothing is dispatched).
fn encode_and_frame(c: &mut Criterion) {
    let rt = runtime(1, Arc::default());
    let server = rt.server("bench").unwrap();
    let data = json!({"type": "broadcast", "payload": {"seq": 12345, "padding": "x".repeat(32)}});
    let mut g = c.benchmark_group("encode_and_frame");
    g.bench_function("json_64B", |b| {
        b.iter(|| server.send_to_all(&data).unwrap())
    });
    for size in [64usize, 4096, 65536] {
        let bytes = vec![b'x'; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("raw", size), &bytes, |b, bytes| {
            b.iter(|| server.send_raw_to_all(Raw::binary(&bytes[..])).unwrap())
        });
    }
    g.finish();
    rt.shutdown().unwrap();
}

/// Commands from a foreign thread to a core loop: throughput of the mailbox with coalesced
/// wake-ups, measured until the core loop has run every one.
fn cross_core_handoff(c: &mut Criterion) {
    let counter = Arc::new(AtomicU64::new(0));
    let rt = runtime(1, counter.clone());
    let server = rt.server("bench").unwrap();
    c.bench_function("cross_core_handoff", |b| {
        b.iter_custom(|iters| {
            let start_count = counter.load(Ordering::Relaxed);
            let start = Instant::now();
            for _ in 0..iters {
                server.send_message("count", &(), WorkerId(0)).unwrap();
            }
            wait_for(|| counter.load(Ordering::Relaxed) - start_count >= iters);
            start.elapsed()
        })
    });
    rt.shutdown().unwrap();
}

/// One broadcast to N length-framed TCP clients on one core loop, until every client has it.
/// A single reader thread drains the clients with its own `mio::Poll` and reports each
/// completed round, so the bench thread blocks instead of spinning.
fn route_broadcast(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_broadcast");
    g.measurement_time(Duration::from_secs(5));
    for n in [100usize, 1000] {
        let rt = runtime(1, Arc::default());
        let server = rt.server("bench").unwrap();
        let addr = rt.local_addr("bench").unwrap();
        let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let reader = std::thread::spawn(move || drain(clients, done_tx));
        wait_for(|| server.connection_count() == n);
        let frame = [b'x'; 64];
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    assert_eq!(server.send_raw_to_all(Raw::binary(&frame[..])).unwrap(), n);
                    done_rx
                        .recv_timeout(Duration::from_secs(30))
                        .expect("broadcast not delivered");
                }
                start.elapsed()
            })
        });
        rt.shutdown().unwrap();
        reader.join().unwrap();
    }
    g.finish();
}

/// Reads every client until all have closed, counting 68-byte frames (4-byte length + 64);
/// sends `()` each time another `clients.len()` frames have arrived.
fn drain(clients: Vec<TcpStream>, done: crossbeam_channel::Sender<()>) {
    let n = clients.len();
    let mut poll = mio::Poll::new().unwrap();
    let mut socks: Vec<mio::net::TcpStream> = clients
        .into_iter()
        .map(|c| {
            c.set_nonblocking(true).unwrap();
            mio::net::TcpStream::from_std(c)
        })
        .collect();
    for (i, s) in socks.iter_mut().enumerate() {
        poll.registry()
            .register(s, mio::Token(i), mio::Interest::READABLE)
            .unwrap();
    }
    let mut events = mio::Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = vec![0usize; n];
    let (mut frames, mut open) = (0usize, n);
    while open > 0 {
        poll.poll(&mut events, Some(Duration::from_secs(60)))
            .unwrap();
        for ev in events.iter() {
            let i = ev.token().0;
            loop {
                match (&socks[i]).read(&mut buf) {
                    Ok(0) => {
                        open -= 1;
                        break;
                    }
                    Ok(k) => {
                        pending[i] += k;
                        frames += pending[i] / 68;
                        pending[i] %= 68;
                        while frames >= n {
                            frames -= n;
                            let _ = done.send(());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        open -= 1;
                        break;
                    }
                }
            }
        }
    }
}

fn wait_for(mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "bench stalled");
        std::thread::yield_now();
    }
}

criterion_group!(
    benches,
    encode_and_frame,
    cross_core_handoff,
    route_broadcast
);
criterion_main!(benches);
