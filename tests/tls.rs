//! wss:// (feature `tls`): messages both ways, a broadcast shared by wss and plain clients, a
//! client that reads late (the socket fills mid-flush), a certificate reload with clients
//! connected, handshake limits (a stalled TLS handshake, garbage instead of a ClientHello),
//! and clear errors for bad PEM files.
#![cfg(feature = "tls")]
mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use corepush::{Error, Runtime, ServerConfig, TlsConfig};
use rustls::ClientConnection;
use rustls::pki_types::ServerName;
use util::*;

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn wss_messages_both_ways_and_a_broadcast_beside_plain_clients() {
    let ca = Ca::new();
    let leaf = ca.leaf("corepush wss", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let rt = Runtime::builder()
        .workers(2)
        .server(
            ServerConfig::websocket("wss", any_port())
                .tls(tls)
                .handler(|_| Cmd),
        )
        .server(ServerConfig::websocket("ws", any_port()).handler(|_| Cmd))
        .start()
        .unwrap();
    let (wss_addr, ws_addr) = (rt.local_addr("wss").unwrap(), rt.local_addr("ws").unwrap());
    let client = ca.client();
    let mut secure: Vec<Wss> = (0..4).map(|_| connect_wss(wss_addr, &client)).collect();
    let mut plain: Vec<Ws> = (0..3).map(|_| connect(ws_addr)).collect();
    assert_eq!(peer_cert(&secure[0]), leaf.der);

    // Both ways, on each client (the two core loops share them).
    for (i, ws) in secure.iter_mut().enumerate() {
        assert_eq!(
            ask_wss(ws, &format!("echo:hello {i}")),
            format!("hello {i}")
        );
    }
    // A message larger than a TLS record (16 KiB) both ways.
    let big = "x".repeat(100_000);
    assert_eq!(ask_wss(&mut secure[0], &format!("echo:{big}")), big);

    // From a wss client to every wss client; then one payload to both servers' clients.
    assert_eq!(
        ask_wss(&mut secure[1], "except-all:from a wss client"),
        "sent:3"
    );
    for (i, ws) in secure.iter_mut().enumerate() {
        if i != 1 {
            assert_eq!(recv_wss(ws), "from a wss client");
        }
    }
    for name in ["wss", "ws"] {
        let n = rt
            .server(name)
            .unwrap()
            .send_raw_to_all("to everyone")
            .unwrap();
        assert_eq!(n, if name == "wss" { 4 } else { 3 });
    }
    for ws in &mut secure {
        assert_eq!(recv_wss(ws), "to everyone");
    }
    for ws in &mut plain {
        assert_eq!(recv_text(ws), "to everyone");
    }
    // A burst of pushes arrives whole and in order through each client's encryption.
    let server = rt.server("wss").unwrap();
    for i in 0..500 {
        assert_eq!(server.send_raw_to_all(format!("burst {i}")).unwrap(), 4);
    }
    for ws in &mut secure {
        for i in 0..500 {
            assert_eq!(recv_wss(ws), format!("burst {i}"));
        }
    }

    // A close from the server: the close frame, inside TLS.
    let id = ask_wss(&mut secure[2], "id");
    server
        .close(id.parse::<corepush::ClientId>().unwrap())
        .unwrap();
    assert_eq!(wss_close_code(&mut secure[2]), Some(1000));
    settle("the close is counted", 3, || server.connection_count());
    secure.remove(2);

    // A graceful shutdown: every client gets its close frame (inside TLS for wss).
    rt.shutdown_handle().shutdown();
    for ws in &mut secure {
        assert_eq!(wss_close_code(ws), Some(1001));
    }
    for ws in &mut plain {
        assert_eq!(read_until_close(ws), Some(1001));
    }
    rt.join().unwrap();
}

#[test]
fn a_client_that_reads_late_gets_everything_in_order() {
    let ca = Ca::new();
    let leaf = ca.leaf("late reader", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let config = ServerConfig::websocket("wss", any_port())
        .tls(tls)
        .max_outbound_bytes(64 << 20);
    let (rt, addr, server) = start_config(config);
    let mut ws = connect_wss(addr, &ca.client());
    // 16 MiB pushed before the client reads any: more than the socket takes, so the
    // flush stops at `WouldBlock` with records held by rustls and the rest in clear, and the
    // writable edges carry it on as the client reads.
    let chunk = "z".repeat(16 * 1024);
    let total = 1024;
    for i in 0..total {
        let n = server.send_raw_to_all(format!("{i:04}{chunk}")).unwrap();
        assert_eq!(n, 1);
    }
    for i in 0..total {
        let m = recv_wss(&mut ws);
        assert_eq!(&m[..4], format!("{i:04}"), "push {i}");
        assert_eq!(m.len(), 4 + chunk.len());
    }
    assert_eq!(ask_wss(&mut ws, "echo:still open"), "still open");
    drop(ws);
    settle("the client is gone", 0, || server.connection_count());
    rt.shutdown().unwrap();
}

#[test]
fn a_reload_serves_new_handshakes_and_keeps_connected_clients() {
    let ca = Ca::new();
    let first = ca.leaf("first certificate", "server");
    let tls = TlsConfig::from_pem_files(&first.cert_path, &first.key_path).unwrap();
    let (rt, addr, server) = start_config(ServerConfig::websocket("wss", any_port()).tls(tls));
    let client = ca.client();
    let mut old = connect_wss(addr, &client);
    assert_eq!(peer_cert(&old), first.der);

    // New files in the same place, then the reload.
    let second = ca.leaf("second certificate", "server");
    assert_ne!(first.der, second.der);
    rt.reload_tls("wss").unwrap();
    let mut new = connect_wss(addr, &client);
    assert_eq!(peer_cert(&new), second.der);
    let subject = x509_common_name(&peer_cert(&new));
    assert!(subject, "the new client sees the new subject");

    // The client from before the reload is still served, both ways and by broadcasts.
    assert_eq!(ask_wss(&mut old, "echo:still here"), "still here");
    assert_eq!(ask_wss(&mut new, "echo:new here"), "new here");
    assert_eq!(server.send_raw_to_all("both").unwrap(), 2);
    assert_eq!(recv_wss(&mut old), "both");
    assert_eq!(recv_wss(&mut new), "both");

    // A reload that fails keeps the certificate in use and names the file.
    std::fs::write(&second.key_path, "not a key").unwrap();
    match rt.reload_tls("wss") {
        Err(Error::Config(m)) => assert!(m.contains(&second.key_path.display().to_string()), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    let again = connect_wss(addr, &client);
    assert_eq!(peer_cert(&again), second.der);

    // Names that have nothing to reload.
    assert!(matches!(
        rt.reload_tls("nope"),
        Err(Error::UnknownServer(_))
    ));
    drop((old, new, again));
    settle("the clients are gone", 0, || server.connection_count());
    rt.shutdown().unwrap();
}

/// Whether the certificate's DER holds the common name "second certificate" (the subject is
/// DER-encoded in clear, so its bytes appear as they are).
fn x509_common_name(der: &[u8]) -> bool {
    der.windows(b"second certificate".len())
        .any(|w| w == b"second certificate")
}

#[test]
fn reload_of_a_server_without_tls_is_an_error() {
    let (rt, _, _) = start_cmd("plain");
    match rt.reload_tls("plain") {
        Err(Error::Config(m)) => assert!(m.contains("no TLS"), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }
    rt.shutdown().unwrap();
}

#[test]
fn a_client_that_stalls_mid_handshake_is_dropped_at_the_timeout() {
    let ca = Ca::new();
    let leaf = ca.leaf("stall", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let timeout = Duration::from_millis(400);
    let config = ServerConfig::websocket("wss", any_port())
        .tls(tls)
        .handshake_timeout(timeout);
    let (rt, addr, server) = start_config(config);

    // The ClientHello goes out, the server's answer comes back, and the client says no more.
    let started = Instant::now();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = ClientConnection::new(ca.client(), name).unwrap();
    while conn.wants_write() {
        conn.write_tls(&mut sock).unwrap();
    }
    let n = conn.read_tls(&mut sock).unwrap();
    assert!(n > 0, "the server answers the ClientHello");
    // Then the server hangs up at its deadline: the rest of its flight, then the end.
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert!(started.elapsed() >= timeout, "dropped before the timeout");
    settle("the stalled handshake is counted", 1, || {
        server.stats().handshake_failures
    });
    assert_eq!(server.connection_count(), 0);

    // A well-behaved client is unaffected.
    let mut ws = connect_wss(addr, &ca.client());
    assert_eq!(ask_wss(&mut ws, "echo:ok"), "ok");
    drop(ws);
    settle("the client is gone", 0, || server.connection_count());
    rt.shutdown().unwrap();
}

#[test]
fn garbage_instead_of_a_client_hello_is_closed_and_counted() {
    let ca = Ca::new();
    let leaf = ca.leaf("garbage", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let (rt, addr, server) = start_config(ServerConfig::websocket("wss", any_port()).tls(tls));

    // A plain WebSocket upgrade on the TLS port.
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(upgrade_request(addr, "/", &[]).as_bytes())
        .unwrap();
    let answer = read_to_close(&mut sock);
    assert!(
        !answer.starts_with(b"HTTP"),
        "no answer in clear: {:?}",
        String::from_utf8_lossy(&answer)
    );
    settle("the garbage is counted", 1, || {
        server.stats().handshake_failures
    });

    // Random bytes.
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock.write_all(&[0xde; 300]).unwrap();
    read_to_close(&mut sock);
    settle("both are counted", 2, || server.stats().handshake_failures);
    assert_eq!(server.connection_count(), 0);
    rt.shutdown().unwrap();
}

#[test]
fn bad_pem_files_give_errors_naming_the_file() {
    let ca = Ca::new();
    let leaf = ca.leaf("pem", "server");
    let missing = ca.dir().join("missing.pem");
    let not_pem = ca.dir().join("not.pem");
    std::fs::write(&not_pem, "hello, not a certificate\n").unwrap();
    let other = ca.leaf("other", "other");

    let cases = [
        (
            missing.clone(),
            leaf.key_path.clone(),
            missing.clone(),
            "cannot read",
        ),
        (
            leaf.cert_path.clone(),
            missing.clone(),
            missing.clone(),
            "cannot read",
        ),
        (
            not_pem.clone(),
            leaf.key_path.clone(),
            not_pem.clone(),
            "no CERTIFICATE",
        ),
        (
            leaf.cert_path.clone(),
            not_pem.clone(),
            not_pem.clone(),
            "no PRIVATE KEY",
        ),
        // A certificate and a key that do not belong together.
        (
            leaf.cert_path.clone(),
            other.key_path.clone(),
            other.key_path.clone(),
            "does not go",
        ),
    ];
    for (cert, key, named, says) in cases {
        match TlsConfig::from_pem_files(&cert, &key) {
            Err(e @ Error::Config(_)) => {
                let m = e.to_string();
                assert!(m.contains(&named.display().to_string()), "{m}");
                assert!(m.contains(says), "{m}");
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

#[test]
fn tls_from_a_configuration_file() {
    let ca = Ca::new();
    let leaf = ca.leaf("from a file", "file");
    let text = format!(
        "[servers.wss]\naddr = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n",
        leaf.cert_path, leaf.key_path
    );
    let file = corepush::ConfigFile::parse(&text, corepush::ConfigFormat::Toml).expect("a file");
    let rt = Runtime::builder()
        .workers(1)
        .server(file.server("wss").expect("its server").handler(|_| Cmd))
        .start()
        .expect("a wss server from the file");
    let mut ws = connect_wss(rt.local_addr("wss").unwrap(), &ca.client());
    assert_eq!(peer_cert(&ws), leaf.der);
    assert_eq!(ask_wss(&mut ws, "echo:configured"), "configured");
    drop(ws);
    rt.shutdown().unwrap();

    // One without the other names what is missing.
    let half = format!(
        "[servers.wss]\naddr = \"127.0.0.1:0\"\ntls_cert = {:?}\n",
        leaf.cert_path
    );
    let e = corepush::ConfigFile::parse(&half, corepush::ConfigFormat::Toml)
        .and_then(|f| f.server("wss"))
        .expect_err("a certificate without its key");
    assert!(e.to_string().contains("servers.wss.tls_key"), "{e}");
}
