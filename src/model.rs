//! The MLP classifier: construction from the policy, training, prediction
//! and `model.safetensors` checkpoints.
//!
//! Weights are plain tensors (no `VarStore`) so that initialisation and
//! shuffling come from our own seeded RNG: libtorch's global generator would
//! make concurrent trainings interfere, and bit-identical results for a fixed
//! seed and thread count are part of the contract.
//!
//! Checkpoint layout (documented in docs/registry.md): the tensors of the
//! equivalent `torch.nn.Sequential(Linear, Act, Linear, Act, ..., Linear)`
//! named `"{index}.weight"` / `"{index}.bias"` (index = position in the
//! Sequential, so 0, 2, 4, ...), plus `input.mean` and `input.std` (the
//! standardization; mean 0 and std 1 when it is off). The output layer emits
//! logits: one for binary models (apply a sigmoid), `classes` otherwise
//! (apply a softmax).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use crate::config::{Activation, EarlyStopping, Init, OptimizerKind, Policy};

mod kernel;

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

thread_local! {
    /// The cancellation flag of the job running on this thread, if any.
    static CANCEL: std::cell::RefCell<Option<Arc<AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (on this thread) with a cancellation flag: once the flag is set,
/// training stops at the next batch with [`ModelError::Cancelled`]. The
/// daemon cancels an abandoned update this way, so that no libtorch work is
/// still running when the process exits.
pub fn with_cancel<R>(flag: Arc<AtomicBool>, f: impl FnOnce() -> R) -> R {
    let previous = CANCEL.with(|c| c.replace(Some(flag)));
    let result = f();
    CANCEL.with(|c| *c.borrow_mut() = previous);
    result
}

/// Called after every training epoch (progress bars); shared, because
/// [`run_concurrently`] carries it over to its threads.
pub type EpochHook = Arc<dyn Fn(u64) + Send + Sync>;

thread_local! {
    /// The epoch hook of the job running on this thread, if any.
    static EPOCH_HOOK: std::cell::RefCell<Option<EpochHook>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (on this thread, and on the threads of [`run_concurrently`]
/// inside it) calling `hook` after every training epoch, so a command can
/// show progress without the training loop knowing about it.
pub fn with_epoch_hook<R>(hook: EpochHook, f: impl FnOnce() -> R) -> R {
    let previous = EPOCH_HOOK.with(|h| h.replace(Some(hook)));
    let result = f();
    EPOCH_HOOK.with(|h| *h.borrow_mut() = previous);
    result
}

/// Tells the job's hook that `epochs` epochs are done (a run that stops
/// early reports the epochs it skipped as done, so progress adds up).
fn epochs_done(epochs: u64) {
    let hook = EPOCH_HOOK.with(|h| h.borrow().clone());
    if let Some(hook) = hook {
        hook(epochs);
    }
}

fn cancelled() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// Runs `jobs` on one thread per context (each thread owns its context:
/// libtorch tensors cannot be shared between threads), every thread taking
/// the next job in order, and returns the results in job order. The
/// caller's cancellation flag ([`with_cancel`]) and epoch hook
/// ([`with_epoch_hook`]) apply on every thread.
/// With one context the jobs run on the calling thread.
pub fn run_concurrently<C, J, T, F>(contexts: Vec<C>, jobs: &[J], f: F) -> Vec<T>
where
    C: Send,
    J: Sync,
    T: Send,
    F: Fn(&C, &J) -> T + Sync,
{
    if contexts.len() <= 1 {
        return match contexts.first() {
            Some(c) => jobs.iter().map(|j| f(c, j)).collect(),
            None => Vec::new(),
        };
    }
    let flag = CANCEL.with(|c| c.borrow().clone());
    let hook = EPOCH_HOOK.with(|h| h.borrow().clone());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = contexts
            .into_iter()
            .map(|context| {
                let (f, next, flag, hook) = (&f, &next, flag.clone(), hook.clone());
                scope.spawn(move || {
                    let work = || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            out.push((i, f(&context, job)));
                        }
                        out
                    };
                    let work = || match flag {
                        Some(flag) => with_cancel(flag, work),
                        None => work(),
                    };
                    match hook {
                        Some(hook) => with_epoch_hook(hook, work),
                        None => work(),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, t)| t).collect()
}

/// The shape of a model: everything needed to rebuild it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub classes: usize,
}

impl Architecture {
    pub fn from_policy(policy: &Policy, inputs: usize) -> Self {
        Architecture {
            inputs,
            hidden: policy.model.hidden.iter().map(|&w| w as usize).collect(),
            activation: policy.model.activation,
            classes: policy.model.classes as usize,
        }
    }

    /// Width of the output layer: one logit for binary tasks.
    pub fn outputs(&self) -> usize {
        if self.classes == 2 {
            1
        } else {
            self.classes
        }
    }

    /// (in, out) widths of every linear layer.
    fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut widths = vec![self.inputs];
        widths.extend(&self.hidden);
        widths.push(self.outputs());
        widths.windows(2).map(|w| (w[0], w[1])).collect()
    }
}

/// Training settings of one run (base training or fine-tuning).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub optimizer: OptimizerKind,
    pub learning_rate: f64,
    pub momentum: f64,
    pub epochs: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub seed: u64,
    /// Versions written before early stopping existed trained without it.
    #[serde(default = "EarlyStopping::off")]
    pub early_stopping: EarlyStopping,
}

impl TrainSettings {
    pub fn from_policy(policy: &Policy) -> Self {
        let t = &policy.training;
        TrainSettings {
            optimizer: t.optimizer,
            learning_rate: t.learning_rate,
            momentum: t.momentum,
            epochs: t.epochs,
            batch_size: t.batch_size,
            shuffle: t.shuffle,
            seed: t.seed,
            early_stopping: t.early_stopping,
        }
    }
}

/// Rows for training or scoring: row-major features plus integer labels,
/// and per row an instance weight and an event time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub width: usize,
    /// `len() * width` values, row after row.
    pub features: Vec<f32>,
    pub labels: Vec<i64>,
    /// Instance weight from the data's weight column (1 without one).
    pub weights: Vec<f32>,
    /// Event time in Unix microseconds: the timestamp column, or when the
    /// file arrived (0 for generated rows).
    pub times_us: Vec<i64>,
}

impl Dataset {
    pub fn new(width: usize) -> Self {
        Dataset {
            width,
            ..Dataset::default()
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn push_row(&mut self, row: &[f32], label: i64) {
        self.push_row_with(row, label, 1.0, 0);
    }

    pub fn push_row_with(&mut self, row: &[f32], label: i64, weight: f32, time_us: i64) {
        debug_assert_eq!(row.len(), self.width);
        self.features.extend_from_slice(row);
        self.labels.push(label);
        self.weights.push(weight);
        self.times_us.push(time_us);
    }

    /// Overwrites row `i` with row `j` of `other` (same width).
    pub fn set_row_from(&mut self, i: usize, other: &Dataset, j: usize) {
        let w = self.width;
        self.features[i * w..(i + 1) * w].copy_from_slice(other.row(j));
        self.labels[i] = other.labels[j];
        self.weights[i] = other.weights[j];
        self.times_us[i] = other.times_us[j];
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.width..(i + 1) * self.width]
    }

    pub fn extend(&mut self, other: &Dataset) {
        debug_assert_eq!(self.width, other.width);
        self.features.extend_from_slice(&other.features);
        self.labels.extend_from_slice(&other.labels);
        self.weights.extend_from_slice(&other.weights);
        self.times_us.extend_from_slice(&other.times_us);
    }

    /// Rows `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Dataset {
        Dataset {
            width: self.width,
            features: self.features[start * self.width..end * self.width].to_vec(),
            labels: self.labels[start..end].to_vec(),
            weights: self.weights[start..end].to_vec(),
            times_us: self.times_us[start..end].to_vec(),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut out = Dataset::new(self.width);
        for &i in indices {
            out.push_row_with(
                self.row(i),
                self.labels[i],
                self.weights[i],
                self.times_us[i],
            );
        }
        out
    }

    /// Keeps only the newest `n` rows.
    pub fn keep_last(&mut self, n: usize) {
        if self.len() > n {
            let drop = self.len() - n;
            self.features.drain(..drop * self.width);
            self.labels.drain(..drop);
            self.weights.drain(..drop);
            self.times_us.drain(..drop);
        }
    }

    fn check(&self, arch: &Architecture) -> Result<(), ModelError> {
        if self.width != arch.inputs {
            return Err(ModelError::WidthMismatch {
                expected: arch.inputs,
                found: self.width,
            });
        }
        if let Some(&label) = self
            .labels
            .iter()
            .find(|&&l| l < 0 || l >= arch.classes as i64)
        {
            return Err(ModelError::LabelOutOfRange {
                label,
                classes: arch.classes as i64,
            });
        }
        Ok(())
    }

    fn features_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.features).view([self.len() as i64, self.width as i64])
    }
}

/// Per-feature standardization fitted on training rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Scaler {
    pub fn identity(width: usize) -> Self {
        Scaler {
            mean: vec![0.0; width],
            std: vec![1.0; width],
        }
    }

    pub fn fit(data: &Dataset) -> Self {
        let (w, n) = (data.width, data.len().max(1) as f64);
        let mut mean = vec![0f64; w];
        for i in 0..data.len() {
            for (m, &x) in mean.iter_mut().zip(data.row(i)) {
                *m += x as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0f64; w];
        for i in 0..data.len() {
            for ((v, &x), m) in var.iter_mut().zip(data.row(i)).zip(&mean) {
                *v += (x as f64 - m).powi(2);
            }
        }
        let std = var
            .iter()
            // A constant column would divide by zero: leave it unscaled.
            .map(|v| {
                let s = (v / n).sqrt();
                if s > 1e-12 {
                    s as f32
                } else {
                    1.0
                }
            })
            .collect();
        Scaler {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            std,
        }
    }

    /// Mean 0 and std 1 everywhere: standardizing changes nothing.
    pub fn is_identity(&self) -> bool {
        self.mean.iter().all(|&m| m == 0.0) && self.std.iter().all(|&s| s == 1.0)
    }

    fn apply(&self, x: &Tensor) -> Tensor {
        let mean = Tensor::from_slice(&self.mean);
        let std = Tensor::from_slice(&self.std);
        (x - mean) / std
    }
}

/// One linear layer's parameters.
#[derive(Debug)]
pub struct Linear {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Linear {
    pub fn deep_clone(&self) -> Linear {
        Linear {
            weight: self.weight.detach().copy(),
            bias: self.bias.detach().copy(),
        }
    }
}

/// Rows scored per block by [`Mlp::predict_proba`]: small enough that a
/// block's activations stay in the CPU's cache, large enough that libtorch's
/// per-call overhead is negligible.
pub const SCORING_BLOCK: usize = 4096;

/// A multi-layer perceptron classifier with its input standardization.
#[derive(Debug)]
pub struct Mlp {
    pub arch: Architecture,
    pub layers: Vec<Linear>,
    pub scaler: Scaler,
}

impl Clone for Mlp {
    fn clone(&self) -> Self {
        Mlp {
            arch: self.arch.clone(),
            layers: self.layers.iter().map(Linear::deep_clone).collect(),
            scaler: self.scaler.clone(),
        }
    }
}

/// What a training run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    /// Rows trained on (without the validation rows).
    pub rows: usize,
    /// Epochs run (fewer than the settings' when the run stopped early).
    pub epochs: usize,
    pub steps: usize,
    pub final_loss: f64,
    pub seconds: f64,
    /// Early stopping: the rows held out, the epoch whose weights were kept
    /// (0-based) and its validation loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<ValidationReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub rows: usize,
    pub best_epoch: usize,
    pub best_loss: f64,
    pub stopped_early: bool,
}

/// The held-out rows of an early-stopped run, as the lowest trainable
/// layer sees them.
struct Validation {
    x: Tensor,
    target: Tensor,
    labels: Tensor,
    weights: Option<Tensor>,
}

impl Mlp {
    /// A freshly initialised model: hidden layers by the policy's init
    /// (He-normal by default), the output layer Glorot-uniform, biases zero
    /// (as the tutorial's Keras model).
    pub fn new(arch: Architecture, init: Init, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let shapes = arch.layer_shapes();
        let last = shapes.len() - 1;
        let layers = shapes
            .iter()
            .enumerate()
            .map(|(i, &(fan_in, fan_out))| {
                let init = if i == last { Init::XavierUniform } else { init };
                let values: Vec<f32> = match init {
                    Init::HeNormal => {
                        let normal =
                            Normal::new(0.0, (2.0 / fan_in as f64).sqrt()).expect("positive std");
                        (0..fan_in * fan_out)
                            .map(|_| normal.sample(&mut rng) as f32)
                            .collect()
                    }
                    Init::XavierUniform => {
                        let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
                        (0..fan_in * fan_out)
                            .map(|_| rng.random_range(-a..a) as f32)
                            .collect()
                    }
                };
                Linear {
                    weight: Tensor::from_slice(&values).view([fan_out as i64, fan_in as i64]),
                    bias: Tensor::zeros([fan_out as i64], (Kind::Float, tch::Device::Cpu)),
                }
            })
            .collect();
        let inputs = arch.inputs;
        Mlp {
            arch,
            layers,
            scaler: Scaler::identity(inputs),
        }
    }

    /// Class probabilities, `[rows, classes]` (binary models give both
    /// columns).
    ///
    /// A ReLU network on a CPU with AVX2 and FMA is scored by
    /// [`kernel::ReluNet`], in plain Rust; other activations, and CPUs
    /// without those instructions, go through libtorch
    /// (`predict_proba_libtorch`). The two agree to 1e-5 (tested).
    pub fn predict_proba(&self, data: &Dataset) -> Result<Vec<f32>, ModelError> {
        if data.width != self.arch.inputs {
            return Err(ModelError::WidthMismatch {
                expected: self.arch.inputs,
                found: data.width,
            });
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        if self.arch.activation == Activation::Relu && kernel::ReluNet::is_fast_here() {
            return self.predict_proba_kernel(data);
        }
        self.predict_proba_libtorch(data)
    }

    /// The first layer with the scaler folded in: `W ((x - mean) / std) + b`
    /// = `(W / std) x + (b - (W / std) mean)`, so rows are scored as they
    /// are instead of being rewritten (two passes over every feature) first.
    /// Both scoring paths use it.
    fn folded_first_layer(&self) -> Result<(Tensor, Tensor), ModelError> {
        let first = &self.layers[0];
        if self.scaler.is_identity() {
            return Ok((first.weight.shallow_clone(), first.bias.shallow_clone()));
        }
        let mean = Tensor::from_slice(&self.scaler.mean);
        let std = Tensor::from_slice(&self.scaler.std);
        let weight = first.weight.f_div(&std.f_view([1, -1])?)?;
        let bias = first.bias.f_sub(&weight.f_mv(&mean)?)?;
        Ok((weight, bias))
    }

    /// The layers as plain weights for [`kernel::ReluNet`], the first one
    /// [folded](Mlp::folded_first_layer).
    fn relu_net(&self) -> Result<kernel::ReluNet, ModelError> {
        let dense = |weight: &Tensor, bias: &Tensor| -> Result<kernel::DenseLayer, ModelError> {
            let size = weight.size();
            let (outputs, inputs) = (size[0] as usize, size[1] as usize);
            let mut w = vec![0f32; outputs * inputs];
            weight
                .f_contiguous()?
                .f_copy_data(&mut w, outputs * inputs)?;
            let mut b = vec![0f32; outputs];
            bias.f_copy_data(&mut b, outputs)?;
            Ok(kernel::DenseLayer {
                inputs,
                outputs,
                weight: w,
                bias: b,
            })
        };
        let (first_weight, first_bias) = self.folded_first_layer()?;
        let mut layers = vec![dense(&first_weight, &first_bias)?];
        for layer in &self.layers[1..] {
            layers.push(dense(&layer.weight, &layer.bias)?);
        }
        Ok(kernel::ReluNet { layers })
    }

    fn predict_proba_kernel(&self, data: &Dataset) -> Result<Vec<f32>, ModelError> {
        let net = self.relu_net()?;
        let n = data.len();
        let classes = self.arch.classes;
        let mut out = vec![0f32; n * classes];
        if classes == 2 {
            // One logit per row, spread into both columns (1 - p, p).
            let mut logits = vec![0f32; n];
            net.logits(&data.features, data.width, &mut logits);
            for (pair, &z) in out.chunks_exact_mut(2).zip(&logits) {
                let p = 1.0 / (1.0 + (-z).exp());
                pair[0] = 1.0 - p;
                pair[1] = p;
            }
        } else {
            net.logits(&data.features, data.width, &mut out);
            for row in out.chunks_exact_mut(classes) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                for v in row.iter_mut() {
                    *v /= sum;
                }
            }
        }
        Ok(out)
    }

    /// [`Mlp::predict_proba`] through libtorch, for rows of the right width
    /// (at least one). Rows go through the network a block of
    /// [`SCORING_BLOCK`] rows at a time, into activation buffers allocated
    /// once per call, so the intermediate values stay in cache and only the
    /// probabilities are written to memory.
    fn predict_proba_libtorch(&self, data: &Dataset) -> Result<Vec<f32>, ModelError> {
        let _guard = tch::no_grad_guard();
        let (n, width) = (data.len(), data.width);
        let classes = self.arch.classes;
        let block = SCORING_BLOCK.min(n);
        let opts = (Kind::Float, tch::Device::Cpu);
        let buffers: Vec<Tensor> = self
            .arch
            .layer_shapes()
            .iter()
            .map(|&(_, out)| Tensor::zeros([block as i64, out as i64], opts))
            .collect();
        let mut weight_t: Vec<Tensor> = self.layers.iter().map(|l| l.weight.tr()).collect();
        let (first_weight, first_bias) = self.folded_first_layer()?;
        weight_t[0] = first_weight.tr();

        let last = self.layers.len() - 1;
        let outputs = self.arch.outputs();
        let mut out = vec![0f32; n * classes];
        let mut logits = vec![0f32; block * outputs];
        for start in (0..n).step_by(block) {
            let len = block.min(n - start);
            let mut h = Tensor::from_slice(&data.features[start * width..(start + len) * width])
                .view([len as i64, width as i64]);
            for (l, layer) in self.layers.iter().enumerate() {
                let mut z = buffers[l].narrow(0, 0, len as i64);
                let bias = if l == 0 { &first_bias } else { &layer.bias };
                let _ = bias.f_addmm_out(&z, &h, &weight_t[l])?;
                if l != last {
                    let _ = match self.arch.activation {
                        Activation::Relu => z.f_relu_()?,
                        Activation::Tanh => z.f_tanh_()?,
                        Activation::Gelu => z.f_gelu_("none")?,
                    };
                } else if classes == 2 {
                    let _ = z.f_sigmoid_()?;
                }
                h = z;
            }
            let block_out = &mut out[start * classes..(start + len) * classes];
            if classes == 2 {
                h.f_copy_data(&mut logits, len)?;
                for (pair, &p1) in block_out.chunks_exact_mut(2).zip(&logits[..len]) {
                    pair[0] = 1.0 - p1;
                    pair[1] = p1;
                }
            } else {
                h.f_softmax(-1, Kind::Float)?
                    .f_copy_data(block_out, len * classes)?;
            }
        }
        Ok(out)
    }

    /// Trains the model in place. `trainable` selects layers to update (all
    /// when `None`); the rest stay bit-identical.
    pub fn train(
        &mut self,
        data: &Dataset,
        settings: &TrainSettings,
        trainable: Option<&[usize]>,
    ) -> Result<TrainReport, ModelError> {
        self.train_weighted(data, None, settings, trainable)
    }

    /// [`Mlp::train`] with per-row instance weights in the loss: the batch
    /// loss is `sum(w * loss) / sum(w)`.
    ///
    /// The step is written out by hand (forward, the loss gradient, backward,
    /// the optimizer update) on buffers allocated once per run, with the
    /// trainable parameters, their gradients and the optimizer state each in
    /// one flat tensor: a step of a small MLP costs a few dozen libtorch
    /// calls and no allocation of activations, where autograd spent most of
    /// its time building and walking a graph. Layers below the lowest
    /// trainable one never change, so their output is computed once for all
    /// rows.
    pub fn train_weighted(
        &mut self,
        data: &Dataset,
        weights: Option<&[f32]>,
        settings: &TrainSettings,
        trainable: Option<&[usize]>,
    ) -> Result<TrainReport, ModelError> {
        data.check(&self.arch)?;
        if data.is_empty() {
            return Err(ModelError::NoRows);
        }
        let n = data.len();
        match weights {
            Some(w) if w.len() != n => {
                return Err(ModelError::WeightsMismatch {
                    rows: n,
                    weights: w.len(),
                })
            }
            Some(w) if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) => {
                return Err(ModelError::BadWeights)
            }
            _ => {}
        }
        let held_out = settings.early_stopping.validation_rows(n);
        if held_out == 0 {
            return self.train_rows(data, weights, None, settings, trainable);
        }
        // A seeded random share of the rows (not the newest: the tournament
        // already holds those out), each part kept in arrival order.
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x7a11_da7e);
        let mut is_held = vec![false; n];
        for i in rand::seq::index::sample(&mut rng, n, held_out) {
            is_held[i] = true;
        }
        let (held, kept): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| is_held[i]);
        let pick = |idx: &[usize]| weights.map(|w| idx.iter().map(|&i| w[i]).collect::<Vec<f32>>());
        let (train_w, val_w) = (pick(&kept), pick(&held));
        self.train_rows(
            &data.select(&kept),
            train_w.as_deref(),
            Some((&data.select(&held), val_w.as_deref())),
            settings,
            trainable,
        )
    }

    /// The training loop of [`Mlp::train_weighted`] on checked rows, with
    /// early stopping on `validation` when given.
    fn train_rows(
        &mut self,
        data: &Dataset,
        weights: Option<&[f32]>,
        validation: Option<(&Dataset, Option<&[f32]>)>,
        settings: &TrainSettings,
        trainable: Option<&[usize]>,
    ) -> Result<TrainReport, ModelError> {
        let started = std::time::Instant::now();
        let n = data.len();
        let w = weights.map(Tensor::from_slice);
        let _guard = tch::no_grad_guard();
        let mut trainable: Vec<usize> = match trainable {
            Some(t) => t
                .iter()
                .copied()
                .filter(|&i| i < self.layers.len())
                .collect(),
            None => (0..self.layers.len()).collect(),
        };
        trainable.sort_unstable();
        trainable.dedup();
        let Some(&lowest) = trainable.first() else {
            return Err(ModelError::NothingTrainable);
        };
        let x = self.input_of_layer(data, lowest);
        let binary = self.arch.classes == 2;
        let labels = Tensor::from_slice(&data.labels);
        let target = self.target_of(&labels);
        let validation = validation.map(|(v, vw)| {
            let labels = Tensor::from_slice(&v.labels);
            Validation {
                x: self.input_of_layer(v, lowest),
                target: self.target_of(&labels),
                labels,
                weights: vw.map(Tensor::from_slice),
            }
        });
        let mut step = FlatStep::new(self, &trainable, settings)?;
        let batch = settings.batch_size.max(1);
        // Per epoch the rows are gathered, in the epoch's order, into these
        // buffers; every batch is a fixed view of them.
        let epoch_x = x.empty_like();
        let epoch_logits = Tensor::zeros(
            [n as i64, self.arch.outputs() as i64],
            (Kind::Float, tch::Device::Cpu),
        );
        let epoch_target = target.empty_like();
        let epoch_labels = labels.empty_like();
        let epoch_w = w.as_ref().map(Tensor::empty_like);
        let batches: Vec<(usize, usize)> = (0..n)
            .step_by(batch)
            .map(|s| (s, batch.min(n - s)))
            .collect();
        let views: Vec<BatchViews> = batches
            .iter()
            .map(|&(s, len)| {
                let (s, len) = (s as i64, len as i64);
                BatchViews {
                    x: epoch_x.narrow(0, s, len),
                    logits: epoch_logits.narrow(0, s, len),
                    target: epoch_target.narrow(0, s, len),
                    labels: epoch_labels.narrow(0, s, len),
                    weights: epoch_w.as_ref().map(|t| t.narrow(0, s, len)),
                }
            })
            .collect();
        // Activations and gradients for each batch length (at most two: the
        // full batch and the remainder).
        let mut buffers: Vec<(usize, BatchBuffers)> = Vec::new();
        for &(_, len) in &batches {
            if !buffers.iter().any(|(l, _)| *l == len) {
                buffers.push((len, BatchBuffers::new(self, lowest, len)));
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed_5eed);
        let mut order: Vec<i64> = (0..n as i64).collect();
        let mut loss_sum = Tensor::zeros([], (Kind::Float, tch::Device::Cpu));
        let mut steps = 0;
        let mut last_loss = f64::NAN;
        let mut epochs_run = 0;
        // Early stopping: the best epoch so far, its loss and its weights.
        let mut best: Option<(usize, f64, Tensor)> = None;
        let mut stopped_early = false;
        for epoch in 0..settings.epochs {
            if settings.shuffle {
                order.shuffle(&mut rng);
            }
            if settings.shuffle || epoch == 0 {
                let idx = Tensor::from_slice(&order);
                let _ = x.f_index_select_out(&epoch_x, 0, &idx)?;
                let _ = target.f_index_select_out(&epoch_target, 0, &idx)?;
                if !binary {
                    let _ = labels.f_index_select_out(&epoch_labels, 0, &idx)?;
                }
                if let (Some(w), Some(ew)) = (&w, &epoch_w) {
                    let _ = w.f_index_select_out(ew, 0, &idx)?;
                }
            }
            let _ = loss_sum.f_zero_()?;
            for (views, &(_, len)) in views.iter().zip(&batches) {
                if cancelled() {
                    return Err(ModelError::Cancelled);
                }
                let bufs = &mut buffers
                    .iter_mut()
                    .find(|(l, _)| *l == len)
                    .expect("buffers for every batch length")
                    .1;
                self.flat_step(&mut step, bufs, views, &mut loss_sum)?;
                steps += 1;
            }
            if w.is_none() {
                // The epoch's summed loss, from the logits every step saw.
                let total = if binary {
                    epoch_logits.f_binary_cross_entropy_with_logits::<Tensor>(
                        &epoch_target,
                        None,
                        None,
                        Reduction::Sum,
                    )?
                } else {
                    epoch_logits.f_cross_entropy_loss::<Tensor>(
                        &epoch_labels,
                        None,
                        Reduction::Sum,
                        -100,
                        0.0,
                    )?
                };
                let _ = loss_sum.f_add_(&total)?;
            }
            last_loss = loss_sum.double_value(&[]) / n as f64;
            if !last_loss.is_finite() {
                return Err(ModelError::Diverged {
                    epoch,
                    loss: last_loss,
                });
            }
            epochs_run = epoch + 1;
            if let Some(v) = &validation {
                let loss = self.validation_loss(v, lowest)?;
                if !loss.is_finite() {
                    return Err(ModelError::Diverged { epoch, loss });
                }
                let es = &settings.early_stopping;
                match &mut best {
                    Some((best_epoch, best_loss, weights)) => {
                        if loss < *best_loss - es.min_delta {
                            (*best_epoch, *best_loss) = (epoch, loss);
                            weights.f_copy_(&step.params)?;
                        } else if epoch - *best_epoch >= es.patience {
                            stopped_early = true;
                        }
                    }
                    None => best = Some((epoch, loss, step.params.copy())),
                }
            }
            if stopped_early {
                epochs_done((settings.epochs - epoch) as u64);
                break;
            }
            epochs_done(1);
        }
        let validation = match (&validation, best) {
            (Some(v), Some((best_epoch, best_loss, weights))) => {
                // The best epoch's weights (the layers are views of params).
                step.params.f_copy_(&weights)?;
                Some(ValidationReport {
                    rows: v.x.size()[0] as usize,
                    best_epoch,
                    best_loss,
                    stopped_early,
                })
            }
            _ => None,
        };
        let max_abs = self.max_abs_weight();
        if !max_abs.is_finite() || max_abs > 1e6 {
            return Err(ModelError::Exploded {
                epoch: settings.epochs,
                max_abs,
            });
        }
        Ok(TrainReport {
            rows: n,
            epochs: epochs_run,
            steps,
            final_loss: last_loss,
            seconds: started.elapsed().as_secs_f64(),
            validation,
        })
    }

    /// The input of layer `lowest` for every row of `data`: scaled, then
    /// through the layers below it (frozen in a graft).
    fn input_of_layer(&self, data: &Dataset, lowest: usize) -> Tensor {
        let mut x = self.scaler.apply(&data.features_tensor());
        for layer in &self.layers[..lowest] {
            x = self.activate(&x.linear(&layer.weight, Some(&layer.bias)));
        }
        x
    }

    /// Binary: the 0/1 target column of BCE; multiclass: one-hot rows (the
    /// gradient of softmax cross entropy is softmax - one_hot).
    fn target_of(&self, labels: &Tensor) -> Tensor {
        if self.arch.classes == 2 {
            labels.to_kind(Kind::Float).view([-1, 1])
        } else {
            labels
                .one_hot(self.arch.classes as i64)
                .to_kind(Kind::Float)
        }
    }

    /// Mean (or weighted mean) loss of the current weights on the held-out
    /// rows.
    fn validation_loss(&self, v: &Validation, lowest: usize) -> Result<f64, ModelError> {
        let last = self.layers.len() - 1;
        let mut h = v.x.shallow_clone();
        for l in lowest..=last {
            let layer = &self.layers[l];
            h = h.f_linear(&layer.weight, Some(&layer.bias))?;
            if l != last {
                h = self.activate(&h);
            }
        }
        let per_row = if self.arch.classes == 2 {
            h.f_binary_cross_entropy_with_logits::<Tensor>(&v.target, None, None, Reduction::None)?
                .f_view([-1])?
        } else {
            h.f_cross_entropy_loss::<Tensor>(&v.labels, None, Reduction::None, -100, 0.0)?
        };
        // Weighted mean; plain mean without weights (or all-zero ones).
        if let Some(w) = &v.weights {
            let total = w.f_sum(Kind::Double)?.double_value(&[]);
            if total > 0.0 {
                return Ok(per_row.f_mul(w)?.f_sum(Kind::Double)?.double_value(&[]) / total);
            }
        }
        Ok(per_row.f_mean(Kind::Double)?.double_value(&[]))
    }

    fn activate(&self, z: &Tensor) -> Tensor {
        match self.arch.activation {
            Activation::Relu => z.relu(),
            Activation::Tanh => z.tanh(),
            Activation::Gelu => z.gelu("none"),
        }
    }

    /// One optimizer step on one batch: forward into `bufs`, the gradient of
    /// the batch loss, backward down to the lowest trainable layer, and the
    /// update of the flat parameters. Adds the batch's summed loss to
    /// `loss_sum`.
    fn flat_step(
        &self,
        step: &mut FlatStep,
        bufs: &mut BatchBuffers,
        batch: &BatchViews,
        loss_sum: &mut Tensor,
    ) -> Result<(), ModelError> {
        let last = self.layers.len() - 1;
        let lowest = bufs.lowest;
        let len = batch.x.size()[0];
        // Forward: z = h W^T + b, h = act(z).
        for l in lowest..=last {
            let input = if l == lowest {
                &batch.x
            } else {
                &bufs.h[l - 1]
            };
            // The logits go to the epoch's logits buffer: the epoch's loss
            // is computed from it once, at the end of the epoch.
            let out = if l == last { &batch.logits } else { &bufs.z[l] };
            let layer = &self.layers[l];
            let _ = layer.bias.f_addmm_out(out, input, &step.weight_t[l])?;
            if l != last {
                let _ = match self.arch.activation {
                    Activation::Relu => bufs.z[l].f_relu_out(&bufs.h[l])?,
                    Activation::Tanh => bufs.z[l].f_tanh_out(&bufs.h[l])?,
                    Activation::Gelu => bufs.z[l].f_gelu_out(&bufs.h[l], "none")?,
                };
            }
        }
        // The gradient of the loss with respect to the logits, scaled by the
        // batch's row weights and, for SGD, by the learning rate (so the
        // update is one subtraction). A weighted loss is summed here, batch
        // by batch; an unweighted one by the caller, once per epoch.
        let logits = &batch.logits;
        let dz = &mut bufs.dz[last];
        let binary = self.arch.classes == 2;
        if binary {
            let _ = logits.f_sigmoid_out(dz)?;
        } else {
            let _ = logits.f_internal_softmax_out(dz, 1, false)?;
        }
        let _ = dz.f_sub_(&batch.target)?;
        match &batch.weights {
            None => {
                let _ = dz.f_mul_scalar_(step.grad_scale / len as f64)?;
            }
            Some(wb) => {
                let per_row = if binary {
                    logits.f_binary_cross_entropy_with_logits::<Tensor>(
                        &batch.target,
                        None,
                        None,
                        Reduction::None,
                    )?
                } else {
                    logits.f_cross_entropy_loss::<Tensor>(
                        &batch.labels,
                        None,
                        Reduction::None,
                        -100,
                        0.0,
                    )?
                };
                // All-zero weights in a batch would divide by zero.
                let total = wb.f_sum(Kind::Float)?.f_clamp_min(1e-12)?;
                let weighted = per_row.f_view([-1])?.f_mul(wb)?.f_sum(Kind::Float)?;
                let _ = loss_sum.f_add_(&weighted.f_div(&total)?.f_mul_scalar(len)?)?;
                let row_scale = wb.f_div(&total)?.f_mul_scalar(step.grad_scale)?;
                let _ = dz.f_mul_(&row_scale.f_view([len, 1])?)?;
            }
        }
        // Backward.
        for l in (lowest..=last).rev() {
            let input = if l == lowest {
                &batch.x
            } else {
                &bufs.h[l - 1]
            };
            if let Some((gw, gb)) = &step.grads[l] {
                let _ = bufs.dz_t[l].f_mm_out(gw, input)?;
                let _ = bufs.dz[l].f_sum_intlist_out(gb, [0i64].as_slice(), false, None)?;
            }
            if l > lowest {
                let dh = &bufs.dh[l - 1];
                let _ = bufs.dz[l].f_mm_out(dh, &self.layers[l].weight)?;
                let dz_below = &bufs.dz[l - 1];
                let _ = match self.arch.activation {
                    Activation::Relu => {
                        bufs.h[l - 1].f_threshold_backward_grad_input(dz_below, dh, 0.0)?
                    }
                    Activation::Tanh => {
                        Tensor::f_tanh_backward_grad_input(dz_below, dh, &bufs.h[l - 1])?
                    }
                    Activation::Gelu => {
                        bufs.z[l - 1].f_gelu_backward_grad_input(dz_below, dh, "none")?
                    }
                };
            }
        }
        step.update()
    }

    fn max_abs_weight(&self) -> f64 {
        self.layers
            .iter()
            .flat_map(|l| [&l.weight, &l.bias])
            .map(|t| t.abs().max().double_value(&[]))
            .fold(0.0, f64::max)
    }

    /// Serializes to safetensors bytes (see the module docs for the layout).
    pub fn to_safetensors(&self) -> Result<Vec<u8>, ModelError> {
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let (fan_in, fan_out) = self.arch.layer_shapes()[i];
            tensors.push((
                format!("{}.weight", 2 * i),
                vec![fan_out, fan_in],
                tensor_values(&layer.weight)?,
            ));
            tensors.push((
                format!("{}.bias", 2 * i),
                vec![fan_out],
                tensor_values(&layer.bias)?,
            ));
        }
        let w = self.arch.inputs;
        tensors.push(("input.mean".into(), vec![w], self.scaler.mean.clone()));
        tensors.push(("input.std".into(), vec![w], self.scaler.std.clone()));
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
            .into_iter()
            .map(|(name, shape, values)| {
                let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name, shape, raw)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
            .iter()
            .map(|(name, shape, raw)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), raw)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| ModelError::Checkpoint(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        // One metadata key: safetensors takes a HashMap, whose order is
        // random, and the file's bytes must be reproducible (checksums).
        let header = serde_json::json!({"format": "driftd-mlp-v1", "architecture": &self.arch});
        let metadata: HashMap<String, String> =
            HashMap::from([("driftd".to_string(), header.to_string())]);
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| ModelError::Checkpoint(e.to_string()))
    }

    /// Loads a checkpoint and checks every tensor's name and shape against
    /// `arch`.
    pub fn from_safetensors(bytes: &[u8], arch: &Architecture) -> Result<Mlp, ModelError> {
        Self::decode(bytes, arch, true)
    }

    /// Loads the state_dict of a PyTorch `nn.Sequential(Linear, Act, ...,
    /// Linear)` saved with `safetensors.torch.save_file`, checking every
    /// tensor against `arch`. `input.mean` / `input.std` are optional: a
    /// model without them takes raw features (identity scaler), as the
    /// `nn.Sequential` alone does in PyTorch.
    pub fn from_pytorch_state_dict(bytes: &[u8], arch: &Architecture) -> Result<Mlp, ModelError> {
        Self::decode(bytes, arch, false)
    }

    fn decode(bytes: &[u8], arch: &Architecture, scaler_required: bool) -> Result<Mlp, ModelError> {
        let values = CheckpointValues::parse(bytes, arch, scaler_required)?;
        let layers = values
            .layers
            .iter()
            .map(|(w, b)| Linear {
                weight: Tensor::from_slice(w).view([b.len() as i64, (w.len() / b.len()) as i64]),
                bias: Tensor::from_slice(b),
            })
            .collect();
        Ok(Mlp {
            arch: arch.clone(),
            layers,
            scaler: values.scaler,
        })
    }
}

/// Ensemble members must agree on inputs and classes; weights must be
/// non-negative with a positive sum.
pub fn check_ensemble(archs: &[&Architecture], weights: &[f64]) -> Result<(), ModelError> {
    let first = archs.first().ok_or(ModelError::NoRows)?;
    let (inputs, classes) = (first.inputs, first.classes);
    if let Some(a) = archs
        .iter()
        .find(|a| a.inputs != inputs || a.classes != classes)
    {
        return Err(ModelError::Checkpoint(format!(
            "ensemble members disagree: {} inputs / {} classes vs {} / {}",
            a.inputs, a.classes, inputs, classes
        )));
    }
    if weights.len() != archs.len()
        || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
        || weights.iter().sum::<f64>() <= 0.0
    {
        return Err(ModelError::Checkpoint(format!(
            "ensemble weights {weights:?} must be {} non-negative numbers with a positive sum",
            archs.len()
        )));
    }
    Ok(())
}

/// Checks a driftd checkpoint against `arch` (names, dtypes, shapes, finite
/// values) without libtorch: what the registry's verification runs.
pub fn verify_checkpoint(bytes: &[u8], arch: &Architecture) -> Result<(), ModelError> {
    CheckpointValues::parse(bytes, arch, true).map(|_| ())
}

/// A checkpoint's values, checked against an architecture; plain vectors so
/// that checking needs no libtorch.
struct CheckpointValues {
    /// (weight row-major `[out, in]`, bias) per linear layer.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    scaler: Scaler,
}

impl CheckpointValues {
    fn parse(bytes: &[u8], arch: &Architecture, scaler_required: bool) -> Result<Self, ModelError> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| ModelError::Checkpoint(format!("not a valid safetensors file: {e}")))?;
        let shapes = arch.layer_shapes();
        let mut expected: Vec<(String, Vec<usize>)> = Vec::new();
        for (i, &(fan_in, fan_out)) in shapes.iter().enumerate() {
            expected.push((format!("{}.weight", 2 * i), vec![fan_out, fan_in]));
            expected.push((format!("{}.bias", 2 * i), vec![fan_out]));
        }
        let has_scaler = st.tensor("input.mean").is_ok() || st.tensor("input.std").is_ok();
        if scaler_required || has_scaler {
            expected.push(("input.mean".into(), vec![arch.inputs]));
            expected.push(("input.std".into(), vec![arch.inputs]));
        }
        let mut found: Vec<String> = st.names().into_iter().map(|s| s.to_string()).collect();
        found.sort();
        for name in &found {
            if !expected.iter().any(|(n, _)| n == name) {
                let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
                return Err(ModelError::Checkpoint(format!(
                    "tensor {name:?} is not part of the architecture (inputs {}, hidden {:?}, {} outputs), whose tensors are {names:?}",
                    arch.inputs,
                    arch.hidden,
                    arch.outputs()
                )));
            }
        }
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, ModelError> {
            let view = st.tensor(name).map_err(|_| {
                ModelError::Checkpoint(format!(
                    "tensor {name:?} is missing (expected shape {shape:?})"
                ))
            })?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(ModelError::Checkpoint(format!(
                    "tensor {name:?} has dtype {:?}, expected F32 (in PyTorch: model.float() before saving)",
                    view.dtype()
                )));
            }
            if view.shape() != shape {
                return Err(ModelError::Checkpoint(format!(
                    "tensor {name:?} has shape {:?}, expected {shape:?}",
                    view.shape()
                )));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let mut layers = Vec::new();
        for (i, &(fan_in, fan_out)) in shapes.iter().enumerate() {
            let w = get(&format!("{}.weight", 2 * i), &[fan_out, fan_in])?;
            let b = get(&format!("{}.bias", 2 * i), &[fan_out])?;
            if !w.iter().chain(&b).all(|x| x.is_finite()) {
                return Err(ModelError::Checkpoint(format!(
                    "layer {} holds NaN or infinite values",
                    2 * i
                )));
            }
            layers.push((w, b));
        }
        let scaler = if scaler_required || has_scaler {
            Scaler {
                mean: get("input.mean", &[arch.inputs])?,
                std: get("input.std", &[arch.inputs])?,
            }
        } else {
            Scaler::identity(arch.inputs)
        };
        if scaler.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || scaler.mean.iter().any(|m| !m.is_finite())
        {
            return Err(ModelError::Checkpoint(
                "input.mean must be finite and input.std positive and finite".into(),
            ));
        }
        Ok(CheckpointValues { layers, scaler })
    }
}

fn tensor_values(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    Ok(Vec::<f32>::try_from(t.detach().contiguous().view([-1]))?)
}

/// One batch's rows: fixed views of the per-epoch gathered buffers.
struct BatchViews {
    x: Tensor,
    /// Where the forward pass writes the batch's logits.
    logits: Tensor,
    /// BCE targets `[len, 1]`, or one-hot rows `[len, classes]`.
    target: Tensor,
    /// Class indices (used by multiclass losses only).
    labels: Tensor,
    weights: Option<Tensor>,
}

/// Activations and gradients of one batch length, per layer `l`:
/// `z[l]` pre-activation, `h[l]` activation, `dz[l]` (and its transposed
/// view) the gradient at `z[l]`, `dh[l]` the gradient at `h[l]`; all
/// `[len, width of l]`.
struct BatchBuffers {
    lowest: usize,
    z: Vec<Tensor>,
    h: Vec<Tensor>,
    dz: Vec<Tensor>,
    dz_t: Vec<Tensor>,
    dh: Vec<Tensor>,
}

impl BatchBuffers {
    fn new(mlp: &Mlp, lowest: usize, len: usize) -> Self {
        let opts = (Kind::Float, tch::Device::Cpu);
        let shapes = mlp.arch.layer_shapes();
        let make = || -> Vec<Tensor> {
            shapes
                .iter()
                .map(|&(_, out)| Tensor::zeros([len as i64, out as i64], opts))
                .collect()
        };
        let dz = make();
        let dz_t = dz.iter().map(Tensor::tr).collect();
        BatchBuffers {
            lowest,
            z: make(),
            h: make(),
            dz,
            dz_t,
            dh: make(),
        }
    }
}

/// The trainable parameters, their gradients and the optimizer state, each
/// one flat tensor; the trained layers' weights and biases are views of
/// `params`, their gradients views of `grad`, so the update of every layer
/// is a handful of libtorch calls.
struct FlatStep {
    kind: OptimizerKind,
    lr: f64,
    momentum: f64,
    /// Multiplies the loss gradient: the learning rate for SGD, folded in so
    /// that the update is `v = momentum * v + lr * g; p -= v` (PyTorch's
    /// `buf = momentum * buf + g; p -= lr * buf`, scaled by lr); 1 for Adam.
    grad_scale: f64,
    params: Tensor,
    grad: Tensor,
    /// Per layer: views of `grad` for (weight, bias) of trained layers.
    grads: Vec<Option<(Tensor, Tensor)>>,
    /// Per layer: the weight transposed (a view), the right operand of the
    /// forward matmul.
    weight_t: Vec<Tensor>,
    /// SGD: the velocity; Adam: the first moment.
    state1: Tensor,
    /// Adam: the second moment.
    state2: Tensor,
    scratch: Tensor,
    scratch2: Tensor,
    steps: i32,
}

impl FlatStep {
    /// Moves the weights of the `trainable` layers (sorted, non-empty) of
    /// `mlp` into one flat tensor and makes the layers views of it.
    fn new(
        mlp: &mut Mlp,
        trainable: &[usize],
        settings: &TrainSettings,
    ) -> Result<Self, ModelError> {
        let pieces: Vec<Tensor> = trainable
            .iter()
            .flat_map(|&l| {
                let layer = &mlp.layers[l];
                [layer.weight.detach().reshape([-1]), layer.bias.detach()]
            })
            .collect();
        let params = Tensor::f_cat(&pieces, 0)?;
        let grad = params.f_zeros_like()?;
        let mut grads: Vec<Option<(Tensor, Tensor)>> = mlp.layers.iter().map(|_| None).collect();
        let shapes = mlp.arch.layer_shapes();
        let mut offset = 0i64;
        for &l in trainable {
            let (fan_in, fan_out) = (shapes[l].0 as i64, shapes[l].1 as i64);
            let view = |t: &Tensor, at: i64, len: i64| t.narrow(0, at, len);
            let layer = &mut mlp.layers[l];
            layer.weight = view(&params, offset, fan_in * fan_out).view([fan_out, fan_in]);
            layer.bias = view(&params, offset + fan_in * fan_out, fan_out);
            grads[l] = Some((
                view(&grad, offset, fan_in * fan_out).view([fan_out, fan_in]),
                view(&grad, offset + fan_in * fan_out, fan_out),
            ));
            offset += fan_in * fan_out + fan_out;
        }
        let weight_t = mlp.layers.iter().map(|layer| layer.weight.tr()).collect();
        let grad_scale = match settings.optimizer {
            OptimizerKind::Sgd => settings.learning_rate,
            OptimizerKind::Adam => 1.0,
        };
        Ok(FlatStep {
            kind: settings.optimizer,
            lr: settings.learning_rate,
            momentum: settings.momentum,
            grad_scale,
            state1: params.f_zeros_like()?,
            state2: params.f_zeros_like()?,
            scratch: params.f_zeros_like()?,
            scratch2: params.f_zeros_like()?,
            params,
            grad,
            grads,
            weight_t,
            steps: 0,
        })
    }

    /// Applies the gradient in `grad` to `params`.
    fn update(&mut self) -> Result<(), ModelError> {
        self.steps += 1;
        match self.kind {
            OptimizerKind::Sgd => {
                if self.momentum > 0.0 {
                    let _ = self.state1.f_mul_scalar_(self.momentum)?;
                    let _ = self.state1.f_add_(&self.grad)?;
                    let _ = self.params.f_sub_(&self.state1)?;
                } else {
                    let _ = self.params.f_sub_(&self.grad)?;
                }
            }
            OptimizerKind::Adam => {
                // PyTorch's Adam (no weight decay, no amsgrad).
                let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
                let _ = self.state1.f_lerp_(&self.grad, 1.0 - b1)?;
                let _ = self.state2.f_mul_scalar_(b2)?;
                let _ = self.grad.f_mul_out(&self.scratch, &self.grad)?;
                let _ = self.scratch.f_mul_scalar_(1.0 - b2)?;
                let _ = self.state2.f_add_(&self.scratch)?;
                let bias1 = 1.0 - b1.powi(self.steps);
                let bias2 = 1.0 - b2.powi(self.steps);
                let _ = self.state2.f_sqrt_out(&self.scratch)?;
                let _ = self.scratch.f_mul_scalar_(1.0 / bias2.sqrt())?;
                let _ = self.scratch.f_add_scalar_(eps)?;
                let _ = self.state1.f_div_out(&self.scratch2, &self.scratch)?;
                let _ = self.scratch2.f_mul_scalar_(self.lr / bias1)?;
                let _ = self.params.f_sub_(&self.scratch2)?;
            }
        }
        Ok(())
    }
}

/// Accuracy, log loss and (binary tasks) ROC AUC of probabilities
/// (`[rows, classes]`) against labels.
pub fn score(probs: &[f32], labels: &[i64], classes: usize) -> Scores {
    let n = labels.len();
    if n == 0 {
        return Scores {
            rows: 0,
            accuracy: f64::NAN,
            log_loss: f64::NAN,
            auc: None,
        };
    }
    let mut correct = 0usize;
    let mut loss = 0f64;
    for (i, &label) in labels.iter().enumerate() {
        let row = &probs[i * classes..(i + 1) * classes];
        if predicted_class(row) == label as usize {
            correct += 1;
        }
        let p = (row[label as usize] as f64).clamp(1e-7, 1.0);
        loss -= p.ln();
    }
    let auc = (classes == 2)
        .then(|| {
            let p1: Vec<f32> = (0..n).map(|i| probs[i * 2 + 1]).collect();
            roc_auc(&p1, labels)
        })
        .flatten();
    Scores {
        rows: n,
        accuracy: correct as f64 / n as f64,
        log_loss: loss / n as f64,
        auc,
    }
}

/// ROC AUC as the Mann-Whitney statistic (ties count one half); `None`
/// when only one class is present.
pub fn roc_auc(scores: &[f32], labels: &[i64]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Average ranks over ties, then sum the ranks of the positives.
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] == 1 {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Argmax with ties going to the lower class (0.5 predicts class 0, as
/// `p > 0.5` does).
pub fn predicted_class(row: &[f32]) -> usize {
    let mut best = 0;
    for (c, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = c;
        }
    }
    best
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub rows: usize,
    pub accuracy: f64,
    pub log_loss: f64,
    /// ROC AUC, binary tasks only.
    #[serde(default)]
    pub auc: Option<f64>,
}

/// What a version serves: one MLP, or an ensemble whose members'
/// probabilities are averaged with weights. Members keep their own input
/// standardization.
#[derive(Debug, Clone)]
pub enum Classifier {
    Single(Mlp),
    Ensemble {
        members: Vec<Mlp>,
        weights: Vec<f64>,
    },
}

impl Classifier {
    /// An ensemble of `members` with `weights` (normalised here), checked
    /// for matching inputs and classes.
    pub fn ensemble(members: Vec<Mlp>, weights: Vec<f64>) -> Result<Classifier, ModelError> {
        let archs: Vec<&Architecture> = members.iter().map(|m| &m.arch).collect();
        check_ensemble(&archs, &weights)?;
        let total: f64 = weights.iter().sum();
        Ok(Classifier::Ensemble {
            members,
            weights: weights.iter().map(|w| w / total).collect(),
        })
    }

    pub fn members(&self) -> &[Mlp] {
        match self {
            Classifier::Single(m) => std::slice::from_ref(m),
            Classifier::Ensemble { members, .. } => members,
        }
    }

    pub fn weights(&self) -> Vec<f64> {
        match self {
            Classifier::Single(_) => vec![1.0],
            Classifier::Ensemble { weights, .. } => weights.clone(),
        }
    }

    /// The newest member: what fine-tuning and grafting start from.
    pub fn newest(&self) -> &Mlp {
        self.members().last().expect("a classifier has a member")
    }

    pub fn inputs(&self) -> usize {
        self.newest().arch.inputs
    }

    pub fn classes(&self) -> usize {
        self.newest().arch.classes
    }

    /// Weighted average of the members' class probabilities.
    pub fn predict_proba(&self, data: &Dataset) -> Result<Vec<f32>, ModelError> {
        match self {
            Classifier::Single(m) => m.predict_proba(data),
            Classifier::Ensemble { members, weights } => {
                let mut acc: Vec<f64> = Vec::new();
                for (m, &w) in members.iter().zip(weights) {
                    let p = m.predict_proba(data)?;
                    if acc.is_empty() {
                        acc = vec![0.0; p.len()];
                    }
                    for (a, v) in acc.iter_mut().zip(&p) {
                        *a += w * *v as f64;
                    }
                }
                Ok(acc.into_iter().map(|v| v as f32).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize, seed: u64) -> Dataset {
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

    #[test]
    fn the_scoring_kernel_agrees_with_libtorch() {
        // A fitted scaler (folded into the first layer), a trained model,
        // binary and multi-class, row counts off the block size.
        for classes in [2, 3] {
            let data = toy(301, 5);
            let mut model = Mlp::new(arch(classes), Init::HeNormal, 11);
            model.scaler = Scaler::fit(&data);
            model.train(&data, &settings(2), None).unwrap();
            let kernel = model.predict_proba(&data).unwrap();
            let libtorch = model.predict_proba_libtorch(&data).unwrap();
            assert_eq!(kernel.len(), libtorch.len());
            for (k, t) in kernel.iter().zip(&libtorch) {
                assert!((k - t).abs() < 1e-5, "{classes} classes: {k} vs {t}");
            }
            for row in kernel.chunks_exact(classes) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }

    fn arch(classes: usize) -> Architecture {
        Architecture {
            inputs: 2,
            hidden: vec![8, 4],
            activation: Activation::Relu,
            classes,
        }
    }

    fn settings(seed: u64) -> TrainSettings {
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

    #[test]
    fn early_stopping_keeps_the_best_epoch_and_stops() {
        tch::set_num_threads(1);
        let data = toy(2000, 5);
        let es = EarlyStopping {
            validation_fraction: 0.2,
            patience: 3,
            min_delta: 1e-3,
        };
        let s = TrainSettings {
            epochs: 200,
            early_stopping: es,
            ..settings(4)
        };
        let mut m = Mlp::new(arch(2), Init::HeNormal, 4);
        m.scaler = Scaler::fit(&data);
        let report = m.train(&data, &s, None).unwrap();
        let v = report.validation.clone().expect("a validation report");
        assert_eq!(v.rows, 400);
        assert_eq!(report.rows, 1600);
        assert!(v.stopped_early, "{report:?}");
        assert!(report.epochs < 200, "{report:?}");
        assert_eq!(report.epochs, v.best_epoch + 1 + es.patience, "{report:?}");
        assert_eq!(report.steps, report.epochs * 100);
        // The kept weights are the best epoch's: their validation loss is
        // the reported one (the same held-out rows, drawn with the seed).
        let mut is_held = vec![false; 2000];
        let mut rng = ChaCha8Rng::seed_from_u64(s.seed ^ 0x7a11_da7e);
        for i in rand::seq::index::sample(&mut rng, 2000, 400) {
            is_held[i] = true;
        }
        let held: Vec<usize> = (0..2000).filter(|&i| is_held[i]).collect();
        let val = data.select(&held);
        let p = m.predict_proba(&val).unwrap();
        let loss = score(&p, &val.labels, 2).log_loss;
        assert!(
            (loss - v.best_loss).abs() < 1e-4,
            "{loss} vs {}",
            v.best_loss
        );
        // Bit-identical from run to run, like any training.
        let mut again = Mlp::new(arch(2), Init::HeNormal, 4);
        again.scaler = Scaler::fit(&data);
        let report2 = again.train(&data, &s, None).unwrap();
        assert_eq!(report.epochs, report2.epochs);
        assert!(m.layers[0].weight.equal(&again.layers[0].weight));
        assert!(m.layers[2].bias.equal(&again.layers[2].bias));
    }

    #[test]
    fn early_stopping_is_off_for_few_rows_and_at_fraction_zero() {
        tch::set_num_threads(1);
        let small = toy(200, 6); // 20 held-out rows: below the minimum
        let on = TrainSettings {
            epochs: 3,
            early_stopping: EarlyStopping::default(),
            ..settings(2)
        };
        let mut m = Mlp::new(arch(2), Init::HeNormal, 2);
        let r = m.train(&small, &on, None).unwrap();
        assert!(r.validation.is_none());
        assert_eq!((r.rows, r.epochs), (200, 3));
        let big = toy(1000, 6);
        let mut m = Mlp::new(arch(2), Init::HeNormal, 2);
        let r = m.train(&big, &on, None).unwrap();
        assert_eq!(r.validation.as_ref().map(|v| v.rows), Some(100));
        assert_eq!(r.rows, 900);
        let off = TrainSettings {
            early_stopping: EarlyStopping::OFF,
            ..on
        };
        let mut m = Mlp::new(arch(2), Init::HeNormal, 2);
        let r = m.train(&big, &off, None).unwrap();
        assert!(r.validation.is_none());
        assert_eq!(r.rows, 1000);
    }

    #[test]
    fn training_learns_and_is_bit_identical() {
        tch::set_num_threads(1);
        let data = toy(400, 3);
        let run = || {
            let mut m = Mlp::new(arch(2), Init::HeNormal, 7);
            m.scaler = Scaler::fit(&data);
            m.train(&data, &settings(7), None).unwrap();
            m
        };
        let (a, b) = (run(), run());
        // The whole checkpoint, header included, is byte-identical.
        assert!(a.to_safetensors().unwrap() == b.to_safetensors().unwrap());
        let s = score(&a.predict_proba(&data).unwrap(), &data.labels, 2);
        assert!(s.accuracy > 0.9, "{s:?}");
    }

    /// The hand-written backward pass against autograd: one full-batch SGD
    /// step at rate 1 without momentum moves every parameter by exactly
    /// minus its gradient.
    #[test]
    fn hand_written_gradients_match_autograd() {
        let data = toy(40, 12);
        let row_weights: Vec<f32> = (0..40).map(|i| (i % 5) as f32 * 0.5).collect();
        for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
            for classes in [2, 3] {
                for weights in [None, Some(row_weights.as_slice())] {
                    let mut data = data.clone();
                    if classes == 3 {
                        data.labels
                            .iter_mut()
                            .enumerate()
                            .for_each(|(i, l)| *l += (i % 2) as i64);
                    }
                    let mut a = arch(classes);
                    a.activation = activation;
                    let mut m = Mlp::new(a, Init::HeNormal, 9);
                    m.scaler = Scaler::fit(&data);
                    let before = m.clone();
                    let s = TrainSettings {
                        learning_rate: 1.0,
                        momentum: 0.0,
                        epochs: 1,
                        batch_size: 40,
                        shuffle: false,
                        ..settings(1)
                    };
                    let report = m.train_weighted(&data, weights, &s, None).unwrap();

                    // The same loss through autograd.
                    let params: Vec<Tensor> = before
                        .layers
                        .iter()
                        .flat_map(|l| [&l.weight, &l.bias])
                        .map(|t| t.detach().copy().set_requires_grad(true))
                        .collect();
                    let mut h = before.scaler.apply(&data.features_tensor());
                    for (i, p) in params.chunks(2).enumerate() {
                        h = h.linear(&p[0], Some(&p[1]));
                        if i + 1 < params.len() / 2 {
                            h = before.activate(&h);
                        }
                    }
                    let labels = Tensor::from_slice(&data.labels);
                    let per_row = if classes == 2 {
                        h.binary_cross_entropy_with_logits::<Tensor>(
                            &labels.to_kind(Kind::Float).view([-1, 1]),
                            None,
                            None,
                            Reduction::None,
                        )
                        .view([-1])
                    } else {
                        h.cross_entropy_loss::<Tensor>(&labels, None, Reduction::None, -100, 0.0)
                    };
                    let loss = match weights {
                        None => per_row.mean(Kind::Float),
                        Some(w) => {
                            let w = Tensor::from_slice(w);
                            (per_row * &w).sum(Kind::Float) / w.sum(Kind::Float)
                        }
                    };
                    let reported = report.final_loss - loss.double_value(&[]);
                    assert!(reported.abs() < 1e-5, "reported loss off by {reported}");
                    loss.backward();
                    let after: Vec<&Tensor> =
                        m.layers.iter().flat_map(|l| [&l.weight, &l.bias]).collect();
                    for (i, (p, new)) in params.iter().zip(after).enumerate() {
                        let step = &p.detach() - new;
                        let diff = (step - p.grad()).abs().max().double_value(&[]);
                        assert!(
                            diff < 1e-5,
                            "{activation:?}, {classes} classes, weights {}: tensor {i} off by {diff}",
                            weights.is_some()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn concurrent_trainings_match_sequential_ones_bit_for_bit() {
        let data = toy(200, 13);
        let train = |_: &(), seed: &u64| {
            let mut m = Mlp::new(arch(2), Init::HeNormal, *seed);
            m.train(&data, &settings(*seed), None).unwrap();
            m.to_safetensors().unwrap()
        };
        let seeds = [1u64, 2, 3, 4, 5];
        let sequential = run_concurrently(vec![()], &seeds, train);
        let concurrent = run_concurrently(vec![(), ()], &seeds, train);
        assert_eq!(sequential.len(), 5);
        assert!(sequential == concurrent);
        assert!(sequential[0] != sequential[1]);
    }

    #[test]
    fn scoring_in_blocks_matches_scoring_row_ranges() {
        let data = toy(2 * SCORING_BLOCK + 17, 14);
        for (classes, standardize) in [(2, false), (2, true), (3, true)] {
            let mut m = Mlp::new(arch(classes), Init::HeNormal, 6);
            if standardize {
                m.scaler = Scaler::fit(&data);
            }
            let all = m.predict_proba(&data).unwrap();
            assert_eq!(all.len(), data.len() * classes);
            let mut parts = Vec::new();
            for (a, b) in [
                (0, 5),
                (5, SCORING_BLOCK + 3),
                (SCORING_BLOCK + 3, data.len()),
            ] {
                parts.extend(m.predict_proba(&data.slice(a, b)).unwrap());
            }
            let max_diff = all
                .iter()
                .zip(&parts)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(max_diff < 1e-6, "{classes} classes: {max_diff}");
            for row in all.chunks(classes) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn adam_and_multiclass_train() {
        let mut data = toy(300, 4);
        for (i, l) in data.labels.iter_mut().enumerate() {
            *l += (i % 2) as i64; // 0..3
        }
        let mut m = Mlp::new(arch(3), Init::XavierUniform, 1);
        m.scaler = Scaler::fit(&data);
        let mut s = settings(1);
        s.optimizer = OptimizerKind::Adam;
        s.learning_rate = 0.01;
        let report = m.train(&data, &s, None).unwrap();
        assert!(report.final_loss.is_finite());
        let probs = m.predict_proba(&data).unwrap();
        assert_eq!(probs.len(), 300 * 3);
        let sum: f32 = probs[0..3].iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }

    #[test]
    fn frozen_layers_stay_bit_identical() {
        let data = toy(200, 5);
        let mut m = Mlp::new(arch(2), Init::HeNormal, 2);
        let before = tensor_values(&m.layers[0].weight).unwrap();
        m.train(&data, &settings(2), Some(&[1, 2])).unwrap();
        assert_eq!(before, tensor_values(&m.layers[0].weight).unwrap());
    }

    #[test]
    fn diverging_training_is_an_error() {
        let data = toy(100, 6);
        let mut m = Mlp::new(arch(2), Init::HeNormal, 3);
        // No standardization and a huge rate: the loss blows up.
        let mut s = settings(3);
        s.learning_rate = 1e6;
        let err = m.train(&data, &s, None).unwrap_err();
        assert!(
            matches!(
                err,
                ModelError::Diverged { .. } | ModelError::Exploded { .. }
            ),
            "{err}"
        );
    }

    #[test]
    fn checkpoint_round_trips_and_checks_shapes() {
        let data = toy(50, 8);
        let mut m = Mlp::new(arch(2), Init::HeNormal, 4);
        m.scaler = Scaler::fit(&data);
        let bytes = m.to_safetensors().unwrap();
        let back = Mlp::from_safetensors(&bytes, &m.arch).unwrap();
        assert_eq!(
            m.predict_proba(&data).unwrap(),
            back.predict_proba(&data).unwrap()
        );
        let mut other = arch(2);
        other.hidden = vec![8, 5];
        let err = Mlp::from_safetensors(&bytes, &other).unwrap_err();
        assert!(err.to_string().contains("2.weight"), "{err}");
        assert!(Mlp::from_safetensors(b"garbage", &m.arch).is_err());
    }

    #[test]
    fn a_state_dict_without_scaler_imports_with_the_identity() {
        let m = Mlp::new(arch(2), Init::HeNormal, 4);
        // Only the Sequential's own tensors, as PyTorch's state_dict has.
        let full = m.to_safetensors().unwrap();
        let st = safetensors::SafeTensors::deserialize(&full).unwrap();
        let keep = |drop: &[&str]| {
            let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = st
                .tensors()
                .into_iter()
                .filter(|(n, _)| !drop.contains(&n.as_str()))
                .collect();
            safetensors::serialize(views, None).unwrap()
        };
        let plain = keep(&["input.mean", "input.std"]);
        assert!(Mlp::from_safetensors(&plain, &m.arch).is_err());
        let back = Mlp::from_pytorch_state_dict(&plain, &m.arch).unwrap();
        assert_eq!(back.scaler, Scaler::identity(m.arch.inputs));
        let data = toy(20, 9);
        assert_eq!(
            m.predict_proba(&data).unwrap(),
            back.predict_proba(&data).unwrap()
        );
        // Half a scaler is a mistake, not an identity.
        let half = keep(&["input.std"]);
        let err = Mlp::from_pytorch_state_dict(&half, &m.arch).unwrap_err();
        assert!(
            err.to_string().contains("\"input.std\" is missing"),
            "{err}"
        );
    }

    #[test]
    fn auc_matches_a_hand_count() {
        // Pairs (pos, neg): (0.9,0.1) win, (0.9,0.4) win, (0.35,0.1) win,
        // (0.35,0.4) loss -> 3/4.
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.9], &[0, 0, 1, 1]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        // A tie counts one half.
        assert_eq!(roc_auc(&[0.5, 0.5], &[0, 1]), Some(0.5));
        assert_eq!(roc_auc(&[0.5, 0.7], &[1, 1]), None);
    }

    #[test]
    fn ensemble_averages_member_probabilities() {
        let data = toy(20, 10);
        let a = Mlp::new(arch(2), Init::HeNormal, 1);
        let b = Mlp::new(arch(2), Init::HeNormal, 2);
        let (pa, pb) = (
            a.predict_proba(&data).unwrap(),
            b.predict_proba(&data).unwrap(),
        );
        let e = Classifier::ensemble(vec![a, b], vec![1.0, 3.0]).unwrap();
        let pe = e.predict_proba(&data).unwrap();
        for i in 0..pe.len() {
            let want = 0.25 * pa[i] as f64 + 0.75 * pb[i] as f64;
            assert!((pe[i] as f64 - want).abs() < 1e-6);
        }
        assert!(Classifier::ensemble(vec![], vec![]).is_err());
    }

    #[test]
    fn instance_weights_enter_the_loss() {
        let data = toy(64, 11);
        let run = |w: Option<Vec<f32>>| {
            let mut m = Mlp::new(arch(2), Init::HeNormal, 5);
            m.train_weighted(&data, w.as_deref(), &settings(5), None)
                .unwrap();
            m.predict_proba(&data).unwrap()
        };
        let plain = run(None);
        // Uniform weights give the unweighted loss (up to rounding)...
        let uniform = run(Some(vec![2.0; 64]));
        let max_diff = plain
            .iter()
            .zip(&uniform)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_diff < 1e-4, "{max_diff}");
        // ...and zero weight on half the rows changes what is learned.
        let skewed: Vec<f32> = (0..64).map(|i| if i < 32 { 0.0 } else { 1.0 }).collect();
        let other = run(Some(skewed));
        let max_diff = plain
            .iter()
            .zip(&other)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(max_diff > 1e-3, "{max_diff}");
        let mut m = Mlp::new(arch(2), Init::HeNormal, 5);
        assert!(matches!(
            m.train_weighted(&data, Some(&[1.0; 3]), &settings(5), None),
            Err(ModelError::WeightsMismatch { .. })
        ));
    }

    #[test]
    fn labels_out_of_range_are_rejected() {
        let mut data = toy(10, 9);
        data.labels[3] = 5;
        let mut m = Mlp::new(arch(2), Init::HeNormal, 4);
        let err = m.train(&data, &settings(1), None).unwrap_err();
        assert!(matches!(err, ModelError::LabelOutOfRange { label: 5, .. }));
    }
}
