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
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Ensemble(#[from] EnsembleError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("training was cancelled: driftd is stopping")]
    Cancelled,
}

/// What is wrong with a `model.safetensors` checkpoint (writing one, or
/// checking one against an architecture).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// safetensors refused to build or serialize the file.
    #[error("{0}")]
    Encode(#[source] safetensors::SafeTensorError),
    #[error("not a valid safetensors file: {0}")]
    NotSafetensors(#[source] safetensors::SafeTensorError),
    #[error(
        "tensor {name:?} is not part of the architecture (inputs {inputs}, hidden {hidden:?}, \
         {outputs} outputs), whose tensors are {expected:?}"
    )]
    UnknownTensor {
        name: String,
        inputs: usize,
        hidden: Vec<usize>,
        outputs: usize,
        /// The tensor names the architecture has.
        expected: Vec<String>,
    },
    #[error("tensor {name:?} is missing (expected shape {shape:?})")]
    MissingTensor { name: String, shape: Vec<usize> },
    #[error(
        "tensor {name:?} has dtype {dtype:?}, expected F32 (in PyTorch: model.float() before saving)"
    )]
    WrongDtype {
        name: String,
        dtype: safetensors::Dtype,
    },
    #[error("tensor {name:?} has shape {found:?}, expected {expected:?}")]
    WrongShape {
        name: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
    /// `layer` is the layer's index in the `nn.Sequential` (0, 2, 4, ...).
    #[error("layer {layer} holds NaN or infinite values")]
    NonFinite { layer: usize },
    #[error("input.mean must be finite and input.std positive and finite")]
    BadScaler,
}

/// An ensemble whose members or weights do not fit together.
#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    #[error("an ensemble needs at least one member")]
    NoMembers,
    #[error(
        "checkpoint: ensemble members disagree: {inputs} inputs / {classes} classes vs \
         {first_inputs} / {first_classes}"
    )]
    MembersDisagree {
        inputs: usize,
        classes: usize,
        first_inputs: usize,
        first_classes: usize,
    },
    #[error(
        "checkpoint: ensemble weights {weights:?} must be {members} non-negative numbers with a \
         positive sum"
    )]
    BadWeights { weights: Vec<f64>, members: usize },
}
