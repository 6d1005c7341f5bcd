//! The runtime's settings: core loops, cluster instance, mailboxes, and the fan-out window.

use std::time::Duration;

/// The longest fan-out window (fixed, or an adaptive one's ceiling) a runtime accepts.
pub(crate) const MAX_FANOUT_COALESCE: Duration = Duration::from_secs(60);

/// How long the frames of a message to many clients may wait on a core loop so that the
/// frames that follow share their write ([`RuntimeConfig::fanout_window`]).
///
/// The cost of pushing is per write system call far more than per byte, so under heavy
/// fan-out holding frames turns many small writes into a few large ones; under light fan-out
/// holding them only adds latency. A core loop writes the frames it holds in a *fan-out
/// round*: every connection that holds such frames, 64 per loop turn so that reading and
/// replying go on meanwhile. Either way, a message to one client, a handler's
/// reply, a ping or a close writes the connection's whole queue (held frames first, order
/// kept) in the loop turn that queued it, and so does a queue of 64 frames or more; in a
/// shutdown, rounds start at once.
///
/// Both durations are at most 60 s (a longer one is refused by
/// [`RuntimeBuilder::start`](crate::RuntimeBuilder::start)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FanoutWindow {
    /// A window each core loop sizes from the fan-out it sees, between zero and `max`:
    ///
    /// * **Light load, at once.** A fan-out message that finds the loop quiet — nothing held,
    ///   no round under way, the window since the last round began passed — starts a round
    ///   at once, unless the last two quiet spells each ended in a *burst* (two or more
    ///   fan-out messages before the next quiet spell, the last closer together than that
    ///   spell is long — a steady stream that finds the loop busy now and then is no burst,
    ///   nor are two messages that met by chance once): then the round waits twice the last
    ///   burst's
    ///   spread — at most the longer of that spread and the time the last round took to
    ///   write, and at most `max` — or until as many messages as that burst had have come,
    ///   whichever is first, so that a burst that recurs (senders that answer a delivery
    ///   together) shares one round.
    ///   A lone message, or a stream of messages further apart than a round takes to write,
    ///   goes out at once.
    /// * **Heavy load, opening.** The loop keeps a *load*: the fan-out messages counted since
    ///   the previous round began, times the time the last round took to write (the time
    ///   spent in its writes, not counting the loop's other work between its chunks), over
    ///   the time since the previous round began — how much of its time writing each message
    ///   at once would take — averaged over the last few rounds. While the load is 1.5 or
    ///   more, a round that begins with `k` ≥ 2 messages opens the window to `k − 1` times
    ///   the last round's writing time, at most `max`. Below it, back-to-back rounds of
    ///   whatever came meanwhile keep up, and waiting would only add latency. Under a load
    ///   that waits for its deliveries (a closed loop), a longer window gathers more
    ///   messages, so the window grows round after round up to `max`; under a steady stream
    ///   the loop writes in less than 1.5 times its pace it stays shut.
    /// * **Closing when the load drops.** A round that finishes with nothing held for the
    ///   next one closes the window at once; so does a round that begins with one message,
    ///   and a message that finds the loop quiet.
    ///
    /// Under a saturating load the window reaches `max` within a few rounds and frames go
    /// tens to a write; under a light one it stays shut. The loop's timer has millisecond
    /// resolution, so a wait of less than a millisecond lasts up to one unless other work
    /// wakes the loop first. See the README's Performance section for measurements.
    Adaptive {
        /// The longest the window opens. 10 ms by default: invisible next to network round
        /// trips, and enough for several times the deliveries per second of a server that
        /// writes every broadcast on its own.
        max: Duration,
    },
    /// A round starts at most once per this window, and at once when the last round began
    /// longer than a window ago (a lone message is not delayed, only the messages behind it
    /// in a burst). Zero writes every frame in the loop turn that queued it. Where the latency
    /// of every message in a burst counts (tick-driven games), a small fixed window bounds it.
    Fixed(Duration),
}

impl Default for FanoutWindow {
    /// [`FanoutWindow::Adaptive`] with a 10 ms ceiling.
    fn default() -> Self {
        FanoutWindow::Adaptive {
            max: Duration::from_millis(10),
        }
    }
}

impl FanoutWindow {
    /// The longest frames may wait: the fixed window, or the adaptive one's ceiling.
    pub fn longest(&self) -> Duration {
        match *self {
            FanoutWindow::Adaptive { max } => max,
            FanoutWindow::Fixed(window) => window,
        }
    }
}

/// Settings of the whole runtime: `RuntimeConfig::default()` and the setters, named after
/// the fields.
///
/// ```
/// use std::time::Duration;
/// let config = corepush::RuntimeConfig::default()
///     .workers(2)
///     .fanout_window(corepush::FanoutWindow::Adaptive {
///         max: Duration::from_millis(20),
///     });
/// assert_eq!(config.workers, 2);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// How many core loops (threads) to run. Defaults to the number of available cores.
    pub workers: usize,
    /// This process's instance number in a cluster (part of every [`ClientId`](crate::ClientId)),
    /// below [`MAX_INSTANCES`](crate::MAX_INSTANCES) (4096). Defaults to 0.
    pub instance: u16,
    /// How long a graceful shutdown waits for clients to take their last messages and close
    /// frames before the sockets are dropped. Defaults to 5 s.
    pub shutdown_timeout: Duration,
    /// How many commands a core loop takes from its mailbox before it looks at its sockets
    /// again, so that one busy sender cannot starve I/O. Defaults to 1024.
    pub mailbox_batch: usize,
    /// How many commands (sends, closes, worker messages from other threads) may wait in one
    /// core loop's mailbox: one per call and core loop, so a push to everyone is one command
    /// whatever the number of clients. A thread that finds it full waits for room (see
    /// [`mailbox_timeout`](RuntimeConfig::mailbox_timeout)), so a thread that pushes faster
    /// than the core loops can write cannot grow memory without bound. Defaults to 16,384.
    pub mailbox_capacity: usize,
    /// How long a thread that is not a core loop waits for room in a full mailbox before the
    /// call fails with [`Error::MailboxFull`](crate::Error::MailboxFull). A core loop never
    /// waits: there the call fails at once. The time counts once per call, however many core
    /// loops it waits for. Defaults to 1 s.
    pub mailbox_timeout: Duration,
    /// How often each server's [`Stats`](crate::Stats) are logged (at info level); `None`
    /// disables it. Defaults to `None`.
    pub stats_interval: Option<Duration>,
    /// How long the frames of a message to many clients (everyone, a group, several ids or a
    /// flag's connections) may wait on a core loop so that the frames that follow share their
    /// write: see [`FanoutWindow`]. Defaults to [`FanoutWindow::Adaptive`] with a 10 ms
    /// ceiling; [`fanout_coalesce`](RuntimeConfig::fanout_coalesce) sets a fixed window.
    pub fanout_window: FanoutWindow,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            instance: 0,
            shutdown_timeout: Duration::from_secs(5),
            mailbox_batch: 1024,
            mailbox_capacity: 16 * 1024,
            mailbox_timeout: Duration::from_secs(1),
            stats_interval: None,
            fanout_window: FanoutWindow::default(),
        }
    }
}

impl RuntimeConfig {
    /// Sets [`workers`](RuntimeConfig::workers).
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets [`instance`](RuntimeConfig::instance).
    pub fn instance(mut self, instance: u16) -> Self {
        self.instance = instance;
        self
    }

    /// Sets [`shutdown_timeout`](RuntimeConfig::shutdown_timeout).
    pub fn shutdown_timeout(mut self, shutdown_timeout: Duration) -> Self {
        self.shutdown_timeout = shutdown_timeout;
        self
    }

    /// Sets [`mailbox_batch`](RuntimeConfig::mailbox_batch).
    pub fn mailbox_batch(mut self, mailbox_batch: usize) -> Self {
        self.mailbox_batch = mailbox_batch;
        self
    }

    /// Sets [`mailbox_capacity`](RuntimeConfig::mailbox_capacity).
    pub fn mailbox_capacity(mut self, mailbox_capacity: usize) -> Self {
        self.mailbox_capacity = mailbox_capacity;
        self
    }

    /// Sets [`mailbox_timeout`](RuntimeConfig::mailbox_timeout).
    pub fn mailbox_timeout(mut self, mailbox_timeout: Duration) -> Self {
        self.mailbox_timeout = mailbox_timeout;
        self
    }

    /// Sets [`stats_interval`](RuntimeConfig::stats_interval).
    pub fn stats_interval(mut self, stats_interval: Option<Duration>) -> Self {
        self.stats_interval = stats_interval;
        self
    }

    /// Sets [`fanout_window`](RuntimeConfig::fanout_window).
    pub fn fanout_window(mut self, fanout_window: FanoutWindow) -> Self {
        self.fanout_window = fanout_window;
        self
    }

    /// Sets a fixed fan-out window: [`fanout_window`](RuntimeConfig::fanout_window) becomes
    /// [`FanoutWindow::Fixed`]`(window)`. Zero writes every frame in the loop turn that queued
    /// it.
    pub fn fanout_coalesce(mut self, window: Duration) -> Self {
        self.fanout_window = FanoutWindow::Fixed(window);
        self
    }
}
