//! Update strategies and the candidate tournament.
//!
//! Boundary: takes the live classifier and a snapshot of the rows (old = the
//! bounded sample the previous versions learned from, new = rows since the
//! live version, oldest first) and returns a leaderboard plus, at most, one
//! winner. It never writes anything: promotion is the daemon's job.

use std::time::Instant;

use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::{EnsembleMembers, GraftData, Metric, Policy, WeightingKind};
use crate::model::{
    self, Architecture, Classifier, Dataset, Mlp, ModelError, Scaler, Scores, TrainReport,
    TrainSettings,
};

/// The update strategies of the tutorial.
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
    /// Average the live model with a fresh model fit on new rows.
    EnsembleNew,
    /// Average the live model with a fresh model fit on old + new rows.
    EnsembleAll,
    /// Freeze the live model's hidden layers, train new layers on top.
    Graft,
}

impl StrategyName {
    pub const ALL_RETRAINING: [StrategyName; 7] = [
        StrategyName::ContinueNew,
        StrategyName::ContinueAll,
        StrategyName::RefitNew,
        StrategyName::RefitAll,
        StrategyName::EnsembleNew,
        StrategyName::EnsembleAll,
        StrategyName::Graft,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::None => "none",
            StrategyName::ContinueNew => "continue_new",
            StrategyName::ContinueAll => "continue_all",
            StrategyName::RefitNew => "refit_new",
            StrategyName::RefitAll => "refit_all",
            StrategyName::EnsembleNew => "ensemble_new",
            StrategyName::EnsembleAll => "ensemble_all",
            StrategyName::Graft => "graft",
        }
    }

    fn is_fine_tuning(self) -> bool {
        matches!(self, StrategyName::ContinueNew | StrategyName::ContinueAll)
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
    /// For `update.ensemble.members = "last_versions"`: the newest member
    /// of the live version's ancestors, oldest first (empty otherwise).
    pub lineage: Vec<Mlp>,
}

/// One candidate's result.
#[derive(Debug)]
pub struct Candidate {
    pub strategy: StrategyName,
    pub outcome: Result<Built, String>,
    pub seconds: f64,
}

/// A trained candidate and how it was made.
#[derive(Debug)]
pub struct Built {
    pub model: Classifier,
    pub scores: Scores,
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

/// The leaderboard of one update.
#[derive(Debug)]
pub struct Tournament {
    pub train_rows: usize,
    pub old_rows: usize,
    pub holdout_rows: usize,
    pub metric: Metric,
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

/// The value of `metric`, oriented so that larger is better.
pub fn metric_value(s: &Scores, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => s.accuracy,
        Metric::LogLoss => -s.log_loss,
        Metric::Auc => s.auc.unwrap_or(f64::NAN),
    }
}

/// Rows and their instance weights after the policy's sampling and
/// weighting. Weights follow arrival order: the last row is the newest.
fn prepare(policy: &Policy, rows: &Dataset, seed: u64) -> (Dataset, Option<Vec<f32>>) {
    let n = rows.len();
    let w = &policy.update.weighting;
    let weights: Option<Vec<f32>> = match w.kind {
        WeightingKind::None => None,
        WeightingKind::Column => Some(rows.weights.clone()),
        WeightingKind::Recency => match w.half_life_seconds {
            Some(h) => {
                let newest = rows.times_us.iter().copied().max().unwrap_or(0);
                Some(
                    rows.times_us
                        .iter()
                        .map(|&t| 0.5f64.powf((newest - t) as f64 / 1e6 / h) as f32)
                        .collect(),
                )
            }
            None => Some(
                (0..n)
                    .map(|i| 0.5f64.powf((n - 1 - i) as f64 / w.half_life_rows) as f32)
                    .collect(),
            ),
        },
    };
    let keep = sample_size(policy, n);
    if keep == n {
        return (rows.clone(), weights);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5a3b1e_u64);
    let mut picked = index::sample(&mut rng, n, keep).into_vec();
    picked.sort_unstable(); // keep arrival order
    let out = rows.select(&picked);
    let weights = weights.map(|w| picked.iter().map(|&i| w[i]).collect());
    (out, weights)
}

/// Trains a fresh model on `rows` with the policy's base settings (and the
/// policy's sampling and weighting).
pub fn fit_fresh(
    policy: &Policy,
    rows: &Dataset,
    seed: u64,
) -> Result<(Mlp, TrainReport), ModelError> {
    let (rows, weights) = prepare(policy, rows, seed);
    let arch = Architecture::from_policy(policy, rows.width);
    let mut m = Mlp::new(arch, policy.model.init, seed);
    if policy.model.standardize {
        m.scaler = Scaler::fit(&rows);
    }
    let mut settings = TrainSettings::from_policy(policy);
    settings.seed = seed;
    let report = m.train_weighted(&rows, weights.as_deref(), &settings, None)?;
    Ok((m, report))
}

/// Continues training every member of `live` at `learning_rate`.
fn fine_tune(
    policy: &Policy,
    live: &Classifier,
    rows: &Dataset,
    learning_rate: f64,
    seed: u64,
) -> Result<(Classifier, TrainReport), ModelError> {
    let (rows, weights) = prepare(policy, rows, seed);
    let mut settings = TrainSettings::from_policy(policy);
    settings.learning_rate = learning_rate;
    settings.epochs = policy.update.fine_tune.epochs;
    settings.seed = seed;
    let mut members = Vec::new();
    let mut last = None;
    for m in live.members() {
        let mut m = m.clone();
        last = Some(m.train_weighted(&rows, weights.as_deref(), &settings, None)?);
        members.push(m);
    }
    let model = match live {
        Classifier::Single(_) => Classifier::Single(members.pop().expect("one member")),
        Classifier::Ensemble { weights, .. } => Classifier::ensemble(members, weights.clone())?,
    };
    Ok((model, last.expect("a classifier has a member")))
}

/// The live model's newest member with its hidden layers frozen, and new
/// trainable layers (policy `update.graft.hidden`) plus a new output layer
/// on top.
fn graft(
    policy: &Policy,
    live: &Classifier,
    rows: &Dataset,
    seed: u64,
) -> Result<(Classifier, TrainReport), ModelError> {
    let base = live.newest();
    let frozen = base.layers.len() - 1; // every layer but the output
    let mut arch = base.arch.clone();
    arch.hidden
        .extend(policy.update.graft.hidden.iter().map(|&w| w as usize));
    let mut m = Mlp::new(arch, policy.model.init, seed);
    for (i, layer) in base.layers[..frozen].iter().enumerate() {
        m.layers[i] = layer.deep_clone();
    }
    m.scaler = base.scaler.clone();
    let (rows, weights) = prepare(policy, rows, seed);
    let mut settings = TrainSettings::from_policy(policy);
    settings.seed = seed;
    if let Some(lr) = policy.update.graft.learning_rate {
        settings.learning_rate = lr;
    }
    if let Some(e) = policy.update.graft.epochs {
        settings.epochs = e;
    }
    let trainable: Vec<usize> = (frozen..m.layers.len()).collect();
    let report = m.train_weighted(&rows, weights.as_deref(), &settings, Some(&trainable))?;
    Ok((Classifier::Single(m), report))
}

/// The live members (or the lineage's newest members) plus `fresh`, the
/// oldest dropped beyond the cap, with equal weights.
fn ensemble_with(
    policy: &Policy,
    live: &Classifier,
    lineage: &[Mlp],
    fresh: Mlp,
) -> Result<Classifier, ModelError> {
    let mut members: Vec<Mlp> = match policy.update.ensemble.members {
        EnsembleMembers::Grow => live.members().to_vec(),
        EnsembleMembers::LastVersions => {
            let mut m = lineage.to_vec();
            m.push(live.newest().clone());
            m
        }
    };
    members.push(fresh);
    let max = policy.update.ensemble.max_members.max(2);
    if members.len() > max {
        members.drain(..members.len() - max);
    }
    let n = members.len();
    Classifier::ensemble(members, vec![1.0; n])
}

fn concat(a: &Dataset, b: &Dataset) -> Dataset {
    let mut out = a.clone();
    out.extend(b);
    out
}

pub const FRESH_SEED_OFFSET: u64 = 100;

/// Which fresh model a strategy builds on: `refit_new` and `ensemble_new`
/// fit the same one (same rows, same seed), as do `refit_all` and
/// `ensemble_all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshRows {
    New,
    All,
}

impl StrategyName {
    pub fn fresh_rows(self) -> Option<FreshRows> {
        match self {
            StrategyName::RefitNew | StrategyName::EnsembleNew => Some(FreshRows::New),
            StrategyName::RefitAll | StrategyName::EnsembleAll => Some(FreshRows::All),
            _ => None,
        }
    }
}

/// Fits the fresh model of `rows` ([`StrategyName::fresh_rows`]) for a
/// tournament with `seed`.
pub fn fit_fresh_for(
    rows: FreshRows,
    policy: &Policy,
    old: &Dataset,
    new_train: &Dataset,
    seed: u64,
) -> Result<(Mlp, TrainReport), ModelError> {
    // A fresh model must not start from the live model's initial weights
    // (compare trains its base model with `seed`).
    let fresh_seed = seed.wrapping_add(FRESH_SEED_OFFSET);
    match rows {
        FreshRows::New => fit_fresh(policy, new_train, fresh_seed),
        FreshRows::All => fit_fresh(policy, &concat(old, new_train), fresh_seed),
    }
}

/// Builds one candidate (for fine-tuning strategies, at `learning_rate`).
/// Returns the model and the training report. `fresh` is the already
/// trained fresh model of a `refit_*` / `ensemble_*` strategy (see
/// [`fit_fresh_for`]); without it, it is trained here.
#[allow(clippy::too_many_arguments)]
pub fn build_candidate(
    strategy: StrategyName,
    policy: &Policy,
    live: &Classifier,
    lineage: &[Mlp],
    old: &Dataset,
    new_train: &Dataset,
    learning_rate: f64,
    seed: u64,
    fresh: Option<&(Mlp, TrainReport)>,
) -> Result<(Classifier, Option<TrainReport>), ModelError> {
    let all = || concat(old, new_train);
    let some = |r: Result<(Classifier, TrainReport), ModelError>| r.map(|(m, t)| (m, Some(t)));
    let fresh = |rows| match fresh {
        Some((m, r)) => Ok((m.clone(), r.clone())),
        None => fit_fresh_for(rows, policy, old, new_train, seed),
    };
    match strategy {
        StrategyName::None => Ok((live.clone(), None)),
        StrategyName::ContinueNew => some(fine_tune(policy, live, new_train, learning_rate, seed)),
        StrategyName::ContinueAll => some(fine_tune(policy, live, &all(), learning_rate, seed)),
        StrategyName::RefitNew | StrategyName::RefitAll => {
            let (m, report) = fresh(strategy.fresh_rows().expect("a refit strategy"))?;
            Ok((Classifier::Single(m), Some(report)))
        }
        StrategyName::EnsembleNew | StrategyName::EnsembleAll => {
            let (m, report) = fresh(strategy.fresh_rows().expect("an ensemble strategy"))?;
            Ok((ensemble_with(policy, live, lineage, m)?, Some(report)))
        }
        StrategyName::Graft => {
            let rows = match policy.update.graft.data {
                GraftData::New => new_train.clone(),
                GraftData::All => all(),
            };
            some(graft(policy, live, &rows, seed))
        }
    }
}

/// Rows a strategy trains on before sampling (for the leaderboard).
fn rows_for(strategy: StrategyName, policy: &Policy, old: usize, new: usize) -> usize {
    match strategy {
        StrategyName::None => 0,
        StrategyName::ContinueNew | StrategyName::RefitNew | StrategyName::EnsembleNew => new,
        StrategyName::Graft if policy.update.graft.data == GraftData::New => new,
        _ => old + new,
    }
}

/// Rows kept of `n` by `update.sample` (fraction, then the row cap).
fn sample_size(policy: &Policy, n: usize) -> usize {
    let s = &policy.update.sample;
    let mut keep = ((n as f64) * s.fraction).round() as usize;
    if s.max_rows > 0 {
        keep = keep.min(s.max_rows);
    }
    keep.clamp(1.min(n), n)
}

/// Scores `model` on `holdout`; a non-finite score counts as divergence.
pub fn score_on(model: &Classifier, holdout: &Dataset) -> Result<Scores, ModelError> {
    let s = model::score(
        &model.predict_proba(holdout)?,
        &holdout.labels,
        model.classes(),
    );
    if !(s.log_loss.is_finite() && s.accuracy.is_finite()) {
        return Err(ModelError::Diverged {
            epoch: 0,
            loss: s.log_loss,
        });
    }
    Ok(s)
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
) -> Result<Built, ModelError> {
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
        .and_then(|(m, r)| score_on(&m, holdout).map(|s| (m, s, r)))
        {
            Ok((model, scores, report)) => {
                tried.push((lr, scores));
                let better = best.as_ref().is_none_or(|b| {
                    metric_value(&scores, policy.update.metric)
                        > metric_value(&b.scores, policy.update.metric)
                });
                if better {
                    best = Some(Built {
                        model,
                        scores,
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

/// How many trainings of a tournament run at once: as many as the cores
/// allow at `training.threads` libtorch threads each. Each training is
/// deterministic on its own, so the results do not depend on this.
pub fn concurrent_trainings(policy: &Policy) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / policy.training.threads.max(1)).max(1)
}

/// The work of one strategy, for ordering the tournament's trainings
/// longest first: rows times epochs (times the rates searched).
fn training_cost(strategy: StrategyName, policy: &Policy, old: usize, new: usize) -> usize {
    let rows = rows_for(strategy, policy, old, new);
    let epochs = match strategy {
        StrategyName::ContinueNew | StrategyName::ContinueAll => {
            policy.update.fine_tune.epochs * policy.update.fine_tune.lr_grid.len().max(1)
        }
        StrategyName::Graft => policy.update.graft.epochs.unwrap_or(policy.training.epochs),
        _ => policy.training.epochs,
    };
    rows * epochs
}

/// Builds and scores every strategy on `holdout`, candidates in the order of
/// `strategies`. Strategies that share a fresh model (`refit_new` and
/// `ensemble_new`, `refit_all` and `ensemble_all`) train it once, and the
/// independent trainings run on [`concurrent_trainings`] threads, longest
/// first. Each candidate's `seconds` includes the training it used.
#[allow(clippy::too_many_arguments)]
pub fn run_candidates(
    policy: &Policy,
    live: &Classifier,
    lineage: &[Mlp],
    old: &Dataset,
    new_train: &Dataset,
    holdout: &Dataset,
    strategies: &[StrategyName],
    seed: u64,
    search_lr: bool,
) -> Vec<Candidate> {
    // One job per training: strategies sharing a fresh model form one job.
    let mut jobs: Vec<Vec<usize>> = Vec::new();
    for (i, s) in strategies.iter().enumerate() {
        let shared = s.fresh_rows().and_then(|rows| {
            jobs.iter()
                .position(|job| strategies[job[0]].fresh_rows() == Some(rows))
        });
        match shared {
            Some(j) => jobs[j].push(i),
            None => jobs.push(vec![i]),
        }
    }
    let cost =
        |job: &Vec<usize>| training_cost(strategies[job[0]], policy, old.len(), new_train.len());
    jobs.sort_by_key(|job| std::cmp::Reverse(cost(job)));
    let run_job = |(live, lineage): &(Classifier, Vec<Mlp>), job: &Vec<usize>| {
        let started = Instant::now();
        let fresh = strategies[job[0]]
            .fresh_rows()
            .map(|rows| fit_fresh_for(rows, policy, old, new_train, seed));
        let trained = started.elapsed().as_secs_f64();
        job.iter()
            .map(|&i| {
                let strategy = strategies[i];
                let started = Instant::now();
                let outcome = match &fresh {
                    Some(Err(e)) => Err(e.to_string()),
                    Some(Ok(f)) => run_candidate(
                        strategy,
                        policy,
                        live,
                        lineage,
                        old,
                        new_train,
                        holdout,
                        seed,
                        search_lr,
                        Some(f),
                    )
                    .map_err(|e| e.to_string()),
                    None => run_candidate(
                        strategy, policy, live, lineage, old, new_train, holdout, seed, search_lr,
                        None,
                    )
                    .map_err(|e| e.to_string()),
                };
                let seconds = started.elapsed().as_secs_f64() + trained;
                (
                    i,
                    Candidate {
                        strategy,
                        outcome,
                        seconds,
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    let threads = concurrent_trainings(policy).min(jobs.len()).max(1);
    // Tensors are not shared between threads: every thread gets its own
    // copy of the live model and the lineage.
    let contexts: Vec<(Classifier, Vec<Mlp>)> = (0..threads)
        .map(|_| (live.clone(), lineage.to_vec()))
        .collect();
    let mut done: Vec<(usize, Candidate)> = model::run_concurrently(contexts, &jobs, run_job)
        .into_iter()
        .flatten()
        .collect();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, c)| c).collect()
}

/// Trains every strategy, scores each and the live model on the same
/// holdout, and picks the winner: the best on `update.metric` that beats
/// the live model by more than `update.min_improvement`.
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
    let live_scores = score_on(live, &holdout).map_err(UpdateError::Live)?;
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
    let best = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.strategy != StrategyName::None)
        .filter_map(|(i, c)| c.scores().map(|s| (i, s)))
        .filter(|(_, s)| metric_value(s, metric).is_finite())
        .max_by(|(_, a), (_, b)| metric_value(a, metric).total_cmp(&metric_value(b, metric)));
    let margin = policy.update.min_improvement;
    let live_value = metric_value(&live_scores, metric);
    let (winner, decision) = match best {
        Some((i, s)) if metric_value(&s, metric) > live_value + margin => (
            Some(i),
            format!(
                "{} scored {} {:.4} on {} holdout rows, beating the live model's {:.4} by more than {}",
                candidates[i].strategy,
                metric.as_str(),
                metric_value(&s, metric).abs(),
                holdout.len(),
                live_value.abs(),
                margin
            ),
        ),
        Some((i, s)) => (
            None,
            format!(
                "the best candidate, {}, scored {} {:.4} on {} holdout rows, not more than {} better than the live model's {:.4}",
                candidates[i].strategy,
                metric.as_str(),
                metric_value(&s, metric).abs(),
                holdout.len(),
                margin,
                live_value.abs()
            ),
        ),
        None => (None, "no candidate produced a usable model".to_string()),
    };
    Ok(Tournament {
        train_rows: new_train.len(),
        old_rows: data.old.len(),
        holdout_rows: holdout.len(),
        metric,
        live: live_scores,
        candidates,
        winner,
        decision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Init, EXAMPLE_POLICY};
    use crate::gen;

    fn policy() -> Policy {
        let mut p = Policy::parse(EXAMPLE_POLICY).unwrap();
        p.training.epochs = 10;
        p.update.fine_tune.epochs = 5;
        p
    }

    fn rows(n: usize, seed: u64) -> Dataset {
        let mut spec = gen::ClassificationSpec::reference(seed);
        spec.n_samples = n;
        gen::make_classification(&spec)
    }

    fn live(p: &Policy, data: &Dataset) -> Classifier {
        Classifier::Single(fit_fresh(p, data, 1).unwrap().0)
    }

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
        assert_eq!(StrategyName::EnsembleNew.to_string(), "ensemble_new");
    }

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
    fn graft_leaves_the_frozen_layers_bit_identical() {
        let p = policy();
        let data = rows(400, 4);
        let live = live(&p, &data.slice(0, 200));
        let (m, _) = graft(&p, &live, &data.slice(200, 400), 5).unwrap();
        let before = live.newest();
        let after = m.newest();
        for i in 0..before.layers.len() - 1 {
            let (a, b) = (&before.layers[i], &after.layers[i]);
            assert!(
                a.weight.equal(&b.weight) && a.bias.equal(&b.bias),
                "layer {i} moved"
            );
        }
        assert!(!before.layers.last().unwrap().weight.size().is_empty());
    }

    #[test]
    fn ensembles_grow_to_the_cap_then_drop_the_oldest() {
        let mut p = policy();
        p.update.ensemble.max_members = 3;
        let data = rows(300, 6);
        let base = p.clone();
        let m = |s| fit_fresh(&base, &data, s).unwrap().0;
        let e = ensemble_with(&p, &Classifier::Single(m(1)), &[], m(2)).unwrap();
        let e = ensemble_with(&p, &e, &[], m(3)).unwrap();
        assert_eq!(e.members().len(), 3);
        let first_of_three = e.members()[0].to_safetensors().unwrap();
        let e = ensemble_with(&p, &e, &[], m(4)).unwrap();
        assert_eq!(e.members().len(), 3);
        assert!(e.members()[0].to_safetensors().unwrap() != first_of_three);
        assert_eq!(e.weights(), vec![1.0 / 3.0; 3]);

        // "last_versions": the lineage's newest members, not the live
        // ensemble's own members.
        p.update.ensemble.members = EnsembleMembers::LastVersions;
        let lineage = vec![m(10), m(11)];
        let e = ensemble_with(&p, &e, &lineage, m(12)).unwrap();
        assert_eq!(e.members().len(), 3);
        assert!(e.members()[0].to_safetensors().unwrap() == lineage[1].to_safetensors().unwrap());
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
        assert!(c.outcome.is_err(), "{:?}", c.scores());
        assert_eq!(t.winner, None);
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

    #[test]
    fn sampling_and_recency_weights() {
        let mut p = policy();
        p.update.sample.fraction = 0.5;
        p.update.sample.max_rows = 40;
        p.update.weighting.kind = WeightingKind::Recency;
        p.update.weighting.half_life_rows = 10.0;
        let data = rows(100, 9);
        let (s, w) = prepare(&p, &data, 1);
        assert_eq!(s.len(), 40);
        let w = w.unwrap();
        assert_eq!(w.len(), 40);
        // Arrival order is kept, so weights never decrease along the rows.
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
        p.update.sample = Default::default();
        let (s, w) = prepare(&p, &data, 1);
        assert_eq!(s.len(), 100);
        let w = w.unwrap();
        assert_eq!(w[99], 1.0);
        assert!((w[89] - 0.5).abs() < 1e-6);
        let _ = Init::HeNormal;
    }

    #[test]
    fn time_recency_and_column_weights() {
        let mut p = policy();
        let mut data = rows(3, 10);
        data.times_us = vec![0, 3_600_000_000, 7_200_000_000]; // 0 h, 1 h, 2 h
        data.weights = vec![0.25, 1.0, 3.0];
        p.update.weighting.kind = WeightingKind::Recency;
        p.update.weighting.half_life_seconds = Some(3600.0);
        let (_, w) = prepare(&p, &data, 1);
        assert_eq!(w.unwrap(), vec![0.25, 0.5, 1.0]);
        p.update.weighting.kind = WeightingKind::Column;
        let (_, w) = prepare(&p, &data, 1);
        assert_eq!(w.unwrap(), vec![0.25, 1.0, 3.0]);
    }
}
