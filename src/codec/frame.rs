//! Framing a push for the wire, once for every connection that receives it; and, for the
//! clients that compress, the same message compressed once for all of them.

use std::sync::OnceLock;

use super::deflate::compress_alone;
use super::tcp::{encode_length, encode_line};
use super::ws::{OpKind, encode_deflated, encode_frame, header_len};
use crate::config::Protocol;
use crate::error::{Error, Result};

/// A frame already encoded for the wire, shared by every connection that receives it.
pub(crate) type SharedFrame = std::sync::Arc<Frame>;

/// A framed message, and — made on first need, by whichever core loop needs it first — the
/// same WebSocket message compressed without context (RFC 7692), which every client that
/// negotiated deflate without server context takeover can take as it is.
#[derive(Debug)]
pub(crate) struct Frame {
    bytes: Vec<u8>,
    /// `None` inside once compression was tried and did not make the frame smaller.
    deflated: OnceLock<Option<Box<[u8]>>>,
}

impl Frame {
    /// A frame of these bytes.
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Frame {
            bytes,
            deflated: OnceLock::new(),
        }
    }

    /// The frame as it goes to a client that does not compress.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The opcode and payload of an unfragmented, uncompressed WebSocket data frame (what
    /// [`frame`] makes for a WebSocket server); `None` for anything else.
    pub(crate) fn ws_payload(&self) -> Option<(OpKind, &[u8])> {
        let [b0, b1, ..] = *self.bytes.as_slice() else {
            return None;
        };
        let op = match b0 {
            0x81 => OpKind::Text,
            0x82 => OpKind::Binary,
            _ => return None,
        };
        let head = match b1 {
            0..=125 => 2,
            126 => 4,
            127 => 10,
            _ => return None,
        };
        let payload = self.bytes.get(head..)?;
        (header_len(payload.len()) == head).then_some((op, payload))
    }

    /// The frame compressed without context at `level`, made now if no core loop has made it
    /// yet (then `made` is set); `None` if it is not a WebSocket data frame or compression does
    /// not make it smaller. Another core loop asking meanwhile waits for this one's result, a
    /// few microseconds of work, rather than compressing the same message again.
    pub(crate) fn deflated(&self, level: u32, made: &mut bool) -> Option<&[u8]> {
        self.deflated
            .get_or_init(|| {
                let (op, payload) = self.ws_payload()?;
                *made = true;
                let mut packed = Vec::with_capacity(payload.len() / 2 + 16);
                if !compress_alone(level, payload, &mut packed) {
                    return None;
                }
                let mut out = Vec::with_capacity(packed.len() + 10);
                encode_deflated(&mut out, op, &packed);
                (out.len() < self.bytes.len()).then(|| out.into_boxed_slice())
            })
            .as_deref()
    }

    /// The compressed form, if it was made and kept.
    pub(crate) fn deflated_bytes(&self) -> Option<&[u8]> {
        self.deflated.get().and_then(|d| d.as_deref())
    }
}

/// Frames a payload for the wire of `protocol`. WebSocket frames from a server are unmasked,
/// so every receiver gets the same bytes: a broadcast calls this once.
pub(crate) fn frame(protocol: Protocol, is_text: bool, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + 10);
    match protocol {
        Protocol::WebSocket => {
            let op = if is_text {
                OpKind::Text
            } else {
                OpKind::Binary
            };
            encode_frame(&mut out, op, bytes);
        }
        Protocol::TcpLines => {
            encode_line(&mut out, bytes).map_err(|e| Error::Frame(e.reason.to_owned()))?
        }
        Protocol::TcpLength => {
            encode_length(&mut out, bytes).map_err(|e| Error::Frame(e.reason.to_owned()))?
        }
    }
    Ok(out)
}
