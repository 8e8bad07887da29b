//! One candidate: built, scored on the holdout, and (for fine-tuning
//! strategies with `update.fine_tune.lr_grid`) the best rate of the grid.

use std::sync::Arc;

use crate::config::{GraftData, Policy, StrategyName};
use crate::model::{self, Classifier, Dataset, Mlp, ModelError, Scores, TrainReport};

use super::evidence::RowResults;
use super::promotion::metric_value;
use super::sampling::sample_size;
use super::strategies::build_candidate;

/// One candidate's result.
#[derive(Debug)]
pub struct Candidate {
    pub strategy: StrategyName,
    pub outcome: Result<Built, CandidateError>,
    pub seconds: f64,
}

/// Why a candidate was dropped from the tournament. The model error is
/// shared: candidates built on one fresh model (`refit_new` and
/// `ensemble_new`, say) fail with the same training error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CandidateError {
    /// Building it (training, fine-tuning, grafting, the shared fresh
    /// model) failed; divergence included, which the model error names.
    #[error("{0}")]
    Training(#[source] Arc<ModelError>),
    /// Scoring it on the holdout failed; a non-finite score counts as
    /// divergence (see [`score_on`]).
    #[error("scoring the candidate on the holdout failed: {0}")]
    Scoring(#[source] Arc<ModelError>),
}

impl CandidateError {
    pub fn training(e: ModelError) -> Self {
        CandidateError::Training(Arc::new(e))
    }

    pub fn scoring(e: ModelError) -> Self {
        CandidateError::Scoring(Arc::new(e))
    }
}

/// A trained candidate and how it was made.
#[derive(Debug)]
pub struct Built {
    pub model: Classifier,
    pub scores: Scores,
    /// Each holdout row's result, for the paired comparison with the live
    /// model.
    pub per_row: RowResults,
    pub report: Option<TrainReport>,
    /// Rows it was trained on (after sampling).
    pub train_rows: usize,
    /// The fine-tuning rate used (the chosen one after a grid search).
    pub learning_rate: Option<f64>,
    /// Every rate tried and its holdout score, when a grid was searched.
    pub lr_search: Vec<(f64, Scores)>,
}

impl Candidate {
    pub fn scores(&self) -> Option<Scores> {
        self.outcome.as_ref().ok().map(|b| b.scores)
    }
}

/// Rows a strategy trains on before sampling (for the leaderboard).
pub(super) fn rows_for(strategy: StrategyName, policy: &Policy, old: usize, new: usize) -> usize {
    match strategy {
        StrategyName::None => 0,
        StrategyName::ContinueNew | StrategyName::RefitNew | StrategyName::EnsembleNew => new,
        StrategyName::Graft if policy.update.graft.data == GraftData::New => new,
        _ => old + new,
    }
}

/// Scores `model` on `holdout`, overall and row by row; a non-finite score
/// counts as divergence.
pub fn score_on(model: &Classifier, holdout: &Dataset) -> Result<(Scores, RowResults), ModelError> {
    let probs = model.predict_proba(holdout)?;
    let s = model::score(&probs, &holdout.labels, model.classes());
    if !(s.log_loss.is_finite() && s.accuracy.is_finite()) {
        return Err(ModelError::Diverged {
            epoch: 0,
            loss: s.log_loss,
        });
    }
    Ok((s, RowResults::of(&probs, &holdout.labels, model.classes())))
}

/// Builds and scores one strategy, searching the fine-tuning rate grid when
/// configured and `search_lr`. `fresh` as for [`build_candidate`].
#[allow(clippy::too_many_arguments)]
pub fn run_candidate(
    strategy: StrategyName,
    policy: &Policy,
    live: &Classifier,
    lineage: &[Mlp],
    old: &Dataset,
    new_train: &Dataset,
    holdout: &Dataset,
    seed: u64,
    search_lr: bool,
    fresh: Option<&(Mlp, TrainReport)>,
) -> Result<Built, CandidateError> {
    let grid = &policy.update.fine_tune.lr_grid;
    let rates: Vec<f64> = if search_lr && strategy.is_fine_tuning() && !grid.is_empty() {
        grid.clone()
    } else {
        vec![policy.update.fine_tune.learning_rate]
    };
    let mut best: Option<Built> = None;
    let mut tried = Vec::new();
    let mut last_err = None;
    for lr in rates {
        match build_candidate(
            strategy, policy, live, lineage, old, new_train, lr, seed, fresh,
        )
        .map_err(CandidateError::training)
        .and_then(|(m, r)| {
            score_on(&m, holdout)
                .map(|(s, rows)| (m, s, rows, r))
                .map_err(CandidateError::scoring)
        }) {
            Ok((model, scores, per_row, report)) => {
                tried.push((lr, scores));
                let better = best.as_ref().is_none_or(|b| {
                    metric_value(&scores, policy.update.metric)
                        > metric_value(&b.scores, policy.update.metric)
                });
                if better {
                    best = Some(Built {
                        model,
                        scores,
                        per_row,
                        report,
                        train_rows: sample_size(
                            policy,
                            rows_for(strategy, policy, old.len(), new_train.len()),
                        ),
                        learning_rate: strategy.is_fine_tuning().then_some(lr),
                        lr_search: Vec::new(),
                    });
                }
            }
            Err(e) => last_err = Some(e),
        }
    }
    match best {
        Some(mut b) => {
            if tried.len() > 1 {
                b.lr_search = tried;
            }
            Ok(b)
        }
        None => Err(last_err.expect("at least one rate was tried")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::split_holdout;
    use crate::update::test_fixtures::{live, policy, rows};

    /// A failed training reads as the model error did; a failed scoring
    /// says it was the scoring.
    #[test]
    fn a_candidate_error_says_what_failed() {
        let diverged = || ModelError::Diverged {
            epoch: 3,
            loss: f64::NAN,
        };
        assert_eq!(
            CandidateError::training(diverged()).to_string(),
            "training diverged at epoch 3: loss is NaN"
        );
        assert_eq!(
            CandidateError::scoring(diverged()).to_string(),
            "scoring the candidate on the holdout failed: training diverged at epoch 3: loss is NaN"
        );
        let e = CandidateError::training(ModelError::NoRows);
        let source = std::error::Error::source(&e).expect("the model error is the source");
        assert_eq!(source.to_string(), "no rows to train on");
    }

    #[test]
    fn lr_search_keeps_the_best_rate_and_records_all() {
        let mut p = policy();
        p.update.fine_tune.lr_grid = vec![0.0001, 0.001, 0.01];
        let data = rows(600, 8);
        let live = live(&p, &data.slice(0, 300));
        let (train, hold) = split_holdout(&data.slice(300, 600), 0.2);
        let b = run_candidate(
            StrategyName::ContinueNew,
            &p,
            &live,
            &[],
            &Dataset::new(20),
            &train,
            &hold,
            1,
            true,
            None,
        )
        .unwrap();
        assert_eq!(b.lr_search.len(), 3);
        let best = b
            .lr_search
            .iter()
            .map(|(_, s)| s.accuracy)
            .fold(f64::MIN, f64::max);
        assert_eq!(b.scores.accuracy, best);
        assert!(p
            .update
            .fine_tune
            .lr_grid
            .contains(&b.learning_rate.unwrap()));
    }
}
