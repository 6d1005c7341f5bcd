//! Ctrl-C and SIGTERM: one process-wide handler that stops every runtime and HTTP server that
//! asked for it (`run`).

use log::info;
use parking_lot::RwLock;

use crate::error::{Error, Result};

/// What Ctrl-C / SIGTERM stops: a runtime, or an HTTP server of the request-scoped mode.
pub(crate) trait SignalTarget: Send + Sync {
    /// Starts a graceful shutdown; returns at once.
    fn stop(&self);
    /// Whether shutdown has started (such targets are dropped from the list).
    fn is_stopping(&self) -> bool;
}

/// Everything that Ctrl-C / SIGTERM stop. `ctrlc` allows one handler per process.
static SIGNAL_TARGETS: RwLock<Vec<Box<dyn SignalTarget>>> = RwLock::new(Vec::new());
static SIGNAL_INSTALLED: std::sync::Once = std::sync::Once::new();

/// Adds `target` to what Ctrl-C / SIGTERM stop; the handler is installed on first use.
pub(crate) fn install_signal_handler(target: Box<dyn SignalTarget>) -> Result<()> {
    {
        let mut targets = SIGNAL_TARGETS.write();
        targets.retain(|t| !t.is_stopping());
        targets.push(target);
    }
    let mut outcome = Ok(());
    SIGNAL_INSTALLED.call_once(|| {
        outcome = ctrlc::set_handler(|| {
            info!("signal received: shutting down");
            for t in SIGNAL_TARGETS.read().iter() {
                t.stop();
            }
        })
        .map_err(|e| Error::Config(format!("cannot install the signal handler: {e}")));
    });
    outcome
}
