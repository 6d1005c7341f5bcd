//! Fan-out with permessage-deflate against without, in one run: one runtime with one core loop
//! serves a plain WebSocket server and one with `permessage_deflate`, each with the same number
//! of clients (those of the second negotiate the extension as a browser does); broadcasts of a
//! JSON message of about 1 KiB go to one server then the other, and for each the bytes on the
//! wire and the core loop's own CPU time (`/proc/self/task/<tid>/schedstat`, nanoseconds) are
//! divided by the deliveries. The clients are read by one thread of this process on a mio loop,
//! which parses the frames (counting the compressed ones), so the core loop's time is the
//! server's alone.
//!
//! ```sh
//! cargo run --release --example deflate_fanout -- [--clients 500] [--messages 2000] [--runs 3] \
//!     [--level 6]
//! ```
//!
//! Each run measures both servers, in alternating order; the figures are medians over the runs.
//! Every wait has a deadline.

use std::error::Error;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corepush::{DeflateConfig, Handler, Runtime, Server, ServerConfig};
use mio::{Events, Interest, Poll, Token};

#[path = "common/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::{cpu_ns, median, wait_for_thread};

/// Broadcasts sent before waiting for every client to have them (bounds the queues).
const BATCH: usize = 100;
/// The longest any wait may take.
const DEADLINE: Duration = Duration::from_secs(60);
/// What the clients of the deflate server offer: what Chrome and Firefox send.
const OFFER: &str = "permessage-deflate; client_max_window_bits";

struct Quiet;
impl Handler for Quiet {
    fn on_message(&mut self, _: &mut corepush::Context<'_>, _: corepush::Message<'_>) {}
}

struct Opts {
    clients: usize,
    messages: usize,
    runs: usize,
    level: u32,
}

/// What the clients of one server received: frames, compressed frames, bytes.
#[derive(Default)]
struct Received {
    frames: AtomicU64,
    compressed: AtomicU64,
    bytes: AtomicU64,
}

/// One measurement of one server.
#[derive(Debug, Clone, Copy)]
struct Figures {
    ns_per_delivery: f64,
    bytes_per_delivery: f64,
    compressions_per_message: f64,
    /// The share of the frames received that came compressed (RSV1).
    compressed_share: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let opts = parse()?;
    // Two sockets per client and the server's ends: past the usual 1024.
    rlimit::increase_nofile_limit(u64::MAX)?;
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let rt = Runtime::builder()
        .workers(1)
        .server(ServerConfig::websocket("plain", any).handler(|_| Quiet))
        .server(
            ServerConfig::websocket("deflate", any)
                .permessage_deflate(DeflateConfig::default().level(opts.level))
                .handler(|_| Quiet),
        )
        .start()?;
    let core = wait_for_thread("corepush-0", Instant::now() + DEADLINE)?;

    eprintln!("connecting {} clients to each server", opts.clients);
    let mut sockets = Vec::new();
    for _ in 0..opts.clients {
        sockets.push((0, connect(rt.local_addr("plain").ok_or("no plain")?, None)?));
        sockets.push((
            1,
            connect(rt.local_addr("deflate").ok_or("no deflate")?, Some(OFFER))?,
        ));
    }
    let received = Arc::new([Received::default(), Received::default()]);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || read_all(sockets, &received, &stop))
    };

    let servers = [
        rt.server("plain").ok_or("plain")?,
        rt.server("deflate").ok_or("deflate")?,
    ];
    let mean = (0..opts.messages).map(|i| message(i).len()).sum::<usize>() / opts.messages;
    println!(
        "fan-out, {} clients per server, {} broadcasts of JSON ({mean} B on average), 1 core \
         loop, deflate level {}",
        opts.clients, opts.messages, opts.level,
    );
    let mut per: [Vec<Figures>; 2] = [Vec::new(), Vec::new()];
    for run in 0..opts.runs {
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        for kind in order {
            per[kind].push(measure(&servers[kind], &received[kind], core, &opts)?);
        }
    }
    for (kind, name) in [(0, "plain"), (1, "permessage-deflate")] {
        let runs = &per[kind];
        let pick = |f: fn(&Figures) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        println!(
            "{name:>18}: {:.0} B/delivery, {:.0} ns CPU/delivery, {:.2} compressions/message, \
             {:.0} % of frames compressed (runs: {:?} ns)",
            pick(|f| f.bytes_per_delivery),
            pick(|f| f.ns_per_delivery),
            pick(|f| f.compressions_per_message),
            pick(|f| f.compressed_share * 100.0),
            runs.iter()
                .map(|f| f.ns_per_delivery.round())
                .collect::<Vec<_>>(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    rt.shutdown()?;
    Ok(())
}

/// A JSON update of about 1 KiB; `seq` makes each one differ.
fn message(seq: usize) -> String {
    let items: Vec<String> = (0..10)
        .map(|i| {
            format!(
                r#"{{"id":{},"user":"user-{i:04}","status":"online","score":{},"room":"lobby-{}","tags":["push","demo"]}}"#,
                seq * 10 + i,
                (seq * 31 + i * 7) % 1000,
                i % 3
            )
        })
        .collect();
    format!(
        r#"{{"type":"update","seq":{seq},"ts":{},"items":[{}]}}"#,
        1_700_000_000_000u64 + seq as u64,
        items.join(",")
    )
}

/// One server's fan-out: the core loop's CPU and the bytes received, per delivery.
fn measure(
    server: &Server,
    received: &Received,
    core: u32,
    opts: &Opts,
) -> Result<Figures, Box<dyn Error>> {
    let bodies: Vec<String> = (0..opts.messages).map(message).collect();
    let frames0 = received.frames.load(Ordering::Relaxed);
    let bytes0 = received.bytes.load(Ordering::Relaxed);
    let rsv0 = received.compressed.load(Ordering::Relaxed);
    let compressed0 = server.stats().frames_compressed;
    let cpu0 = cpu_ns(core)?;
    let mut sent = 0;
    while sent < opts.messages {
        let n = BATCH.min(opts.messages - sent);
        for body in &bodies[sent..sent + n] {
            server.send_raw_to_all(body.as_str())?;
        }
        sent += n;
        let want = frames0 + (sent * opts.clients) as u64;
        let deadline = Instant::now() + DEADLINE;
        while received.frames.load(Ordering::Relaxed) < want {
            if Instant::now() > deadline {
                return Err("the clients did not get every broadcast in time".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let cpu = cpu_ns(core)? - cpu0;
    let deliveries = (opts.messages * opts.clients) as f64;
    Ok(Figures {
        ns_per_delivery: cpu as f64 / deliveries,
        bytes_per_delivery: (received.bytes.load(Ordering::Relaxed) - bytes0) as f64 / deliveries,
        compressions_per_message: (server.stats().frames_compressed - compressed0) as f64
            / opts.messages as f64,
        compressed_share: (received.compressed.load(Ordering::Relaxed) - rsv0) as f64 / deliveries,
    })
}

/// A client, its upgrade done (offering `offer`, which must then be answered), read raw from
/// here on.
fn connect(addr: SocketAddr, offer: Option<&str>) -> Result<mio::net::TcpStream, Box<dyn Error>> {
    let mut sock = TcpStream::connect(addr)?;
    let extension = offer
        .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
        .unwrap_or_default();
    write!(
        sock,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         {extension}\r\n"
    )?;
    // Byte by byte, so that nothing after the head is taken.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    if !head.starts_with("http/1.1 101") {
        return Err(format!("upgrade refused: {head}").into());
    }
    if offer.is_some() && !head.contains("sec-websocket-extensions: permessage-deflate") {
        return Err(format!("permessage-deflate not agreed: {head}").into());
    }
    sock.set_nonblocking(true)?;
    Ok(mio::net::TcpStream::from_std(sock))
}

/// Where a client's stream is: in a frame's header, or in its payload.
#[derive(Default)]
struct Frames {
    head: Vec<u8>,
    left: usize,
}

impl Frames {
    /// Counts the frames `data` completes the header of.
    fn feed(&mut self, mut data: &[u8], received: &Received) {
        while !data.is_empty() {
            if self.left > 0 {
                let n = self.left.min(data.len());
                self.left -= n;
                data = &data[n..];
                continue;
            }
            self.head.push(data[0]);
            data = &data[1..];
            let need = match self.head.get(1).map(|b| b & 0x7f) {
                None => continue,
                Some(126) => 4,
                Some(127) => 10,
                Some(_) => 2,
            };
            if self.head.len() < need {
                continue;
            }
            self.left = match need {
                2 => usize::from(self.head[1] & 0x7f),
                _ => self.head[2..need]
                    .iter()
                    .fold(0usize, |acc, &b| acc << 8 | usize::from(b)),
            };
            received.frames.fetch_add(1, Ordering::Relaxed);
            if self.head[0] & 0x40 != 0 {
                received.compressed.fetch_add(1, Ordering::Relaxed);
            }
            self.head.clear();
        }
    }
}

/// Reads every client until `stop`, counting what each kind received.
fn read_all(
    mut clients: Vec<(usize, mio::net::TcpStream)>,
    received: &[Received; 2],
    stop: &AtomicBool,
) {
    let Ok(mut poll) = Poll::new() else {
        return;
    };
    for (i, (_, sock)) in clients.iter_mut().enumerate() {
        let _ = poll.registry().register(sock, Token(i), Interest::READABLE);
    }
    let mut frames: Vec<Frames> = clients.iter().map(|_| Frames::default()).collect();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut due: Vec<usize> = (0..clients.len()).collect();
    while !stop.load(Ordering::Relaxed) {
        for i in due.drain(..) {
            let (Some((kind, sock)), Some(state)) = (clients.get_mut(i), frames.get_mut(i)) else {
                continue;
            };
            let into = &received[*kind];
            loop {
                match sock.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        into.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        state.feed(&buf[..n], into);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
        }
        if poll
            .poll(&mut events, Some(Duration::from_millis(50)))
            .is_err()
        {
            return;
        }
        due.extend(events.iter().map(|e| e.token().0));
    }
}

fn parse() -> Result<Opts, Box<dyn Error>> {
    let mut opts = Opts {
        clients: 500,
        messages: 2000,
        runs: 3,
        level: DeflateConfig::default().level,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => opts.clients = value.parse()?,
            "--messages" => opts.messages = value.parse()?,
            "--runs" => opts.runs = value.parse()?,
            "--level" => opts.level = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if opts.clients == 0 || opts.messages == 0 || opts.runs == 0 {
        return Err("--clients, --messages and --runs must be positive".into());
    }
    Ok(opts)
}
