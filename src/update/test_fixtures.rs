//! Fixtures shared by the update tests: a policy that trains quickly,
//! synthetic rows, and a live model fit on them.

use crate::config::{Policy, EXAMPLE_POLICY};
use crate::model::{Classifier, Dataset};
use crate::synth;

use super::fit_fresh;

pub(super) fn policy() -> Policy {
    let mut p = Policy::parse(EXAMPLE_POLICY).unwrap();
    p.training.epochs = 10;
    p.update.fine_tune.epochs = 5;
    p
}

pub(super) fn rows(n: usize, seed: u64) -> Dataset {
    let mut spec = synth::ClassificationSpec::reference(seed);
    spec.n_samples = n;
    synth::make_classification(&spec)
}

pub(super) fn live(p: &Policy, data: &Dataset) -> Classifier {
    Classifier::Single(fit_fresh(p, data, 1).unwrap().0)
}
