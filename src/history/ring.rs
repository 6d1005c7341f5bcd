//! One name's kept messages in this process: a ring of (offset, time, shared frame) within
//! the name's bounds, and the last offset given.

use std::collections::VecDeque;
use std::time::Instant;

use super::Bound;
use crate::codec::SharedFrame;

/// One kept message.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    at: Instant,
    pub(crate) frame: SharedFrame,
}

/// One name's stream.
#[derive(Debug)]
pub(crate) struct Ring {
    bound: Bound,
    /// The last offset given (0 before any message).
    last: u64,
    entries: VecDeque<Entry>,
}

impl Ring {
    pub(crate) fn new(bound: Bound) -> Self {
        Ring {
            bound,
            last: 0,
            entries: VecDeque::new(),
        }
    }

    /// Keeps a message under the next offset, dropping what falls out of the bounds; returns
    /// the offset.
    pub(crate) fn append(&mut self, frame: SharedFrame, now: Instant) -> u64 {
        self.last += 1;
        self.entries.push_back(Entry {
            offset: self.last,
            at: now,
            frame,
        });
        let max = self.bound.max_messages;
        while max > 0 && self.entries.len() > max {
            self.entries.pop_front();
        }
        self.expire(now);
        self.last
    }

    /// Drops the messages older than the age bound.
    pub(crate) fn expire(&mut self, now: Instant) {
        let Some(age) = self.bound.max_age else {
            return;
        };
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) > age)
        {
            self.entries.pop_front();
        }
    }

    pub(crate) fn last(&self) -> u64 {
        self.last
    }

    /// The first offset still kept.
    pub(crate) fn first(&self) -> Option<u64> {
        self.entries.front().map(|e| e.offset)
    }

    /// How many messages are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The kept messages after `offset`, oldest first.
    pub(crate) fn after(&self, offset: u64) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(move |e| e.offset > offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Frame, frame};
    use crate::config::Protocol;
    use std::sync::Arc;
    use std::time::Duration;

    fn f() -> SharedFrame {
        Arc::new(Frame::new(frame(Protocol::WebSocket, true, b"x").unwrap()))
    }

    #[test]
    fn count_bound() {
        let mut r = Ring::new(Bound {
            max_messages: 3,
            max_age: None,
        });
        let now = Instant::now();
        for i in 1..=10 {
            assert_eq!(r.append(f(), now), i);
            assert!(r.len() <= 3);
        }
        assert_eq!(r.first(), Some(8));
        assert_eq!(r.after(8).map(|e| e.offset).collect::<Vec<_>>(), [9, 10]);
    }

    #[test]
    fn age_bound() {
        let mut r = Ring::new(Bound {
            max_messages: 0,
            max_age: Some(Duration::from_secs(5)),
        });
        let t0 = Instant::now();
        r.append(f(), t0);
        r.append(f(), t0 + Duration::from_secs(3));
        r.expire(t0 + Duration::from_secs(6));
        assert_eq!(r.first(), Some(2));
        r.expire(t0 + Duration::from_secs(9));
        assert_eq!(r.first(), None);
        assert_eq!(r.last(), 2);
    }
}
