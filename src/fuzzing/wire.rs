//! The cluster message codec's target: any bytes as a message, and as a recipe for one.

use super::input::Input;
use crate::cluster::wire::{
    Answer, Body, Envelope, Query, VERSION, WireError, WireTarget, decode, encode,
};
use crate::id::ClientId;

/// Runs the fuzz target: `data` is decoded as a message, and what decodes must be the one
/// encoding of what it decoded to; then `data` is read as a recipe for a valid envelope,
/// whose encoding must decode to it. Panics if an invariant breaks.
pub fn cluster_wire(data: &[u8]) {
    match decode(data) {
        Ok(env) => check_encoding(&env, data),
        Err(WireError::UnknownVersion(v)) => {
            assert!(v != VERSION && data.first() == Some(&v), "version {v}");
        }
        Err(WireError::Malformed(_)) => {
            assert!(
                matches!(data.first(), None | Some(&VERSION)),
                "a version error"
            );
        }
    }

    let env = recipe(&mut Input::new(data));
    let mut wire = Vec::new();
    encode(&env, &mut wire);
    match decode(&wire) {
        Ok(decoded) => {
            assert_eq!(decoded, env, "an envelope did not come back");
            check_encoding(&decoded, &wire);
        }
        Err(e) => panic!("the encoding of {env:?} did not decode: {e}"),
    }
}

/// Checks that `env`, decoded from `wire`, encodes to `wire` again; that its payload is the
/// tail of `wire`, not a copy; and that a cut of `wire` before the payload is an error, while
/// a cut inside it decodes to the same fields and a shorter payload.
fn check_encoding(env: &Envelope<'_>, wire: &[u8]) {
    let mut again = Vec::new();
    encode(env, &mut again);
    assert_eq!(
        again, wire,
        "a message that is not the encoding of its decoding"
    );

    let start = match env.body {
        Body::Push { payload, .. } | Body::Message { payload, .. } => {
            assert_eq!(
                payload.as_ptr_range().end,
                wire.as_ptr_range().end,
                "the payload was copied"
            );
            wire.len() - payload.len()
        }
        _ => wire.len(),
    };
    for len in 0..start {
        assert!(
            decode(&wire[..len]).is_err(),
            "a cut to {len} bytes decoded"
        );
    }
    for len in [start, start + (wire.len() - start) / 2] {
        let mut cut = Vec::new();
        match decode(&wire[..len]) {
            Ok(shorter) => encode(&shorter, &mut cut),
            Err(e) => panic!("a cut inside the payload, at {len} bytes: {e}"),
        }
        assert_eq!(
            cut,
            &wire[..len],
            "a cut inside the payload changed a field"
        );
    }
}

/// Reads an envelope from the fuzzer's bytes: two origin bytes, a kind byte, then the kind's
/// fields, each drawn from the bytes that follow (zeros once they run out).
fn recipe<'a>(input: &mut Input<'a>) -> Envelope<'a> {
    let origin = u16::from_be_bytes([input.byte(), input.byte()]);
    // Struct fields are evaluated in the order written, so each reads the bytes after the last.
    let body = match input.byte() % 6 {
        0 => Body::Push {
            target: target(input),
            except: list(input, id),
            worker: option(input, worker),
            is_text: flag(input),
            reply: option(input, number),
            payload: input.rest(),
        },
        1 => Body::Close {
            target: target(input),
            except: list(input, id),
            worker: option(input, worker),
            reply: option(input, number),
        },
        2 => Body::Message {
            action: option(input, name),
            workers: option(input, |input| list(input, worker)),
            reply: option(input, number),
            payload: input.rest(),
        },
        3 => Body::Query {
            id: number(input),
            except: list(input, id),
            worker: option(input, worker),
            query: query(input),
        },
        4 => Body::Reply {
            id: number(input),
            answer: answer(input),
        },
        _ => Body::Hello { up: flag(input) },
    };
    Envelope { origin, body }
}

fn target<'a>(input: &mut Input<'a>) -> WireTarget<'a> {
    match input.byte() % 4 {
        0 => WireTarget::Clients(list(input, id)),
        1 => WireTarget::Flags(list(input, name)),
        2 => WireTarget::Groups(list(input, name)),
        _ => WireTarget::All,
    }
}

fn query<'a>(input: &mut Input<'a>) -> Query<'a> {
    match input.byte() % 15 {
        0 => Query::Exists(id(input)),
        1 => Query::FlagMembers(name(input)),
        2 => Query::FlagOf(id(input)),
        3 => Query::Connections,
        4 => Query::Count,
        5 => Query::GroupMembers(name(input)),
        6 => Query::Groups,
        7 => Query::GroupsOf(id(input)),
        8 => Query::Data {
            id: id(input),
            key: name(input),
        },
        9 => Query::SetData {
            id: id(input),
            key: name(input),
            json: bytes(input),
        },
        10 => Query::RemoveData {
            id: id(input),
            key: name(input),
        },
        11 => Query::Bind {
            id: id(input),
            flag: name(input),
            exclusive: flag(input),
        },
        12 => Query::Unbind(id(input)),
        13 => Query::Join {
            id: id(input),
            group: name(input),
        },
        _ => Query::Leave {
            id: id(input),
            group: name(input),
        },
    }
}

fn answer<'a>(input: &mut Input<'a>) -> Answer<'a> {
    match input.byte() % 6 {
        0 => Answer::Bool(flag(input)),
        1 => Answer::Count(number(input)),
        2 => Answer::Ids(list(input, id)),
        3 => Answer::Names(list(input, name)),
        4 => Answer::Name(option(input, name)),
        _ => Answer::Json(option(input, bytes)),
    }
}

fn flag(input: &mut Input<'_>) -> bool {
    input.byte() & 1 != 0
}

fn option<'a, T>(input: &mut Input<'a>, read: impl FnOnce(&mut Input<'a>) -> T) -> Option<T> {
    flag(input).then(|| read(input))
}

/// Up to 7 items.
fn list<'a, T>(input: &mut Input<'a>, mut read: impl FnMut(&mut Input<'a>) -> T) -> Vec<T> {
    let count = input.byte() % 8;
    (0..count).map(|_| read(input)).collect()
}

/// A length byte (mod 9), then that many bytes, big-endian: small numbers and every varint
/// length alike.
fn number(input: &mut Input<'_>) -> u64 {
    let len = usize::from(input.byte() % 9);
    input
        .take(len)
        .iter()
        .fold(0, |n, &b| (n << 8) | u64::from(b))
}

fn worker(input: &mut Input<'_>) -> u16 {
    u16::from_be_bytes([input.byte(), input.byte()])
}

/// Eight bytes, big-endian; a zero serial is made 1, since such an id is not valid.
fn id(input: &mut Input<'_>) -> ClientId {
    let raw = u64::from_be_bytes(std::array::from_fn(|_| input.byte()));
    ClientId::from_u64(raw)
        .or_else(|| ClientId::from_u64(raw | 1))
        .expect("an id with a nonzero serial")
}

/// A length byte (mod 16) and that many bytes, cut to their longest UTF-8 prefix.
fn name<'a>(input: &mut Input<'a>) -> &'a str {
    let len = usize::from(input.byte() % 16);
    let raw = input.take(len);
    match std::str::from_utf8(raw) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&raw[..e.valid_up_to()]).unwrap_or_default(),
    }
}

/// A length byte and that many bytes.
fn bytes<'a>(input: &mut Input<'a>) -> &'a [u8] {
    let len = usize::from(input.byte());
    input.take(len)
}
