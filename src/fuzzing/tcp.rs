//! The TCP framers' target: newline-delimited and u32 length-prefixed, both on every input.

use super::input::{Input, cut};
use crate::codec::ProtocolError;
use crate::codec::tcp::{LengthDecoder, LineDecoder, encode_length, encode_line};

/// What a framer made of a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The messages, in order.
    pub messages: Vec<Vec<u8>>,
    /// The close code of the protocol error that ended decoding, if one did.
    pub error: Option<u16>,
    /// Bytes the decoder held back at the end (0 after an error: the connection is gone).
    pub buffered: usize,
}

/// Runs the fuzz target: `data` is a size-limit byte, a cut pattern, then the stream, which
/// both framers decode as received (in reads cut by the pattern) and as one read, checked
/// against a plain reference framer; then the decoded messages, and the stream's pieces taken
/// as payloads, go through the encoders and back. Panics if an invariant breaks.
pub fn tcp_framers(data: &[u8]) {
    let mut input = Input::new(data);
    let max = input.limit();
    let pattern = input.pattern();
    let stream = input.rest();
    check_lines(stream, pattern, max);
    check_length(stream, pattern, max);
}

/// Decodes `chunks` (one `decode` call each) with a fresh `LineDecoder`, up to the first
/// error.
pub fn decode_lines(chunks: &[&[u8]], max: usize) -> Decoded {
    let mut decoder = LineDecoder::new();
    let (messages, error) = feed(chunks, |chunk, on| decoder.decode(chunk, max, on));
    let buffered = if error.is_none() {
        decoder.buffered()
    } else {
        0
    };
    Decoded {
        messages,
        error,
        buffered,
    }
}

/// Decodes `chunks` (one `decode` call each) with a fresh `LengthDecoder`, up to the first
/// error.
pub fn decode_length(chunks: &[&[u8]], max: usize) -> Decoded {
    let mut decoder = LengthDecoder::new();
    let (messages, error) = feed(chunks, |chunk, on| decoder.decode(chunk, max, on));
    let buffered = if error.is_none() {
        decoder.buffered()
    } else {
        0
    };
    Decoded {
        messages,
        error,
        buffered,
    }
}

/// Hands each chunk to `decode`, collecting messages until the first error.
fn feed(
    chunks: &[&[u8]],
    mut decode: impl FnMut(&[u8], &mut dyn FnMut(&[u8])) -> Result<(), ProtocolError>,
) -> (Vec<Vec<u8>>, Option<u16>) {
    let mut messages = Vec::new();
    for chunk in chunks {
        if let Err(e) = decode(chunk, &mut |m: &[u8]| messages.push(m.to_vec())) {
            return (messages, Some(e.close_code));
        }
    }
    (messages, None)
}

fn check_lines(stream: &[u8], pattern: &[u8], max: usize) {
    let whole = decode_lines(&[stream], max);
    assert_eq!(
        whole,
        reference_lines(stream, max),
        "line framer vs reference"
    );
    let chunked = decode_lines(&cut(stream, pattern), max);
    assert_eq!(chunked, whole, "line framing depends on how reads are cut");
    for m in &whole.messages {
        assert!(
            m.len() <= max,
            "a line of {} bytes passed a limit of {max}",
            m.len()
        );
    }

    // Encoded and decoded again: the same lines. A decoded line that still ends in '\r'
    // (from "…\r\r\n") is refused, since a line reader would strip it, and leaves the output
    // as it was.
    let mut again = Vec::new();
    let mut kept = Vec::new();
    for m in &whole.messages {
        let before = again.len();
        match encode_line(&mut again, m) {
            Ok(()) => kept.push(m.clone()),
            Err(e) => {
                assert!(
                    m.ends_with(b"\r") && e.close_code == 1007,
                    "a decoded line was refused by the encoder: {m:?}"
                );
                assert_eq!(again.len(), before, "a refused line changed the output");
            }
        }
    }
    let expected = Decoded {
        messages: kept,
        ..Decoded::default()
    };
    assert_eq!(decode_lines(&cut(&again, pattern), max), expected);

    // The stream's pieces as payloads: one with a newline, or ending in '\r', is refused and
    // leaves the output as it was; the rest come back exactly as sent.
    let mut wire = Vec::new();
    let mut sent = Vec::new();
    for piece in cut(stream, pattern) {
        let before = wire.len();
        match encode_line(&mut wire, piece) {
            Ok(()) => sent.push(piece),
            Err(e) => {
                assert!(
                    (piece.contains(&b'\n') || piece.ends_with(b"\r")) && e.close_code == 1007,
                    "a payload was refused by the encoder: {piece:?}"
                );
                assert_eq!(wire.len(), before, "a refused line changed the output");
            }
        }
    }
    let decoded = decode_lines(&cut(&wire, pattern), max);
    let expected = expect_all(sent.into_iter(), max);
    assert_eq!(decoded, expected, "encoded lines did not come back");
}

fn check_length(stream: &[u8], pattern: &[u8], max: usize) {
    let whole = decode_length(&[stream], max);
    assert_eq!(
        whole,
        reference_length(stream, max),
        "length framer vs reference"
    );
    let chunked = decode_length(&cut(stream, pattern), max);
    assert_eq!(
        chunked, whole,
        "length framing depends on how reads are cut"
    );

    let mut again = Vec::new();
    for m in &whole.messages {
        assert!(
            m.len() <= max,
            "a frame of {} bytes passed a limit of {max}",
            m.len()
        );
        if encode_length(&mut again, m).is_err() {
            panic!("a decoded frame of {} bytes was refused", m.len());
        }
    }
    let expected = Decoded {
        messages: whole.messages.clone(),
        ..Decoded::default()
    };
    assert_eq!(decode_length(&cut(&again, pattern), max), expected);

    let pieces = cut(stream, pattern);
    let mut wire = Vec::new();
    for piece in &pieces {
        if encode_length(&mut wire, piece).is_err() {
            panic!("a payload of {} bytes was refused", piece.len());
        }
    }
    let decoded = decode_length(&cut(&wire, pattern), max);
    assert_eq!(decoded, expect_all(pieces.iter().copied(), max));
}

/// The messages a framer must deliver for these payloads sent in order: each up to the first
/// over `max`, which ends the stream with close code 1009.
fn expect_all<'a>(payloads: impl Iterator<Item = &'a [u8]>, max: usize) -> Decoded {
    let mut out = Decoded::default();
    for p in payloads {
        if p.len() > max {
            out.error = Some(1009);
            break;
        }
        out.messages.push(p.to_vec());
    }
    out
}

/// Line framing the obvious way, on the whole stream at once.
fn reference_lines(stream: &[u8], max: usize) -> Decoded {
    let mut out = Decoded::default();
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    // The last part has no newline after it: the incomplete line (maybe empty).
    let partial = parts.pop().unwrap_or_default();
    for line in parts {
        let line = strip_cr(line);
        if line.len() > max {
            out.error = Some(1009);
            return out;
        }
        out.messages.push(line.to_vec());
    }
    // A final '\r' may be half of a CRLF still on its way, so it does not count yet.
    if strip_cr(partial).len() > max {
        out.error = Some(1009);
        return out;
    }
    out.buffered = partial.len();
    out
}

/// Length-prefixed framing the obvious way, on the whole stream at once.
fn reference_length(stream: &[u8], max: usize) -> Decoded {
    let mut out = Decoded::default();
    let mut rest = stream;
    while let Some((prefix, body)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > max {
            out.error = Some(1009);
            return out;
        }
        let Some(payload) = body.get(..len) else {
            break;
        };
        out.messages.push(payload.to_vec());
        rest = &body[len..];
    }
    out.buffered = rest.len();
    out
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}
