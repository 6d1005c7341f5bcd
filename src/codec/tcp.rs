//! The two framings offered on plain TCP: newline-delimited and u32 length-prefixed.
//!
//! Both decoders hand out slices of the caller's input when a frame lies wholly inside
//! it and copy only an incomplete tail, which is the common case for small pushes.

use super::message::ProtocolError;

/// The frame exceeds the configured limit.
const TOO_BIG: ProtocolError = ProtocolError {
    close_code: 1009,
    reason: "message too big",
};

/// Past this capacity the tail buffer is freed rather than kept for reuse, so one
/// large message does not pin memory for the rest of a long-lived connection.
const RETAIN_CAPACITY: usize = 4096;

/// Size of the length prefix.
const PREFIX: usize = 4;

/// Newline-delimited frames: each message ends with b'\n'; a trailing b'\r' is stripped.
#[derive(Debug, Default)]
pub(crate) struct LineDecoder {
    /// Bytes of the incomplete last line.
    partial: Vec<u8>,
}

impl LineDecoder {
    /// An empty decoder.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Calls `on` for each complete line (without the terminator). A line longer than
    /// `max_message_size` (counting buffered bytes, checked without waiting for the
    /// newline) is refused with close code 1009.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        max_message_size: usize,
        on: &mut dyn FnMut(&[u8]),
    ) -> Result<(), ProtocolError> {
        let mut rest = input;
        if !self.partial.is_empty() {
            let Some(end) = find_newline(rest) else {
                check_line(&self.partial, rest, max_message_size)?;
                self.partial.extend_from_slice(rest);
                return Ok(());
            };
            // Checked before copying, so an oversized line is never assembled.
            check_line(&self.partial, &rest[..end], max_message_size)?;
            self.partial.extend_from_slice(&rest[..end]);
            on(strip_cr(&self.partial));
            recycle(&mut self.partial);
            rest = &rest[end + 1..];
        }
        while let Some(end) = find_newline(rest) {
            let line = strip_cr(&rest[..end]);
            if line.len() > max_message_size {
                return Err(TOO_BIG);
            }
            on(line);
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            check_line(&[], rest, max_message_size)?;
            self.partial.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Bytes held between calls, for memory accounting.
    // Per-connection memory accounting for stats; exercised by the codec tests meanwhile.
    #[allow(dead_code)]
    pub(crate) fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// Position of the first b'\n'.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Drops one trailing b'\r'.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Refuses a line whose content (`head` ++ `tail`) is over the limit. A final b'\r' is
/// not counted: it may be the first half of a CRLF whose b'\n' has not arrived yet, and
/// if more bytes follow instead, the next check counts it.
fn check_line(head: &[u8], tail: &[u8], max_message_size: usize) -> Result<(), ProtocolError> {
    let last = tail.last().or(head.last());
    let cr = usize::from(last == Some(&b'\r'));
    if head.len().saturating_add(tail.len()) - cr > max_message_size {
        return Err(TOO_BIG);
    }
    Ok(())
}

/// u32 big-endian length prefix, then that many bytes.
#[derive(Debug, Default)]
pub(crate) struct LengthDecoder {
    /// Prefix and payload bytes of the incomplete last frame.
    partial: Vec<u8>,
}

impl LengthDecoder {
    /// An empty decoder.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Calls `on` for each complete frame's payload. A declared length over
    /// `max_message_size` is refused with close code 1009 as soon as the prefix is in,
    /// before any payload is buffered. A zero-length frame is a valid empty message.
    pub(crate) fn decode(
        &mut self,
        input: &[u8],
        max_message_size: usize,
        on: &mut dyn FnMut(&[u8]),
    ) -> Result<(), ProtocolError> {
        let mut rest = input;
        if !self.partial.is_empty() {
            if self.partial.len() < PREFIX {
                let n = (PREFIX - self.partial.len()).min(rest.len());
                self.partial.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
            }
            let Some(prefix) = self.partial.first_chunk::<PREFIX>() else {
                return Ok(());
            };
            let len = declared_len(prefix, max_message_size)?;
            let missing = len - (self.partial.len() - PREFIX);
            let n = missing.min(rest.len());
            self.partial.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if n < missing {
                return Ok(());
            }
            on(&self.partial[PREFIX..]);
            recycle(&mut self.partial);
        }
        while let Some((prefix, body)) = rest.split_first_chunk::<PREFIX>() {
            let len = declared_len(prefix, max_message_size)?;
            let Some(payload) = body.get(..len) else {
                break;
            };
            on(payload);
            rest = &body[len..];
        }
        // An incomplete tail; if its prefix is whole, its length was checked above.
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// Bytes held between calls, for memory accounting.
    // Per-connection memory accounting for stats; exercised by the codec tests meanwhile.
    #[allow(dead_code)]
    pub(crate) fn buffered(&self) -> usize {
        self.partial.len()
    }
}

/// The payload length a prefix announces, refused if over the limit.
fn declared_len(prefix: &[u8; PREFIX], max_message_size: usize) -> Result<usize, ProtocolError> {
    match usize::try_from(u32::from_be_bytes(*prefix)) {
        Ok(len) if len <= max_message_size => Ok(len),
        _ => Err(TOO_BIG),
    }
}

/// Empties the tail buffer, keeping its allocation only if it is small.
fn recycle(buf: &mut Vec<u8>) {
    if buf.capacity() > RETAIN_CAPACITY {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}

/// Appends `payload` + b'\n'. A payload containing b'\n', or ending in b'\r' (which a line
/// reader strips, so it would not arrive), cannot be framed and is refused (close code 1007),
/// leaving `out` untouched.
pub(crate) fn encode_line(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), ProtocolError> {
    if find_newline(payload).is_some() {
        return Err(ProtocolError {
            close_code: 1007,
            reason: "payload contains a newline",
        });
    }
    if payload.last() == Some(&b'\r') {
        return Err(ProtocolError {
            close_code: 1007,
            reason: "payload ends in a carriage return, which line framing strips",
        });
    }
    out.reserve(payload.len() + 1);
    out.extend_from_slice(payload);
    out.push(b'\n');
    Ok(())
}

/// Appends the u32 BE length then payload. A payload over `u32::MAX` bytes is refused
/// (close code 1009), leaving `out` untouched.
pub(crate) fn encode_length(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), ProtocolError> {
    let prefix = length_prefix(payload.len())?;
    out.reserve(PREFIX + payload.len());
    out.extend_from_slice(&prefix);
    out.extend_from_slice(payload);
    Ok(())
}

/// The prefix for a payload of `len` bytes; separate so tests need not allocate 4 GiB.
fn length_prefix(len: usize) -> Result<[u8; PREFIX], ProtocolError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| ProtocolError {
            close_code: 1009,
            reason: "payload longer than u32::MAX",
        })
}

#[cfg(test)]
#[path = "tcp_tests.rs"]
mod tests;
