//! Drivers for the fuzz targets in `fuzz/` (cargo-fuzz and libFuzzer), compiled only with the
//! `fuzzing` feature and not part of the API.
//!
//! Each target is one function taking the fuzzer's raw bytes: it reads its parameters (the
//! size limit, where the stream is cut into reads) from the front of the input, runs a codec
//! the way a connection does — input arriving in arbitrary pieces — and panics when an
//! invariant breaks. The invariants, for every codec:
//!
//! * no panic, whatever the input;
//! * no message over the size limit is ever delivered;
//! * how the stream is cut into reads changes nothing: the same messages, the same error,
//!   the same bytes held back;
//! * what was decoded, encoded again and decoded again, is the same messages;
//! * what the encoder makes of arbitrary payloads, the decoder gives back.
//!
//! Adding a target (the cluster message codec, say) takes a module here with a
//! `pub fn target(data: &[u8])`, a file in `fuzz/fuzz_targets/` calling it, a `[[bin]]` in
//! `fuzz/Cargo.toml`, and a seed directory in `fuzz/corpus/`.

mod tcp;
mod ws;

pub use tcp::{Decoded, decode_length, decode_lines, tcp_framers};
pub use ws::{WsDecoded, WsItem, decode_ws, mask_frame, ws_decoder};

/// Size limits the targets choose from: the edges (0, the 4-byte prefix, the 125-byte
/// control payload, 126/127 length forms) and one larger than any fuzz input.
const LIMITS: [usize; 16] = [
    0,
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    16,
    64,
    125,
    126,
    127,
    300,
    65_536,
    1 << 20,
];

/// The fuzzer's bytes, read front to back; reads past the end give zeros and empty slices,
/// so every input is a valid (if short) set of parameters.
#[derive(Debug)]
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A size limit from [`LIMITS`].
    fn limit(&mut self) -> usize {
        LIMITS[usize::from(self.byte()) % LIMITS.len()]
    }

    /// A cut pattern: a length byte (at most 15), then that many bytes for [`cut`].
    fn pattern(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte() % 16);
        self.take(n)
    }
}

/// Cuts `stream` into reads as `pattern` says, cycling through it: a byte under 0x80 is a
/// read of `b % 16` bytes (0 included: an empty read must be harmless), one above is a read
/// of `(b & 0x7f) * 8` bytes. An empty pattern is one read of everything.
fn cut<'a>(stream: &'a [u8], pattern: &[u8]) -> Vec<&'a [u8]> {
    if pattern.is_empty() {
        return vec![stream];
    }
    let mut chunks = Vec::new();
    let mut rest = stream;
    // Bounded: a turn through the pattern that consumes nothing ends the loop.
    let mut turn_start = rest.len();
    for (i, &b) in pattern.iter().cycle().enumerate() {
        if rest.is_empty() {
            break;
        }
        if i > 0 && i % pattern.len() == 0 {
            if rest.len() == turn_start {
                chunks.push(rest);
                break;
            }
            turn_start = rest.len();
        }
        let n = if b < 0x80 {
            usize::from(b % 16)
        } else {
            usize::from(b & 0x7f) * 8
        };
        let (head, tail) = rest.split_at(n.min(rest.len()));
        chunks.push(head);
        rest = tail;
    }
    chunks
}

#[cfg(test)]
mod tests;
