//! The tournament: the holdout split, every candidate and the live model
//! scored on it, and the winner by the promotion rule.

use crate::config::{Metric, Policy, StrategyName};
use crate::model::{Classifier, Dataset, Mlp, ModelError, Scores};

use super::candidate::{score_on, Candidate};
use super::evidence::RowResults;
use super::holdout::split_holdout;
use super::jobs::run_candidates;
use super::promotion::{pick_winner, Champion, PromotionRule};

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("only {available} holdout rows available, at least {required} needed (update.min_holdout_rows)")]
    NotEnoughHoldout { available: usize, required: usize },
    #[error("scoring the live model failed: {0}")]
    Live(#[source] ModelError),
}

/// Rows handed to an update.
#[derive(Debug, Clone)]
pub struct UpdateData {
    /// Bounded sample of rows earlier versions were trained on.
    pub old: Dataset,
    /// Rows since the live version, oldest first.
    pub new: Dataset,
    /// For `update.ensemble.members = "last_versions"`: the newest member
    /// of the live version's ancestors, oldest first (empty otherwise).
    pub lineage: Vec<Mlp>,
}

/// The leaderboard of one update.
#[derive(Debug)]
pub struct Tournament {
    pub train_rows: usize,
    pub old_rows: usize,
    pub holdout_rows: usize,
    pub metric: Metric,
    pub live: Scores,
    /// The live model's result on each holdout row.
    pub live_per_row: RowResults,
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the promoted one.
    pub winner: Option<usize>,
    /// Why the winner won, or why nothing did.
    pub decision: String,
}

/// Trains every strategy, scores each and the live model on the same
/// holdout, and picks the winner by the promotion rule (see
/// `promotion.rs`): paired with the live model on the holdout rows, it
/// beats it by more than `update.min_improvement` with
/// `update.confidence`.
pub fn run_tournament(
    policy: &Policy,
    live: &Classifier,
    data: &UpdateData,
    strategies: &[StrategyName],
    seed: u64,
) -> Result<Tournament, UpdateError> {
    let (new_train, holdout) = split_holdout(&data.new, policy.update.holdout_fraction);
    if holdout.len() < policy.update.min_holdout_rows || new_train.is_empty() {
        return Err(UpdateError::NotEnoughHoldout {
            available: holdout.len(),
            required: policy.update.min_holdout_rows,
        });
    }
    let (live_scores, live_per_row) = score_on(live, &holdout).map_err(UpdateError::Live)?;
    let candidates = run_candidates(
        policy,
        live,
        &data.lineage,
        &data.old,
        &new_train,
        &holdout,
        strategies,
        seed,
        true,
    );
    let metric = policy.update.metric;
    let (winner, decision) = pick_winner(
        &candidates,
        Champion {
            scores: &live_scores,
            per_row: &live_per_row,
        },
        PromotionRule {
            metric,
            margin: policy.update.min_improvement,
            confidence: policy.update.confidence,
        },
    );
    Ok(Tournament {
        train_rows: new_train.len(),
        old_rows: data.old.len(),
        holdout_rows: holdout.len(),
        metric,
        live: live_scores,
        live_per_row,
        candidates,
        winner,
        decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::candidate::CandidateError;
    use crate::update::test_fixtures::{live, policy, rows};

    #[test]
    fn every_strategy_builds_a_usable_candidate() {
        let p = policy();
        let data = rows(600, 2);
        let (old, new) = (data.slice(0, 300), data.slice(300, 600));
        let live = live(&p, &old);
        let mut all = vec![StrategyName::None];
        all.extend(StrategyName::ALL_RETRAINING);
        let t = run_tournament(
            &p,
            &live,
            &UpdateData {
                old,
                new,
                lineage: vec![],
            },
            &all,
            3,
        )
        .unwrap();
        assert_eq!(t.candidates.len(), 8);
        for c in &t.candidates {
            let b = c
                .outcome
                .as_ref()
                .unwrap_or_else(|e| panic!("{}: {e}", c.strategy));
            assert!(b.scores.accuracy > 0.5, "{}: {:?}", c.strategy, b.scores);
            match c.strategy {
                StrategyName::EnsembleNew | StrategyName::EnsembleAll => {
                    assert_eq!(b.model.members().len(), 2)
                }
                StrategyName::Graft => {
                    assert_eq!(b.model.newest().arch.hidden, vec![20, 10, 10])
                }
                _ => assert_eq!(b.model.members().len(), 1),
            }
        }
        // `none` is the live model itself and never wins.
        assert_ne!(t.winner, Some(0));
        // refit_X and ensemble_X share one fresh model.
        let model = |s: StrategyName| {
            let c = t.candidates.iter().find(|c| c.strategy == s).unwrap();
            let b = c.outcome.as_ref().unwrap();
            b.model.newest().to_safetensors().unwrap()
        };
        assert!(model(StrategyName::RefitNew) == model(StrategyName::EnsembleNew));
        assert!(model(StrategyName::RefitAll) == model(StrategyName::EnsembleAll));
        assert!(model(StrategyName::RefitNew) != model(StrategyName::RefitAll));
    }

    /// Trainings run concurrently (one thread per core at one libtorch
    /// thread each), yet a tournament is bit-identical from run to run.
    #[test]
    fn a_tournament_is_bit_identical_from_run_to_run() {
        let mut p = policy();
        p.training.threads = 1;
        let data = rows(600, 11);
        let (old, new) = (data.slice(0, 300), data.slice(300, 600));
        let live = live(&p, &old);
        let mut all = vec![StrategyName::None];
        all.extend(StrategyName::ALL_RETRAINING);
        let run = || {
            let update = UpdateData {
                old: old.clone(),
                new: new.clone(),
                lineage: vec![],
            };
            let t = run_tournament(&p, &live, &update, &all, 3).unwrap();
            t.candidates
                .iter()
                .map(|c| {
                    let b = c.outcome.as_ref().unwrap();
                    let bytes: Vec<Vec<u8>> = b
                        .model
                        .members()
                        .iter()
                        .map(|m| m.to_safetensors().unwrap())
                        .collect();
                    (c.strategy, bytes, b.scores)
                })
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a.len(), 8);
        assert!(a == b);
        assert_eq!(
            a.iter().map(|(s, _, _)| *s).collect::<Vec<_>>(),
            all,
            "candidates in the order asked"
        );
    }

    #[test]
    fn a_diverging_candidate_is_dropped_not_promoted() {
        let mut p = policy();
        p.update.fine_tune.learning_rate = 10.0;
        p.update.fine_tune.epochs = 50;
        p.model.standardize = false;
        let data = rows(600, 7);
        let mut scaled = data.clone();
        scaled.features.iter_mut().for_each(|v| *v *= 1e4);
        let (old, new) = (scaled.slice(0, 300), scaled.slice(300, 600));
        let mut lp = p.clone();
        lp.training.learning_rate = 1e-6;
        let live = live(&lp, &old);
        let t = run_tournament(
            &p,
            &live,
            &UpdateData {
                old,
                new,
                lineage: vec![],
            },
            &[StrategyName::ContinueNew],
            1,
        )
        .unwrap();
        let c = &t.candidates[0];
        assert!(
            matches!(c.outcome, Err(CandidateError::Training(_))),
            "{:?}",
            c.outcome.as_ref().map(|b| b.scores)
        );
        assert_eq!(t.winner, None);
    }
}
