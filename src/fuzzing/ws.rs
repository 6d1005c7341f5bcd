//! The WebSocket target: the decoder of (masked) client frames, and the server's encoder.

use super::input::{Input, cut};
use crate::codec::Message;
use crate::codec::ws::{Inbound, OpKind, WsDecoder, close_payload, encode_frame, header_len};

/// An owned `Inbound` item, for comparing decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsItem {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping and its payload.
    Ping(Vec<u8>),
    /// A pong and its payload.
    Pong(Vec<u8>),
    /// A close frame: its code, if any, and its reason.
    Close(Option<u16>, String),
}

impl From<Inbound<'_>> for WsItem {
    fn from(item: Inbound<'_>) -> Self {
        match item {
            Inbound::Message(Message::Text(t)) => WsItem::Text(t.to_owned()),
            Inbound::Message(Message::Binary(b)) => WsItem::Binary(b.to_vec()),
            Inbound::Ping(p) => WsItem::Ping(p.to_vec()),
            Inbound::Pong(p) => WsItem::Pong(p.to_vec()),
            Inbound::Close(code, reason) => WsItem::Close(code, reason.to_owned()),
        }
    }
}

/// What the decoder made of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsDecoded {
    /// The items, in order.
    pub items: Vec<WsItem>,
    /// The close code of the protocol error that ended decoding, if one did.
    pub error: Option<u16>,
    /// Bytes the decoder held back at the end (0 after an error: the connection is gone).
    pub buffered: usize,
}

/// Runs the fuzz target: `data` is a size-limit byte, a cut pattern, four mask bytes, then the
/// stream. The stream is decoded as client frames (in reads cut by the pattern, and as one
/// read), and what came out is masked, encoded, and decoded again; then the same bytes are
/// read as a recipe for a valid conversation (messages, fragments with pings between them, a
/// close), whose frames must decode to exactly what the recipe says. Panics if an invariant
/// breaks.
pub fn ws_decoder(data: &[u8]) {
    let mut input = Input::new(data);
    let max = input.limit();
    let pattern = input.pattern();
    let key = [input.byte(), input.byte(), input.byte(), input.byte()];
    let stream = input.rest();
    check_raw(stream, pattern, key, max);
    check_recipe(stream, pattern, key, max);
}

/// Decodes `chunks` (one `decode` call each, from a copy: the decoder unmasks in place) with a
/// fresh `WsDecoder`, up to the first error.
pub fn decode_ws(chunks: &[&[u8]], max: usize) -> WsDecoded {
    let mut decoder = WsDecoder::new();
    let mut items = Vec::new();
    let mut buf = Vec::new();
    for chunk in chunks {
        buf.clear();
        buf.extend_from_slice(chunk);
        if let Err(e) = decoder.decode(&mut buf, max, &mut |item| items.push(item.into())) {
            return WsDecoded {
                items,
                error: Some(e.close_code),
                buffered: 0,
            };
        }
    }
    WsDecoded {
        items,
        error: None,
        buffered: decoder.buffered(),
    }
}

/// The client frame with the header and payload of `frame`, a server frame as `encode_frame`
/// writes it (unmasked): the mask bit set, `key` after the length, the payload masked.
pub fn mask_frame(frame: &[u8], key: [u8; 4]) -> Vec<u8> {
    let head = match frame.get(1).map(|b| b & 0x7f) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    let (head, payload) = frame.split_at(head.min(frame.len()));
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(head);
    if let Some(b1) = out.get_mut(1) {
        *b1 |= 0x80;
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    out
}

/// Close codes a client may send, edges of each range included.
const CLOSE_CODES: [u16; 14] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
];

/// Frames in one recipe, at most.
const MAX_FRAMES: usize = 256;

fn check_raw(stream: &[u8], pattern: &[u8], key: [u8; 4], max: usize) {
    let whole = decode_ws(&[stream], max);
    let chunked = decode_ws(&cut(stream, pattern), max);
    assert_eq!(chunked, whole, "decoding depends on how reads are cut");
    if let Some(code) = whole.error {
        assert!(matches!(code, 1002 | 1007 | 1009), "close code {code}");
    }
    for (i, item) in whole.items.iter().enumerate() {
        match item {
            WsItem::Text(t) => assert!(t.len() <= max, "text of {} > {max}", t.len()),
            WsItem::Binary(b) => assert!(b.len() <= max, "binary of {} > {max}", b.len()),
            WsItem::Ping(p) | WsItem::Pong(p) => assert!(p.len() <= 125.min(max)),
            WsItem::Close(code, reason) => {
                assert_eq!(i + 1, whole.items.len(), "items after a close");
                assert!(reason.len() <= 123 && (code.is_some() || reason.is_empty()));
            }
        }
    }

    let mut again = Vec::new();
    for (i, item) in whole.items.iter().enumerate() {
        again.extend(mask_frame(&encode_item(item), vary(key, i)));
    }
    let expected = WsDecoded {
        items: whole.items.clone(),
        ..WsDecoded::default()
    };
    assert_eq!(decode_ws(&cut(&again, pattern), max), expected);
}

/// A server frame carrying `item`.
fn encode_item(item: &WsItem) -> Vec<u8> {
    let mut frame = Vec::new();
    let (op, payload) = match item {
        WsItem::Text(t) => (OpKind::Text, t.as_bytes().to_vec()),
        WsItem::Binary(b) => (OpKind::Binary, b.clone()),
        WsItem::Ping(p) => (OpKind::Ping, p.clone()),
        WsItem::Pong(p) => (OpKind::Pong, p.clone()),
        WsItem::Close(code, reason) => (
            OpKind::Close,
            code.map_or_else(Vec::new, |c| close_payload(c, reason)),
        ),
    };
    encode_frame(&mut frame, op, &payload);
    assert_eq!(frame.len(), header_len(payload.len()) + payload.len());
    frame
}

/// One frame of a recipe, with what the decoder must make of it.
#[derive(Debug)]
struct Planned {
    /// Its payload length.
    len: usize,
    /// For a data frame, how much of its message came before it (0 unless a continuation).
    before: usize,
    /// The item it completes, if any.
    item: Option<WsItem>,
}

fn check_recipe(stream: &[u8], pattern: &[u8], key: [u8; 4], max: usize) {
    let (wire, planned) = recipe(stream, key);
    let mut expected = WsDecoded::default();
    for frame in &planned {
        // Every frame's declared length is checked against the limit, and every data
        // frame's message so far.
        if frame.before + frame.len > max {
            expected.error = Some(1009);
            break;
        }
        expected.items.extend(frame.item.clone());
    }
    assert_eq!(decode_ws(&cut(&wire, pattern), max), expected);
}

/// Reads `stream` as a recipe for a valid conversation and returns its client frames with
/// what each must decode to. Each step takes an op byte, one or two length bytes, and that
/// many payload bytes.
fn recipe(stream: &[u8], key: [u8; 4]) -> (Vec<u8>, Vec<Planned>) {
    let mut input = Input::new(stream);
    let mut wire = Vec::new();
    let mut planned = Vec::new();
    let mut junk: &[u8] = &[];
    let mut push = |frame: Vec<u8>, before, len, item| {
        wire.extend(mask_frame(&frame, vary(key, planned.len())));
        planned.push(Planned { len, before, item });
    };
    for _ in 0..MAX_FRAMES {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        let mut len = usize::from(input.byte());
        if op & 0x80 != 0 {
            len |= usize::from(input.byte()) << 8;
        }
        let body = input.take(len);
        match op % 6 {
            0 => {
                let text = String::from_utf8_lossy(body).into_owned();
                let frame = server_frame(OpKind::Text, text.as_bytes());
                push(frame, 0, text.len(), Some(WsItem::Text(text)));
            }
            1 => {
                let frame = server_frame(OpKind::Binary, body);
                push(frame, 0, body.len(), Some(body_item(body)));
            }
            2 | 3 => {
                let body = &body[..body.len().min(125)];
                let (kind, item) = if op % 6 == 2 {
                    (OpKind::Ping, WsItem::Ping(body.to_vec()))
                } else {
                    (OpKind::Pong, WsItem::Pong(body.to_vec()))
                };
                push(server_frame(kind, body), 0, body.len(), Some(item));
            }
            4 => {
                // A fragmented message, a ping between fragments; text may be split inside
                // a character, which the protocol allows.
                let is_text = op & 0x40 != 0;
                let text;
                let (kind, bytes, item) = if is_text {
                    text = String::from_utf8_lossy(body).into_owned();
                    (OpKind::Text, text.as_bytes(), WsItem::Text(text.clone()))
                } else {
                    (OpKind::Binary, body, body_item(body))
                };
                let parts = 1 + usize::from((op >> 3) & 3);
                let mut item = Some(item);
                for k in 0..parts {
                    let piece = &bytes[bytes.len() * k / parts..bytes.len() * (k + 1) / parts];
                    let mut frame = server_frame(kind, piece);
                    let last = k + 1 == parts;
                    // FIN only on the last fragment; opcode only on the first.
                    frame[0] = match (k == 0, last) {
                        (true, true) => frame[0],
                        (true, false) => frame[0] & 0x0f,
                        (false, true) => 0x80,
                        (false, false) => 0x00,
                    };
                    let before = bytes.len() * k / parts;
                    let done = if last { item.take() } else { None };
                    push(frame, before, piece.len(), done);
                    if !last {
                        let ping = &piece[..piece.len().min(3)];
                        let frame = server_frame(OpKind::Ping, ping);
                        push(frame, 0, ping.len(), Some(WsItem::Ping(ping.into())));
                    }
                }
            }
            _ => {
                // A close ends the conversation: the decoder ignores what follows.
                let (payload, item) = match body.split_first() {
                    None => (Vec::new(), WsItem::Close(None, String::new())),
                    Some((&c, reason)) => {
                        let code = CLOSE_CODES[usize::from(c) % CLOSE_CODES.len()];
                        let reason = String::from_utf8_lossy(reason);
                        let payload = close_payload(code, &reason);
                        let kept = String::from_utf8_lossy(&payload[2..]).into_owned();
                        (payload, WsItem::Close(Some(code), kept))
                    }
                };
                let frame = server_frame(OpKind::Close, &payload);
                push(frame, 0, payload.len(), Some(item));
                // What follows the close is junk the decoder must ignore.
                junk = input.rest();
                break;
            }
        }
    }
    wire.extend_from_slice(junk);
    (wire, planned)
}

fn server_frame(op: OpKind, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    encode_frame(&mut frame, op, payload);
    frame
}

fn body_item(body: &[u8]) -> WsItem {
    WsItem::Binary(body.to_vec())
}

/// A different mask for each frame, derived from the input's key.
fn vary(key: [u8; 4], i: usize) -> [u8; 4] {
    let i = i as u32;
    (u32::from_be_bytes(key) ^ i.wrapping_mul(0x9e37_79b9)).to_be_bytes()
}
