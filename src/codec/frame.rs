//! Framing a push for the wire, once for every connection that receives it.

use super::tcp::{encode_length, encode_line};
use super::ws::{OpKind, encode_frame};
use crate::config::Protocol;
use crate::error::{Error, Result};

/// A frame already encoded for the wire, shared by every connection that receives it.
pub(crate) type SharedFrame = std::sync::Arc<Vec<u8>>;

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
