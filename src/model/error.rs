//! The errors of building, training, scoring and loading a model.

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("training diverged at epoch {epoch}: loss is {loss}")]
    Diverged { epoch: usize, loss: f64 },
    #[error("training weights exploded at epoch {epoch} (max |w| = {max_abs})")]
    Exploded { epoch: usize, max_abs: f64 },
    #[error("no rows to train on")]
    NoRows,
    #[error("no layer of the model is trainable")]
    NothingTrainable,
    #[error("data has {found} feature columns but the model expects {expected}")]
    WidthMismatch { expected: usize, found: usize },
    #[error("label {label} is outside the model's classes 0..{classes}")]
    LabelOutOfRange { label: i64, classes: i64 },
    #[error("{weights} instance weights for {rows} rows")]
    WeightsMismatch { rows: usize, weights: usize },
    #[error("instance weights must be finite and non-negative")]
    BadWeights,
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("training was cancelled: driftd is stopping")]
    Cancelled,
}
