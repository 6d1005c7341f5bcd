//! Framed TCP servers (line- and length-framed): echo, framed pushes, CRLF input, payloads the
//! framing cannot carry, oversized messages, and several servers in one runtime with
//! `get_server` and `require_server` resolving names.
mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use corepush::{ClientId, Error, Runtime, Server, ServerConfig, get_server, require_server};
use serde_json::json;
use util::*;

fn ask_line(s: &mut TcpStream, command: &str) -> String {
    s.write_all(format!("{command}\n").as_bytes()).unwrap();
    read_line(s)
}

fn ask_length(s: &mut TcpStream, command: &str) -> String {
    write_length_frame(s, command.as_bytes());
    String::from_utf8(read_length_frame(s)).unwrap()
}

/// Asserts that the server closed the connection: the next read is the end of the stream.
fn assert_eof(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        other => panic!("expected the server to close, got {other:?}"),
    }
}

fn start_tcp(config: ServerConfig) -> (Runtime, SocketAddr, Server) {
    let name = config.name.clone();
    let rt = Runtime::builder()
        .workers(2)
        .server(config.handler(|_| Cmd))
        .start()
        .unwrap();
    let addr = rt.local_addr(&name).unwrap();
    let server = rt.server(&name).unwrap();
    (rt, addr, server)
}

/// A line client on each core loop, with their ids.
fn line_pair(addr: SocketAddr) -> [(TcpStream, ClientId); 2] {
    let mut slots: [Option<(TcpStream, ClientId)>; 2] = [None, None];
    for _ in 0..200 {
        if slots.iter().all(Option::is_some) {
            break;
        }
        let mut s = tcp(addr);
        let id: ClientId = ask_line(&mut s, "id").parse().unwrap();
        let w = id.worker().index();
        if slots[w].is_none() {
            slots[w] = Some((s, id));
        } else {
            // Closed by the server, which unregisters it before the end of the stream.
            s.write_all(b"close\n").unwrap();
            assert_eof(&mut s);
        }
    }
    slots.map(|s| s.expect("a line client on each core loop"))
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn a_line_server_echoes_and_frames_pushes() {
    let (rt, addr, server) = start_tcp(ServerConfig::tcp_lines("tcp-lines", local()));
    let [(mut a, ida), (mut b, idb)] = line_pair(addr);
    assert_eq!(server.connection_count(), 2);
    assert_eq!(ask_line(&mut a, "echo:hello"), "hello");
    // CRLF input: the CR is not part of the message.
    a.write_all(b"echo:crlf\r\n").unwrap();
    assert_eq!(read_line(&mut a), "crlf");
    // Two messages in one write, and one message over two writes.
    a.write_all(b"echo:one\necho:two\r\nech").unwrap();
    assert_eq!(read_line(&mut a), "one");
    assert_eq!(read_line(&mut a), "two");
    a.write_all(b"o:split\n").unwrap();
    assert_eq!(read_line(&mut a), "split");

    assert_eq!(server.send_to_all(&json!({"a": 1})).unwrap(), 2);
    assert_eq!(server.send_raw("to a", ida).unwrap(), 1);
    assert_eq!(server.send(&json!("multi\nline"), idb).unwrap(), 1);
    assert_eq!(read_line(&mut a), r#"{"a":1}"#);
    assert_eq!(read_line(&mut a), "to a");
    assert_eq!(read_line(&mut b), r#"{"a":1}"#);
    assert_eq!(
        read_line(&mut b),
        r#""multi\nline""#,
        "JSON escapes the newline"
    );
    // Across core loops from inside a handler.
    assert_eq!(ask_line(&mut a, &format!("to:{idb}:from a")), "sent:1");
    assert_eq!(read_line(&mut b), "from a");
    drop((a, b));
    rt.shutdown().unwrap();
}

#[test]
fn a_raw_push_with_a_newline_cannot_be_framed_on_a_line_server() {
    let (rt, addr, server) = start_tcp(ServerConfig::tcp_lines("tcp-newline", local()));
    let mut a = tcp(addr);
    let id: ClientId = ask_line(&mut a, "id").parse().unwrap();
    assert!(matches!(server.send_raw("a\nb", id), Err(Error::Frame(_))));
    assert!(matches!(
        server.send_raw(&b"a\n"[..], id),
        Err(Error::Frame(_))
    ));
    assert!(matches!(
        server.send_raw_to_all("x\n"),
        Err(Error::Frame(_))
    ));
    assert!(matches!(
        server.send_raw_by_flag("\n", "f"),
        Err(Error::Frame(_))
    ));
    // Nothing was queued: the next line is the marker.
    assert_eq!(server.send_raw("marker", id).unwrap(), 1);
    assert_eq!(read_line(&mut a), "marker");
    // A bare CR is fine.
    assert_eq!(server.send_raw("a\rb", id).unwrap(), 1);
    assert_eq!(read_line(&mut a), "a\rb");
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn a_raw_push_ending_in_a_carriage_return_cannot_be_framed_on_a_line_server() {
    // A line reader strips a trailing CR, so the payload would arrive without it.
    let (rt, addr, server) = start_tcp(ServerConfig::tcp_lines("tcp-cr", local()));
    let mut a = tcp(addr);
    let id: ClientId = ask_line(&mut a, "id").parse().unwrap();
    assert!(matches!(server.send_raw("abc\r", id), Err(Error::Frame(_))));
    assert!(matches!(server.send_raw("\r", id), Err(Error::Frame(_))));
    assert!(matches!(
        server.send_raw(&b"abc\r"[..], id),
        Err(Error::Frame(_))
    ));
    assert!(matches!(
        server.send_raw_to_all("abc\r"),
        Err(Error::Frame(_))
    ));
    match server.send_raw("abc\r", id) {
        Err(e) => assert!(e.to_string().contains("carriage return"), "{e}"),
        Ok(n) => panic!("framed and queued to {n}"),
    }
    // Nothing was queued: the next line is the one that can be framed.
    assert_eq!(server.send_raw("abc", id).unwrap(), 1);
    assert_eq!(read_line(&mut a), "abc");
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn a_length_server_echoes_and_frames_pushes() {
    let (rt, addr, server) = start_tcp(ServerConfig::tcp_length("tcp-length", local()));
    let mut a = tcp(addr);
    let id: ClientId = ask_length(&mut a, "id").parse().unwrap();
    assert_eq!(ask_length(&mut a, "echo:with\nnewline"), "with\nnewline");
    // Two frames in one write.
    let mut two = Vec::new();
    for m in ["echo:x", "echo:y"] {
        two.extend_from_slice(&(m.len() as u32).to_be_bytes());
        two.extend_from_slice(m.as_bytes());
    }
    a.write_all(&two).unwrap();
    assert_eq!(read_length_frame(&mut a), b"x");
    assert_eq!(read_length_frame(&mut a), b"y");

    let bytes = vec![0u8, b'\n', 255, 0];
    assert_eq!(server.send_raw(bytes.clone(), id).unwrap(), 1);
    assert_eq!(server.send_to_all(&json!([1, 2])).unwrap(), 1);
    assert_eq!(server.send_raw("", id).unwrap(), 1);
    assert_eq!(read_length_frame(&mut a), bytes);
    assert_eq!(read_length_frame(&mut a), b"[1,2]");
    assert_eq!(read_length_frame(&mut a), b"");
    drop(a);
    rt.shutdown().unwrap();
}

#[test]
fn a_message_over_the_limit_closes_only_that_connection() {
    let lines = ServerConfig::tcp_lines("tcp-limit-lines", local()).max_message_size(64);
    let (rt, addr, server) = start_tcp(lines);
    let mut ok = tcp(addr);
    let mut big = tcp(addr);
    let big_id: ClientId = ask_line(&mut big, "id").parse().unwrap();
    // Exactly at the limit is fine (the CR of a CRLF does not count).
    let at_limit = format!("echo:{}", "x".repeat(59));
    assert_eq!(at_limit.len(), 64);
    big.write_all(format!("{at_limit}\r\n").as_bytes()).unwrap();
    assert_eq!(read_line(&mut big), "x".repeat(59));
    big.write_all(format!("echo:{}\n", "x".repeat(100)).as_bytes())
        .unwrap();
    assert_eof(&mut big);
    // The server unregisters a connection before it lets go of the socket.
    assert!(!server.exists(big_id));
    assert_eq!(server.send_raw("too late", big_id).unwrap(), 0);
    assert_eq!(ask_line(&mut ok, "echo:still served"), "still served");
    drop((ok, big));
    rt.shutdown().unwrap();
}

#[test]
fn a_declared_length_over_the_limit_closes_before_the_payload() {
    let length = ServerConfig::tcp_length("tcp-limit-length", local()).max_message_size(64);
    let (rt, addr, server) = start_tcp(length);
    let mut big = tcp(addr);
    let id: ClientId = ask_length(&mut big, "id").parse().unwrap();
    big.write_all(&1000u32.to_be_bytes()).unwrap();
    assert_eof(&mut big);
    assert!(!server.exists(id));
    drop(big);
    rt.shutdown().unwrap();
}

#[test]
fn servers_of_one_runtime_are_separate_and_found_by_name() {
    let (ws_name, tcp_name) = ("multi-ws-7f3a", "multi-tcp-7f3a");
    let rt = Runtime::builder()
        .workers(2)
        .server(ServerConfig::websocket(ws_name, local()).handler(|_| Cmd))
        .server(ServerConfig::tcp_lines(tcp_name, local()).handler(|_| Cmd))
        .start()
        .unwrap();
    let ws_server = rt.server(ws_name).unwrap();
    let tcp_server = rt.server(tcp_name).unwrap();
    assert_eq!(rt.default_server().name(), ws_name);
    let mut w = Client::connect(rt.local_addr(ws_name).unwrap());
    let mut t = tcp(rt.local_addr(tcp_name).unwrap());
    let tid: ClientId = ask_line(&mut t, "id").parse().unwrap();

    assert_eq!(ws_server.connections(), vec![w.id]);
    assert_eq!(tcp_server.connections(), vec![tid]);
    assert_eq!(ws_server.send_raw_to_all("ws only").unwrap(), 1);
    assert_eq!(tcp_server.send_raw_to_all("tcp only").unwrap(), 1);
    // An id of the other server is not a client of this one.
    assert_eq!(ws_server.send_raw("wrong server", tid).unwrap(), 0);
    assert_eq!(tcp_server.send_raw("wrong server", w.id).unwrap(), 0);
    assert!(!ws_server.exists(tid));
    assert_eq!(ws_server.close(tid).unwrap(), 0);
    assert_eq!(w.recv(), "ws only");
    assert_eq!(read_line(&mut t), "tcp only");
    w.assert_nothing_before_marker(&ws_server, "ws marker");
    assert_eq!(tcp_server.send_raw("tcp marker", tid).unwrap(), 1);
    assert_eq!(read_line(&mut t), "tcp marker");

    // By name from a foreign thread.
    let found = std::thread::scope(|s| {
        s.spawn(|| {
            let ws = get_server(ws_name).expect("the ws server by name");
            let tcp = get_server(tcp_name).expect("the tcp server by name");
            (
                ws.name().to_owned(),
                tcp.name().to_owned(),
                ws.send_raw("via get_server", w.id).unwrap(),
                get_server("no-such-server-7f3a").is_none(),
                require_server(tcp_name).map(|s| s.name().to_owned()).ok(),
                require_server("no-such-server-7f3a").err(),
            )
        })
        .join()
        .unwrap()
    });
    let (ws_found, tcp_found, pushed, unknown_is_none, required, unknown) = found;
    assert_eq!(
        (
            ws_found.as_str(),
            tcp_found.as_str(),
            pushed,
            unknown_is_none
        ),
        (ws_name, tcp_name, 1, true)
    );
    assert_eq!(required.as_deref(), Some(tcp_name));
    assert!(
        matches!(&unknown, Some(Error::UnknownServer(n)) if n == "no-such-server-7f3a"),
        "{unknown:?}"
    );
    assert_eq!(w.recv(), "via get_server");
    // From a core loop: its own runtime; `None` is the runtime's first server.
    assert_eq!(ask_line(&mut t, "default-server"), ws_name);
    assert_eq!(w.ask("default-server"), ws_name);
    assert_eq!(
        ask_line(&mut t, &format!("find-server:{tcp_name}")),
        tcp_name
    );
    assert_eq!(w.ask("find-server:no-such-server-7f3a"), "none");

    drop((w, t));
    rt.shutdown().unwrap();
    assert!(get_server(ws_name).is_none(), "gone after shutdown");
    assert!(get_server(tcp_name).is_none());
    assert!(matches!(require_server(ws_name), Err(Error::UnknownServer(n)) if n == ws_name));
}

#[test]
fn get_server_on_a_core_loop_prefers_its_own_runtime() {
    // Two runtimes with a server of the same name, and one name only the second has.
    let first = Runtime::builder()
        .workers(2)
        .server(ServerConfig::tcp_lines("shared-name-c41d", local()).handler(|_| Cmd))
        .start()
        .unwrap();
    let second = Runtime::builder()
        .workers(2)
        .server(ServerConfig::tcp_lines("shared-name-c41d", local()).handler(|_| Cmd))
        .server(ServerConfig::tcp_lines("only-second-c41d", local()).handler(|_| Cmd))
        .start()
        .unwrap();
    let mut on_first = tcp(first.local_addr("shared-name-c41d").unwrap());
    let id: ClientId = ask_line(&mut on_first, "id").parse().unwrap();
    // Off a core loop, the most recently started runtime wins.
    let latest = get_server("shared-name-c41d").unwrap();
    assert!(!latest.exists(id));
    assert!(first.server("shared-name-c41d").unwrap().exists(id));
    // On a core loop of the first runtime, its own server comes first ...
    assert_eq!(
        ask_line(&mut on_first, "server-has-me:shared-name-c41d"),
        "true"
    );
    assert_eq!(
        ask_line(&mut on_first, "default-server"),
        "shared-name-c41d"
    );
    // ... and a name only another runtime has is still found.
    assert_eq!(
        ask_line(&mut on_first, "find-server:only-second-c41d"),
        "only-second-c41d"
    );
    drop(on_first);
    second.shutdown().unwrap();
    first.shutdown().unwrap();
}
