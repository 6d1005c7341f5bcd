//! Tests for the TCP framers, kept apart so `tcp.rs` stays readable.

use super::*;

/// Large enough for any test that is not about limits.
const MAX: usize = 1 << 20;

/// Which decoder a test drives.
#[derive(Debug)]
enum Decoder {
    Line(LineDecoder),
    Length(LengthDecoder),
}

impl Decoder {
    /// Feeds one chunk, collecting frames and whether each was borrowed from the chunk.
    fn feed(
        &mut self,
        input: &[u8],
        max: usize,
        got: &mut Vec<(Vec<u8>, bool)>,
    ) -> Result<(), ProtocolError> {
        let range = input.as_ptr_range();
        let mut on = |frame: &[u8]| {
            let borrowed = frame.is_empty() || range.contains(&frame.as_ptr());
            got.push((frame.to_vec(), borrowed));
        };
        match self {
            Decoder::Line(d) => d.decode(input, max, &mut on),
            Decoder::Length(d) => d.decode(input, max, &mut on),
        }
    }

    /// Bytes the decoder holds.
    fn buffered(&self) -> usize {
        match self {
            Decoder::Line(d) => d.buffered(),
            Decoder::Length(d) => d.buffered(),
        }
    }
}

/// A fresh line decoder.
fn lines() -> Decoder {
    Decoder::Line(LineDecoder::new())
}

/// A fresh length decoder.
fn lengths() -> Decoder {
    Decoder::Length(LengthDecoder::new())
}

/// Payloads of every frame decoded from `chunks`, fed one call each.
fn frames(mut dec: Decoder, chunks: &[&[u8]], max: usize) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut got = Vec::new();
    for chunk in chunks {
        dec.feed(chunk, max, &mut got)?;
    }
    Ok(got.into_iter().map(|(frame, _)| frame).collect())
}

/// Messages used by the split tests: empty, short, longer, and binary.
fn samples() -> Vec<Vec<u8>> {
    vec![
        b"".to_vec(),
        b"a".to_vec(),
        b"hello world".to_vec(),
        b"".to_vec(),
        vec![0, 1, 2, 0xFF, 13, 7],
    ]
}

/// `samples` framed with `encode`.
fn encoded(encode: fn(&mut Vec<u8>, &[u8]) -> Result<(), ProtocolError>) -> Vec<u8> {
    let mut out = Vec::new();
    for sample in samples() {
        encode(&mut out, &sample).unwrap();
    }
    out
}

#[test]
fn lines_many_per_call_with_crlf_and_empty_lines() {
    let got = frames(lines(), &[b"one\ntwo\r\n\n\r\nthree\r\r\n"], MAX).unwrap();
    assert_eq!(
        got,
        vec![
            b"one".to_vec(),
            b"two".to_vec(),
            vec![],
            vec![],
            b"three\r".to_vec()
        ]
    );
}

#[test]
fn lines_split_at_every_offset() {
    let stream = b"alpha\r\nbeta\n\ngamma\r\n\r\ndelta\n";
    let whole = frames(lines(), &[stream], MAX).unwrap();
    assert_eq!(whole.len(), 6);
    for cut in 0..=stream.len() {
        assert_eq!(
            frames(lines(), &[&stream[..cut], &stream[cut..]], MAX).unwrap(),
            whole,
            "cut {cut}"
        );
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(frames(lines(), &bytes, MAX).unwrap(), whole);
}

#[test]
fn lines_are_borrowed_when_whole_and_tail_is_buffered() {
    let mut dec = lines();
    let mut got = Vec::new();
    dec.feed(b"abc\ndef\ngh", MAX, &mut got).unwrap();
    assert_eq!(got, vec![(b"abc".to_vec(), true), (b"def".to_vec(), true)]);
    assert_eq!(dec.buffered(), 2);
    dec.feed(b"i\njk\n", MAX, &mut got).unwrap();
    assert_eq!(got[2], (b"ghi".to_vec(), false));
    assert_eq!(got[3], (b"jk".to_vec(), true));
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn line_limit() {
    assert_eq!(
        frames(lines(), &[b"12345\n"], 5).unwrap(),
        vec![b"12345".to_vec()]
    );
    assert_eq!(
        frames(lines(), &[b"12345\r\n"], 5).unwrap(),
        vec![b"12345".to_vec()]
    );
    assert_eq!(
        frames(lines(), &[b"123456\n"], 5).unwrap_err().close_code,
        1009
    );
    assert_eq!(
        frames(lines(), &[b"123", b"456\n"], 5)
            .unwrap_err()
            .close_code,
        1009
    );
    // Refused before the newline arrives.
    assert_eq!(
        frames(lines(), &[b"123456"], 5).unwrap_err().close_code,
        1009
    );
    assert_eq!(
        frames(lines(), &[b"123", b"456"], 5)
            .unwrap_err()
            .close_code,
        1009
    );
    // A pending CR may be half of a CRLF, so it does not count yet...
    assert_eq!(
        frames(lines(), &[b"12345\r", b"\n"], 5).unwrap(),
        vec![b"12345".to_vec()]
    );
    assert_eq!(
        frames(lines(), &[b"123", b"45\r", b"\n"], 5).unwrap(),
        vec![b"12345".to_vec()]
    );
    // ...but it does once something other than LF follows.
    assert_eq!(
        frames(lines(), &[b"12345\r", b"x"], 5)
            .unwrap_err()
            .close_code,
        1009
    );
}

#[test]
fn length_frames_many_per_call_and_empty() {
    let stream = [&[0, 0, 0, 2][..], b"hi", &[0, 0, 0, 0], &[0, 0, 0, 1], b"!"].concat();
    assert_eq!(
        frames(lengths(), &[&stream], MAX).unwrap(),
        vec![b"hi".to_vec(), vec![], b"!".to_vec()]
    );
}

#[test]
fn length_split_at_every_offset() {
    let stream = encoded(encode_length);
    for cut in 0..=stream.len() {
        assert_eq!(
            frames(lengths(), &[&stream[..cut], &stream[cut..]], MAX).unwrap(),
            samples(),
            "cut {cut}"
        );
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(frames(lengths(), &bytes, MAX).unwrap(), samples());
}

#[test]
fn length_frames_are_borrowed_when_whole() {
    let mut dec = lengths();
    let mut got = Vec::new();
    dec.feed(&[0, 0, 0, 3, b'a', b'b', b'c', 0, 0], MAX, &mut got)
        .unwrap();
    assert_eq!(got, vec![(b"abc".to_vec(), true)]);
    assert_eq!(dec.buffered(), 2);
    dec.feed(&[0, 2, b'd'], MAX, &mut got).unwrap();
    assert_eq!(dec.buffered(), 5);
    dec.feed(&[b'e', 0, 0, 0, 1, b'f'], MAX, &mut got).unwrap();
    assert_eq!(got[1..], [(b"de".to_vec(), false), (b"f".to_vec(), true)]);
    assert_eq!(dec.buffered(), 0);
}

#[test]
fn length_limit() {
    let at = [&[0, 0, 0, 5][..], b"12345"].concat();
    assert_eq!(
        frames(lengths(), &[&at], 5).unwrap(),
        vec![b"12345".to_vec()]
    );
    let over = [&[0, 0, 0, 6][..], b"123456"].concat();
    assert_eq!(frames(lengths(), &[&over], 5).unwrap_err().close_code, 1009);
    // Refused from the prefix alone, even when the prefix itself is split.
    assert_eq!(
        frames(lengths(), &[&[0, 0], &[0, 6]], 5)
            .unwrap_err()
            .close_code,
        1009
    );
}

#[test]
fn four_gib_claim_never_allocates() {
    let mut dec = LengthDecoder::new();
    let err = dec
        .decode(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], MAX, &mut |_| {})
        .unwrap_err();
    assert_eq!(err.close_code, 1009);
    assert_eq!(dec.partial.capacity(), 0);

    // Accepted by a huge limit, it still only buffers what arrived.
    let mut dec = LengthDecoder::new();
    dec.decode(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3], usize::MAX, &mut |_| {
        panic!("incomplete")
    })
    .unwrap();
    assert_eq!(dec.buffered(), 7);
    assert!(dec.partial.capacity() < 1024);
}

#[test]
fn line_round_trip() {
    let stream = encoded(encode_line);
    assert_eq!(stream[..3], *b"\na\n");
    assert_eq!(frames(lines(), &[&stream], MAX).unwrap(), samples());
}

#[test]
fn encode_line_refuses_newlines() {
    let mut out = b"kept".to_vec();
    let err = encode_line(&mut out, b"two\nlines").unwrap_err();
    assert_eq!(
        err,
        ProtocolError {
            close_code: 1007,
            reason: "payload contains a newline"
        }
    );
    assert_eq!(out, b"kept");
    encode_line(&mut out, b"!").unwrap();
    assert_eq!(out, b"kept!\n");
}

#[test]
fn encode_line_refuses_a_trailing_carriage_return() {
    // A line reader strips it, so the payload could not arrive as sent.
    let mut out = b"kept".to_vec();
    for payload in [&b"abc\r"[..], b"\r", b"\r\r", b"a\rb\r"] {
        let err = encode_line(&mut out, payload).unwrap_err();
        assert_eq!(
            err,
            ProtocolError {
                close_code: 1007,
                reason: "payload ends in a carriage return, which line framing strips"
            },
            "{payload:?}"
        );
        assert_eq!(out, b"kept");
    }
    // Anywhere else a carriage return is payload, and comes back as sent.
    let mut wire = Vec::new();
    let payloads = [&b"a\rb"[..], b"\ra", b"\r\rx", b"abc"];
    for payload in payloads {
        encode_line(&mut wire, payload).unwrap();
    }
    assert_eq!(
        frames(lines(), &[&wire], MAX).unwrap(),
        payloads.map(<[u8]>::to_vec)
    );
}

#[test]
fn encode_length_prefix() {
    let mut out = vec![9];
    encode_length(&mut out, b"abc").unwrap();
    assert_eq!(out, [9, 0, 0, 0, 3, b'a', b'b', b'c']);
    encode_length(&mut out, b"").unwrap();
    assert_eq!(out[8..], [0, 0, 0, 0]);
    assert_eq!(length_prefix(u32::MAX as usize), Ok([0xFF; 4]));
    let too_long = usize::try_from(u64::from(u32::MAX) + 1);
    if let Ok(len) = too_long {
        assert_eq!(length_prefix(len).unwrap_err().close_code, 1009);
    }
}
