//! The channel protocol, shared by the broker and the Channel transport.
//!
//! Every frame is a big-endian `u32` length, then that many bytes of body; the body's first
//! byte says what it is. Strings are a big-endian `u16` length, then UTF-8.
//!
//! | from   | body |
//! |--------|------|
//! | client | handshake, the first frame: `CPCH`, version `1`, number `u16`, token, prefix, server, session |
//! | broker | [`OK`], number `u16` — the number the client holds (the one assigned, where it asked for 0) |
//! | broker | [`REFUSED`], [`Refusal`] code, message (UTF-8) — then the broker closes |
//! | client | [`TO_ALL`], message: to every other member of its prefix and server |
//! | client | [`TO_ONE`], number `u16`, message: to the member of that number |
//! | client | [`LEAVE`]: a graceful goodbye; the number is free at once |
//! | broker | [`FORWARD`], sender's number `u16`, message |
//!
//! The broker never looks inside a message: it routes frames.

use std::io::{self, Read};

/// The first bytes of a handshake.
pub(crate) const MAGIC: &[u8; 4] = b"CPCH";
/// The protocol version this build speaks.
pub(crate) const VERSION: u8 = 1;
/// Broker: the handshake is accepted.
pub(crate) const OK: u8 = 0x01;
/// Broker: the handshake is refused.
pub(crate) const REFUSED: u8 = 0x02;
/// Client: publish to every other member.
pub(crate) const TO_ALL: u8 = 0x10;
/// Client: publish to one member.
pub(crate) const TO_ONE: u8 = 0x11;
/// Client: leaving; free the number.
pub(crate) const LEAVE: u8 = 0x12;
/// Broker: a message from another member.
pub(crate) const FORWARD: u8 = 0x20;

/// Why the broker refused a handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not a handshake this broker can read.
    Malformed = 1,
    /// Another protocol version.
    Version = 2,
    /// The token is not the broker's.
    Token = 3,
    /// Another live instance holds the number (or no number is free).
    Taken = 4,
}

impl Refusal {
    pub(crate) fn from_code(code: u8) -> Option<Refusal> {
        Some(match code {
            1 => Refusal::Malformed,
            2 => Refusal::Version,
            3 => Refusal::Token,
            4 => Refusal::Taken,
            _ => return None,
        })
    }
}

/// What a client says first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handshake<'a> {
    /// The number claimed; 0 asks the broker for the lowest free one.
    pub(crate) number: u16,
    pub(crate) token: &'a str,
    /// The cluster: numbers are unique within a prefix.
    pub(crate) prefix: &'a str,
    /// The server within the cluster: messages go between members of the same one.
    pub(crate) server: &'a str,
    /// The claimant's runtime: connections of one session may share a number (one per
    /// server), and a number left without [`LEAVE`] stays the session's for a while.
    pub(crate) session: &'a str,
}

/// Appends `handshake` as a whole frame.
pub(crate) fn encode_handshake(handshake: &Handshake<'_>, out: &mut Vec<u8>) {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(MAGIC);
    body.push(VERSION);
    body.extend_from_slice(&handshake.number.to_be_bytes());
    for s in [
        handshake.token,
        handshake.prefix,
        handshake.server,
        handshake.session,
    ] {
        let s = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s);
    }
    frame(&[&body], out);
}

/// Reads a handshake body.
pub(crate) fn decode_handshake(body: &[u8]) -> Result<Handshake<'_>, Refusal> {
    let rest = body.strip_prefix(MAGIC).ok_or(Refusal::Malformed)?;
    let (&version, rest) = rest.split_first().ok_or(Refusal::Malformed)?;
    if version != VERSION {
        return Err(Refusal::Version);
    }
    let (number, mut rest) = split_u16(rest).ok_or(Refusal::Malformed)?;
    let mut strings = [""; 4];
    for s in &mut strings {
        let (len, tail) = split_u16(rest).ok_or(Refusal::Malformed)?;
        let len = len as usize;
        if tail.len() < len {
            return Err(Refusal::Malformed);
        }
        *s = std::str::from_utf8(&tail[..len]).map_err(|_| Refusal::Malformed)?;
        rest = &tail[len..];
    }
    if !rest.is_empty() {
        return Err(Refusal::Malformed);
    }
    let [token, prefix, server, session] = strings;
    Ok(Handshake {
        number,
        token,
        prefix,
        server,
        session,
    })
}

/// Splits a big-endian `u16` off the front.
pub(crate) fn split_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

/// Appends one frame whose body is `parts` joined.
pub(crate) fn frame(parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.reserve(4 + len);
    out.extend_from_slice(&(len as u32).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// The broker's refusal, as a whole frame.
pub(crate) fn refused(why: Refusal, message: &str) -> Vec<u8> {
    let mut out = Vec::new();
    frame(&[&[REFUSED, why as u8], message.as_bytes()], &mut out);
    out
}

/// Reads one whole frame's body from a blocking stream; a body longer than `max` is an
/// `InvalidData` error.
pub(crate) fn read_frame(stream: &mut impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut head = [0; 4];
    stream.read_exact(&mut head)?;
    let len = u32::from_be_bytes(head) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a frame of {len} bytes, past the limit of {max}"),
        ));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_reads_back() {
        let h = Handshake {
            number: 7,
            token: "secret",
            prefix: "app",
            server: "ws",
            session: "s/1",
        };
        let mut out = Vec::new();
        encode_handshake(&h, &mut out);
        assert_eq!(
            u32::from_be_bytes(out[..4].try_into().unwrap()) as usize,
            out.len() - 4
        );
        assert_eq!(decode_handshake(&out[4..]), Ok(h));
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        assert_eq!(decode_handshake(b"GET / HTTP/1.1"), Err(Refusal::Malformed));
        assert_eq!(decode_handshake(b"CPCH\x09"), Err(Refusal::Version));
        assert_eq!(decode_handshake(b"CPCH\x01\x00"), Err(Refusal::Malformed));
        assert_eq!(
            decode_handshake(b"CPCH\x01\x00\x01\x00\x05ab"),
            Err(Refusal::Malformed)
        );
    }
}
