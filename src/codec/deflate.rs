//! permessage-deflate (RFC 7692) on the wire: raw deflate streams, each message ending in a
//! sync flush whose `00 00 ff ff` is left off when compressing and put back when inflating.
//!
//! Inflating is bounded: the output grows a chunk at a time and the message is refused (1009)
//! the moment it would pass the size limit, so a compression bomb costs at most the limit
//! plus one chunk.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::message::ProtocolError;

/// What a sync flush ends with, and RFC 7692 §7.2.1 has the sender leave off.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Past this capacity the message buffer is freed rather than kept for reuse.
const RETAIN_CAPACITY: usize = 4096;

/// Bytes inflated per step: the most a message may overshoot the limit by before it is refused.
const CHUNK: usize = 8 * 1024;

/// The message inflates past the size limit.
const TOO_BIG: ProtocolError = ProtocolError {
    close_code: 1009,
    reason: "message too big",
};

/// The compressed data is not valid deflate.
const BAD_DATA: ProtocolError = ProtocolError {
    close_code: 1007,
    reason: "invalid compressed data",
};

/// The inflating side of a connection: one raw-deflate decompressor, made on the first
/// compressed message, kept across messages (the client's context takeover) unless the
/// agreement says the client keeps none.
#[derive(Debug)]
pub(crate) struct Inflate {
    state: Option<Box<Decompress>>,
    /// Whether the client may refer back to earlier messages.
    takeover: bool,
    /// The message being inflated, between inflating and delivering it.
    out: Vec<u8>,
}

impl Inflate {
    /// An inflater; `takeover` is false when `client_no_context_takeover` was agreed.
    pub(crate) fn new(takeover: bool) -> Self {
        Inflate {
            state: None,
            takeover,
            out: Vec::new(),
        }
    }

    /// Inflates one message's payload (without its tail) into the inflater's own buffer, and
    /// returns it; see [`inflate`](Inflate::inflate).
    pub(crate) fn message(&mut self, input: &[u8], max: usize) -> Result<&[u8], ProtocolError> {
        let mut out = std::mem::take(&mut self.out);
        let result = self.inflate(input, &mut out, max);
        self.out = out;
        result.map(|()| self.out.as_slice())
    }

    /// Empties the buffer of [`message`](Inflate::message), keeping its allocation only if it
    /// is small, so one large message does not pin memory for the rest of the connection.
    pub(crate) fn recycle(&mut self) {
        if self.out.capacity() > RETAIN_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
    }

    /// Inflates one message's payload (without its tail) into `out`, which it clears first.
    /// Fails with 1009 as soon as the output would pass `max` bytes, having grown `out` to at
    /// most `max`; with 1007 on data that is not deflate.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        out.clear();
        let state = self
            .state
            .get_or_insert_with(|| Box::new(Decompress::new(false)));
        let result = inflate_into(state, input, out, max);
        // After an error the connection closes; after a message without takeover (or one that
        // ended its deflate stream) the next starts afresh.
        if result.is_err() || !self.takeover || result == Ok(true) {
            state.reset(false);
        }
        result.map(|_| ())
    }
}

/// Feeds `input` and then the tail to `state`, a chunk of output at a time. True if the
/// deflate stream ended (a final block), after which the rest is ignored.
fn inflate_into(
    state: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    max: usize,
) -> Result<bool, ProtocolError> {
    let mut chunk = [0u8; CHUNK];
    for part in [input, &TAIL[..]] {
        let mut pos = 0;
        loop {
            let (in_before, out_before) = (state.total_in(), state.total_out());
            let status = state
                .decompress(&part[pos..], &mut chunk, FlushDecompress::Sync)
                .map_err(|_| BAD_DATA)?;
            // Both differences are bounded by the slices handed in.
            let used = (state.total_in() - in_before) as usize;
            let made = (state.total_out() - out_before) as usize;
            pos += used;
            if made > max.saturating_sub(out.len()) {
                return Err(TOO_BIG);
            }
            out.extend_from_slice(&chunk[..made]);
            match status {
                Status::StreamEnd => return Ok(true),
                // The input is used up and the output had room: all of it is out.
                _ if pos >= part.len() && made < chunk.len() => break,
                // Neither moved: the data stops short of a block's end.
                _ if used == 0 && made == 0 => break,
                _ => {}
            }
        }
    }
    Ok(false)
}

/// A raw-deflate compressor at `level` (0 to 9).
pub(crate) fn compressor(level: u32) -> Compress {
    Compress::new(Compression::new(level.min(9)), false)
}

/// Compresses one message's payload onto `out` as RFC 7692 wants it: a sync flush with its
/// tail left off. The compressor's context carries on to the next message unless the caller
/// resets it. False if the compressor failed (then nothing useful is in `out`).
pub(crate) fn compress(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> bool {
    compress_flushed(c, input, out, FlushCompress::Sync)
}

/// [`compress`], ending the message with `flush` (`Sync`, or `Full`, which also forgets the
/// context, so that what follows never refers back to it).
fn compress_flushed(
    c: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
    flush: FlushCompress,
) -> bool {
    let start = out.len();
    out.reserve(input.len() / 2 + 64);
    let in_start = c.total_in();
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(256));
        }
        let consumed = (c.total_in() - in_start) as usize;
        if c.compress_vec(&input[consumed..], out, flush).is_err() {
            return false;
        }
        let consumed = (c.total_in() - in_start) as usize;
        // All input in, and the flush left room behind it: the flush is complete.
        if consumed >= input.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out[start..].ends_with(&TAIL) {
        out.truncate(out.len() - TAIL.len());
    }
    true
}

thread_local! {
    /// This thread's compressor for messages without context takeover: a deflate compressor
    /// is some 300 KiB of tables, too much to build per message.
    static SHARED: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// Compresses a message without context with this thread's reused compressor. Each message
/// ends in a full flush, which forgets the history (the next message never refers back, so
/// every one inflates on its own) at less cost than a reset, which rebuilds every table.
pub(crate) fn compress_alone(level: u32, input: &[u8], out: &mut Vec<u8>) -> bool {
    SHARED.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            // Not re-entered in practice; a compressor of its own is correct all the same.
            return compress(&mut compressor(level), input, out);
        };
        let c = match &mut *slot {
            Some((l, c)) if *l == level => c,
            other => &mut other.insert((level, compressor(level))).1,
        };
        let done = compress_flushed(c, input, out, FlushCompress::Full);
        if !done {
            // Its state is unknown: the next message starts from a fresh one.
            c.reset();
        }
        done
    })
}

#[cfg(test)]
#[path = "deflate_tests.rs"]
mod tests;
