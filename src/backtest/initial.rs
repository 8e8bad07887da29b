//! Version 1: trained once on the first `data.initial_rows` rows (whole
//! files) and shared by the three runs; each run promotes it into its own
//! registry, as the daemon's first start does.

use super::history::HistoryFile;
use super::replay::Replay;
use super::BacktestError;
use crate::config::Policy;
use crate::input_drift::InputProfile;
use crate::model::{self, Classifier, Dataset, Mlp};
use crate::registry::{CandidateScore, DataSummary, TrainedFile, TrainedFiles};
use crate::update::{self, MadeBy, Promotion};

/// Version 1, trained once on the first `data.initial_rows` rows (whole
/// files) and shared by every run.
pub(super) struct Initial {
    pub(super) model: Mlp,
    pub(super) scores: model::Scores,
    pub(super) report: model::TrainReport,
    pub(super) train_rows: usize,
    pub(super) holdout_rows: usize,
    /// Files (a prefix of the history) and rows it consumed.
    pub(super) files: usize,
    pub(super) rows: Dataset,
}

pub(super) fn train_initial(
    policy: &Policy,
    history: &[HistoryFile],
) -> Result<Initial, BacktestError> {
    let mut rows = Dataset::new(history[0].data.width);
    let mut files = 0;
    for f in history {
        rows.extend(&f.data);
        files += 1;
        if rows.len() >= policy.data.initial_rows {
            break;
        }
    }
    let (model, scores, report, train_rows, holdout_rows) =
        update::train_first_version(policy, &rows)?;
    Ok(Initial {
        model,
        scores,
        report,
        train_rows,
        holdout_rows,
        files,
        rows,
    })
}

impl Replay<'_> {
    /// Promotes version 1 into this run's registry and makes it live; its
    /// training rows are not scored and seed the reservoir.
    pub(super) fn start_with(
        &mut self,
        history: &[HistoryFile],
        initial: &Initial,
    ) -> Result<(), BacktestError> {
        let first_files = &history[..initial.files];
        for f in first_files {
            self.file_seq += 1;
            self.files_since_live.push(TrainedFile {
                seq: self.file_seq,
                name: f.name.clone(),
                rows: f.data.len(),
            });
        }
        let board = vec![CandidateScore {
            strategy: "initial".into(),
            scores: Some(initial.scores),
            train_seconds: initial.report.seconds,
            train_rows: initial.train_rows,
            learning_rate: None,
            lr_search: Vec::new(),
            error: None,
            promoted: true,
        }];
        let model = Classifier::Single(initial.model.clone());
        let meta = update::promote_version(
            &self.registry,
            &self.policy,
            None,
            &model,
            Promotion {
                made_by: MadeBy::Initial,
                trigger: "initial".into(),
                features: self.features.clone(),
                holdout: initial.scores,
                live_holdout: None,
                report: Some(initial.report.clone()),
                leaderboard: board,
                data: DataSummary {
                    train_rows: initial.train_rows,
                    holdout_rows: initial.holdout_rows,
                    first_file: first_files.first().map(|f| f.name.clone()),
                    last_file: first_files.last().map(|f| f.name.clone()),
                    last_seq: self.file_seq,
                },
                input_profile: Some(InputProfile::from_dataset(&initial.rows, &self.features)),
                files: Some(TrainedFiles::new(self.files_since_live.clone())),
            },
        )?;
        let bootstrap = initial.rows.len();
        self.report.outcomes = vec![2; bootstrap];
        self.rows_total = bootstrap as u64;
        update::reservoir_of(&mut self.reservoir, &self.policy, initial.rows.width)
            .add(&initial.rows);
        self.install(meta, model);
        // The online challenger's window starts with version 1's rows.
        if let Some(learner) = &mut self.online {
            learner.seed_window(&self.policy, &initial.rows);
        }
        self.progress.inc(bootstrap as u64);
        Ok(())
    }
}
