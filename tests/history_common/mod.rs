//! The seam race shared by the history tests of every backend: a pusher sends a numbered
//! stream while a client reads some, drops, reconnects and recovers, over and over; it must
//! see every number exactly once, in order.
#![allow(dead_code)] // each test file uses a different subset
#![allow(unreachable_pub)] // a test crate module

use std::thread;

use corepush::{Recovery, StreamPosition};

use crate::util::Client;

/// How many reconnects each race makes.
pub const ROUNDS: u64 = 50;

/// Runs the race. `push(n)` sends number `n` (1, 2, …) to the stream, whose offsets must be
/// the numbers; `rejoin(round, since)` connects a new client and recovers it at `since`
/// (`None` the first time), returning the client and what the recovery said.
pub fn race(
    push: impl Fn(u64) + Send + 'static,
    mut rejoin: impl FnMut(u64, Option<&StreamPosition>) -> (Client, Recovery),
) {
    // Credits let the pusher run ahead of the reader by a bounded amount; a burst of them
    // right before each reconnect makes it push while the client reconnects and recovers.
    let (credit, credits) = crossbeam_channel::unbounded::<()>();
    for _ in 0..500 {
        credit.send(()).unwrap();
    }
    let pusher = thread::spawn(move || {
        let mut n = 0;
        while credits.recv().is_ok() {
            n += 1;
            push(n);
        }
        n
    });
    let mut at: Option<StreamPosition> = None;
    let mut total = 0u64;
    for round in 0..ROUNDS {
        for _ in 0..(50 + (round * 7919) % 700) {
            credit.send(()).unwrap();
        }
        let (mut client, recovery) = rejoin(round, at.as_ref());
        assert!(recovery.is_member, "round {round}: {recovery:?}");
        let mut last = match &at {
            None => {
                assert!(!recovery.recovered);
                recovery.position.offset
            }
            Some(since) => {
                assert!(
                    recovery.recovered,
                    "round {round}: not recovered at {since:?}: {recovery:?}"
                );
                assert_eq!(recovery.position.epoch, since.epoch);
                assert!(recovery.position.offset >= since.offset);
                assert_eq!(
                    recovery.missed as u64,
                    recovery.position.offset - since.offset,
                    "round {round}"
                );
                since.offset
            }
        };
        let reads = 100 + (round * 104_729) % 900;
        // Enough for what is read, whatever was pushed before the client joined.
        for _ in 0..reads {
            credit.send(()).unwrap();
        }
        for _ in 0..reads {
            let text = client.recv();
            let n: u64 = text
                .parse()
                .unwrap_or_else(|_| panic!("not a number: {text}"));
            assert_eq!(
                n,
                last + 1,
                "round {round}: after {last} came {n} (a gap or a duplicate at the seam)"
            );
            last = n;
            total += 1;
        }
        at = Some(StreamPosition {
            epoch: recovery.position.epoch.clone(),
            offset: last,
        });
        // Gone without a goodbye, with messages in flight.
        drop(client);
    }
    drop(credit);
    let pushed = pusher.join().expect("the pusher");
    assert!(pushed >= total, "pushed {pushed}, read {total}");
}
