//! Publishing the status: the watch channel at every change, status.json at
//! a bounded rate.

use std::time::Duration;

use chrono::Utc;
use tracing::error;

use super::state::Daemon;

/// How often status.json may be rewritten.
const STATUS_WRITE_EVERY: Duration = Duration::from_millis(200);

impl Daemon {
    /// Publishes the status when it changed: an idle poll writes nothing
    /// (status.json is fsynced, and the poll may run many times a second).
    /// The watch channel (metrics, tests) gets every change at once; the
    /// file is rewritten at most every [`STATUS_WRITE_EVERY`] (its trace
    /// holds up to [`TRACE_LIMIT`] points), and the next poll after that
    /// writes what is left, so it is never more than a poll interval late.
    pub(super) fn publish(&mut self) {
        self.status.rolling_accuracy = self.monitor.rolling_accuracy();
        let changed = {
            let last = self.status_tx.borrow();
            self.status.updated_at = last.updated_at;
            *last != self.status || last.pid == 0
        };
        if changed {
            self.status.updated_at = Some(Utc::now());
            // The watch first: whoever reads status.json then finds the
            // metrics endpoint at least as new.
            self.status_tx.send_replace(self.status.clone());
            self.status_file_stale = true;
        }
        let due = self
            .status_written
            .is_none_or(|t| t.elapsed() >= STATUS_WRITE_EVERY);
        if !self.status_file_stale || !(due || self.status.stopped) {
            return;
        }
        self.status_written = Some(std::time::Instant::now());
        let path = self.policy.state.dir.join("status.json");
        if let Ok(json) = serde_json::to_vec(&self.status) {
            match crate::fsutil::write_atomic(&path, &json) {
                Err(e) if !self.status_write_failing => {
                    // Once per outage (a full or read-only state directory).
                    error!(path = %path.display(), error = %e, "cannot write {}: {e}; `driftd status` shows an older state until it can", path.display());
                    self.status_write_failing = true;
                }
                Err(_) => {}
                Ok(()) => {
                    self.status_write_failing = false;
                    self.status_file_stale = false;
                }
            }
        }
    }
}
