//! Probation and rollback: a promoted version's first rows decide whether it
//! stays or the daemon rolls back to the previous version.

use tracing::{error, info, warn};

use super::state::Daemon;
use super::{DaemonError, Probation};
use crate::model::{Classifier, Dataset};
use crate::monitor::RowOutcome;
use crate::update::{
    outcomes_of, probation_count, probation_holds, rollback_reason, PairedDifference,
};

impl Daemon {
    /// Counts the new version's first rows, scored by it (`outcomes`) and
    /// by the version it replaced (scored here, on the same rows); once
    /// `watch_rows` are in, keeps it or rolls back to the previous version.
    pub(super) async fn judge_probation(&mut self, data: &Dataset, outcomes: &[RowOutcome]) {
        let Some(p) = &self.probation else {
            return;
        };
        if self.status.live_version != Some(p.version) {
            // Someone else changed the live version: nothing to judge.
            self.probation = None;
            return;
        }
        let watch = self.policy.update.rollback.watch_rows;
        let take = p.watched(outcomes.len(), watch);
        let (previous_version, previous_model) = (p.previous, p.previous_model.clone());
        let previous = match self.score_previous(previous_model, data, take).await {
            Ok(previous) => previous,
            Err(e) => {
                error!(version = previous_version, error = %e, "cannot score the previous version for the probation; the new version stays without it");
                self.probation = None;
                return;
            }
        };
        let p = self.probation.as_mut().expect("checked");
        let Some(difference) = probation_count(p, &outcomes[..take], &previous, watch) else {
            return;
        };
        let p = self.probation.take().expect("checked");
        let (margin, confidence) = (
            self.policy.update.rollback.margin,
            self.policy.update.confidence,
        );
        if probation_holds(&difference, margin, confidence) {
            info!(
                event = "promotion_confirmed",
                version = p.version,
                accuracy = p.accuracy(),
                previous_accuracy = p.previous_accuracy(),
                "version {} scored {:.3} on its first {} rows, version {} {:.3} on the same rows: it stays",
                p.version,
                p.accuracy(),
                p.rows,
                p.previous,
                p.previous_accuracy()
            );
            return;
        }
        self.roll_back(p, difference).await;
    }

    /// The previous version's outcomes on the first `take` rows of `data`,
    /// scored on the scorer thread (the trainer may be busy with an update
    /// for minutes; the scorer's jobs are short).
    async fn score_previous(
        &mut self,
        model: Classifier,
        data: &Dataset,
        take: usize,
    ) -> Result<Vec<RowOutcome>, String> {
        if take == 0 {
            return Ok(Vec::new());
        }
        let rows = data.slice(0, take);
        let classes = model.classes();
        let probs = self
            .scorer
            .run(move |_live| model.predict_proba(&rows).map(|probs| (probs, rows)))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        Ok(outcomes_of(&probs.1, &probs.0, classes))
    }

    async fn roll_back(&mut self, p: Probation, difference: PairedDifference) {
        let margin = self.policy.update.rollback.margin;
        let reason = rollback_reason(&p, &difference, margin);
        let (accuracy, previous_accuracy) = (p.accuracy(), p.previous_accuracy());
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
                    previous_accuracy,
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
