//! Requests per second of the request-scoped HTTP server for a tiny response over keep-alive
//! connections, side by side with a minimal `tiny_http` server answering the same bytes in
//! the same run.
//!
//! ```text
//! cargo bench --bench http                          # 1, 4 and 16 connections, 3 s rounds
//! cargo bench --bench http -- --secs 5 --clients 8  # one concurrency, longer rounds
//! cargo bench --bench http -- --threads 4           # corepush's pool size (default: its own)
//! ```
//!
//! Each client thread holds one keep-alive connection and sends its next request when the last
//! response is in, so requests per second measure the whole round trip: parse, handler,
//! response, on both sides of loopback. A client whose connection the server closes between
//! requests reconnects and sends again, as HTTP clients do. Rounds alternate between the two servers and the
//! median of each is reported, so that drift of the machine (frequency, other load) falls on
//! both alike. Client and servers share the machine's cores.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use corepush::{HttpConfig, HttpServer, Request, RequestContext, Response};

const BODY: &str = "hello world";
const REQUEST: &[u8] = b"GET /hello HTTP/1.1\r\nHost: bench\r\n\r\n";
/// Rounds per server and concurrency; the median is reported.
const ROUNDS: usize = 3;
/// A round also ends after this many requests per client, whichever comes first.
const MAX_PER_CLIENT: u64 = 10_000_000;
/// Threads that call `recv` on the tiny_http server (its documented multi-threaded pattern).
const TINY_HTTP_THREADS: usize = 4;

fn main() {
    let opts = Options::parse();
    println!(
        "http keep-alive, {BODY:?} ({} B body), {ROUNDS} rounds of {:?} each, median req/s; \
         {} cores",
        BODY.len(),
        opts.round,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let config = HttpConfig::new("bench", "127.0.0.1:0".parse().unwrap());
    let config = match opts.threads {
        Some(n) => config.threads(n),
        None => config,
    };
    println!(
        "corepush: {} pool threads; tiny_http: {TINY_HTTP_THREADS} recv threads",
        config.threads
    );
    let corepush = start_corepush(config);
    let tiny = TinyHttp::start();
    for &clients in &opts.clients {
        // Warm both up (connections, caches, lazily started threads).
        run_round(corepush.local_addr(), clients, Duration::from_millis(300));
        run_round(tiny.addr, clients, Duration::from_millis(300));
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for _ in 0..ROUNDS {
            ours.push(run_round(corepush.local_addr(), clients, opts.round));
            theirs.push(run_round(tiny.addr, clients, opts.round));
        }
        let (a, b) = (median(&mut ours), median(&mut theirs));
        println!(
            "clients={clients:<3} corepush {a:>9.0} req/s   tiny_http {b:>9.0} req/s   \
             ratio {:.2}x   (rounds: corepush {}, tiny_http {})",
            a / b,
            show(&ours),
            show(&theirs),
        );
    }
    tiny.stop();
    if let Err(e) = corepush.shutdown() {
        eprintln!("corepush shutdown: {e}");
    }
}

struct Options {
    round: Duration,
    clients: Vec<usize>,
    threads: Option<usize>,
}

impl Options {
    /// `--secs N`, `--clients N`, `--threads N`; anything else (cargo's `--bench`) is ignored.
    fn parse() -> Options {
        let mut opts = Options {
            round: Duration::from_secs(3),
            clients: vec![1, 4, 16],
            threads: None,
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        for pair in args.windows(2) {
            match (pair[0].as_str(), pair[1].parse::<u64>()) {
                ("--secs", Ok(n)) if n > 0 => opts.round = Duration::from_secs(n),
                ("--clients", Ok(n)) if n > 0 => opts.clients = vec![n as usize],
                ("--threads", Ok(n)) if n > 0 => opts.threads = Some(n as usize),
                _ => {}
            }
        }
        opts
    }
}

fn start_corepush(config: HttpConfig) -> HttpServer {
    let handler = |_: &Request, _: &mut RequestContext| {
        Response::new(200)
            .header("Content-Type", "text/plain; charset=UTF-8")
            .body(BODY)
    };
    HttpServer::start(config, handler).expect("start corepush's http server")
}

/// The baseline: tiny_http's own multi-threaded pattern, answering the same bytes.
struct TinyHttp {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl TinyHttp {
    fn start() -> TinyHttp {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("start tiny_http"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("tiny_http listens on an IP address");
        let threads = (0..TINY_HTTP_THREADS)
            .map(|_| {
                let server = server.clone();
                std::thread::spawn(move || {
                    let content_type = tiny_http::Header::from_bytes(
                        &b"Content-Type"[..],
                        &b"text/plain; charset=UTF-8"[..],
                    )
                    .expect("a valid header");
                    // `recv` fails once `unblock` is called.
                    while let Ok(request) = server.recv() {
                        let response = tiny_http::Response::from_string(BODY)
                            .with_header(content_type.clone());
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        TinyHttp {
            server,
            addr,
            threads,
        }
    }

    fn stop(self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Requests per second of `clients` keep-alive connections for `length`.
fn run_round(addr: SocketAddr, clients: usize, length: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<JoinHandle<u64>> = (0..clients)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || client(addr, &stop))
        })
        .collect();
    // The round is bounded by time here and by count in each client.
    while started.elapsed() < length && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = workers.into_iter().map(|w| w.join().unwrap_or(0)).sum();
    total as f64 / started.elapsed().as_secs_f64()
}

/// One keep-alive connection sending requests back to back; returns how many were answered.
/// A connection closed by the server is replaced, and the request sent again.
fn client(addr: SocketAddr, stop: &AtomicBool) -> u64 {
    let mut buf = vec![0u8; 4096];
    let mut done = 0;
    // Connections in a row that answered nothing: a server that keeps failing ends the round.
    let mut failures = 0;
    while !stop.load(Ordering::Relaxed) && done < MAX_PER_CLIENT && failures < 100 {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            failures += 1;
            continue;
        };
        let before = done;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        while !stop.load(Ordering::Relaxed) && done < MAX_PER_CLIENT {
            if stream.write_all(REQUEST).is_err() {
                break;
            }
            match read_response(&mut stream, &mut buf) {
                Some(200) => done += 1,
                Some(status) => panic!("unexpected status {status}"),
                None => break,
            }
        }
        failures = if done == before { failures + 1 } else { 0 };
    }
    done
}

/// Reads one response (head and `Content-Length` body); its status, or `None` on an error.
/// One response is in flight at a time, so the buffer never holds the next one.
fn read_response(stream: &mut TcpStream, buf: &mut [u8]) -> Option<u16> {
    let mut have = 0;
    loop {
        let n = stream.read(&mut buf[have..]).ok()?;
        if n == 0 {
            return None;
        }
        have += n;
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut response = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(head) = response.parse(&buf[..have]).ok()? {
            let length: usize = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())?;
            let status = response.code?;
            while have < head + length {
                let n = stream.read(&mut buf[have..]).ok()?;
                if n == 0 {
                    return None;
                }
                have += n;
            }
            assert_eq!(&buf[head..head + length], BODY.as_bytes());
            return Some(status);
        }
        if have == buf.len() {
            return None;
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn show(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    parts.join("/")
}
