//! Tests for permessage-deflate's compressing and inflating, and the decoder's handling of
//! compressed client frames.

use flate2::{Compress, Compression, FlushCompress};

use super::*;
use crate::codec::Message;
use crate::codec::ws::{Inbound, WsDecoder};

/// Compresses a whole message as a client without context does.
fn packed(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(compress_alone(6, data, &mut out));
    out
}

fn json(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"id\":{i},\"name\":\"user{i}\",\"online\":true}}"))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}

#[test]
fn compressed_messages_inflate_back() {
    for data in [
        Vec::new(),
        b"a".to_vec(),
        json(3),
        json(2000),
        vec![0u8; 100_000],
    ] {
        let packed = packed(&data);
        assert!(!packed.ends_with(&TAIL), "the tail is left off");
        let mut out = Vec::new();
        Inflate::new(true)
            .inflate(&packed, &mut out, data.len())
            .unwrap();
        assert_eq!(out, data);
    }
    assert!(packed(&json(100)).len() < json(100).len() / 3);
}

#[test]
fn messages_compressed_alone_never_refer_back() {
    // Messages one after another on one thread, the same ones again and again: each inflates
    // with an inflater that saw none of the others, and repeating one does not shrink it.
    let first = packed(&json(20));
    for i in 0..200 {
        let data = json(1 + i % 25);
        let packed = packed(&data);
        let mut out = Vec::new();
        Inflate::new(false)
            .inflate(&packed, &mut out, 1 << 20)
            .unwrap();
        assert_eq!(out, data, "message {i}");
        if i % 25 == 19 {
            assert!(
                packed.len() + 8 >= first.len(),
                "{} < {}",
                packed.len(),
                first.len()
            );
        }
    }
}

#[test]
fn a_bomb_is_refused_without_allocating_it() {
    let bomb = packed(&vec![0u8; 10 << 20]);
    assert!(bomb.len() < 20_000, "{} bytes", bomb.len());
    let max = 64 * 1024;
    let mut out = Vec::new();
    let err = Inflate::new(true)
        .inflate(&bomb, &mut out, max)
        .unwrap_err();
    assert_eq!(err.close_code, 1009);
    assert!(out.len() <= max);
    assert!(out.capacity() <= 2 * max, "capacity {}", out.capacity());
    // One byte over the limit is too much; exactly the limit is fine.
    let data = json(50);
    let packed = packed(&data);
    let mut inflate = Inflate::new(false);
    assert_eq!(
        inflate
            .inflate(&packed, &mut out, data.len() - 1)
            .unwrap_err()
            .close_code,
        1009
    );
    inflate.inflate(&packed, &mut out, data.len()).unwrap();
    assert_eq!(out, data);
}

#[test]
fn context_takeover_carries_the_window_across_messages() {
    let mut client = Compress::new(Compression::default(), false);
    let mut inflate = Inflate::new(true);
    let data = json(20);
    let mut sizes = Vec::new();
    for _ in 0..3 {
        let mut msg = Vec::new();
        assert!(compress(&mut client, &data, &mut msg));
        sizes.push(msg.len());
        let mut out = Vec::new();
        inflate.inflate(&msg, &mut out, 1 << 20).unwrap();
        assert_eq!(out, data);
    }
    assert!(
        sizes[1] < sizes[0] / 4,
        "the second message refers back: {sizes:?}"
    );
    // Without takeover on the inflating side, such a message cannot be read.
    let mut fresh = Inflate::new(false);
    let mut first = Vec::new();
    let mut second = Vec::new();
    let mut client = Compress::new(Compression::default(), false);
    assert!(compress(&mut client, &data, &mut first));
    assert!(compress(&mut client, &data, &mut second));
    let mut out = Vec::new();
    fresh.inflate(&first, &mut out, 1 << 20).unwrap();
    assert!(fresh.inflate(&second, &mut out, 1 << 20).is_err() || out != data);
}

#[test]
fn a_final_block_ends_the_message_and_the_next_starts_afresh() {
    let data = json(10);
    let mut c = Compress::new(Compression::default(), false);
    let mut whole = Vec::with_capacity(data.len() + 64);
    c.compress_vec(&data, &mut whole, FlushCompress::Finish)
        .unwrap();
    let mut inflate = Inflate::new(true);
    for _ in 0..2 {
        let mut out = Vec::new();
        inflate.inflate(&whole, &mut out, 1 << 20).unwrap();
        assert_eq!(out, data);
    }
}

#[test]
fn bad_data_is_1007() {
    let mut out = Vec::new();
    // BTYPE 11 is reserved.
    let err = Inflate::new(true)
        .inflate(&[0xff, 0xff, 0xff], &mut out, 1 << 20)
        .unwrap_err();
    assert_eq!(err.close_code, 1007);
}

/// A masked client frame.
fn client_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut out = vec![b0];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// Decodes `stream` in reads of `step` bytes; the texts and binaries delivered, or the close
/// code of the error.
fn decode(decoder: &mut WsDecoder, stream: &[u8], step: usize) -> Result<Vec<Vec<u8>>, u16> {
    let mut got = Vec::new();
    for chunk in stream.chunks(step) {
        let mut buf = chunk.to_vec();
        decoder
            .decode(&mut buf, 1 << 20, &mut |item| {
                if let Inbound::Message(m) = item {
                    got.push(Message::as_bytes(&m).to_vec());
                }
            })
            .map_err(|e| e.close_code)?;
    }
    Ok(got)
}

#[test]
fn the_decoder_inflates_compressed_messages() {
    let data = json(30);
    let msg = packed(&data);
    let mut stream = client_frame(0xC1, &msg);
    // Fragmented: RSV1 on the first frame only, with a ping in between.
    let (a, b) = msg.split_at(msg.len() / 2);
    stream.extend(client_frame(0x41, a));
    stream.extend(client_frame(0x89, b"hi"));
    stream.extend(client_frame(0x80, b));
    // An uncompressed message is still allowed.
    stream.extend(client_frame(0x82, b"plain"));
    for step in [1, 7, 100, stream.len()] {
        let got = decode(&mut WsDecoder::with_deflate(true), &stream, step).unwrap();
        assert_eq!(
            got,
            vec![data.clone(), data.clone(), b"plain".to_vec()],
            "step {step}"
        );
    }
}

#[test]
fn rsv1_where_it_does_not_belong_is_1002() {
    let msg = packed(b"hello hello hello");
    // Not negotiated.
    assert_eq!(
        decode(&mut WsDecoder::new(), &client_frame(0xC1, &msg), 64),
        Err(1002)
    );
    // On a control frame, and on a continuation.
    let mut d = WsDecoder::with_deflate(true);
    assert_eq!(decode(&mut d, &client_frame(0xC9, b""), 64), Err(1002));
    let mut stream = client_frame(0x01, b"a");
    stream.extend(client_frame(0xC0, &msg));
    assert_eq!(
        decode(&mut WsDecoder::with_deflate(true), &stream, 64),
        Err(1002)
    );
    // RSV2 and RSV3 stay reserved.
    for b0 in [0xA1, 0x91] {
        let mut d = WsDecoder::with_deflate(true);
        assert_eq!(decode(&mut d, &client_frame(b0, &msg), 64), Err(1002));
    }
}

#[test]
fn the_decoder_refuses_bombs_and_bad_text() {
    let bomb = packed(&vec![0u8; 10 << 20]);
    let mut d = WsDecoder::with_deflate(true);
    let mut buf = client_frame(0xC2, &bomb);
    let err = d.decode(&mut buf, 64 * 1024, &mut |_| {}).unwrap_err();
    assert_eq!(err.close_code, 1009);
    let mut d = WsDecoder::with_deflate(true);
    let bad = packed(&[0xff, 0xfe, 0xfd]);
    assert_eq!(decode(&mut d, &client_frame(0xC1, &bad), 64), Err(1007));
}
