//! `[training]`: how every model is trained, early stopping included.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    pub momentum: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// libtorch intra-op threads; results are bit-identical for a fixed seed
    /// and thread count.
    pub threads: usize,
    pub early_stopping: EarlyStopping,
}

/// `[training.early_stopping]`: every training run (version 1, refits,
/// fine-tuning, grafts) holds out a seeded random share of its rows and
/// stops once their loss has not improved for `patience` epochs, keeping
/// the weights of its best epoch. Bounds the cost of an update on large
/// data, where a few epochs over many rows already converge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EarlyStopping {
    /// Share of a run's rows held out to validate on (0: off; every run
    /// trains for all its epochs on all its rows).
    pub validation_fraction: f64,
    /// Epochs without an improvement before the run stops.
    pub patience: usize,
    /// An epoch improves when its validation loss is lower than the best so
    /// far by more than this.
    pub min_delta: f64,
}

impl EarlyStopping {
    /// Held-out rows below this leave early stopping off for the run (too
    /// few to tell an improvement from noise).
    pub const MIN_VALIDATION_ROWS: usize = 50;

    pub const OFF: EarlyStopping = EarlyStopping {
        validation_fraction: 0.0,
        patience: 10,
        min_delta: 1e-4,
    };

    /// For `meta.json` written before early stopping existed.
    pub fn off() -> Self {
        Self::OFF
    }

    /// Rows of `n` held out for validation (0: early stopping is off for a
    /// run of `n` rows).
    pub fn validation_rows(&self, n: usize) -> usize {
        let v = ((n as f64) * self.validation_fraction).round() as usize;
        if v < Self::MIN_VALIDATION_ROWS || v >= n {
            0
        } else {
            v
        }
    }
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            validation_fraction: 0.1,
            ..Self::OFF
        }
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            optimizer: OptimizerKind::Sgd,
            learning_rate: 0.01,
            momentum: 0.9,
            epochs: 150,
            batch_size: 32,
            shuffle: true,
            seed: 1,
            threads: 1,
            early_stopping: EarlyStopping::default(),
        }
    }
}
