//! The online challenger in the replay: the daemon's per-batch step (score,
//! learn, verdict) on the simulated clock.

use super::replay::Replay;
use super::report::RollbackRecord;
use super::BacktestError;
use crate::model::{Classifier, Dataset};
use crate::monitor::RowOutcome;
use crate::registry::VersionMeta;
use crate::update::{self, Anchor, OnlineLearner, OnlinePromotion, Verdict};

impl Replay<'_> {
    /// After the live model scored `data` (`outcomes`): the challenger
    /// scores and learns it, and its verdict is carried out. Held while a
    /// probation is open (the daemon also holds while an update runs; here
    /// updates run between files).
    pub(super) fn online_step(
        &mut self,
        data: &Dataset,
        outcomes: &[RowOutcome],
    ) -> Result<(), BacktestError> {
        let Some(mut learner) = self.online.take() else {
            return Ok(());
        };
        let parts = update::online::batch_parts(&self.policy, data, outcomes);
        let stepped = learner
            .observe(&parts.compared, &parts.live)
            .and_then(|()| learner.learn(&self.policy, &parts.newest));
        if let Err(e) = stepped {
            tracing::warn!(error = %e, row = self.rows_total, "the online challenger failed a step; it starts over from the live version");
            let recent = learner.window().clone();
            self.fork_online(Some(&recent));
            return Ok(());
        }
        match learner.verdict(&self.policy, self.probation.is_some()) {
            Verdict::Wait => self.online = Some(learner),
            Verdict::Promote(p) => self.promote_online(learner, &p)?,
            Verdict::RollBack {
                to,
                scores,
                anchor_scores,
                reason,
                ..
            } => {
                let (meta, _) = self.live.as_ref().expect("a version is live");
                self.report.rollbacks.push(RollbackRecord {
                    row: self.rows_total,
                    from_version: meta.version,
                    to_version: to,
                    accuracy: scores.accuracy,
                    previous_accuracy: anchor_scores.accuracy,
                });
                let (meta, model) = self.registry.load_model(to)?;
                self.registry.set_live(to, "rollback", &reason)?;
                self.online = Some(learner);
                self.install(meta, model);
            }
        }
        Ok(())
    }

    /// Writes the challenger as the next version and makes it live; the
    /// monitors go on (the same process, one batch further).
    fn promote_online(
        &mut self,
        mut learner: OnlineLearner,
        p: &OnlinePromotion,
    ) -> Result<(), BacktestError> {
        let (meta, live) = self.live.as_ref().expect("a version is live");
        let parent = meta.version;
        let promotion = learner.promotion(
            p,
            parent,
            &self.features,
            self.files_since_live.clone(),
            self.file_seq,
        );
        let model = learner.challenger().clone();
        let new_meta = update::promote_version(
            &self.registry,
            &self.policy,
            Some(parent),
            &model,
            promotion,
        )?;
        learner.promoted(p.first.then(|| Anchor {
            version: parent,
            model: live.clone(),
        }));
        self.report.online_promotions += 1;
        self.online = Some(learner);
        self.install_online(new_meta, model);
        Ok(())
    }

    /// The online version goes live without new monitors: a run of online
    /// versions is one stretch in the report.
    fn install_online(&mut self, meta: VersionMeta, model: Classifier) {
        match &mut self.stretch {
            Some((_, strategy, _, later)) if strategy == update::ONLINE_STRATEGY => *later += 1,
            _ => {
                self.close_stretch();
                self.stretch = Some((meta.version, meta.strategy.clone(), self.rows_total, 0));
            }
        }
        self.monitor.set_version(meta.version);
        self.files_since_live.clear();
        self.live = Some((meta, model));
    }
}
