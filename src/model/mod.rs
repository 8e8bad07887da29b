//! The MLP classifier: construction from the policy, training, prediction
//! and `model.safetensors` checkpoints.
//!
//! One concern per file: the network and its initialisation (`network`),
//! the rows (`dataset`) and their standardization (`scaler`), the training
//! loop (`train`), its hand-written step and optimizers (`step`), early
//! stopping (`early_stopping`), scoring (`scoring`, with the plain-Rust
//! `kernel`), checkpoints (`checkpoint`, which documents the layout), what a
//! version serves (`classifier`), scores (`scores`) and the per-thread job
//! context (`threads`).

mod checkpoint;
mod classifier;
mod dataset;
mod early_stopping;
mod error;
mod kernel;
mod network;
mod scaler;
mod scores;
mod scoring;
mod step;
mod threads;
mod train;

#[cfg(test)]
mod test_support;

pub use checkpoint::verify_checkpoint;
pub use classifier::{check_ensemble, Classifier};
pub use dataset::Dataset;
pub use early_stopping::ValidationReport;
pub use error::{CheckpointError, EnsembleError, ModelError};
pub use network::{Architecture, Linear, Mlp};
pub use scaler::Scaler;
pub use scores::{predicted_class, roc_auc, score, Scores};
pub use scoring::SCORING_BLOCK;
pub use threads::{run_concurrently, with_cancel, with_epoch_hook, EpochHook};
pub use train::{TrainReport, TrainSettings};
