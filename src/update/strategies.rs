//! How each strategy builds its candidate from the live model and the rows:
//! fine-tuning, a fresh fit (shared by `refit_*` and `ensemble_*`), an
//! ensemble, or a graft.

use crate::config::{EnsembleMembers, GraftData, Policy, StrategyName};
use crate::model::{
    Architecture, Classifier, Dataset, Mlp, ModelError, Scaler, TrainReport, TrainSettings,
};

use super::sampling::prepare;

impl StrategyName {
    pub(super) fn is_fine_tuning(self) -> bool {
        matches!(self, StrategyName::ContinueNew | StrategyName::ContinueAll)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::test_fixtures::{live, policy, rows};

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
}
