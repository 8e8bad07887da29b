//! The tournament: the holdout split, every candidate and the live model
//! scored on it, and the winner by the promotion rule.

use crate::config::{Metric, Policy, StrategyName};
use crate::model::{Classifier, Dataset, Mlp, ModelError, Scores};

use super::candidate::{rows_for, score_on, Candidate};
use super::evidence::RowResults;
use super::holdout::split_holdout;
use super::jobs::run_candidates;
use super::promotion::{pick_winner, Champion, PromotionRule};
use super::sampling::sample_size;
use super::strategies::build_candidate;

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
    /// The winner's model trained again with the holdout rows
    /// (`update.train_on_holdout`); its model replaced the scored one.
    pub final_fit: Option<FinalFit>,
}

impl Tournament {
    /// New rows the promoted model trained on: the candidates' rows, plus
    /// the holdout after a final fit.
    pub fn promoted_train_rows(&self) -> usize {
        self.final_fit.map_or(self.train_rows, |f| f.new_rows)
    }
}

/// The winning strategy trained again on its rows plus the holdout.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FinalFit {
    /// New rows it trained on: the candidates' plus the holdout.
    pub new_rows: usize,
    pub seconds: f64,
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
    let mut candidates = run_candidates(
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
    let final_fit = match winner {
        Some(i) if policy.update.train_on_holdout => train_on_holdout(
            policy,
            live,
            data,
            &new_train,
            &holdout,
            &mut candidates[i],
            seed,
        ),
        _ => None,
    };
    let decision = match final_fit {
        Some(_) => format!(
            "{decision}; then trained again with the {} holdout rows (update.train_on_holdout)",
            holdout.len()
        ),
        None => decision,
    };
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
        final_fit,
    })
}

/// Trains the winner's strategy again (same seed, same learning rate) on
/// its rows plus the holdout, and puts that model in the winner's place.
/// The holdout is the newest data: leaving it out of the promoted model
/// would make every version a holdout behind the stream, which an online
/// learner is not. The scores stay the ones measured before, on rows the
/// scored model had not seen. If this training fails, the scored model is
/// promoted as it is.
fn train_on_holdout(
    policy: &Policy,
    live: &Classifier,
    data: &UpdateData,
    new_train: &Dataset,
    holdout: &Dataset,
    winner: &mut Candidate,
    seed: u64,
) -> Option<FinalFit> {
    let started = std::time::Instant::now();
    let Ok(built) = winner.outcome.as_mut() else {
        return None;
    };
    let mut rows = new_train.clone();
    rows.extend(holdout);
    let rate = built
        .learning_rate
        .unwrap_or(policy.update.fine_tune.learning_rate);
    let trained = build_candidate(
        winner.strategy,
        policy,
        live,
        &data.lineage,
        &data.old,
        &rows,
        rate,
        seed,
        None,
    )
    .and_then(|(model, report)| score_on(&model, holdout).map(|_| (model, report)));
    match trained {
        Ok((model, report)) => {
            built.model = model;
            built.report = report.or(built.report.take());
            built.train_rows = sample_size(
                policy,
                rows_for(winner.strategy, policy, data.old.len(), rows.len()),
            );
            let seconds = started.elapsed().as_secs_f64();
            winner.seconds += seconds;
            Some(FinalFit {
                new_rows: rows.len(),
                seconds,
            })
        }
        Err(e) => {
            tracing::warn!(
                strategy = winner.strategy.as_str(),
                error = %e,
                "training {} again with the holdout rows failed; the scored model is promoted: {e}",
                winner.strategy
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::candidate::CandidateError;
    use crate::update::test_fixtures::{live, policy, rows};

    #[test]
    fn every_strategy_builds_a_usable_candidate() {
        // The candidates as scored (the winner's final fit is tested below).
        let mut p = policy();
        p.update.train_on_holdout = false;
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

    /// `update.train_on_holdout`: the promoted model has learnt the
    /// holdout rows too; the decision and the scores are the scored
    /// model's.
    #[test]
    fn the_winner_is_trained_again_with_the_holdout() {
        let mut p = policy();
        p.update.train_on_holdout = false;
        let old = rows(300, 2);
        // Another concept: the live model is poor on it, a refit wins.
        let new = rows(600, 3);
        let live = live(&p, &old);
        let run = |p: &Policy| {
            let data = UpdateData {
                old: old.clone(),
                new: new.clone(),
                lineage: vec![],
            };
            run_tournament(p, &live, &data, &[StrategyName::RefitNew], 3).unwrap()
        };
        let scored = run(&p);
        assert_eq!(scored.winner, Some(0), "{}", scored.decision);
        assert_eq!(scored.final_fit, None);
        p.update.train_on_holdout = true;
        let t = run(&p);
        let fit = t.final_fit.expect("the winner is trained again");
        assert_eq!(fit.new_rows, 600);
        assert_eq!((t.train_rows, t.holdout_rows), (480, 120));
        assert!(t.decision.starts_with(&scored.decision), "{}", t.decision);
        assert!(t
            .decision
            .ends_with("trained again with the 120 holdout rows (update.train_on_holdout)"));
        let (before, after) = (
            scored.candidates[0].outcome.as_ref().unwrap(),
            t.candidates[0].outcome.as_ref().unwrap(),
        );
        assert_eq!(before.scores, after.scores);
        assert_eq!((before.train_rows, after.train_rows), (480, 600));
        assert!(
            before.model.newest().to_safetensors().unwrap()
                != after.model.newest().to_safetensors().unwrap()
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
