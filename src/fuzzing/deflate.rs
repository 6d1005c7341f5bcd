//! The permessage-deflate target: the decoder of a connection that negotiated compression,
//! whose compressed messages (RSV1) are inflated under the size limit.

use super::input::{Input, cut};
use super::ws::{WsDecoded, WsItem, mask_frame};
use crate::codec::deflate::{compress, compressor};
use crate::codec::ws::{OpKind, WsDecoder, encode_deflated, encode_frame};

/// Messages in one recipe, at most.
const MAX_MESSAGES: usize = 64;

/// Runs the fuzz target: `data` is a size-limit byte, a cut pattern, four mask bytes, a flags
/// byte (bit 0: the client keeps its compression context between messages), then the stream.
/// The stream is decoded as client frames of a connection with deflate (in reads cut by the
/// pattern, and as one read: the same outcome, nothing over the limit, only the close codes of
/// protocol errors); then the same bytes are read as a recipe of messages, compressed or not,
/// whole or in fragments, some of them very compressible, which must decode to exactly those
/// messages up to the first that passes the limit — compressed or inflated — which is 1009.
pub fn ws_deflate(data: &[u8]) {
    let mut input = Input::new(data);
    let max = input.limit();
    let pattern = input.pattern();
    let key = [input.byte(), input.byte(), input.byte(), input.byte()];
    let takeover = input.byte() & 1 != 0;
    let stream = input.rest();

    let whole = decode(&[stream], max, takeover);
    let chunked = decode(&cut(stream, pattern), max, takeover);
    assert_eq!(chunked, whole, "decoding depends on how reads are cut");
    if let Some(code) = whole.error {
        assert!(matches!(code, 1002 | 1007 | 1009), "close code {code}");
    }
    for item in &whole.items {
        if let WsItem::Text(t) = item {
            assert!(t.len() <= max, "text of {} > {max}", t.len());
        }
        if let WsItem::Binary(b) = item {
            assert!(b.len() <= max, "binary of {} > {max}", b.len());
        }
    }

    let (wire, expected) = recipe(stream, key, max, takeover);
    assert_eq!(decode(&cut(&wire, pattern), max, takeover), expected);
}

/// Decodes `chunks` with a fresh decoder that inflates, up to the first error.
fn decode(chunks: &[&[u8]], max: usize, takeover: bool) -> WsDecoded {
    let mut decoder = WsDecoder::with_deflate(takeover);
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

/// Reads `stream` as messages (an op byte, a length byte, that many bytes) and returns their
/// client frames and what the decoder must make of them. Op bits: 0 text, 1 compressed,
/// 2 fragmented, 3–4 how many fragments, 5 the body repeated 64 times per unit of bits 6–7
/// (plus one) — to inflate past the limit from a small frame.
fn recipe(stream: &[u8], key: [u8; 4], max: usize, takeover: bool) -> (Vec<u8>, WsDecoded) {
    let mut input = Input::new(stream);
    let mut client = compressor(6);
    let mut wire = Vec::new();
    let mut expected = WsDecoded::default();
    let mut refused = false;
    let mut frames = 0usize;
    for _ in 0..MAX_MESSAGES {
        if input.is_empty() {
            break;
        }
        let op = input.byte();
        let len = usize::from(input.byte());
        let mut body = input.take(len).to_vec();
        if op & 0x20 != 0 {
            body = body.repeat(64 * (1 + usize::from(op >> 6)));
        }
        let is_text = op & 1 == 0;
        let (kind, item) = if is_text {
            let text = String::from_utf8_lossy(&body).into_owned();
            body = text.clone().into_bytes();
            (OpKind::Text, WsItem::Text(text))
        } else {
            (OpKind::Binary, WsItem::Binary(body.clone()))
        };
        let compressed = op & 2 != 0;
        let payload = if compressed {
            if !takeover {
                client.reset();
            }
            let mut out = Vec::new();
            assert!(compress(&mut client, &body, &mut out), "compressing");
            out
        } else {
            body.clone()
        };
        let parts = if op & 4 != 0 {
            1 + usize::from((op >> 3) & 3)
        } else {
            1
        };
        for k in 0..parts {
            let (from, to) = (payload.len() * k / parts, payload.len() * (k + 1) / parts);
            let mut frame = Vec::new();
            if compressed {
                encode_deflated(&mut frame, kind, &payload[from..to]);
            } else {
                encode_frame(&mut frame, kind, &payload[from..to]);
            }
            // FIN only on the last fragment; opcode and RSV1 only on the first.
            frame[0] = match (k == 0, k + 1 == parts) {
                (true, true) => frame[0],
                (true, false) => frame[0] & 0x7f,
                (false, true) => 0x80,
                (false, false) => 0x00,
            };
            wire.extend(mask_frame(&frame, vary(key, frames)));
            frames += 1;
            if !refused && to > max {
                refused = true;
            }
        }
        if refused {
            expected.error = Some(1009);
            break;
        }
        if body.len() > max {
            expected.error = Some(1009);
            break;
        }
        expected.items.push(item);
    }
    (wire, expected)
}

/// A different mask for each frame, derived from the input's key.
fn vary(key: [u8; 4], i: usize) -> [u8; 4] {
    let i = i as u32;
    (u32::from_be_bytes(key) ^ i.wrapping_mul(0x85eb_ca6b)).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipes_decode_as_planned() {
        let key = [1, 2, 3, 4];
        // A compressed text, a compressed binary in three fragments, a plain text.
        let mut stream = vec![0x02, 5];
        stream.extend_from_slice(b"hello");
        stream.extend_from_slice(&[0x37, 4, 1, 2, 3, 4, 0x00, 2]);
        stream.extend_from_slice(b"ok");
        for takeover in [false, true] {
            let (wire, expected) = recipe(&stream, key, 1 << 20, takeover);
            assert_eq!(expected.error, None);
            assert_eq!(
                expected.items,
                [
                    WsItem::Text("hello".into()),
                    WsItem::Binary([1, 2, 3, 4].repeat(64)),
                    WsItem::Text("ok".into())
                ]
            );
            assert_eq!(decode(&[&wire], 1 << 20, takeover), expected);
        }
        // The repeated binary inflates to 256 bytes from a much smaller frame: over a limit
        // of 127, it is refused.
        let (wire, expected) = recipe(&stream, key, 127, true);
        assert!(wire.len() < 127);
        assert_eq!(expected.error, Some(1009));
        assert_eq!(expected.items.len(), 1);
        assert_eq!(decode(&[&wire], 127, true), expected);
    }
}
