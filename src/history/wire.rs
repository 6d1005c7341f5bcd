//! The message a push to kept names carries on the Redis history channel, after the epoch
//! and offsets the append script puts in front of it: the target's kind and names (and
//! which of them are kept, in the order of the offsets), the exclusions, and the payload.
//!
//! Layout: kind (`g`/`f`), is_text (0/1), u32 name count, then per name a kept byte, a u32
//! length and the bytes; u32 exclusion count, then u64 ids; the rest is the payload. All
//! integers big-endian.

use super::Kind;
use crate::id::ClientId;

/// A push to kept names, as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub(crate) kind: Kind,
    pub(crate) names: Vec<String>,
    /// Per name: whether it is kept (has an offset).
    pub(crate) is_kept: Vec<bool>,
    pub(crate) except: Vec<ClientId>,
    pub(crate) is_text: bool,
    pub(crate) payload: Vec<u8>,
}

pub(crate) fn encode(k: &Kept) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + k.payload.len());
    out.push(match k.kind {
        Kind::Group => b'g',
        Kind::Flag => b'f',
    });
    out.push(u8::from(k.is_text));
    out.extend_from_slice(&(k.names.len() as u32).to_be_bytes());
    for (name, kept) in k.names.iter().zip(&k.is_kept) {
        out.push(u8::from(*kept));
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&(k.except.len() as u32).to_be_bytes());
    for id in &k.except {
        out.extend_from_slice(&id.as_u64().to_be_bytes());
    }
    out.extend_from_slice(&k.payload);
    out
}

/// `None` for bytes that are not such a message.
pub(crate) fn decode(bytes: &[u8]) -> Option<Kept> {
    let mut r = Reader(bytes);
    let kind = match r.byte()? {
        b'g' => Kind::Group,
        b'f' => Kind::Flag,
        _ => return None,
    };
    let is_text = r.byte()? == 1;
    let n = r.u32()? as usize;
    let mut names = Vec::with_capacity(n.min(1024));
    let mut is_kept = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        is_kept.push(r.byte()? == 1);
        let len = r.u32()? as usize;
        names.push(String::from_utf8(r.take(len)?.to_vec()).ok()?);
    }
    let n = r.u32()? as usize;
    let mut except = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let raw = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
        except.push(ClientId::from_u64(raw)?);
    }
    Some(Kept {
        kind,
        names,
        is_kept,
        except,
        is_text,
        payload: r.0.to_vec(),
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn byte(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let k = Kept {
            kind: Kind::Flag,
            names: vec!["a".into(), "bé".into()],
            is_kept: vec![true, false],
            except: vec![],
            is_text: true,
            payload: b"hello\n:x".to_vec(),
        };
        assert_eq!(decode(&encode(&k)), Some(k.clone()));
        let bytes = encode(&k);
        for cut in 0..bytes.len() - k.payload.len() {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(b"x"), None);
    }
}
