//! Tests for the WebSocket codec, kept apart so `ws.rs` stays readable.

use std::io::Cursor;

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};

use super::*;

/// Mask used by every test frame; its bytes differ so offset mistakes show.
const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];
/// FIN + opcode byte for the common frames.
const TEXT: u8 = 0x81;
/// FIN + binary.
const BINARY: u8 = 0x82;
/// FIN + close.
const CLOSE: u8 = 0x88;
/// FIN + ping.
const PING: u8 = 0x89;
/// FIN + pong.
const PONG: u8 = 0x8A;
/// Large enough for any test that is not about limits.
const MAX: usize = 1 << 20;

/// Owned copy of an `Inbound`, so results outlive the decode call.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
}

impl From<Inbound<'_>> for Got {
    fn from(item: Inbound<'_>) -> Self {
        match item {
            Inbound::Message(Message::Text(t)) => Got::Text(t.to_owned()),
            Inbound::Message(Message::Binary(b)) => Got::Binary(b.to_vec()),
            Inbound::Ping(p) => Got::Ping(p.to_vec()),
            Inbound::Pong(p) => Got::Pong(p.to_vec()),
            Inbound::Close(code, reason) => Got::Close(code, reason.to_owned()),
        }
    }
}

/// A masked client frame with the given first byte (FIN, RSV, opcode).
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
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
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

/// Feeds `bytes` in one call, appending what comes out to `got`.
fn feed(
    dec: &mut WsDecoder,
    bytes: &[u8],
    max: usize,
    got: &mut Vec<Got>,
) -> Result<(), ProtocolError> {
    let mut buf = bytes.to_vec();
    dec.decode(&mut buf, max, &mut |item| got.push(Got::from(item)))
}

/// Decodes `bytes` with a fresh decoder in one call.
fn decode_all(bytes: &[u8], max: usize) -> Result<Vec<Got>, ProtocolError> {
    let mut got = Vec::new();
    feed(&mut WsDecoder::new(), bytes, max, &mut got).map(|()| got)
}

/// The close code of the error `bytes` must produce.
fn error_code(bytes: &[u8], max: usize) -> u16 {
    match decode_all(bytes, max) {
        Err(e) => e.close_code,
        Ok(got) => panic!("expected an error, got {got:?}"),
    }
}

/// Several frames of every kind, including a 16-bit length and a fragmented message.
fn mixed_stream() -> Vec<u8> {
    let long = "x".repeat(300);
    [
        frame(TEXT, "héllo".as_bytes()),
        frame(BINARY, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        frame(TEXT, long.as_bytes()),
        frame(0x01, "fr".as_bytes()),
        frame(PING, b"p"),
        frame(0x80, "ag".as_bytes()),
        frame(PONG, b""),
        frame(BINARY, b""),
        frame(CLOSE, &close_payload(1000, "bye")),
    ]
    .concat()
}

/// What `mixed_stream` decodes to.
fn mixed_expected() -> Vec<Got> {
    vec![
        Got::Text("héllo".into()),
        Got::Binary((0..10).collect()),
        Got::Text("x".repeat(300)),
        Got::Ping(b"p".to_vec()),
        Got::Text("frag".into()),
        Got::Pong(Vec::new()),
        Got::Binary(Vec::new()),
        Got::Close(Some(1000), "bye".into()),
    ]
}

#[test]
fn single_text_and_binary() {
    assert_eq!(
        decode_all(&frame(TEXT, b"hi"), MAX),
        Ok(vec![Got::Text("hi".into())])
    );
    assert_eq!(
        decode_all(&frame(BINARY, &[0xFF, 0]), MAX),
        Ok(vec![Got::Binary(vec![0xFF, 0])])
    );
}

#[test]
fn payload_is_unmasked_in_place_for_whole_frames() {
    let mut buf = frame(BINARY, b"in place!");
    let start = buf.as_ptr() as usize;
    let end = start + buf.len();
    let mut inside = false;
    WsDecoder::new()
        .decode(&mut buf, MAX, &mut |item| {
            if let Inbound::Message(m) = item {
                let p = m.as_bytes().as_ptr() as usize;
                inside = (start..end).contains(&p);
            }
        })
        .unwrap();
    assert!(
        inside,
        "a frame that sits wholly in the input must be borrowed from it"
    );
}

#[test]
fn many_frames_in_one_buffer() {
    assert_eq!(decode_all(&mixed_stream(), MAX), Ok(mixed_expected()));
}

#[test]
fn split_at_every_offset() {
    let stream = mixed_stream();
    for cut in 0..=stream.len() {
        let mut dec = WsDecoder::new();
        let mut got = Vec::new();
        feed(&mut dec, &stream[..cut], MAX, &mut got).unwrap();
        feed(&mut dec, &stream[cut..], MAX, &mut got).unwrap();
        assert_eq!(got, mixed_expected(), "cut at {cut}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let mut dec = WsDecoder::new();
    let mut got = Vec::new();
    for byte in mixed_stream() {
        feed(&mut dec, &[byte], MAX, &mut got).unwrap();
    }
    assert_eq!(got, mixed_expected());
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn buffered_counts_partial_frame_and_fragments() {
    let mut dec = WsDecoder::new();
    let mut got = Vec::new();
    let first = frame(0x02, b"abcd");
    feed(&mut dec, &first, MAX, &mut got).unwrap();
    assert_eq!(dec.buffered(), 4);
    let last = frame(0x80, b"efgh");
    feed(&mut dec, &last[..3], MAX, &mut got).unwrap();
    assert_eq!(dec.buffered(), 4 + 3);
    feed(&mut dec, &last[3..8], MAX, &mut got).unwrap();
    assert_eq!(dec.buffered(), 4 + 2);
    feed(&mut dec, &last[8..], MAX, &mut got).unwrap();
    assert_eq!(dec.buffered(), 0);
    assert_eq!(got, vec![Got::Binary(b"abcdefgh".to_vec())]);
}

#[test]
fn fragmented_with_interleaved_control_frames() {
    let euro = "€".as_bytes();
    let stream = [
        frame(0x01, &[b'a', euro[0]]),
        frame(PING, b"1"),
        frame(0x00, &euro[1..]),
        frame(PONG, b"2"),
        frame(0x80, b"z"),
    ]
    .concat();
    let expected = vec![
        Got::Ping(b"1".to_vec()),
        Got::Pong(b"2".to_vec()),
        Got::Text("a€z".into()),
    ];
    assert_eq!(decode_all(&stream, MAX), Ok(expected));
}

#[test]
fn rsv_bits_are_refused() {
    for rsv in [0x40, 0x20, 0x10] {
        assert_eq!(error_code(&frame(TEXT | rsv, b"x"), MAX), 1002);
    }
}

#[test]
fn reserved_opcodes_are_refused() {
    for op in (0x3..=0x7).chain(0xB..=0xF) {
        assert_eq!(
            error_code(&frame(0x80 | op, b""), MAX),
            1002,
            "opcode {op:#x}"
        );
    }
}

#[test]
fn unmasked_frame_is_refused() {
    assert_eq!(error_code(&[TEXT, 0x01, b'x'], MAX), 1002);
}

#[test]
fn bad_control_frames_are_refused() {
    assert_eq!(error_code(&frame(PING, &[0; 126]), MAX), 1002);
    assert_eq!(error_code(&frame(0x09, b"x"), MAX), 1002);
    assert_eq!(
        decode_all(&frame(PING, &[7; 125]), MAX),
        Ok(vec![Got::Ping(vec![7; 125])])
    );
}

#[test]
fn bad_fragment_sequences_are_refused() {
    assert_eq!(error_code(&frame(0x80, b"x"), MAX), 1002);
    assert_eq!(error_code(&frame(0x00, b"x"), MAX), 1002);
    let new_in_fragmented = [frame(0x01, b"a"), frame(TEXT, b"b")].concat();
    assert_eq!(error_code(&new_in_fragmented, MAX), 1002);
    let binary_in_fragmented = [frame(0x01, b"a"), frame(0x02, b"b")].concat();
    assert_eq!(error_code(&binary_in_fragmented, MAX), 1002);
}

#[test]
fn length_with_top_bit_is_refused_without_allocating() {
    let mut claim = vec![BINARY, 0x80 | 127];
    claim.extend_from_slice(&(1u64 << 63).to_be_bytes());
    claim.extend_from_slice(&MASK);
    assert_eq!(error_code(&claim, usize::MAX), 1002);

    // Just below 2^63 is a size problem, refused from the header alone.
    claim[2..10].copy_from_slice(&(u64::MAX >> 1).to_be_bytes());
    let mut dec = WsDecoder::new();
    let err = feed(&mut dec, &claim, MAX, &mut Vec::new()).unwrap_err();
    assert_eq!(err.close_code, 1009);
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn huge_accepted_claim_buffers_only_what_arrived() {
    let mut claim = vec![BINARY, 0x80 | 127];
    claim.extend_from_slice(&(1u64 << 40).to_be_bytes());
    claim.extend_from_slice(&MASK);
    claim.extend_from_slice(b"abc");
    let mut dec = WsDecoder::new();
    feed(&mut dec, &claim, usize::MAX, &mut Vec::new()).unwrap();
    assert_eq!(dec.buffered(), 3);
    assert!(dec.payload.capacity() < 1024);
}

#[test]
fn size_limit_on_frames() {
    assert_eq!(
        decode_all(&frame(BINARY, &[1; 100]), 100),
        Ok(vec![Got::Binary(vec![1; 100])])
    );
    assert_eq!(error_code(&frame(BINARY, &[1; 101]), 100), 1009);
    // Refused as soon as the header is in, before the payload arrives.
    let big = frame(TEXT, &[b'a'; 70_000]);
    let mut dec = WsDecoder::new();
    let err = feed(&mut dec, &big[..14], 65_536, &mut Vec::new()).unwrap_err();
    assert_eq!(err.close_code, 1009);
}

#[test]
fn size_limit_on_assembled_messages() {
    let at_limit = [
        frame(0x02, &[1; 60]),
        frame(PING, &[0; 50]),
        frame(0x80, &[2; 40]),
    ]
    .concat();
    let mut expected = vec![1; 60];
    expected.extend_from_slice(&[2; 40]);
    assert_eq!(
        decode_all(&at_limit, 100),
        Ok(vec![Got::Ping(vec![0; 50]), Got::Binary(expected)])
    );
    let over = [frame(0x02, &[1; 60]), frame(0x80, &[2; 41])].concat();
    assert_eq!(error_code(&over, 100), 1009);
}

#[test]
fn invalid_utf8_is_refused() {
    assert_eq!(error_code(&frame(TEXT, &[0xC3, 0x28]), MAX), 1007);
    let split = [frame(0x01, b"ok"), frame(0x80, &[0xFF])].concat();
    assert_eq!(error_code(&split, MAX), 1007);
    // A code point cut short at the end of the message.
    let truncated = [frame(0x01, b"a"), frame(0x80, &"€".as_bytes()[..2])].concat();
    assert_eq!(error_code(&truncated, MAX), 1007);
}

#[test]
fn close_frames() {
    assert_eq!(
        decode_all(&frame(CLOSE, b""), MAX),
        Ok(vec![Got::Close(None, String::new())])
    );
    assert_eq!(
        decode_all(&frame(CLOSE, &[0x03, 0xE8]), MAX),
        Ok(vec![Got::Close(Some(1000), String::new())])
    );
    let with_reason = frame(CLOSE, &close_payload(4001, "gone ✓"));
    assert_eq!(
        decode_all(&with_reason, MAX),
        Ok(vec![Got::Close(Some(4001), "gone ✓".into())])
    );
}

#[test]
fn bad_close_frames_are_refused() {
    assert_eq!(error_code(&frame(CLOSE, &[0x03]), MAX), 1002);
    for code in [
        0,
        999,
        1004,
        1005,
        1006,
        1015,
        1016,
        2000,
        2999,
        5000,
        u16::MAX,
    ] {
        assert_eq!(
            error_code(&frame(CLOSE, &code.to_be_bytes()), MAX),
            1002,
            "code {code}"
        );
    }
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999,
    ] {
        let got = decode_all(&frame(CLOSE, &code.to_be_bytes()), MAX);
        assert_eq!(
            got,
            Ok(vec![Got::Close(Some(code), String::new())]),
            "code {code}"
        );
    }
    assert_eq!(error_code(&frame(CLOSE, &[0x03, 0xE8, 0xFF]), MAX), 1007);
}

#[test]
fn close_rule_matches_tungstenite_except_1014() {
    for code in 0..=u16::MAX {
        if code != 1014 {
            assert_eq!(
                close_code_allowed(code),
                CloseCode::from(code).is_allowed(),
                "code {code}"
            );
        }
    }
}

#[test]
fn input_after_close_is_ignored() {
    let stream = [
        frame(TEXT, b"a"),
        frame(CLOSE, b""),
        frame(TEXT, b"b"),
        vec![0xFF, 0x00],
    ]
    .concat();
    let mut dec = WsDecoder::new();
    let mut got = Vec::new();
    feed(&mut dec, &stream, MAX, &mut got).unwrap();
    assert!(dec.is_closed());
    feed(&mut dec, &frame(TEXT, b"c"), MAX, &mut got).unwrap();
    feed(&mut dec, &[0x70, 0x00], MAX, &mut got).unwrap();
    assert_eq!(
        got,
        vec![Got::Text("a".into()), Got::Close(None, String::new())]
    );
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn mask_with_every_offset_and_length() {
    for offset in 0..8 {
        for len in 0..40 {
            let plain: Vec<u8> = (0..len as u8).collect();
            let mut buf = plain.clone();
            apply_mask(&mut buf, MASK, offset);
            let naive: Vec<u8> = plain
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ MASK[(i + offset) % 4])
                .collect();
            assert_eq!(buf, naive, "offset {offset} len {len}");
        }
    }
}

#[test]
fn encode_frame_header_boundaries() {
    for (len, header, len_byte) in [
        (0, 2, 0),
        (125, 2, 125),
        (126, 4, 126),
        (65535, 4, 126),
        (65536, 10, 127),
    ] {
        let payload = vec![0xAB; len];
        let mut out = Vec::new();
        encode_frame(&mut out, OpKind::Binary, &payload);
        assert_eq!(header_len(len), header);
        assert_eq!(out.len(), header + len);
        assert_eq!(out[0], 0x82);
        assert_eq!(out[1], len_byte, "len {len}: server frames are unmasked");
        assert_eq!(&out[header..], &payload[..]);
    }
}

#[test]
fn encode_frame_round_trips_through_tungstenite() {
    let ops = [
        (OpKind::Text, OpCode::Data(Data::Text)),
        (OpKind::Binary, OpCode::Data(Data::Binary)),
        (OpKind::Ping, OpCode::Control(Control::Ping)),
        (OpKind::Pong, OpCode::Control(Control::Pong)),
        (OpKind::Close, OpCode::Control(Control::Close)),
    ];
    for (kind, opcode) in ops {
        for len in [0, 1, 125, 126, 127, 65535, 65536, 70_000] {
            let payload = vec![7; len];
            let mut out = vec![0xEE]; // appends, never overwrites
            encode_frame(&mut out, kind, &payload);
            let mut cursor = Cursor::new(&out[1..]);
            let (header, parsed_len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert_eq!(parsed_len, len as u64);
            assert_eq!(header.opcode, opcode);
            assert!(header.is_final && header.mask.is_none());
            assert!(!header.rsv1 && !header.rsv2 && !header.rsv3);
            assert_eq!(cursor.position() as usize, header_len(len));
            assert_eq!(header.len(parsed_len), header_len(len));
        }
    }
}

#[test]
fn close_payload_truncates_at_char_boundary() {
    assert_eq!(close_payload(1000, ""), vec![0x03, 0xE8]);
    assert_eq!(close_payload(1001, "ok"), vec![0x03, 0xE9, b'o', b'k']);
    let ascii = "a".repeat(200);
    assert_eq!(close_payload(1000, &ascii).len(), 125);
    // 122 ASCII bytes then a 3-byte char: it would end at 125 bytes, so it is dropped.
    let reason = format!("{}€tail", "a".repeat(122));
    let body = close_payload(1000, &reason);
    assert_eq!(body.len(), 2 + 122);
    assert!(std::str::from_utf8(&body[2..]).is_ok());
    assert_eq!(decode_all(&frame(CLOSE, &body), MAX).unwrap().len(), 1);
}
