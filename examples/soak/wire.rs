//! The few WebSocket frames the soak's clients read and write, by hand: the load example's
//! engine does not answer pings or close, which a soak needs.

/// A server frame larger than this is a protocol error here.
const MAX_FRAME: usize = 64 * 1024;

/// The first complete unmasked server frame at the start of `b`: its opcode, header length
/// and payload length; `None` if it is not all there yet.
pub(crate) fn next_frame(b: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    let [b0, b1, ..] = *b else {
        return Ok(None);
    };
    if b1 & 0x80 != 0 {
        return Err("the server sent a masked frame".into());
    }
    if b0 & 0x80 == 0 {
        return Err("the server sent a fragment".into());
    }
    let (len, head) = match b1 & 0x7f {
        126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
        127 if b.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (
                usize::try_from(u64::from_be_bytes(n)).unwrap_or(usize::MAX),
                10,
            )
        }
        126 | 127 => return Ok(None),
        n => (usize::from(n), 2),
    };
    if len > MAX_FRAME {
        return Err(format!("a server frame of {len} bytes"));
    }
    if b.len() < head + len {
        return Ok(None);
    }
    Ok(Some((b0 & 0x0f, head, len)))
}

/// A client frame (FIN, `opcode`), masked with `key` (RFC 6455 §5.3); payloads here are
/// control frames and short.
pub(crate) fn masked_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push(0x80 | opcode);
    out.push(0x80 | payload.len().min(125) as u8);
    out.extend_from_slice(&key);
    out.extend(
        payload[..payload.len().min(125)]
            .iter()
            .zip(key.iter().cycle())
            .map(|(b, k)| b ^ k),
    );
}
