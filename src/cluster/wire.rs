//! Messages between the instances of one cluster: a versioned, compact binary codec, the same
//! whatever carries it (Redis pub/sub now; a broker and a gateway protocol later).
//!
//! [`decode`] borrows names and payloads from its input instead of copying them, never panics,
//! and allocates only the lists it returns, each bounded by the bytes that remain (at most 16
//! bytes of allocation per input byte). The payload of a push or a worker message travels
//! once, as the last field, raw: it is the rest of the message, never re-encoded.
//!
//! # Wire format, version 1
//!
//! This section is the contract between instances. Changing anything in it — a kind, a tag, a
//! field — is a new [`VERSION`]: a peer logs and skips a message of a version it does not know
//! ([`WireError::UnknownVersion`]) rather than misread it.
//!
//! | offset | size | field   | encoding                                                      |
//! |--------|------|---------|---------------------------------------------------------------|
//! | 0      | 1    | version | [`VERSION`] (1)                                               |
//! | 1      | 2    | origin  | u16 big-endian: the sender's instance number                  |
//! | 3      | 1    | kind    | 1 push, 2 close, 3 message, 4 query, 5 reply, 6 hello         |
//! | 4      | …    | fields  | the kind's fields, back to back                               |
//!
//! | kind      | fields, in order                                                                  |
//! |-----------|-----------------------------------------------------------------------------------|
//! | 1 push    | target, except: list(id), worker: option(u16), is_text: bool, reply: option(varint), payload |
//! | 2 close   | target, except: list(id), worker: option(u16), reply: option(varint)              |
//! | 3 message | action: option(str), workers: option(list(u16)), reply: option(varint), payload   |
//! | 4 query   | id: varint, except: list(id), worker: option(u16), query                          |
//! | 5 reply   | id: varint, answer                                                                |
//! | 6 hello   | up: bool                                                                          |
//!
//! A target, a query and an answer are a tag byte, then the tag's fields:
//!
//! | tag | target  | fields    |
//! |-----|---------|-----------|
//! | 0   | clients | list(id)  |
//! | 1   | flags   | list(str) |
//! | 2   | groups  | list(str) |
//! | 3   | all     |           |
//!
//! | tag | query         | fields                            | answered with |
//! |-----|---------------|-----------------------------------|---------------|
//! | 0   | exists        | id                                | bool          |
//! | 1   | flag members  | flag: str                         | ids           |
//! | 2   | flag of       | id                                | name          |
//! | 3   | connections   |                                   | ids           |
//! | 4   | count         |                                   | count         |
//! | 5   | group members | group: str                        | ids           |
//! | 6   | groups        |                                   | names         |
//! | 7   | groups of     | id                                | names         |
//! | 8   | data          | id, key: str                      | json          |
//! | 9   | set data      | id, key: str, json: bytes         | bool          |
//! | 10  | remove data   | id, key: str                      | bool          |
//! | 11  | bind          | id, flag: str, exclusive: bool    | bool          |
//! | 12  | unbind        | id                                | name          |
//! | 13  | join          | id, group: str                    | bool          |
//! | 14  | leave         | id, group: str                    | bool          |
//!
//! | tag | answer | fields        |
//! |-----|--------|---------------|
//! | 0   | bool   | bool          |
//! | 1   | count  | varint        |
//! | 2   | ids    | list(id)      |
//! | 3   | names  | list(str)     |
//! | 4   | name   | option(str)   |
//! | 5   | json   | option(bytes) |
//!
//! | encoding  | bytes                                                                      |
//! |-----------|----------------------------------------------------------------------------|
//! | varint    | unsigned LEB128, least significant group first, 1 to 10 bytes, shortest form |
//! | u16       | a varint of at most 65,535                                                 |
//! | id        | a client id, u64 big-endian, 8 bytes; never 0 nor a zero serial            |
//! | bool      | one byte, 0 or 1                                                           |
//! | option(T) | one byte, 0 (absent) or 1 followed by T                                    |
//! | list(T)   | varint count, then the items                                               |
//! | str       | varint length, then that many bytes of UTF-8                               |
//! | bytes     | varint length, then that many bytes (JSON, not parsed here)                |
//! | payload   | every byte up to the end of the message, raw (possibly none)               |
//!
//! Ids take a fixed 8 bytes: the instance number sits in their top bits, so the id of any
//! instance but 0 would take 8 bytes or more as a varint. A kind without a payload ends with
//! its last field; bytes after it are an error.
//!
//! Every envelope has exactly one encoding: the decoder refuses overlong varints, bool and
//! presence bytes other than 0 and 1, and trailing bytes. So `decode(b) == Ok(e)` implies
//! `encode(e) == b`, which the fuzz target checks, and which lets two messages be compared as
//! bytes.

use std::fmt;

use crate::id::ClientId;

/// The version of the format this build writes and reads.
pub(crate) const VERSION: u8 = 1;

/// A message from one instance of a cluster to others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Envelope<'a> {
    /// The sender's instance number.
    pub(crate) origin: u16,
    /// What it asks or tells.
    pub(crate) body: Body<'a>,
}

/// What a message asks or tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body<'a> {
    /// A push for the receiver's connections among `target`; with `reply`, the receiver
    /// answers the count it queued (a `Reply` with `Answer::Count`) to `origin` under that
    /// request id.
    Push {
        target: WireTarget<'a>,
        except: Vec<ClientId>,
        worker: Option<u16>,
        is_text: bool,
        reply: Option<u64>,
        payload: &'a [u8],
    },
    /// Closes the receiver's connections among `target`; `reply` as for a push.
    Close {
        target: WireTarget<'a>,
        except: Vec<ClientId>,
        worker: Option<u16>,
        reply: Option<u64>,
    },
    /// A worker message: `action` None = raw; `workers` None = every core loop.
    Message {
        action: Option<&'a str>,
        workers: Option<Vec<u16>>,
        reply: Option<u64>,
        payload: &'a [u8],
    },
    /// A question about the receiver's connections, answered by a `Reply` under `id`.
    Query {
        id: u64,
        except: Vec<ClientId>,
        worker: Option<u16>,
        query: Query<'a>,
    },
    /// The answer to the request `id` of the receiver.
    Reply { id: u64, answer: Answer<'a> },
    /// Liveness: sent by an instance when it starts and stops (`up` false), so others update
    /// their expectations at once.
    Hello { up: bool },
}

/// The connections a push or a close is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WireTarget<'a> {
    Clients(Vec<ClientId>),
    Flags(Vec<&'a str>),
    Groups(Vec<&'a str>),
    All,
}

/// A question about, or a change to, the receiver's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Query<'a> {
    Exists(ClientId),
    FlagMembers(&'a str),
    FlagOf(ClientId),
    Connections,
    Count,
    GroupMembers(&'a str),
    Groups,
    GroupsOf(ClientId),
    Data {
        id: ClientId,
        key: &'a str,
    },
    SetData {
        id: ClientId,
        key: &'a str,
        json: &'a [u8],
    },
    RemoveData {
        id: ClientId,
        key: &'a str,
    },
    Bind {
        id: ClientId,
        flag: &'a str,
        exclusive: bool,
    },
    Unbind(ClientId),
    Join {
        id: ClientId,
        group: &'a str,
    },
    Leave {
        id: ClientId,
        group: &'a str,
    },
}

/// The answer to a query, or to a push or close asked to reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer<'a> {
    Bool(bool),
    Count(u64),
    Ids(Vec<ClientId>),
    Names(Vec<&'a str>),
    Name(Option<&'a str>),
    Json(Option<&'a [u8]>),
}

/// Why bytes are not a message: log it and skip the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireError {
    /// A format version this build does not know, most likely from a newer peer.
    UnknownVersion(u8),
    /// Not a valid message of this version; the reason says where it went wrong.
    Malformed(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::UnknownVersion(v) => write!(
                f,
                "cluster message of unknown version {v} (this build reads {VERSION})"
            ),
            WireError::Malformed(reason) => write!(f, "malformed cluster message: {reason}"),
        }
    }
}

impl std::error::Error for WireError {}

const PUSH: u8 = 1;
const CLOSE: u8 = 2;
const MESSAGE: u8 = 3;
const QUERY: u8 = 4;
const REPLY: u8 = 5;
const HELLO: u8 = 6;

/// Appends the encoding of `env` to `out`.
pub(crate) fn encode(env: &Envelope<'_>, out: &mut Vec<u8>) {
    out.push(VERSION);
    out.extend_from_slice(&env.origin.to_be_bytes());
    match &env.body {
        Body::Push {
            target,
            except,
            worker,
            is_text,
            reply,
            payload,
        } => {
            out.push(PUSH);
            put_target(out, target);
            put_ids(out, except);
            put_option(out, *worker, put_worker);
            out.push(u8::from(*is_text));
            put_option(out, *reply, put_varint);
            out.extend_from_slice(payload);
        }
        Body::Close {
            target,
            except,
            worker,
            reply,
        } => {
            out.push(CLOSE);
            put_target(out, target);
            put_ids(out, except);
            put_option(out, *worker, put_worker);
            put_option(out, *reply, put_varint);
        }
        Body::Message {
            action,
            workers,
            reply,
            payload,
        } => {
            out.push(MESSAGE);
            put_option(out, *action, put_str);
            put_option(out, workers.as_deref(), |out, workers| {
                put_len(out, workers.len());
                for &w in workers {
                    put_worker(out, w);
                }
            });
            put_option(out, *reply, put_varint);
            out.extend_from_slice(payload);
        }
        Body::Query {
            id,
            except,
            worker,
            query,
        } => {
            out.push(QUERY);
            put_varint(out, *id);
            put_ids(out, except);
            put_option(out, *worker, put_worker);
            put_query(out, query);
        }
        Body::Reply { id, answer } => {
            out.push(REPLY);
            put_varint(out, *id);
            put_answer(out, answer);
        }
        Body::Hello { up } => {
            out.push(HELLO);
            out.push(u8::from(*up));
        }
    }
}

/// Decodes one message, borrowing its names and payload from `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope<'_>, WireError> {
    let mut r = Reader { rest: bytes };
    let version = r.byte()?;
    if version != VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let origin = u16::from_be_bytes([r.byte()?, r.byte()?]);
    let body = match r.byte()? {
        PUSH => Body::Push {
            target: r.target()?,
            except: r.ids()?,
            worker: r.option(Reader::u16)?,
            is_text: r.bool()?,
            reply: r.option(Reader::varint)?,
            payload: r.rest(),
        },
        CLOSE => Body::Close {
            target: r.target()?,
            except: r.ids()?,
            worker: r.option(Reader::u16)?,
            reply: r.option(Reader::varint)?,
        },
        MESSAGE => Body::Message {
            action: r.option(Reader::str)?,
            workers: r.option(|r| r.list(1, Reader::u16))?,
            reply: r.option(Reader::varint)?,
            payload: r.rest(),
        },
        QUERY => Body::Query {
            id: r.varint()?,
            except: r.ids()?,
            worker: r.option(Reader::u16)?,
            query: r.query()?,
        },
        REPLY => Body::Reply {
            id: r.varint()?,
            answer: r.answer()?,
        },
        HELLO => Body::Hello { up: r.bool()? },
        _ => return Err(WireError::Malformed("unknown kind")),
    };
    if !r.rest.is_empty() {
        return Err(WireError::Malformed("bytes after the last field"));
    }
    Ok(Envelope { origin, body })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_worker(out: &mut Vec<u8>, worker: u16) {
    put_varint(out, worker.into());
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    put_varint(out, len as u64);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_len(out, b.len());
    out.extend_from_slice(b);
}

fn put_id(out: &mut Vec<u8>, id: ClientId) {
    out.extend_from_slice(&id.as_u64().to_be_bytes());
}

fn put_ids(out: &mut Vec<u8>, ids: &[ClientId]) {
    put_len(out, ids.len());
    for &id in ids {
        put_id(out, id);
    }
}

fn put_strs(out: &mut Vec<u8>, names: &[&str]) {
    put_len(out, names.len());
    for name in names {
        put_str(out, name);
    }
}

fn put_option<T>(out: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put(out, v);
        }
    }
}

fn put_target(out: &mut Vec<u8>, target: &WireTarget<'_>) {
    match target {
        WireTarget::Clients(ids) => {
            out.push(0);
            put_ids(out, ids);
        }
        WireTarget::Flags(names) => {
            out.push(1);
            put_strs(out, names);
        }
        WireTarget::Groups(names) => {
            out.push(2);
            put_strs(out, names);
        }
        WireTarget::All => out.push(3),
    }
}

fn put_query(out: &mut Vec<u8>, query: &Query<'_>) {
    match query {
        Query::Exists(id) => put_tag_id(out, 0, *id),
        Query::FlagMembers(flag) => {
            out.push(1);
            put_str(out, flag);
        }
        Query::FlagOf(id) => put_tag_id(out, 2, *id),
        Query::Connections => out.push(3),
        Query::Count => out.push(4),
        Query::GroupMembers(group) => {
            out.push(5);
            put_str(out, group);
        }
        Query::Groups => out.push(6),
        Query::GroupsOf(id) => put_tag_id(out, 7, *id),
        Query::Data { id, key } => {
            put_tag_id(out, 8, *id);
            put_str(out, key);
        }
        Query::SetData { id, key, json } => {
            put_tag_id(out, 9, *id);
            put_str(out, key);
            put_bytes(out, json);
        }
        Query::RemoveData { id, key } => {
            put_tag_id(out, 10, *id);
            put_str(out, key);
        }
        Query::Bind {
            id,
            flag,
            exclusive,
        } => {
            put_tag_id(out, 11, *id);
            put_str(out, flag);
            out.push(u8::from(*exclusive));
        }
        Query::Unbind(id) => put_tag_id(out, 12, *id),
        Query::Join { id, group } => {
            put_tag_id(out, 13, *id);
            put_str(out, group);
        }
        Query::Leave { id, group } => {
            put_tag_id(out, 14, *id);
            put_str(out, group);
        }
    }
}

fn put_tag_id(out: &mut Vec<u8>, tag: u8, id: ClientId) {
    out.push(tag);
    put_id(out, id);
}

fn put_answer(out: &mut Vec<u8>, answer: &Answer<'_>) {
    match answer {
        Answer::Bool(b) => out.extend_from_slice(&[0, u8::from(*b)]),
        Answer::Count(n) => {
            out.push(1);
            put_varint(out, *n);
        }
        Answer::Ids(ids) => {
            out.push(2);
            put_ids(out, ids);
        }
        Answer::Names(names) => {
            out.push(3);
            put_strs(out, names);
        }
        Answer::Name(name) => {
            out.push(4);
            put_option(out, *name, put_str);
        }
        Answer::Json(json) => {
            out.push(5);
            put_option(out, *json, put_bytes);
        }
    }
}

/// The bytes of a message not read yet.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.rest.len() {
            return Err(WireError::Malformed("truncated"));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn byte(&mut self) -> Result<u8, WireError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or(WireError::Malformed("truncated"))?;
        self.rest = rest;
        Ok(b)
    }

    fn bool(&mut self) -> Result<bool, WireError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Malformed("a bool is neither 0 nor 1")),
        }
    }

    fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, WireError>,
    ) -> Result<Option<T>, WireError> {
        match self.byte()? {
            0 => Ok(None),
            1 => read(self).map(Some),
            _ => Err(WireError::Malformed("a presence byte is neither 0 nor 1")),
        }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0;
        for i in 0..10 {
            let b = self.byte()?;
            // The tenth byte holds bit 63 alone.
            if i == 9 && b > 1 {
                return Err(WireError::Malformed("a varint overflows 64 bits"));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if b == 0 && i > 0 {
                    return Err(WireError::Malformed("a varint is not in its shortest form"));
                }
                return Ok(value);
            }
        }
        Err(WireError::Malformed("a varint overflows 64 bits"))
    }

    fn u16(&mut self) -> Result<u16, WireError> {
        u16::try_from(self.varint()?).map_err(|_| WireError::Malformed("a worker over 65535"))
    }

    /// A varint length, checked against the bytes left.
    fn len(&mut self) -> Result<usize, WireError> {
        let len = self.varint()?;
        match usize::try_from(len) {
            Ok(len) if len <= self.rest.len() => Ok(len),
            _ => Err(WireError::Malformed("a length past the end")),
        }
    }

    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.len()?;
        self.take(len)
    }

    fn str(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireError::Malformed("a name not UTF-8"))
    }

    fn id(&mut self) -> Result<ClientId, WireError> {
        let (raw, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or(WireError::Malformed("truncated"))?;
        self.rest = rest;
        ClientId::from_u64(u64::from_be_bytes(*raw))
            .ok_or(WireError::Malformed("an invalid client id"))
    }

    /// A list of items of at least `min_size` bytes each: a count the bytes left cannot hold
    /// is refused before anything is allocated.
    fn list<T>(
        &mut self,
        min_size: usize,
        mut read: impl FnMut(&mut Self) -> Result<T, WireError>,
    ) -> Result<Vec<T>, WireError> {
        let count = self.varint()?;
        if count > (self.rest.len() / min_size) as u64 {
            return Err(WireError::Malformed("a count past the end"));
        }
        let mut items = Vec::with_capacity(count as usize);
        for _ in 0..count {
            items.push(read(self)?);
        }
        Ok(items)
    }

    fn ids(&mut self) -> Result<Vec<ClientId>, WireError> {
        self.list(8, Reader::id)
    }

    fn strs(&mut self) -> Result<Vec<&'a str>, WireError> {
        self.list(1, Reader::str)
    }

    fn target(&mut self) -> Result<WireTarget<'a>, WireError> {
        Ok(match self.byte()? {
            0 => WireTarget::Clients(self.ids()?),
            1 => WireTarget::Flags(self.strs()?),
            2 => WireTarget::Groups(self.strs()?),
            3 => WireTarget::All,
            _ => return Err(WireError::Malformed("unknown target")),
        })
    }

    fn query(&mut self) -> Result<Query<'a>, WireError> {
        Ok(match self.byte()? {
            0 => Query::Exists(self.id()?),
            1 => Query::FlagMembers(self.str()?),
            2 => Query::FlagOf(self.id()?),
            3 => Query::Connections,
            4 => Query::Count,
            5 => Query::GroupMembers(self.str()?),
            6 => Query::Groups,
            7 => Query::GroupsOf(self.id()?),
            8 => Query::Data {
                id: self.id()?,
                key: self.str()?,
            },
            9 => Query::SetData {
                id: self.id()?,
                key: self.str()?,
                json: self.bytes()?,
            },
            10 => Query::RemoveData {
                id: self.id()?,
                key: self.str()?,
            },
            11 => Query::Bind {
                id: self.id()?,
                flag: self.str()?,
                exclusive: self.bool()?,
            },
            12 => Query::Unbind(self.id()?),
            13 => Query::Join {
                id: self.id()?,
                group: self.str()?,
            },
            14 => Query::Leave {
                id: self.id()?,
                group: self.str()?,
            },
            _ => return Err(WireError::Malformed("unknown query")),
        })
    }

    fn answer(&mut self) -> Result<Answer<'a>, WireError> {
        Ok(match self.byte()? {
            0 => Answer::Bool(self.bool()?),
            1 => Answer::Count(self.varint()?),
            2 => Answer::Ids(self.ids()?),
            3 => Answer::Names(self.strs()?),
            4 => Answer::Name(self.option(Reader::str)?),
            5 => Answer::Json(self.option(Reader::bytes)?),
            _ => return Err(WireError::Malformed("unknown answer")),
        })
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
