//! Server side of the WebSocket framing layer: the frames the server sends (unmasked, final),
//! plain or compressed (RFC 7692).

/// Opcode of an outgoing frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Ping is for server-side keepalive probes, which nothing sends yet.
#[allow(dead_code)]
pub(crate) enum OpKind {
    /// A text message.
    Text,
    /// A binary message.
    Binary,
    /// A ping.
    Ping,
    /// A pong.
    Pong,
    /// A close frame.
    Close,
}

/// Appends one unmasked, final server frame to `out`.
pub(crate) fn encode_frame(out: &mut Vec<u8>, op: OpKind, payload: &[u8]) {
    encode(out, 0x80 | opcode(op), payload);
}

/// Appends one unmasked, final data frame whose payload is a compressed message: RSV1 set
/// (RFC 7692 §6). Never for control frames, which are not compressed.
pub(crate) fn encode_deflated(out: &mut Vec<u8>, op: OpKind, payload: &[u8]) {
    encode(out, 0x80 | 0x40 | opcode(op), payload);
}

/// The wire opcode of `op`.
fn opcode(op: OpKind) -> u8 {
    match op {
        OpKind::Text => 0x1,
        OpKind::Binary => 0x2,
        OpKind::Close => 0x8,
        OpKind::Ping => 0x9,
        OpKind::Pong => 0xA,
    }
}

/// Appends a frame whose first byte is `b0`.
fn encode(out: &mut Vec<u8>, b0: u8, payload: &[u8]) {
    let len = payload.len();
    out.reserve(header_len(len) + len);
    out.push(b0);
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(short), _) if short < 126 => out.push(short),
        (_, Ok(medium)) => {
            out.push(126);
            out.extend_from_slice(&medium.to_be_bytes());
        }
        _ => {
            out.push(127);
            // usize is at most 64 bits on every target Rust supports.
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// Builds the body of a Close frame: the code big-endian, then the reason truncated to
/// fit 123 bytes at a char boundary.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    // A control payload is at most 125 bytes, two of which are the code.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

/// Length of the header `encode_frame` writes for a payload of `len` bytes (2, 4 or 10).
pub(crate) fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}
