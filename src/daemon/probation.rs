//! Probation and rollback: a promoted version's first rows decide whether it
//! stays or the daemon rolls back to the previous version.

use tracing::{error, info, warn};

use super::state::Daemon;
use super::{DaemonError, Probation};
use crate::monitor::RowOutcome;
use crate::update::{probation_count, probation_holds};

impl Daemon {
    /// Counts the new version's first rows; once `watch_rows` are in, keeps
    /// it or rolls back to the previous version.
    pub(super) async fn judge_probation(&mut self, outcomes: &[RowOutcome]) {
        let Some(p) = &mut self.probation else {
            return;
        };
        if self.status.live_version != Some(p.version) {
            // Someone else changed the live version: nothing to judge.
            self.probation = None;
            return;
        }
        let Some(accuracy) = probation_count(p, outcomes, self.policy.update.rollback.watch_rows)
        else {
            return;
        };
        let p = self.probation.take().expect("checked");
        if probation_holds(&p, accuracy, self.policy.update.rollback.margin) {
            info!(
                event = "promotion_confirmed",
                version = p.version,
                accuracy,
                previous_accuracy = p.previous_accuracy,
                "version {} scored {accuracy:.3} on its first {} rows (version {} scored {:.3} before it): it stays",
                p.version,
                p.rows,
                p.previous,
                p.previous_accuracy
            );
            return;
        }
        self.roll_back(p, accuracy).await;
    }

    async fn roll_back(&mut self, p: Probation, accuracy: f64) {
        let margin = self.policy.update.rollback.margin;
        let reason = format!(
            "version {} scored {accuracy:.3} on its first {} rows, {:.3} below version {}'s {:.3} before the promotion (margin {margin})",
            p.version,
            p.rows,
            p.previous_accuracy - accuracy,
            p.previous,
            p.previous_accuracy
        );
        let result = (|| {
            let _lock =
                crate::registry::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
            let loaded = self.registry.load_model(p.previous)?;
            self.registry.set_live(p.previous, "rollback", &reason)?;
            Ok::<_, DaemonError>(loaded)
        })();
        match result {
            Ok((meta, model)) => {
                warn!(
                    event = "rollback",
                    version = p.previous,
                    from_version = p.version,
                    strategy = p.strategy.as_str(),
                    accuracy,
                    previous_accuracy = p.previous_accuracy,
                    margin,
                    rows = p.rows,
                    "rolled back to version {}: {reason}; {} is left out of the next update",
                    p.previous,
                    p.strategy.as_str()
                );
                self.install_live(meta, model).await;
                self.excluded_strategy = Some(p.strategy);
                self.status.rollbacks += 1;
            }
            Err(e) => error!(
                version = p.previous,
                error = %e,
                "version {} should be rolled back ({reason}) but cannot be: it stays live",
                p.version
            ),
        }
    }
}
