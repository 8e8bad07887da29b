//! Update strategies and the candidate tournament.
//!
//! Boundary: takes the live model and a snapshot of the rows (old = the
//! bounded sample the previous versions learned from, new = rows since the
//! live version, oldest first) and returns a leaderboard plus, at most, one
//! winner. It never writes anything: promotion is the daemon's job.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::Policy;
use crate::model::{self, Dataset, Mlp, ModelError, Scaler, Scores, TrainReport, TrainSettings};

/// The update strategies of the tutorial that driftd implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum StrategyName {
    /// Keep the live model (the baseline every candidate must beat).
    None,
    /// Continue training the live model on new rows at the fine-tuning rate.
    ContinueNew,
    /// Continue training the live model on old + new rows at the fine-tuning rate.
    ContinueAll,
    /// Fit a fresh model on new rows only.
    RefitNew,
    /// Fit a fresh model on old + new rows.
    RefitAll,
}

impl StrategyName {
    pub const ALL_RETRAINING: [StrategyName; 4] = [
        StrategyName::ContinueNew,
        StrategyName::ContinueAll,
        StrategyName::RefitNew,
        StrategyName::RefitAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::None => "none",
            StrategyName::ContinueNew => "continue_new",
            StrategyName::ContinueAll => "continue_all",
            StrategyName::RefitNew => "refit_new",
            StrategyName::RefitAll => "refit_all",
        }
    }
}

impl std::fmt::Display for StrategyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
}

/// One candidate's result.
#[derive(Debug)]
pub struct Candidate {
    pub strategy: StrategyName,
    pub outcome: Result<(Mlp, Scores, Option<TrainReport>), String>,
    pub seconds: f64,
}

impl Candidate {
    pub fn scores(&self) -> Option<Scores> {
        self.outcome.as_ref().ok().map(|(_, s, _)| *s)
    }
}

/// The leaderboard of one update.
#[derive(Debug)]
pub struct Tournament {
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub live: Scores,
    pub candidates: Vec<Candidate>,
    /// Index into `candidates` of the promoted one.
    pub winner: Option<usize>,
    /// Why the winner won, or why nothing did.
    pub decision: String,
}

/// Splits rows into (train, holdout): the holdout is the newest rows, never
/// used for training, so candidates are judged on what comes next.
pub fn split_holdout(data: &Dataset, fraction: f64) -> (Dataset, Dataset) {
    let n = data.len();
    let h = ((n as f64) * fraction).ceil() as usize;
    let h = h.min(n);
    (data.slice(0, n - h), data.slice(n - h, n))
}

/// Trains a fresh model on `rows` with the policy's base settings.
pub fn fit_fresh(
    policy: &Policy,
    rows: &Dataset,
    seed: u64,
) -> Result<(Mlp, TrainReport), ModelError> {
    let arch = model::Architecture::from_policy(policy, rows.width);
    let mut m = Mlp::new(arch, policy.model.init, seed);
    if policy.model.standardize {
        m.scaler = Scaler::fit(rows);
    }
    let mut settings = TrainSettings::from_policy(policy);
    settings.seed = seed;
    let report = m.train(rows, &settings, None)?;
    Ok((m, report))
}

fn fine_tune(
    policy: &Policy,
    live: &Mlp,
    rows: &Dataset,
    seed: u64,
) -> Result<(Mlp, TrainReport), ModelError> {
    let mut m = live.clone();
    let mut settings = TrainSettings::from_policy(policy);
    settings.learning_rate = policy.update.fine_tune.learning_rate;
    settings.epochs = policy.update.fine_tune.epochs;
    settings.seed = seed;
    let report = m.train(rows, &settings, None)?;
    Ok((m, report))
}

fn concat(a: &Dataset, b: &Dataset) -> Dataset {
    let mut out = a.clone();
    out.extend(b);
    out
}

/// Builds one candidate from the training rows.
pub fn build_candidate(
    strategy: StrategyName,
    policy: &Policy,
    live: &Mlp,
    old: &Dataset,
    new_train: &Dataset,
    seed: u64,
) -> Result<(Mlp, Option<TrainReport>), ModelError> {
    let with_report = |r: Result<(Mlp, TrainReport), ModelError>| r.map(|(m, t)| (m, Some(t)));
    match strategy {
        StrategyName::None => Ok((live.clone(), None)),
        StrategyName::ContinueNew => with_report(fine_tune(policy, live, new_train, seed)),
        StrategyName::ContinueAll => {
            with_report(fine_tune(policy, live, &concat(old, new_train), seed))
        }
        StrategyName::RefitNew => with_report(fit_fresh(policy, new_train, seed)),
        StrategyName::RefitAll => with_report(fit_fresh(policy, &concat(old, new_train), seed)),
    }
}

/// Trains every strategy, scores each and the live model on the same
/// holdout, and picks the winner: the best accuracy (log loss breaks ties)
/// that beats the live model by more than `update.min_improvement`.
pub fn run_tournament(
    policy: &Policy,
    live: &Mlp,
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
    let classes = live.arch.classes;
    let score_on_holdout = |m: &Mlp| -> Result<Scores, ModelError> {
        Ok(model::score(
            &m.predict_proba(&holdout)?,
            &holdout.labels,
            classes,
        ))
    };
    let live_scores = score_on_holdout(live).map_err(UpdateError::Live)?;
    let mut candidates = Vec::new();
    for &strategy in strategies {
        let started = Instant::now();
        let outcome = build_candidate(strategy, policy, live, &data.old, &new_train, seed)
            .and_then(|(m, report)| {
                let s = score_on_holdout(&m)?;
                if !(s.log_loss.is_finite() && s.accuracy.is_finite()) {
                    return Err(ModelError::Diverged {
                        epoch: 0,
                        loss: s.log_loss,
                    });
                }
                Ok((m, s, report))
            })
            .map_err(|e| e.to_string());
        candidates.push(Candidate {
            strategy,
            outcome,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let best = candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.scores().map(|s| (i, s)))
        .max_by(|(_, a), (_, b)| {
            a.accuracy
                .total_cmp(&b.accuracy)
                .then(b.log_loss.total_cmp(&a.log_loss))
        });
    let margin = policy.update.min_improvement;
    let (winner, decision) = match best {
        Some((i, s)) if s.accuracy > live_scores.accuracy + margin => (
            Some(i),
            format!(
                "{} scored {:.4} on {} holdout rows, beating the live model's {:.4} by more than {}",
                candidates[i].strategy,
                s.accuracy,
                holdout.len(),
                live_scores.accuracy,
                margin
            ),
        ),
        Some((i, s)) => (
            None,
            format!(
                "the best candidate, {}, scored {:.4} on {} holdout rows, not more than {} above the live model's {:.4}",
                candidates[i].strategy,
                s.accuracy,
                holdout.len(),
                margin,
                live_scores.accuracy
            ),
        ),
        None => (None, "every candidate failed".to_string()),
    };
    Ok(Tournament {
        train_rows: new_train.len(),
        holdout_rows: holdout.len(),
        live: live_scores,
        candidates,
        winner,
        decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_the_newest_rows() {
        let mut d = Dataset::new(1);
        for i in 0..10 {
            d.push_row(&[i as f32], 0);
        }
        let (train, hold) = split_holdout(&d, 0.2);
        assert_eq!(train.features, (0..8).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(hold.features, vec![8.0, 9.0]);
    }

    #[test]
    fn strategy_names_match_the_policy_spelling() {
        let json = serde_json::to_string(&StrategyName::ContinueAll).unwrap();
        assert_eq!(json, "\"continue_all\"");
        assert_eq!(StrategyName::RefitNew.to_string(), "refit_new");
    }
}
