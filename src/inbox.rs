//! Reading a blocking link (the channel broker's, a gateway's) into whole length-prefixed
//! frames: what arrives is kept until its frame is whole, and a read that times out lets the
//! reader look whether it should stop.

use std::io::{self, Read};

/// How many bytes one read takes at most.
const CHUNK: usize = 64 * 1024;

/// The bytes read from a link and not yet taken as frames.
#[derive(Debug)]
pub(crate) struct Inbox {
    input: Vec<u8>,
    chunk: Box<[u8]>,
}

/// What one [`Inbox::fill`] brought.
#[derive(Debug)]
pub(crate) enum Filled {
    /// Bytes arrived.
    Bytes,
    /// Nothing within the stream's read timeout.
    Idle,
    /// The peer closed the link.
    Closed,
    Failed(io::Error),
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            input: Vec::new(),
            chunk: vec![0; CHUNK].into_boxed_slice(),
        }
    }
}

impl Inbox {
    /// Reads what the stream has, waiting at most its read timeout.
    pub(crate) fn fill(&mut self, stream: &mut impl Read) -> Filled {
        match stream.read(&mut self.chunk) {
            Ok(0) => Filled::Closed,
            Ok(n) => {
                self.input.extend_from_slice(&self.chunk[..n]);
                Filled::Bytes
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Filled::Idle
            }
            Err(e) => Filled::Failed(e),
        }
    }

    /// Hands each whole frame's body (a big-endian `u32` length, then that many bytes) to
    /// `each` and lets go of it; stops at the first error, a frame over `max` included.
    pub(crate) fn frames(
        &mut self,
        max: usize,
        mut each: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut at = 0;
        let outcome = loop {
            let Some(head) = self.input.get(at..at + 4) else {
                break Ok(());
            };
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
            if len > max {
                break Err(format!("a frame of {len} bytes (at most {max})"));
            }
            let Some(body) = self.input.get(at + 4..at + 4 + len) else {
                break Ok(());
            };
            if let Err(e) = each(body) {
                break Err(e);
            }
            at += 4 + len;
        };
        self.input.drain(..at);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_whole_however_the_bytes_arrive() {
        let mut stream = Vec::new();
        for body in [&b"one"[..], b"", b"three"] {
            stream.extend_from_slice(&(body.len() as u32).to_be_bytes());
            stream.extend_from_slice(body);
        }
        for cut in 1..stream.len() {
            let mut inbox = Inbox::default();
            let mut got = Vec::new();
            for piece in stream.chunks(cut) {
                assert!(matches!(inbox.fill(&mut &piece[..]), Filled::Bytes));
                inbox
                    .frames(16, |b| {
                        got.push(b.to_vec());
                        Ok(())
                    })
                    .unwrap();
            }
            assert_eq!(got, [&b"one"[..], b"", b"three"], "cut {cut}");
        }
        let mut inbox = Inbox::default();
        assert!(matches!(inbox.fill(&mut &[][..]), Filled::Closed));
        let mut big = Inbox::default();
        big.fill(&mut &[0, 0, 1, 0][..]);
        assert!(big.frames(16, |_| Ok(())).is_err());
    }
}
