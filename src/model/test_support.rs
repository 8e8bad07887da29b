//! Rows, architectures and settings shared by the model's unit tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Architecture, Dataset, TrainSettings};
use crate::config::{Activation, EarlyStopping, OptimizerKind};

pub(super) fn toy(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut d = Dataset::new(2);
    for _ in 0..n {
        let a: f32 = rng.random_range(-1.0..1.0);
        let b: f32 = rng.random_range(-1.0..1.0);
        // Wildly different scales, as salaries beside ratios.
        d.push_row(&[a * 1000.0, b], (a + b > 0.0) as i64);
    }
    d
}

pub(super) fn arch(classes: usize) -> Architecture {
    Architecture {
        inputs: 2,
        hidden: vec![8, 4],
        activation: Activation::Relu,
        classes,
    }
}

pub(super) fn settings(seed: u64) -> TrainSettings {
    TrainSettings {
        optimizer: OptimizerKind::Sgd,
        learning_rate: 0.05,
        momentum: 0.9,
        epochs: 30,
        batch_size: 16,
        shuffle: true,
        seed,
        early_stopping: EarlyStopping::OFF,
    }
}
