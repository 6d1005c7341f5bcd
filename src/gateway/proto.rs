//! The gateway protocol, between a gateway and the business processes connected to it.
//!
//! Every frame is a big-endian `u32` length, then that many bytes of body; the body's first
//! byte is its kind. Strings are a big-endian `u32` length, then UTF-8; ids are `u64`
//! big-endian. Nothing here panics on bad input: a frame that does not decode ends the link.
//!
//! | from     | kind | body, after the kind byte |
//! |----------|------|---------------------------|
//! | business | [`HELLO`], the first frame | `CPGW`, version `1`, instance `u16`, secret, name |
//! | gateway  | [`WELCOME`] | instance `u16`: the gateway's number (the instance field of its clients' ids) |
//! | gateway  | [`REFUSED`] | why (UTF-8, the rest) — then the gateway closes |
//! | both     | [`CLUSTER`] | a cluster message ([`crate::cluster::wire`]), the rest of the frame |
//! | gateway  | [`OPEN`] | id, uri (empty for a TCP client, which has no upgrade request), header count `u32`, then name and value of each |
//! | gateway  | [`DATA`] | id, is_text `u8` (0 or 1), payload: the rest of the frame, raw |
//! | gateway  | [`CLOSED`] | id, flag present `u8`, \[flag\], group count `u32`, groups |
//! | business | [`LEAVING`] | nothing: it is stopping, and takes no new client events |
//! | gateway  | [`DRAINED`] | nothing: the last client event for that business process went before it |
//!
//! A business process sends the gateway what the facade asks of it — pushes, closes, queries
//! by id, cluster-wide queries — as cluster messages, and the gateway answers queries with a
//! cluster reply on the same link; the gateway says hello (a cluster hello) every second, and
//! goodbye at stop. The gateway sends each client event to one business process.
//!
//! A business process that stops gracefully says [`LEAVING`]; the gateway gives its clients'
//! next events to another business process (or keeps them while there is none) and answers
//! [`DRAINED`] behind the last event it sent it, so that the business process handles every
//! event it was given, and its pushes and answers go out, before it closes the link.

use crate::id::ClientId;

/// The first bytes of a handshake.
pub(crate) const MAGIC: &[u8; 4] = b"CPGW";
/// The protocol version this build speaks.
pub(crate) const VERSION: u8 = 1;
/// Business: the handshake.
pub(crate) const HELLO: u8 = 0x01;
/// Gateway: the handshake is accepted.
pub(crate) const WELCOME: u8 = 0x02;
/// Gateway: the handshake is refused.
pub(crate) const REFUSED: u8 = 0x03;
/// Either way: a cluster message.
pub(crate) const CLUSTER: u8 = 0x10;
/// Gateway: a client connected.
pub(crate) const OPEN: u8 = 0x20;
/// Gateway: a client's message.
pub(crate) const DATA: u8 = 0x21;
/// Gateway: a client is gone.
pub(crate) const CLOSED: u8 = 0x22;
/// Business: leaving; send no more client events.
pub(crate) const LEAVING: u8 = 0x30;
/// Gateway: no client event follows on this link (the answer to [`LEAVING`]).
pub(crate) const DRAINED: u8 = 0x31;

/// A business process's handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hello<'a> {
    /// The business process's instance number (never the gateway's).
    pub(crate) instance: u16,
    pub(crate) secret: &'a str,
    pub(crate) name: &'a str,
}

/// A frame from a gateway, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FromGateway<'a> {
    Welcome {
        instance: u16,
    },
    Refused(&'a str),
    Cluster(&'a [u8]),
    Drained,
    Open {
        id: ClientId,
        uri: &'a str,
        headers: Vec<(&'a str, &'a str)>,
    },
    Data {
        id: ClientId,
        is_text: bool,
        payload: &'a [u8],
    },
    Closed {
        id: ClientId,
        flag: Option<&'a str>,
        groups: Vec<&'a str>,
    },
}

/// Starts a frame of `kind` in `out`; [`end`] writes its length.
fn begin(kind: u8, out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0, 0, 0, 0, kind]);
    at
}

fn end(at: usize, out: &mut [u8]) {
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn hello(hello: &Hello<'_>, out: &mut Vec<u8>) {
    let at = begin(HELLO, out);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&hello.instance.to_be_bytes());
    put_str(hello.secret, out);
    put_str(hello.name, out);
    end(at, out);
}

pub(crate) fn welcome(instance: u16, out: &mut Vec<u8>) {
    let at = begin(WELCOME, out);
    out.extend_from_slice(&instance.to_be_bytes());
    end(at, out);
}

pub(crate) fn refused(why: &str, out: &mut Vec<u8>) {
    let at = begin(REFUSED, out);
    out.extend_from_slice(why.as_bytes());
    end(at, out);
}

/// A frame of `kind` with nothing after it ([`LEAVING`], [`DRAINED`]).
pub(crate) fn bare(kind: u8, out: &mut Vec<u8>) {
    let at = begin(kind, out);
    end(at, out);
}

pub(crate) fn cluster(message: &[u8], out: &mut Vec<u8>) {
    let at = begin(CLUSTER, out);
    out.extend_from_slice(message);
    end(at, out);
}

pub(crate) fn open(id: ClientId, uri: &str, headers: &[(String, String)], out: &mut Vec<u8>) {
    let at = begin(OPEN, out);
    out.extend_from_slice(&id.as_u64().to_be_bytes());
    put_str(uri, out);
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        put_str(name, out);
        put_str(value, out);
    }
    end(at, out);
}

pub(crate) fn data(id: ClientId, is_text: bool, payload: &[u8], out: &mut Vec<u8>) {
    let at = begin(DATA, out);
    out.extend_from_slice(&id.as_u64().to_be_bytes());
    out.push(u8::from(is_text));
    out.extend_from_slice(payload);
    end(at, out);
}

pub(crate) fn closed(id: ClientId, flag: Option<&str>, groups: &[String], out: &mut Vec<u8>) {
    let at = begin(CLOSED, out);
    out.extend_from_slice(&id.as_u64().to_be_bytes());
    match flag {
        Some(flag) => {
            out.push(1);
            put_str(flag, out);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(groups.len() as u32).to_be_bytes());
    for g in groups {
        put_str(g, out);
    }
    end(at, out);
}

/// Reads fields off the front of a body.
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

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn id(&mut self) -> Option<ClientId> {
        let b = self.take(8)?;
        ClientId::from_u64(u64::from_be_bytes(b.try_into().ok()?))
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = self.u32()? as usize;
        std::str::from_utf8(self.take(len)?).ok()
    }

    /// A count of items of at least `min` bytes each, bounded by what remains, so that a
    /// hostile count allocates nothing.
    fn count(&mut self, min: usize) -> Option<usize> {
        let n = self.u32()? as usize;
        (n <= self.0.len() / min).then_some(n)
    }

    fn rest(self) -> &'a [u8] {
        self.0
    }

    fn done(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }
}

/// Decodes a business process's handshake (a whole frame body, kind included).
pub(crate) fn decode_hello(body: &[u8]) -> Option<Hello<'_>> {
    let mut r = Reader(body);
    if r.u8()? != HELLO || r.take(4)? != MAGIC || r.u8()? != VERSION {
        return None;
    }
    let hello = Hello {
        instance: r.u16()?,
        secret: r.str()?,
        name: r.str()?,
    };
    r.done()?;
    Some(hello)
}

/// Decodes a frame body from a gateway (kind included); `None` if it is malformed.
pub(crate) fn decode_from_gateway(body: &[u8]) -> Option<FromGateway<'_>> {
    let mut r = Reader(body);
    let frame = match r.u8()? {
        WELCOME => FromGateway::Welcome { instance: r.u16()? },
        REFUSED => return Some(FromGateway::Refused(std::str::from_utf8(r.rest()).ok()?)),
        CLUSTER => return Some(FromGateway::Cluster(r.rest())),
        DRAINED => FromGateway::Drained,
        OPEN => {
            let id = r.id()?;
            let uri = r.str()?;
            let n = r.count(8)?;
            let mut headers = Vec::with_capacity(n);
            for _ in 0..n {
                headers.push((r.str()?, r.str()?));
            }
            FromGateway::Open { id, uri, headers }
        }
        DATA => {
            let id = r.id()?;
            let is_text = r.bool()?;
            let payload = r.rest();
            if is_text && std::str::from_utf8(payload).is_err() {
                return None;
            }
            return Some(FromGateway::Data {
                id,
                is_text,
                payload,
            });
        }
        CLOSED => {
            let id = r.id()?;
            let flag = if r.bool()? { Some(r.str()?) } else { None };
            let n = r.count(4)?;
            let mut groups = Vec::with_capacity(n);
            for _ in 0..n {
                groups.push(r.str()?);
            }
            FromGateway::Closed { id, flag, groups }
        }
        _ => return None,
    };
    r.done()?;
    Some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        &frame[4..]
    }

    fn id(n: u64) -> ClientId {
        ClientId::from_u64(n).unwrap()
    }

    #[test]
    fn every_frame_decodes_to_what_was_encoded() {
        let mut out = Vec::new();
        let h = Hello {
            instance: 0,
            secret: "s3cret",
            name: "biz-1",
        };
        hello(&h, &mut out);
        assert_eq!(decode_hello(body(&out)), Some(h));

        type Encode = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(Encode, FromGateway<'_>)> = vec![
            (Box::new(|o| bare(DRAINED, o)), FromGateway::Drained),
            (
                Box::new(|o| welcome(7, o)),
                FromGateway::Welcome { instance: 7 },
            ),
            (
                Box::new(|o| refused("wrong secret", o)),
                FromGateway::Refused("wrong secret"),
            ),
            (
                Box::new(|o| cluster(b"\x01abc", o)),
                FromGateway::Cluster(b"\x01abc"),
            ),
            (
                Box::new(|o| {
                    open(
                        id(5 << 52 | 9),
                        "/chat?x=1",
                        &[("Host".into(), "h".into())],
                        o,
                    )
                }),
                FromGateway::Open {
                    id: id(5 << 52 | 9),
                    uri: "/chat?x=1",
                    headers: vec![("Host", "h")],
                },
            ),
            (
                Box::new(|o| data(id(3), true, b"hi", o)),
                FromGateway::Data {
                    id: id(3),
                    is_text: true,
                    payload: b"hi",
                },
            ),
            (
                Box::new(|o| data(id(3), false, b"", o)),
                FromGateway::Data {
                    id: id(3),
                    is_text: false,
                    payload: b"",
                },
            ),
            (
                Box::new(|o| closed(id(4), Some("u1"), &["a".into(), "b".into()], o)),
                FromGateway::Closed {
                    id: id(4),
                    flag: Some("u1"),
                    groups: vec!["a", "b"],
                },
            ),
        ];
        for (encode, want) in cases {
            let mut out = Vec::new();
            encode(&mut out);
            assert_eq!(decode_from_gateway(body(&out)), Some(want));
        }
    }

    #[test]
    fn malformed_frames_are_refused_without_panicking() {
        let mut out = Vec::new();
        open(id(1), "/", &[("a".into(), "b".into())], &mut out);
        let good = body(&out).to_vec();
        // Every truncation of a frame with fields after the kind is refused.
        for cut in 1..good.len() {
            assert_eq!(decode_from_gateway(&good[..cut]), None, "cut at {cut}");
        }
        // A hostile count allocates nothing and is refused.
        let mut hostile = vec![OPEN];
        hostile.extend_from_slice(&1u64.to_be_bytes());
        hostile.extend_from_slice(&0u32.to_be_bytes());
        hostile.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_from_gateway(&hostile), None);
        // Text that is not UTF-8, a zero id, an unknown kind, trailing bytes.
        let mut bad_text = vec![DATA];
        bad_text.extend_from_slice(&1u64.to_be_bytes());
        bad_text.extend_from_slice(&[1, 0xff]);
        assert_eq!(decode_from_gateway(&bad_text), None);
        let mut zero = vec![DATA];
        zero.extend_from_slice(&0u64.to_be_bytes());
        zero.push(0);
        assert_eq!(decode_from_gateway(&zero), None);
        assert_eq!(decode_from_gateway(&[0x7f]), None);
        assert_eq!(decode_from_gateway(&[WELCOME, 0, 1, 0]), None);
        assert_eq!(decode_hello(&[HELLO, b'C', b'P']), None);
    }
}
