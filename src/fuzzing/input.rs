//! The fuzzer's bytes as the targets' parameters, and how a stream is cut into reads.

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
pub(super) struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    pub(super) fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub(super) fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    pub(super) fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A size limit from [`LIMITS`].
    pub(super) fn limit(&mut self) -> usize {
        LIMITS[usize::from(self.byte()) % LIMITS.len()]
    }

    /// A cut pattern: a length byte (at most 15), then that many bytes for [`cut`].
    pub(super) fn pattern(&mut self) -> &'a [u8] {
        let n = usize::from(self.byte() % 16);
        self.take(n)
    }
}

/// Cuts `stream` into reads as `pattern` says, cycling through it: a byte under 0x80 is a
/// read of `b % 16` bytes (0 included: an empty read must be harmless), one above is a read
/// of `(b & 0x7f) * 8` bytes. An empty pattern is one read of everything.
pub(super) fn cut<'a>(stream: &'a [u8], pattern: &[u8]) -> Vec<&'a [u8]> {
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
