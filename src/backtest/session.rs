//! One history, loaded once and replayed under as many policies as asked
//! (`driftd tune`): the same replay as the backtest's runs, each in its own
//! registry, with version 1 trained once per distinct version-1 setting and
//! shared.

use std::path::PathBuf;

use super::history::{load_history, time_of, HistoryFile};
use super::initial::{train_initial, Initial};
use super::replay::replay;
use super::report::{DataReport, QuarantinedFile, RunReport};
use super::runs::replay_setup;
use super::{BacktestError, Options, ReplayTime, Run};
use crate::config::Policy;
use crate::progress::Progress;

/// A history read with the daemon's scan and reader, ready to be replayed.
pub struct Session {
    /// Holds the runs' registries until the session is dropped.
    work: tempfile::TempDir,
    /// The base policy with the backtest's data and state settings.
    policy: Policy,
    history: Vec<HistoryFile>,
    quarantined: Vec<QuarantinedFile>,
    features: Vec<String>,
    clock: ReplayTime,
    /// Version 1 per distinct [`version_one_inputs`].
    initials: Vec<(Policy, Initial)>,
    replays: usize,
}

impl Session {
    /// Reads the directory (as `backtest` does) and trains version 1 with
    /// `policy`.
    pub fn open(policy: &Policy, options: &Options) -> Result<Session, BacktestError> {
        let work = tempfile::Builder::new()
            .prefix("driftd-tune-")
            .tempdir()
            .map_err(BacktestError::Temp)?;
        let (policy, clock) = replay_setup(policy, options, work.path())?;
        let loaded = load_history(&policy, clock).map_err(|e| match e {
            BacktestError::Ingest(e) => BacktestError::Data {
                path: options.data_dir.clone(),
                reason: e.to_string(),
            },
            e => e,
        })?;
        let rows: usize = loaded.files.iter().map(|f| f.data.len()).sum();
        if loaded.files.is_empty() {
            return Err(BacktestError::NoRows(options.data_dir.clone()));
        }
        if rows <= policy.data.initial_rows {
            return Err(BacktestError::TooFewRows {
                dir: options.data_dir.clone(),
                rows,
                initial: policy.data.initial_rows,
            });
        }
        let initial = train_initial(&policy, &loaded.files)?;
        Ok(Session {
            work,
            initials: vec![(version_one_inputs(&policy), initial)],
            policy,
            history: loaded.files,
            quarantined: loaded.quarantined,
            features: loaded.features,
            clock,
            replays: 0,
        })
    }

    /// Rows of the history.
    pub fn rows(&self) -> usize {
        self.history.iter().map(|f| f.data.len()).sum()
    }

    /// Rows version 1 is trained on (whole files), never scored.
    pub fn bootstrap_rows(&self) -> usize {
        self.initials[0].1.rows.len()
    }

    /// What was replayed (as in the backtest's report); `data.dir` is the
    /// history's directory.
    pub fn data_report(&self) -> DataReport {
        let times = self
            .history
            .iter()
            .flat_map(|f| f.data.times_us.iter().copied());
        let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        let initial = &self.initials[0].1;
        DataReport {
            dir: self.policy.data.dir.clone(),
            files: self.history.len(),
            rows: self.rows(),
            quarantined: self.quarantined.clone(),
            clock: self.clock,
            clock_description: self.clock.describe(&self.policy),
            first_time: time_of(lo),
            last_time: time_of(hi),
            bootstrap_rows: initial.rows.len(),
            initial_training_seconds: initial.report.seconds,
        }
    }

    /// One replay of the whole history under `policy` (its `[data]` and
    /// `[state]` are the session's): `run` is [`Run::Policy`] (the policy as
    /// the daemon runs it) or a baseline. Version 1 is the shared one when
    /// `policy` trains it the same way, else trained again (and kept).
    pub fn replay(
        &mut self,
        policy: &Policy,
        run: Run,
        progress: &mut Progress,
    ) -> Result<RunReport, BacktestError> {
        let mut policy = policy.clone();
        policy.data = self.policy.data.clone();
        policy.state = self.policy.state.clone();
        let key = version_one_inputs(&policy);
        let at = match self.initials.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let initial = train_initial(&policy, &self.history)?;
                self.initials.push((key, initial));
                self.initials.len() - 1
            }
        };
        self.replays += 1;
        let work: PathBuf = self.work.path().join(format!("replay-{}", self.replays));
        crate::fsutil::create_private_dir(&work).map_err(BacktestError::Temp)?;
        let report = replay(
            &policy,
            run,
            &self.history,
            &self.initials[at].1,
            &self.features,
            &work,
            progress,
        );
        // Each replay's registry is only needed while it runs.
        let _ = std::fs::remove_dir_all(&work);
        report
    }
}

/// What version 1 depends on (`update::train_first_version`: the rows,
/// the model, the training settings, the holdout share and the sampling and
/// weighting of training rows); two policies that agree on these train the
/// same version 1.
fn version_one_inputs(policy: &Policy) -> Policy {
    let mut key = Policy {
        data: policy.data.clone(),
        model: policy.model.clone(),
        training: policy.training.clone(),
        ..Policy::default()
    };
    key.update.holdout_fraction = policy.update.holdout_fraction;
    key.update.sample = policy.update.sample.clone();
    key.update.weighting = policy.update.weighting.clone();
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_is_shared_unless_its_training_changes() {
        let base = Policy::default();
        let mut monitor = base.clone();
        monitor.update.min_new_rows += 1;
        monitor.monitor.window += 1;
        assert!(version_one_inputs(&base) == version_one_inputs(&monitor));
        let mut training = base.clone();
        training.training.epochs += 1;
        assert!(version_one_inputs(&base) != version_one_inputs(&training));
        let mut holdout = base.clone();
        holdout.update.holdout_fraction = 0.3;
        assert!(version_one_inputs(&base) != version_one_inputs(&holdout));
    }
}
