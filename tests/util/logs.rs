//! A logger that keeps corepush's log lines in memory, so a test can assert that a
//! protection which acted also said so.

use std::sync::Once;

use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;

/// The most lines kept; later ones are dropped (a runaway log must not eat the test's memory).
const MAX_LINES: usize = 100_000;

static LINES: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("corepush")
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut lines = LINES.lock();
            if lines.len() < MAX_LINES {
                lines.push((record.level(), record.args().to_string()));
            }
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

/// Installs the capturing logger (once per test binary) at every level.
pub fn capture_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this test binary");
        log::set_max_level(LevelFilter::Trace);
    });
}

/// The captured lines that contain every one of `parts`, at `level` or more severe.
pub fn log_lines(level: Level, parts: &[&str]) -> Vec<String> {
    LINES
        .lock()
        .iter()
        .filter(|(l, line)| *l <= level && parts.iter().all(|p| line.contains(p)))
        .map(|(_, line)| line.clone())
        .collect()
}

/// Asserts that a line containing every one of `parts` was logged at `level` or above.
pub fn assert_logged(level: Level, parts: &[&str]) {
    assert!(
        !log_lines(level, parts).is_empty(),
        "no {level} line containing {parts:?}"
    );
}
