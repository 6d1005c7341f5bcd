//! permessage-deflate (RFC 7692) over real sockets: a browser's offer and the answer, messages
//! compressed both ways, a broadcast to clients that compress and clients that do not (one
//! compression for all), context takeover on either side, offers declined, a compression
//! bomb refused with 1009 before it is inflated, and the same over wss:// (feature `tls`).

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use corepush::{DeflateConfig, Server, ServerConfig};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use util::*;

/// What a browser (Chrome, Firefox) offers.
const BROWSER_OFFER: &str = "permessage-deflate; client_max_window_bits";

/// A JSON message of about 1 KiB, as a push service sends them.
fn json_1k() -> String {
    let items: Vec<String> = (0..12)
        .map(|i| {
            format!(
                r#"{{"id":{i},"user":"user-{i}","status":"online","score":{},"tags":["a","b"]}}"#,
                i * 37
            )
        })
        .collect();
    format!(r#"{{"type":"update","items":[{}]}}"#, items.join(","))
}

/// A raw WebSocket client that speaks permessage-deflate with flate2 itself, over TCP or
/// over TLS.
struct DeflateClient<S = TcpStream> {
    s: S,
    /// The `Sec-WebSocket-Extensions` answer, if any.
    answer: Option<String>,
    compress: Compress,
    inflate: Decompress,
}

impl DeflateClient {
    /// Upgrades with `offer` as its `Sec-WebSocket-Extensions` (none if empty).
    fn connect(addr: SocketAddr, offer: &str) -> Self {
        let s = tcp(addr);
        s.set_nodelay(true).unwrap();
        Self::upgrade(s, addr, offer)
    }
}

impl<S: Read + Write> DeflateClient<S> {
    /// Upgrades on `s`, a stream to `addr`, with `offer` as its `Sec-WebSocket-Extensions`.
    fn upgrade(mut s: S, addr: SocketAddr, offer: &str) -> Self {
        let header = format!("Sec-WebSocket-Extensions: {offer}");
        let extra: &[&str] = if offer.is_empty() { &[] } else { &[&header] };
        s.write_all(upgrade_request(addr, "/", extra).as_bytes())
            .unwrap();
        let head = read_head(&mut s);
        assert_eq!(status_of(&head), 101, "{head}");
        let answer = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-extensions")
                .then(|| value.trim().to_owned())
        });
        DeflateClient {
            s,
            answer,
            compress: Compress::new(Compression::default(), false),
            inflate: Decompress::new(false),
        }
    }

    /// Sends a text message, compressed (RSV1) with the client's compressor, whose context
    /// carries on unless `reset`.
    fn send_compressed(&mut self, text: &str, reset: bool) {
        if reset {
            self.compress.reset();
        }
        let payload = compress_sync(&mut self.compress, &[text.as_bytes()]);
        self.s.write_all(&client_frame(0xC1, &payload)).unwrap();
    }

    /// Sends an uncompressed text message.
    fn send_plain(&mut self, text: &str) {
        self.s.write_all(&text_frame(text)).unwrap();
    }

    /// The next data message: whether it came compressed, and its text (inflated).
    fn recv(&mut self) -> (bool, String) {
        let frame = loop {
            let frame = read_server_frame(&mut self.s).expect("a frame");
            if frame.opcode == 0x1 || frame.opcode == 0x2 {
                break frame;
            }
            assert_ne!(frame.opcode, 0x8, "closed: {:?}", frame.close_reason());
        };
        assert!(frame.fin);
        if !frame.rsv1 {
            return (false, frame.text());
        }
        let mut input = frame.payload.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(1 << 20);
        self.inflate
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .expect("valid deflate from the server");
        (true, String::from_utf8(out).expect("UTF-8"))
    }

    /// The next data message's payload as it came on the wire (still compressed).
    fn recv_raw(&mut self) -> ServerFrame {
        read_server_frame(&mut self.s).expect("a frame")
    }
}

/// Compresses `parts` as one message (sync flush, tail left off).
fn compress_sync(c: &mut Compress, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 20);
    for part in parts {
        let start = c.total_in();
        while ((c.total_in() - start) as usize) < part.len() {
            let done = (c.total_in() - start) as usize;
            c.compress_vec(&part[done..], &mut out, FlushCompress::None)
                .unwrap();
        }
    }
    c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

fn deflate_server(deflate: DeflateConfig) -> (corepush::Runtime, SocketAddr, Server) {
    start_config(
        ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
            .permessage_deflate(deflate)
            .max_message_size(64 * 1024),
    )
}

#[test]
fn a_browser_offer_is_answered_and_messages_go_both_ways_compressed() {
    let (_rt, addr, _server) = deflate_server(DeflateConfig::default());
    let mut c = DeflateClient::connect(addr, BROWSER_OFFER);
    assert_eq!(
        c.answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let json = json_1k();
    let echo = format!("echo:{json}");
    // Compressed with the client's context kept from message to message (the default).
    for _ in 0..3 {
        c.send_compressed(&echo, false);
        assert_eq!(c.recv(), (true, json.clone()));
    }
    // An uncompressed message is fine too, and a reply under the minimum size goes plain.
    c.send_plain(&echo);
    assert_eq!(c.recv(), (true, json.clone()));
    c.send_compressed("echo:hi", false);
    assert_eq!(c.recv(), (false, "hi".to_owned()));
}

#[test]
fn a_broadcast_is_compressed_once_and_reaches_both_kinds_of_client() {
    let (_rt, addr, server) = deflate_server(DeflateConfig::default());
    let mut deflating: Vec<DeflateClient> = (0..6)
        .map(|_| DeflateClient::connect(addr, BROWSER_OFFER))
        .collect();
    let mut plain: Vec<_> = (0..3).map(|_| connect(addr)).collect();
    let mut raw_plain = DeflateClient::connect(addr, "");
    assert_eq!(raw_plain.answer, None);
    settle("every client open", 10, || server.connection_count());

    let json = json_1k();
    for round in 1..=3u64 {
        assert_eq!(server.send_raw_to_all(json.as_str()).unwrap(), 10);
        for c in &mut deflating {
            assert_eq!(c.recv(), (true, json.clone()));
        }
        for ws in &mut plain {
            assert_eq!(recv_text(ws), json);
        }
        let frame = raw_plain.recv_raw();
        assert!(!frame.rsv1);
        assert_eq!(frame.text(), json);
        // Six clients on two core loops, one compression per message.
        settle("one compression per broadcast", round, || {
            server.stats().frames_compressed
        });
    }
    // What went on the wire: the compressed frames are much smaller.
    let frame = {
        server.send_raw_to_all(json.as_str()).unwrap();
        deflating[0].recv_raw()
    };
    assert!(frame.rsv1);
    assert!(
        frame.payload.len() * 2 < json.len(),
        "{} bytes for {}",
        frame.payload.len(),
        json.len()
    );
}

#[test]
fn server_context_takeover_compresses_per_connection_with_its_history() {
    let (_rt, addr, server) =
        deflate_server(DeflateConfig::default().server_context_takeover(true));
    let mut keeping = DeflateClient::connect(addr, "permessage-deflate");
    assert_eq!(keeping.answer.as_deref(), Some("permessage-deflate"));
    // A client that asks the server to keep no context gets none.
    let mut fresh = DeflateClient::connect(addr, "permessage-deflate; server_no_context_takeover");
    assert_eq!(
        fresh.answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    settle("both open", 2, || server.connection_count());
    let json = json_1k();
    let mut sizes = Vec::new();
    for round in 1..=2u64 {
        server.send_raw_to_all(json.as_str()).unwrap();
        let frame = keeping.recv_raw();
        assert!(frame.rsv1);
        sizes.push(frame.payload.len());
        let mut input = frame.payload.clone();
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(1 << 16);
        keeping
            .inflate
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), json);
        assert_eq!(fresh.recv(), (true, json.clone()));
        // One compression of the connection's own, one shared for the other.
        settle("compressions", 2 * round, || {
            server.stats().frames_compressed
        });
    }
    // The second message refers back to the first.
    assert!(sizes[1] * 4 < sizes[0], "{sizes:?}");
}

#[test]
fn with_context_takeover_a_dropped_message_is_never_compressed_into_the_context() {
    // A client that does not read, and a queue of 64 KiB that drops what does not fit: the
    // messages it does get must still inflate, so none that was dropped went through its
    // compressor.
    let (_rt, addr, server) = start_config(
        ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
            .permessage_deflate(DeflateConfig::default().server_context_takeover(true))
            .max_outbound_bytes(64 * 1024)
            .slow_consumer(corepush::SlowConsumer::Drop),
    );
    let mut c = DeflateClient::connect(addr, "permessage-deflate");
    assert_eq!(c.answer.as_deref(), Some("permessage-deflate"));
    settle("open", 1, || server.connection_count());
    // Hex of a xorshift sequence: about half compressible, and never the same twice.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut body = |seq: usize| {
        let mut text = format!("{seq:08}:");
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push_str(&format!("{x:016x}"));
        }
        text
    };
    let mut sent = Vec::new();
    while server.stats().dropped == 0 {
        assert!(sent.len() < 200_000, "nothing was dropped");
        for _ in 0..100 {
            let text = body(sent.len());
            server.send_raw_to_all(text.as_str()).unwrap();
            sent.push(text);
        }
    }
    server
        .send_raw_to_all("the end, long enough to be compressed: 0123456789abcdef0123456789")
        .unwrap();
    let mut last = None;
    loop {
        let (compressed, text) = c.recv();
        assert!(compressed);
        if text.starts_with("the end") {
            break;
        }
        let seq: usize = text[..8].parse().expect("a sequence number");
        assert!(last.is_none_or(|l| seq > l), "{seq} after {last:?}");
        assert_eq!(text, sent[seq]);
        last = Some(seq);
    }
    assert!(server.stats().dropped > 0);
}

#[test]
fn asking_clients_to_keep_no_context() {
    let (_rt, addr, _server) =
        deflate_server(DeflateConfig::default().client_no_context_takeover(true));
    let mut c = DeflateClient::connect(addr, BROWSER_OFFER);
    assert_eq!(
        c.answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover")
    );
    let json = json_1k();
    for _ in 0..3 {
        c.send_compressed(&format!("echo:{json}"), true);
        assert_eq!(c.recv(), (true, json.clone()));
    }
}

#[test]
fn offers_the_server_cannot_honor_are_declined_and_rsv1_then_closes_with_1002() {
    let (_rt, addr, _server) = deflate_server(DeflateConfig::default());
    for offer in [
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; unknown_parameter",
        "permessage-deflate; client_max_window_bits=99",
        "x-webkit-deflate-frame",
    ] {
        let mut c = DeflateClient::connect(addr, offer);
        assert_eq!(c.answer, None, "{offer}");
        c.send_plain("echo:still served");
        assert_eq!(c.recv(), (false, "still served".to_owned()));
        let payload = compress_sync(&mut c.compress, &[b"echo:x"]);
        assert_refused_with(&mut c.s, &client_frame(0xC1, &payload), 1002);
    }
    // Of two offers, the first the server can honor.
    let c = DeflateClient::connect(
        addr,
        "permessage-deflate; server_max_window_bits=9, permessage-deflate; client_max_window_bits",
    );
    assert_eq!(
        c.answer.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    // A server without the setting answers no offer.
    let (_rt, addr, _server) = start_cmd("plain");
    let mut c = DeflateClient::connect(addr, BROWSER_OFFER);
    assert_eq!(c.answer, None);
    let payload = compress_sync(&mut c.compress, &[b"echo:x"]);
    assert_refused_with(&mut c.s, &client_frame(0xC1, &payload), 1002);
}

#[test]
fn a_compression_bomb_closes_with_1009_without_being_inflated() {
    let (_rt, addr, server) = deflate_server(DeflateConfig::default());
    let mut c = DeflateClient::connect(addr, BROWSER_OFFER);
    // 10 MiB of zeros, compressed a piece at a time (the test never holds them whole).
    let zeros = vec![0u8; 64 * 1024];
    let parts: Vec<&[u8]> = std::iter::repeat_n(&zeros[..], 160).collect();
    let bomb = compress_sync(&mut c.compress, &parts);
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    // The peak resident memory, reset to the present (Linux: 5 to clear_refs), must not rise
    // by the bomb's size while the server inflates it.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak");
    let before = vm_rss();
    assert_refused_with(&mut c.s, &client_frame(0xC2, &bomb), 1009);
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < 4 << 20,
        "the peak resident memory grew by {grown} bytes"
    );
    assert_eq!(server.stats().protocol_errors, 1);
    // Bad deflate data is 1007.
    let mut c = DeflateClient::connect(addr, BROWSER_OFFER);
    assert_refused_with(&mut c.s, &client_frame(0xC1, &[0xff, 0xff, 0xff]), 1007);
}

/// The peak resident set size of this process since it was last reset, in bytes (VmHWM).
fn peak_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in kB");
    kib * 1024
}

#[test]
fn a_level_past_9_is_a_configuration_error() {
    let spec = ServerConfig::websocket("ws", "127.0.0.1:0".parse().unwrap())
        .permessage_deflate(DeflateConfig::default().level(10))
        .handler(|_| Cmd);
    let err = corepush::Runtime::builder()
        .server(spec)
        .start()
        .expect_err("refused");
    assert!(err.to_string().contains("level"), "{err}");
}

#[cfg(feature = "tls")]
#[test]
fn over_wss_a_browser_offer_is_answered_and_a_broadcast_is_compressed_once() {
    let ca = Ca::new();
    let leaf = ca.leaf("corepush wss deflate", "server");
    let tls = corepush::TlsConfig::from_pem_files(&leaf.cert_path, &leaf.key_path).unwrap();
    let (_rt, addr, server) = start_config(
        ServerConfig::websocket("wss", "127.0.0.1:0".parse().unwrap())
            .tls(tls)
            .permessage_deflate(DeflateConfig::default())
            .max_message_size(64 * 1024),
    );
    let client = ca.client();
    let mut deflating: Vec<_> = (0..4)
        .map(|_| DeflateClient::upgrade(tls_stream(addr, &client), addr, BROWSER_OFFER))
        .collect();
    let mut plain = DeflateClient::upgrade(tls_stream(addr, &client), addr, "");
    for c in &deflating {
        assert_eq!(
            c.answer.as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }
    assert_eq!(plain.answer, None);

    // Both ways compressed, inside TLS records.
    let json = json_1k();
    let echo = format!("echo:{json}");
    for _ in 0..3 {
        deflating[0].send_compressed(&echo, false);
        assert_eq!(deflating[0].recv(), (true, json.clone()));
    }
    let compressed_by_echoes = server.stats().frames_compressed;

    // A broadcast: compressed once for the four, plain for the fifth.
    settle("every client open", 5, || server.connection_count());
    for round in 1..=3u64 {
        assert_eq!(server.send_raw_to_all(json.as_str()).unwrap(), 5);
        for c in &mut deflating {
            assert_eq!(c.recv(), (true, json.clone()));
        }
        let frame = plain.recv_raw();
        assert!(!frame.rsv1);
        assert_eq!(frame.text(), json);
        settle(
            "one compression per broadcast",
            compressed_by_echoes + round,
            || server.stats().frames_compressed,
        );
    }
    server.send_raw_to_all(json.as_str()).unwrap();
    let frame = deflating[1].recv_raw();
    assert!(frame.rsv1);
    assert!(frame.payload.len() * 2 < json.len());

    // A bomb over TLS closes with 1009 as over TCP.
    let c = &mut deflating[2];
    let bomb = compress_sync(&mut c.compress, &[&vec![b'a'; 1 << 20]]);
    c.s.write_all(&client_frame(0xC1, &bomb)).unwrap();
    let close = loop {
        let frame = read_server_frame(&mut c.s).expect("a close frame before the end");
        if frame.opcode == 0x8 {
            break frame;
        }
    };
    assert_eq!(close.close_code(), Some(1009));
}
