//! Updates: starting a tournament on the trainer thread, finishing it
//! (promotion or rejection), and training version 1.

use chrono::Utc;
use tokio::sync::oneshot;
use tracing::{debug, error, info, warn};

use super::state::{Daemon, HISTORY_LIMIT};
use super::{DaemonError, Pending, Probation, TriggerKind, UpdateSummary};
use crate::input_drift::InputProfile;
use crate::model::{self, Classifier, Dataset};
use crate::registry::{CandidateScore, DataSummary};
use crate::trigger::waits_for_backlog;
use crate::update::{self, StrategyName, Tournament, UpdateData, UpdateError};
use crate::update::{consume_trained, strategies_for, update_rows, UpdateRows};
use crate::update::{
    leaderboard_of, log_candidates, promote_version, train_first_version, MadeBy, Promotion,
};

/// Why an update the trainer ran has no leaderboard.
#[derive(Debug, thiserror::Error)]
pub(super) enum TournamentError {
    /// The tournament itself refused (too few holdout rows, the live
    /// model cannot be scored).
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The trainer's job ended without a result: it panicked (caught on
    /// the trainer thread, which keeps serving) or the thread is gone.
    #[error("the update panicked")]
    Panicked,
}

/// What the trainer sends back for an update.
pub(super) type TournamentResult = Result<(Tournament, InputProfile), TournamentError>;

/// The update the trainer is running.
pub(super) struct RunningUpdate {
    pub(super) kind: TriggerKind,
    /// Global row number one past the last row in the snapshot.
    pub(super) end_row: u64,
    /// Manifest sequence of the last file in the snapshot.
    pub(super) last_seq: u64,
    pub(super) started: std::time::Instant,
    pub(super) started_at: chrono::DateTime<Utc>,
    pub(super) result: oneshot::Receiver<TournamentResult>,
    /// Set to stop the trainer at its next batch (shutdown).
    pub(super) cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Daemon {
    pub(super) fn maybe_start_update(&mut self) {
        if self.running.is_some() {
            return;
        }
        let Some(pending) = self.pending else {
            return;
        };
        if self.live.is_none() {
            debug!("an update was requested before version 1 exists; it waits");
            return;
        }
        if self.backlog && waits_for_backlog(pending.kind) {
            debug!(
                trigger = pending.kind.as_str(),
                "the update waits until the files already in the directory are read"
            );
            return;
        }
        let Some((data, end_row)) = self.update_data(pending) else {
            return;
        };
        let strategies = strategies_for(&self.policy, self.excluded_strategy.take());
        if strategies.is_empty() {
            info!(
                event = "update_rejected",
                trigger = pending.kind.as_str(),
                "no candidate left for this update"
            );
            self.pending = None;
            self.status.update_pending = false;
            return;
        }
        self.start_tournament(pending, data, strategies, end_row);
    }

    /// The rows `pending` trains on (with the ensemble's lineage) and one
    /// past the last global row used; `None` while it must wait. A trigger
    /// other than drift that is short of rows is dropped.
    fn update_data(&mut self, pending: Pending) -> Option<(UpdateData, u64)> {
        let live = self.live.as_ref().expect("checked by maybe_start_update");
        let (new, old, end_row) = match update_rows(
            &self.policy,
            self.new_rows.as_ref(),
            self.reservoir.as_ref(),
            pending,
            self.rows_total,
            live.model.inputs(),
        ) {
            UpdateRows::Ready { new, old, end_row } => (new, old, end_row),
            UpdateRows::Short { have, needed } => {
                if pending.kind != TriggerKind::Drift {
                    info!(
                        event = "update_rejected",
                        trigger = pending.kind.as_str(),
                        new_rows = have,
                        "not enough new rows for an update ({have} of {needed} needed)"
                    );
                    self.pending = None;
                    self.status.update_pending = false;
                }
                return None;
            }
        };
        let lineage = crate::update::lineage_for(&self.policy, &self.registry, &live.meta);
        Some((UpdateData { old, new, lineage }, end_row))
    }

    /// Hands the tournament to the trainer thread; its result arrives in
    /// the event loop, which calls [`Daemon::finish_update`].
    fn start_tournament(
        &mut self,
        pending: Pending,
        data: UpdateData,
        strategies: Vec<StrategyName>,
        end_row: u64,
    ) {
        let live = self.live.as_ref().expect("checked by maybe_start_update");
        let policy = self.policy.clone();
        let live_version = live.meta.version;
        let seed = crate::update::tournament_seed(&self.policy, live_version);
        info!(
            event = "update_started",
            trigger = pending.kind.as_str(),
            new_rows = data.new.len(),
            old_rows = data.old.len(),
            strategies = ?strategies.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "update started ({} trigger): {} candidates on {} new and {} old rows",
            pending.kind.as_str(),
            strategies.len(),
            data.new.len(),
            data.old.len()
        );
        let live_model = live.model.clone();
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cancel.clone();
        let names = self.feature_names();
        let job = self.trainer.submit(move |_| {
            model::with_cancel(flag, || {
                let tournament =
                    update::run_tournament(&policy, &live_model, &data, &strategies, seed)?;
                // The new version is judged on the new rows: they are what
                // its inputs should look like.
                Ok((tournament, InputProfile::from_dataset(&data.new, &names)))
            })
        });
        match job {
            Ok(result) => {
                self.update_starts.push(tokio::time::Instant::now());
                self.running = Some(RunningUpdate {
                    kind: pending.kind,
                    end_row,
                    last_seq: self.ingestor.manifest.next_seq,
                    started: std::time::Instant::now(),
                    started_at: self.clock.now(),
                    result,
                    cancel,
                });
                self.pending = None;
                self.continual_from = Some(end_row);
                self.status.update_pending = false;
                self.status.update_running = true;
            }
            Err(e) => error!(error = %e, "cannot start the update"),
        }
    }

    pub(super) fn feature_names(&self) -> Vec<String> {
        self.ingestor
            .schema
            .as_ref()
            .map(|s| s.features.clone())
            .unwrap_or_default()
    }

    pub(super) async fn finish_update(&mut self, running: RunningUpdate, result: TournamentResult) {
        self.status.update_running = false;
        self.last_update_end = Some(tokio::time::Instant::now());
        let seconds = running.started.elapsed().as_secs_f64();
        self.status.last_update_seconds = Some(seconds);
        // `ended_at` below is clamped to `started_at`: the wall clock may
        // have gone back while the update ran, a duration never does.
        let (tournament, profile) = match result {
            Ok(t) => t,
            Err(reason) => {
                self.count_update("failed");
                warn!(event = "update_rejected", trigger = running.kind.as_str(), reason = %reason, "update failed: {reason}");
                self.push_update(UpdateSummary {
                    trigger: running.kind,
                    train_rows: 0,
                    old_rows: 0,
                    holdout_rows: 0,
                    live_accuracy: f64::NAN,
                    leaderboard: Vec::new(),
                    promoted: None,
                    decision: format!("failed: {reason}"),
                    started_at: Some(running.started_at),
                    ended_at: Some(self.clock.now().max(running.started_at)),
                });
                return;
            }
        };
        log_candidates(&tournament);
        let leaderboard = leaderboard_of(&tournament);
        let mut summary = UpdateSummary {
            trigger: running.kind,
            train_rows: tournament.train_rows,
            old_rows: tournament.old_rows,
            holdout_rows: tournament.holdout_rows,
            live_accuracy: tournament.live.accuracy,
            leaderboard: leaderboard.clone(),
            promoted: None,
            decision: tournament.decision.clone(),
            started_at: Some(running.started_at),
            ended_at: Some(self.clock.now().max(running.started_at)),
        };
        match tournament.winner {
            None => {
                self.count_update("rejected");
                info!(
                    event = "update_rejected",
                    trigger = running.kind.as_str(),
                    reason = %tournament.decision,
                    seconds,
                    "no candidate promoted: {}",
                    tournament.decision
                );
            }
            Some(i) => {
                summary.promoted = self
                    .promote_winner(&running, tournament, i, leaderboard, &profile)
                    .await;
            }
        }
        self.push_update(summary);
    }

    /// Promotes the tournament's winner; on probation after it when
    /// rollback is on. Returns the new version.
    async fn promote_winner(
        &mut self,
        running: &RunningUpdate,
        tournament: Tournament,
        winner: usize,
        leaderboard: Vec<CandidateScore>,
        profile: &InputProfile,
    ) -> Option<u64> {
        let c = &tournament.candidates[winner];
        let built = c.outcome.as_ref().expect("winner succeeded");
        // The version it replaces scores the probation's rows beside it.
        let before = self
            .live
            .as_ref()
            .map(|l| (l.meta.version, l.model.clone()));
        let strategy = c.strategy;
        let final_loss = built.report.as_ref().map(|r| r.final_loss);
        match self
            .promote(
                built.model.clone(),
                strategy,
                running.kind,
                built.scores,
                Some(tournament.live),
                built.report.clone(),
                leaderboard,
                tournament.promoted_train_rows(),
                tournament.holdout_rows,
                running.last_seq,
                Some(profile.clone()),
            )
            .await
        {
            Ok(version) => {
                self.count_update("promoted");
                self.status.last_train_loss = final_loss;
                if let (true, Some((previous, previous_model))) =
                    (self.policy.update.rollback.enabled, before)
                {
                    self.probation =
                        Some(Probation::new(version, previous, previous_model, strategy));
                }
                consume_trained(
                    &mut self.new_rows,
                    &mut self.reservoir,
                    &self.policy,
                    running.end_row,
                );
                Some(version)
            }
            Err(e) => {
                self.count_update("failed");
                error!(error = %e, "cannot write the new version; the live model stays");
                None
            }
        }
    }

    fn push_update(&mut self, summary: UpdateSummary) {
        self.status.updates.push(summary);
        if self.status.updates.len() > HISTORY_LIMIT {
            self.status.updates.remove(0);
        }
    }

    pub(super) async fn train_initial(&mut self, rows: Dataset) {
        let policy = self.policy.clone();
        let names = self.feature_names();
        let n = rows.len();
        info!(
            event = "update_started",
            trigger = "initial",
            new_rows = n,
            "training version 1 on the first {n} rows"
        );
        let result = self
            .trainer
            .run(move |_| {
                train_first_version(&policy, &rows).map(|(m, s, r, t, h)| {
                    let profile = InputProfile::from_dataset(&rows, &names);
                    (m, s, r, t, h, rows, profile)
                })
            })
            .await;
        match result {
            Ok(Ok((m, scores, report, train_rows, holdout_rows, rows, profile))) => {
                let report_loss = report.final_loss;
                let board = vec![CandidateScore {
                    strategy: "initial".into(),
                    scores: Some(scores),
                    train_seconds: report.seconds,
                    train_rows,
                    learning_rate: None,
                    lr_search: Vec::new(),
                    error: None,
                    promoted: true,
                }];
                match self
                    .promote(
                        Classifier::Single(m),
                        StrategyName::RefitAll,
                        TriggerKind::Manual,
                        scores,
                        None,
                        Some(report),
                        board,
                        train_rows,
                        holdout_rows,
                        self.ingestor.manifest.next_seq,
                        Some(profile),
                    )
                    .await
                {
                    Ok(_) => {
                        self.status.last_train_loss = Some(report_loss);
                        // The online challenger's window starts with
                        // version 1's rows, as in the backtest.
                        if let Some(learner) = &mut self.online {
                            learner.seed_window(&self.policy, &rows);
                        }
                        let w = rows.width;
                        self.reservoir_mut(w).add(&rows);
                    }
                    Err(e) => {
                        error!(error = %e, "cannot write version 1; retrying with the next file");
                        self.bootstrap = Some(rows);
                    }
                }
            }
            Ok(Err(e)) => {
                error!(error = %e, "training version 1 failed; retrying when more rows arrive");
            }
            Err(e) => error!(error = %e, "training version 1 failed"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn promote(
        &mut self,
        model: Classifier,
        strategy: StrategyName,
        trigger: TriggerKind,
        holdout: model::Scores,
        live_holdout: Option<model::Scores>,
        report: Option<model::TrainReport>,
        leaderboard: Vec<CandidateScore>,
        train_rows: usize,
        holdout_rows: usize,
        last_seq: u64,
        input_profile: Option<InputProfile>,
    ) -> Result<u64, DaemonError> {
        let parent = self.live.as_ref().map(|l| l.meta.version);
        let promotion = Promotion {
            made_by: match parent {
                Some(_) => MadeBy::Strategy(strategy),
                None => MadeBy::Initial,
            },
            trigger: if parent.is_some() {
                trigger.as_str().into()
            } else {
                "initial".into()
            },
            features: self.feature_names(),
            holdout,
            live_holdout,
            report,
            leaderboard,
            data: DataSummary {
                train_rows,
                holdout_rows,
                first_file: None,
                last_file: self.last_file.clone(),
                last_seq,
            },
            input_profile,
            files: None,
        };
        let _lock =
            crate::registry::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
        let meta = promote_version(&self.registry, &self.policy, parent, &model, promotion)?;
        let version = meta.version;
        self.install_live(meta, model).await;
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages the `update_rejected` event and the status's
    /// `failed: ...` decision carry.
    #[test]
    fn a_tournament_error_reads_as_before() {
        assert_eq!(TournamentError::Panicked.to_string(), "the update panicked");
        let short = UpdateError::NotEnoughHoldout {
            available: 3,
            required: 50,
        };
        let text = short.to_string();
        assert_eq!(TournamentError::from(short).to_string(), text);
    }
}
