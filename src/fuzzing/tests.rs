//! The fuzz targets on stable Rust: the committed seed corpus, then a short seeded run of
//! random and mutated inputs, so that `cargo test --all-features` exercises every driver.

use std::path::Path;

use super::input::cut;
use super::*;

/// Every file of `fuzz/corpus/<target>/`, sorted by name.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "{}: no seeds", dir.display());
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// xorshift64: a fixed sequence, so a failure here is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs `target` on each seed, then on `rounds` inputs: random bytes, or a seed with a few
/// bytes changed, inserted or removed.
fn exercise(target: fn(&[u8]), seeds: &[Vec<u8>], rounds: usize) {
    for seed in seeds {
        target(seed);
    }
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..rounds {
        let mut data = if rng.below(4) == 0 {
            (0..rng.below(64)).map(|_| rng.next() as u8).collect()
        } else {
            seeds[rng.below(seeds.len())].clone()
        };
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len() + 1);
            match rng.below(3) {
                0 if at < data.len() => data[at] = rng.next() as u8,
                1 => data.insert(at, rng.next() as u8),
                _ if at < data.len() => {
                    data.remove(at);
                }
                _ => {}
            }
        }
        target(&data);
    }
}

#[test]
fn tcp_framers_corpus_and_mutations() {
    exercise(tcp_framers, &corpus("tcp_framers"), 3000);
}

#[test]
fn ws_decoder_corpus_and_mutations() {
    exercise(ws_decoder, &corpus("ws_decoder"), 3000);
}

#[test]
fn ws_deflate_corpus_and_mutations() {
    exercise(ws_deflate, &corpus("ws_deflate"), 3000);
}

#[test]
fn gateway_proto_corpus_and_mutations() {
    exercise(gateway_proto, &corpus("gateway_proto"), 3000);
    for data in [&[][..], &[15, 1], &[15, 1, 0, 0, 0, 1, 0x20], &[0xff; 9]] {
        gateway_proto(data);
    }
}

#[test]
fn cluster_wire_corpus_and_mutations() {
    exercise(cluster_wire, &corpus("cluster_wire"), 3000);
    for data in [&[][..], &[1], &[1, 0, 0], &[0xff; 7]] {
        cluster_wire(data);
    }
}

#[test]
fn http_request_corpus_and_mutations() {
    exercise(http_request, &corpus("http_request"), 3000);
}

#[test]
fn plain_request_corpus_and_mutations() {
    exercise(plain_request, &corpus("plain_request"), 3000);
}

#[test]
fn http_drivers_agree_with_hand_made_streams() {
    let two = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n\
                Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nGET";
    let items = parse_requests(&[&two[..20], &two[20..]], 1024, 1024);
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(matches!(&items[1], HttpItem::Request { body, .. } if body == b"hi"));
    assert_eq!(items[2], HttpItem::Incomplete(3));
    // A head over the limit is 431 however it arrives, even with garbage past the limit.
    let long = b"GET /aaaaaaaaaaaaaaaaaaaaaaaa\x01 HTTP/1.1\r\n\r\n";
    assert_eq!(parse_requests(&[long], 16, 0), [HttpItem::Refused(431)]);
    assert_eq!(
        parse_requests(&[&long[..17], &long[17..]], 16, 0),
        [HttpItem::Refused(431)]
    );

    let plain = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let item = PortItem::Plain("GET".into(), "/metrics".into());
    assert_eq!(read_port(&[plain]), item);
    assert_eq!(read_port(&[&plain[..5], &plain[5..]]), item);
    assert_eq!(read_port(&[&plain[..5]]), PortItem::Pending);
    let smuggle = b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(read_port(&[smuggle]), PortItem::Refused(400));
    assert_eq!(read_port(&[b"\x16\x03\x01"]), PortItem::Failed);
    let huge = vec![b'a'; MAX_HEAD_FOR_TEST + 1];
    assert_eq!(read_port(&[b"GET /", &huge]), PortItem::TooLarge);
}

const MAX_HEAD_FOR_TEST: usize = crate::conn::handshake::MAX_HEAD;

#[test]
fn empty_and_tiny_inputs() {
    for data in [&[][..], &[0], &[1, 2], &[0xff; 7]] {
        tcp_framers(data);
        ws_decoder(data);
        ws_deflate(data);
        http_request(data);
        plain_request(data);
    }
}

#[test]
fn cut_covers_the_stream_and_ends() {
    let stream: Vec<u8> = (0..=255).collect();
    for pattern in [
        &[][..],
        &[0],
        &[0, 0, 0],
        &[1],
        &[3, 0x81, 0],
        &[0x80, 0x7f],
    ] {
        let chunks = cut(&stream, pattern);
        assert_eq!(chunks.concat(), stream, "pattern {pattern:?}");
    }
    assert_eq!(cut(b"abcdef", &[2]), [&b"ab"[..], b"cd", b"ef"]);
    // A turn of the pattern that reads nothing ends with one read of the rest.
    assert_eq!(cut(b"abc", &[0, 0]), [&b""[..], b"", b"abc"]);
}

#[test]
fn drivers_agree_with_hand_made_streams() {
    let d = decode_lines(&[b"ab\r\n", b"c", b"d\n", b"e"], 16);
    assert_eq!(d.messages, [b"ab".to_vec(), b"cd".to_vec()]);
    assert_eq!((d.error, d.buffered), (None, 1));
    let d = decode_length(&[&[0, 0], &[0, 2, b'h'], b"i", &[0, 0, 1, 0]], 16);
    assert_eq!((d.messages, d.error), (vec![b"hi".to_vec()], Some(1009)));

    let mut frame = Vec::new();
    encode_frame_for_test(&mut frame, b"hello");
    let wire = mask_frame(&frame, [1, 2, 3, 4]);
    assert_eq!(wire[1], 0x80 | 5);
    let d = decode_ws(&[&wire[..3], &wire[3..]], 16);
    assert_eq!(d.items, [WsItem::Text("hello".into())]);
}

fn encode_frame_for_test(out: &mut Vec<u8>, text: &[u8]) {
    crate::codec::ws::encode_frame(out, crate::codec::ws::OpKind::Text, text);
}
