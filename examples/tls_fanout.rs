//! Fan-out CPU per delivery, wss:// against ws://, in one run: one runtime with one core loop
//! serves a plain WebSocket server and a TLS one (a certificate made on the fly), each with the
//! same number of clients; broadcasts go to one server then the other, and the core loop's own
//! CPU time (`/proc/self/task/<tid>/schedstat`, nanoseconds) is divided by the deliveries. The
//! clients are read by one thread of this process on a mio loop (TLS clients decrypt with
//! rustls), so the core loop's time is the server's alone.
//!
//! ```sh
//! cargo run --release --features tls --example tls_fanout -- [--clients 500] \
//!     [--messages 2000] [--payload 64[,1024]] [--runs 3]
//! ```
//!
//! Each run measures both servers, in alternating order; the figures are medians over the
//! runs, and the ratio is TLS over plain. Every wait has a deadline.

use std::error::Error;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corepush::{Handler, Runtime, Server, ServerConfig, TlsConfig};
use mio::{Events, Interest, Poll, Token};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

#[path = "common/thread_cpu.rs"]
mod thread_cpu;
use thread_cpu::{cpu_ns, median, wait_for_thread};

/// Broadcasts sent before waiting for every client to have them (bounds the queues).
const BATCH: usize = 100;
/// The longest any wait may take.
const DEADLINE: Duration = Duration::from_secs(60);

struct Quiet;
impl Handler for Quiet {
    fn on_message(&mut self, _: &mut corepush::Context<'_>, _: corepush::Message<'_>) {}
}

struct Opts {
    clients: usize,
    messages: usize,
    payloads: Vec<usize>,
    runs: usize,
}

fn main() -> Result<(), Box<dyn Error>> {
    let opts = parse()?;
    // Two sockets per client pair and the server's ends: past the usual 1024.
    rlimit::increase_nofile_limit(u64::MAX)?;
    let dir = std::env::temp_dir().join(format!("corepush-tls-fanout-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (tls, client_config) = certificate(&dir)?;
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let rt = Runtime::builder()
        .workers(1)
        .server(ServerConfig::websocket("plain", any).handler(|_| Quiet))
        .server(
            ServerConfig::websocket("tls", any)
                .tls(tls)
                .handler(|_| Quiet),
        )
        .start()?;
    let core = wait_for_thread("corepush-0", Instant::now() + DEADLINE)?;

    eprintln!("connecting {} clients to each server", opts.clients);
    let mut sockets = Vec::new();
    for _ in 0..opts.clients {
        sockets.push(Client::plain(rt.local_addr("plain").ok_or("no plain")?)?);
        sockets.push(Client::tls(
            rt.local_addr("tls").ok_or("no tls")?,
            &client_config,
        )?);
    }
    let received = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || read_all(sockets, &received, &stop))
    };

    let servers = [
        rt.server("plain").ok_or("plain")?,
        rt.server("tls").ok_or("tls")?,
    ];
    println!(
        "fan-out, {} clients per server, {} broadcasts, 1 core loop",
        opts.clients, opts.messages
    );
    for &payload in &opts.payloads {
        let mut per = [Vec::new(), Vec::new()];
        for run in 0..opts.runs {
            let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
            for kind in order {
                let ns = measure(&servers[kind], &received[kind], core, &opts, payload)?;
                per[kind].push(ns);
            }
        }
        let (plain, tls) = (median(&mut per[0]), median(&mut per[1]));
        println!(
            "payload {payload} B: plain {plain:.0} ns/delivery, TLS {tls:.0} ns/delivery, \
             ratio {:.2} (runs: plain {:?}, TLS {:?})",
            tls / plain,
            per[0].iter().map(|v| v.round()).collect::<Vec<_>>(),
            per[1].iter().map(|v| v.round()).collect::<Vec<_>>(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    rt.shutdown()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// One server's fan-out: the core loop's CPU nanoseconds per delivery.
fn measure(
    server: &Server,
    received: &AtomicU64,
    core: u32,
    opts: &Opts,
    payload: usize,
) -> Result<f64, Box<dyn Error>> {
    let body = vec![b'x'; payload];
    // A server frame: 2 bytes of header up to 125 bytes, 4 up to 64 KiB.
    let frame = payload + if payload < 126 { 2 } else { 4 };
    let start_bytes = received.load(Ordering::Relaxed);
    let cpu0 = cpu_ns(core)?;
    let mut sent = 0;
    while sent < opts.messages {
        let n = BATCH.min(opts.messages - sent);
        for _ in 0..n {
            server.send_raw_to_all(&body[..])?;
        }
        sent += n;
        let want = start_bytes + (sent * opts.clients * frame) as u64;
        let deadline = Instant::now() + DEADLINE;
        while received.load(Ordering::Relaxed) < want {
            if Instant::now() > deadline {
                return Err("the clients did not get every broadcast in time".into());
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let cpu = cpu_ns(core)? - cpu0;
    Ok(cpu as f64 / (opts.messages * opts.clients) as f64)
}

/// A connected client, its WebSocket handshake done, read raw from here on.
enum Client {
    Plain(mio::net::TcpStream),
    Tls(mio::net::TcpStream, Box<ClientConnection>),
}

impl Client {
    fn plain(addr: SocketAddr) -> Result<Client, Box<dyn Error>> {
        let sock = TcpStream::connect(addr)?;
        let (ws, _) = tungstenite::client(format!("ws://{addr}/"), sock)?;
        let sock = ws.into_inner();
        sock.set_nonblocking(true)?;
        Ok(Client::Plain(mio::net::TcpStream::from_std(sock)))
    }

    fn tls(addr: SocketAddr, config: &Arc<ClientConfig>) -> Result<Client, Box<dyn Error>> {
        let sock = TcpStream::connect(addr)?;
        let conn = ClientConnection::new(config.clone(), ServerName::try_from("localhost")?)?;
        let stream = rustls::StreamOwned::new(conn, sock);
        let url = format!("wss://localhost:{}/", addr.port());
        let (ws, _) = tungstenite::client(url, stream)?;
        let stream = ws.into_inner();
        stream.sock.set_nonblocking(true)?;
        Ok(Client::Tls(
            mio::net::TcpStream::from_std(stream.sock),
            Box::new(stream.conn),
        ))
    }
}

/// Reads every client until `stop`, adding the WebSocket bytes each kind received.
fn read_all(mut clients: Vec<Client>, received: &[AtomicU64; 2], stop: &AtomicBool) {
    let Ok(mut poll) = Poll::new() else {
        return;
    };
    for (i, c) in clients.iter_mut().enumerate() {
        let sock = match c {
            Client::Plain(s) | Client::Tls(s, _) => s,
        };
        let _ = poll.registry().register(sock, Token(i), Interest::READABLE);
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    // Bytes a client may already hold (read ahead during its handshake) are drained first.
    let mut due: Vec<usize> = (0..clients.len()).collect();
    while !stop.load(Ordering::Relaxed) {
        for i in due.drain(..) {
            let Some(c) = clients.get_mut(i) else {
                continue;
            };
            let (kind, n) = match c {
                Client::Plain(s) => (0, drain_plain(s, &mut buf)),
                Client::Tls(s, conn) => (1, drain_tls(s, conn, &mut buf)),
            };
            received[kind].fetch_add(n as u64, Ordering::Relaxed);
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

fn drain_plain(sock: &mut mio::net::TcpStream, buf: &mut [u8]) -> usize {
    let mut total = 0;
    loop {
        match sock.read(buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return total,
        }
    }
}

fn drain_tls(sock: &mut mio::net::TcpStream, conn: &mut ClientConnection, buf: &mut [u8]) -> usize {
    let mut total = 0;
    loop {
        loop {
            match conn.reader().read(buf) {
                Ok(n) if n > 0 => total += n,
                _ => break,
            }
        }
        match conn.read_tls(sock) {
            Ok(0) => return total,
            Ok(_) => {
                if conn.process_new_packets().is_err() {
                    return total;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return total,
        }
    }
}

/// A self-signed certificate for `localhost` in PEM files, and a client that trusts it.
fn certificate(dir: &std::path::Path) -> Result<(TlsConfig, Arc<ClientConfig>), Box<dyn Error>> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem())?;
    std::fs::write(&key, made.signing_key.serialize_pem())?;
    let mut roots = RootCertStore::empty();
    roots.add(made.cert.der().clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((TlsConfig::from_pem_files(cert, key)?, Arc::new(client)))
}

fn parse() -> Result<Opts, Box<dyn Error>> {
    let mut opts = Opts {
        clients: 500,
        messages: 2000,
        payloads: vec![64],
        runs: 3,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--clients" => opts.clients = value.parse()?,
            "--messages" => opts.messages = value.parse()?,
            "--payload" => {
                opts.payloads = value.split(',').map(str::parse).collect::<Result<_, _>>()?
            }
            "--runs" => opts.runs = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if opts.clients == 0 || opts.messages == 0 || opts.runs == 0 || opts.payloads.is_empty() {
        return Err("--clients, --messages, --runs and --payload must be positive".into());
    }
    Ok(opts)
}
