//! An update in the replay: the daemon's `maybe_start_update` and
//! `finish_update` back to back, the tournament running at the simulated
//! moment it starts, and the promotion of its winner.

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::replay::Replay;
use super::report::UpdateRecord;
use super::BacktestError;
use crate::input_drift::InputProfile;
use crate::registry::{DataSummary, TrainedFiles};
use crate::status::TriggerKind;
use crate::trigger::Pending;
use crate::update::{self, MadeBy, Probation, Promotion, UpdateRows};

impl Replay<'_> {
    /// The daemon's `maybe_start_update` and `finish_update`, back to back:
    /// the tournament runs at simulated time `now`.
    pub(super) fn maybe_update(&mut self, now: DateTime<Utc>) -> Result<(), BacktestError> {
        let Some(pending) = self.pending else {
            return Ok(());
        };
        let (meta, live) = self.live.as_ref().expect("version 1 is live");
        let (new, old, end_row) = match update::update_rows(
            &self.policy,
            self.new_rows.as_ref(),
            self.reservoir.as_ref(),
            pending,
            self.rows_total,
            live.inputs(),
        ) {
            UpdateRows::Ready { new, old, end_row } => (new, old, end_row),
            UpdateRows::Short { have, needed } => {
                if pending.kind != TriggerKind::Drift {
                    self.pending = None;
                    self.report.updates.push(short_record(
                        self.rows_total,
                        now,
                        pending,
                        have,
                        needed,
                    ));
                }
                return Ok(());
            }
        };
        self.pending = None;
        self.continual_from = Some(end_row);
        let strategies = update::strategies_for(&self.policy, self.excluded_strategy.take());
        if strategies.is_empty() {
            return Ok(());
        }
        let lineage = update::lineage_for(&self.policy, &self.registry, meta);
        let data = update::UpdateData { old, new, lineage };
        let live_version = meta.version;
        let seed = update::tournament_seed(&self.policy, live_version);
        self.update_starts.push(now);
        self.progress.set_message(&format!(
            "{}: training at row {}",
            self.run.title(),
            self.rows_total
        ));
        let started = Instant::now();
        let result = update::run_tournament(&self.policy, live, &data, &strategies, seed);
        let seconds = started.elapsed().as_secs_f64();
        self.progress.set_message(self.run.title());
        self.report.training_seconds += seconds;
        self.last_update_end = Some(now);
        let mut record = UpdateRecord {
            row: self.rows_total,
            time: Some(now),
            trigger: pending.kind,
            new_rows: data.new.len(),
            old_rows: data.old.len(),
            holdout_rows: 0,
            live_accuracy: None,
            candidates: Vec::new(),
            winner: None,
            promoted_version: None,
            decision: String::new(),
            training_seconds: seconds,
        };
        let tournament = match result {
            Ok(t) => t,
            Err(e) => {
                record.decision = format!("failed: {e}");
                self.report.updates.push(record);
                return Ok(());
            }
        };
        record.holdout_rows = tournament.holdout_rows;
        record.live_accuracy = Some(tournament.live.accuracy);
        record.candidates = update::leaderboard_of(&tournament);
        record.decision = tournament.decision.clone();
        if let Some(i) = tournament.winner {
            self.promote_winner(&tournament, i, &data, live_version, end_row, &mut record)?;
        }
        self.report.updates.push(record);
        Ok(())
    }

    /// Promotes the tournament's winner, puts it on probation and makes it
    /// live; the rows it trained on leave the buffers.
    fn promote_winner(
        &mut self,
        tournament: &update::Tournament,
        i: usize,
        data: &update::UpdateData,
        live_version: u64,
        end_row: u64,
        record: &mut UpdateRecord,
    ) -> Result<(), BacktestError> {
        let c = &tournament.candidates[i];
        let built = c.outcome.as_ref().expect("winner succeeded");
        let previous_model = self.live.as_ref().map(|(_, m)| m.clone());
        let promotion = Promotion {
            made_by: MadeBy::Strategy(c.strategy),
            trigger: record.trigger.as_str().into(),
            features: self.features.clone(),
            holdout: built.scores,
            live_holdout: Some(tournament.live),
            report: built.report.clone(),
            leaderboard: record.candidates.clone(),
            data: DataSummary {
                train_rows: tournament.promoted_train_rows(),
                holdout_rows: tournament.holdout_rows,
                first_file: self.files_since_live.first().map(|f| f.name.clone()),
                last_file: self.files_since_live.last().map(|f| f.name.clone()),
                last_seq: self.file_seq,
            },
            input_profile: Some(InputProfile::from_dataset(&data.new, &self.features)),
            files: Some(TrainedFiles::new(self.files_since_live.clone())),
        };
        let new_meta = update::promote_version(
            &self.registry,
            &self.policy,
            Some(live_version),
            &built.model,
            promotion,
        )?;
        let version = new_meta.version;
        record.winner = Some(c.strategy.to_string());
        record.promoted_version = Some(version);
        if let (true, Some(previous_model)) = (self.policy.update.rollback.enabled, previous_model)
        {
            self.probation = Some(Probation::new(
                version,
                live_version,
                previous_model,
                c.strategy,
            ));
        }
        let model = built.model.clone();
        self.install(new_meta, model);
        update::consume_trained(
            &mut self.new_rows,
            &mut self.reservoir,
            &self.policy,
            end_row,
        );
        Ok(())
    }
}

/// An update that did not run: too few new rows since the live version.
fn short_record(
    row: u64,
    now: DateTime<Utc>,
    pending: Pending,
    have: usize,
    needed: usize,
) -> UpdateRecord {
    UpdateRecord {
        row,
        time: Some(now),
        trigger: pending.kind,
        new_rows: have,
        old_rows: 0,
        holdout_rows: 0,
        live_accuracy: None,
        candidates: Vec::new(),
        winner: None,
        promoted_version: None,
        decision: format!("not enough new rows for an update ({have} of {needed} needed)"),
        training_seconds: 0.0,
    }
}
