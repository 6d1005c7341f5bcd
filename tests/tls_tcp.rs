//! TLS for the framed TCP protocols (feature `tls`): length- and line-framed messages both
//! ways inside TLS, pushes to several clients, the close_notify at a server close, and the
//! handshake limits (garbage, a stalled handshake) as for wss.
#![cfg(feature = "tls")]
mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use corepush::{ClientId, ServerConfig, TlsConfig};
use rustls::{ClientConnection, StreamOwned};
use util::*;

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn write_frame(s: &mut Tls, body: &[u8]) {
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(body);
    s.write_all(&framed).unwrap();
    s.flush().unwrap();
}

fn read_frame(s: &mut Tls) -> String {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("read length");
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("read body");
    String::from_utf8(body).unwrap()
}

fn ask_frame(s: &mut Tls, command: &str) -> String {
    write_frame(s, command.as_bytes());
    read_frame(s)
}

#[test]
fn length_framed_messages_inside_tls() {
    let ca = Ca::new();
    let leaf = ca.leaf("tcp length", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let (rt, addr, server) =
        start_config(ServerConfig::tcp_length("tls-length", any_port()).tls(tls));
    let config = ca.client();
    let mut clients: Vec<Tls> = (0..3).map(|_| tls_stream(addr, &config)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            ask_frame(c, &format!("echo:frame {i}")),
            format!("frame {i}")
        );
    }
    // Larger than a TLS record, both ways.
    let big = "y".repeat(70_000);
    assert_eq!(ask_frame(&mut clients[0], &format!("echo:{big}")), big);
    assert_eq!(server.send_raw_to_all("pushed").unwrap(), 3);
    for c in &mut clients {
        assert_eq!(read_frame(c), "pushed");
    }

    // A close from the server: the TLS session ends with its close_notify (a clean end of
    // stream for the client, not a truncation).
    let id: ClientId = ask_frame(&mut clients[1], "id").parse().unwrap();
    server.close(id).unwrap();
    let mut rest = Vec::new();
    clients[1]
        .read_to_end(&mut rest)
        .expect("a clean end of the TLS stream");
    assert!(rest.is_empty());
    settle("the close is counted", 2, || server.connection_count());
    drop(clients);
    settle("the clients are gone", 0, || server.connection_count());
    rt.shutdown().unwrap();
}

#[test]
fn line_framed_messages_inside_tls() {
    let ca = Ca::new();
    let leaf = ca.leaf("tcp lines", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let (rt, addr, server) =
        start_config(ServerConfig::tcp_lines("tls-lines", any_port()).tls(tls));
    let config = ca.client();
    let mut a = BufReader::new(tls_stream(addr, &config));
    let mut b = BufReader::new(tls_stream(addr, &config));
    let line = |r: &mut BufReader<Tls>| {
        let mut s = String::new();
        r.read_line(&mut s).expect("a line");
        s.trim_end().to_owned()
    };
    a.get_mut().write_all(b"echo:one\r\necho:two\n").unwrap();
    a.get_mut().flush().unwrap();
    assert_eq!(line(&mut a), "one");
    assert_eq!(line(&mut a), "two");
    b.get_mut()
        .write_all(b"except-all:to the others\n")
        .unwrap();
    b.get_mut().flush().unwrap();
    assert_eq!(line(&mut b), "sent:1");
    assert_eq!(line(&mut a), "to the others");
    drop((a, b));
    settle("the clients are gone", 0, || server.connection_count());
    rt.shutdown().unwrap();
}

#[test]
fn tcp_tls_handshake_limits() {
    let ca = Ca::new();
    let leaf = ca.leaf("tcp limits", "server");
    let tls = TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let config = ServerConfig::tcp_lines("tls-limits", any_port())
        .tls(tls)
        .handshake_timeout(Duration::from_millis(300));
    let (rt, addr, server) = start_config(config);

    // Plain text on the TLS port: closed, counted, never seen by the handler.
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(WAIT)).unwrap();
    plain.write_all(b"echo:in clear\n").unwrap();
    let answer = read_to_close(&mut plain);
    assert!(!answer.ends_with(b"in clear\n"));
    settle("the garbage is counted", 1, || {
        server.stats().handshake_failures
    });

    // A client that connects and says nothing: dropped at the handshake timeout.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.set_read_timeout(Some(WAIT)).unwrap();
    assert!(read_to_close(&mut silent).is_empty());
    settle("the silent one is counted", 2, || {
        server.stats().handshake_failures
    });
    assert_eq!(server.stats().connections, 0);
    assert_eq!(server.connection_count(), 0);
    rt.shutdown().unwrap();
}
