//! The MLP classifier: construction from the policy, training, prediction
//! and `model.safetensors` checkpoints.
//!
//! Weights are plain tensors (no `VarStore`) so that initialisation and
//! shuffling come from our own seeded RNG: libtorch's global generator would
//! make concurrent trainings interfere, and bit-identical results for a fixed
//! seed and thread count are part of the contract.
//!
//! Checkpoint layout (documented in the README): the tensors of the
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

use crate::config::{Activation, Init, OptimizerKind, Policy};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("training diverged at epoch {epoch}: loss is {loss}")]
    Diverged { epoch: usize, loss: f64 },
    #[error("training weights exploded at epoch {epoch} (max |w| = {max_abs})")]
    Exploded { epoch: usize, max_abs: f64 },
    #[error("no rows to train on")]
    NoRows,
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

thread_local! {
    /// Called after every training epoch on this thread (progress bars).
    static EPOCH_HOOK: std::cell::RefCell<Option<Box<dyn FnMut()>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (on this thread) calling `hook` after every training epoch, so
/// a command can show progress without the training loop knowing about it.
pub fn with_epoch_hook<R>(hook: Box<dyn FnMut()>, f: impl FnOnce() -> R) -> R {
    let previous = EPOCH_HOOK.with(|h| h.replace(Some(hook)));
    let result = f();
    EPOCH_HOOK.with(|h| *h.borrow_mut() = previous);
    result
}

fn epoch_done() {
    EPOCH_HOOK.with(|h| {
        if let Ok(mut hook) = h.try_borrow_mut() {
            if let Some(hook) = hook.as_mut() {
                hook();
            }
        }
    });
}

fn cancelled() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
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
    pub rows: usize,
    pub epochs: usize,
    pub steps: usize,
    pub final_loss: f64,
    pub seconds: f64,
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

    /// Logits for already-standardized inputs.
    fn forward(&self, x: &Tensor) -> Tensor {
        let last = self.layers.len() - 1;
        let mut h = x.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = h.linear(&layer.weight, Some(&layer.bias));
            if i != last {
                h = match self.arch.activation {
                    Activation::Relu => h.relu(),
                    Activation::Tanh => h.tanh(),
                    Activation::Gelu => h.gelu("none"),
                };
            }
        }
        h
    }

    /// Class probabilities, `[rows, classes]` (binary models give both
    /// columns).
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
        let _guard = tch::no_grad_guard();
        let x = self.scaler.apply(&data.features_tensor());
        let logits = self.forward(&x);
        let probs = if self.arch.classes == 2 {
            let p1 = logits.sigmoid();
            Tensor::cat(&[&(1.0 - &p1), &p1], 1)
        } else {
            logits.softmax(-1, Kind::Float)
        };
        Ok(Vec::<f32>::try_from(probs.contiguous().view([-1]))?)
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
    pub fn train_weighted(
        &mut self,
        data: &Dataset,
        weights: Option<&[f32]>,
        settings: &TrainSettings,
        trainable: Option<&[usize]>,
    ) -> Result<TrainReport, ModelError> {
        let started = std::time::Instant::now();
        data.check(&self.arch)?;
        if data.is_empty() {
            return Err(ModelError::NoRows);
        }
        let n = data.len();
        let w = match weights {
            Some(w) if w.len() != n => {
                return Err(ModelError::WeightsMismatch {
                    rows: n,
                    weights: w.len(),
                })
            }
            Some(w) if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) => {
                return Err(ModelError::BadWeights)
            }
            Some(w) => Some(Tensor::from_slice(w)),
            None => None,
        };
        let x = self.scaler.apply(&data.features_tensor());
        let binary = self.arch.classes == 2;
        let y = if binary {
            Tensor::from_slice(&data.labels)
                .to_kind(Kind::Float)
                .view([n as i64, 1])
        } else {
            Tensor::from_slice(&data.labels)
        };
        let trainable: Vec<usize> = match trainable {
            Some(t) => t.to_vec(),
            None => (0..self.layers.len()).collect(),
        };
        let mut params: Vec<Tensor> = Vec::new();
        for &i in &trainable {
            let layer = &mut self.layers[i];
            layer.weight = layer.weight.detach().set_requires_grad(true);
            layer.bias = layer.bias.detach().set_requires_grad(true);
            params.push(layer.weight.shallow_clone());
            params.push(layer.bias.shallow_clone());
        }
        let mut optimizer = Optimizer::new(settings, &params);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed_5eed);
        let mut order: Vec<i64> = (0..n as i64).collect();
        let batch = settings.batch_size.max(1);
        let mut steps = 0;
        let mut last_loss = f64::NAN;
        for epoch in 0..settings.epochs {
            let (xe, ye, we) = if settings.shuffle {
                order.shuffle(&mut rng);
                let idx = Tensor::from_slice(&order);
                (
                    x.index_select(0, &idx),
                    y.index_select(0, &idx),
                    w.as_ref().map(|w| w.index_select(0, &idx)),
                )
            } else {
                (
                    x.shallow_clone(),
                    y.shallow_clone(),
                    w.as_ref().map(Tensor::shallow_clone),
                )
            };
            let mut loss_sum = Tensor::zeros([], (Kind::Float, tch::Device::Cpu));
            let mut start = 0;
            while start < n {
                if cancelled() {
                    self.detach_all();
                    return Err(ModelError::Cancelled);
                }
                let len = batch.min(n - start) as i64;
                let xb = xe.narrow(0, start as i64, len);
                let yb = ye.narrow(0, start as i64, len);
                let logits = self.forward(&xb);
                let reduction = if we.is_some() {
                    Reduction::None
                } else {
                    Reduction::Mean
                };
                let mut loss = if binary {
                    logits.binary_cross_entropy_with_logits::<Tensor>(&yb, None, None, reduction)
                } else {
                    logits.cross_entropy_loss::<Tensor>(&yb, None, reduction, -100, 0.0)
                };
                if let Some(we) = &we {
                    let wb = we.narrow(0, start as i64, len);
                    let per_row = loss.view([-1]);
                    // All-zero weights in a batch would divide by zero.
                    loss = (per_row * &wb).sum(Kind::Float) / wb.sum(Kind::Float).clamp_min(1e-12);
                }
                optimizer.zero_grad();
                loss.backward();
                optimizer.step();
                tch::no_grad(|| loss_sum += loss.detach() * len);
                steps += 1;
                start += len as usize;
            }
            last_loss = loss_sum.double_value(&[]) / n as f64;
            if !last_loss.is_finite() {
                self.detach_all();
                return Err(ModelError::Diverged {
                    epoch,
                    loss: last_loss,
                });
            }
            epoch_done();
        }
        self.detach_all();
        let max_abs = self.max_abs_weight();
        if !max_abs.is_finite() || max_abs > 1e6 {
            return Err(ModelError::Exploded {
                epoch: settings.epochs,
                max_abs,
            });
        }
        Ok(TrainReport {
            rows: n,
            epochs: settings.epochs,
            steps,
            final_loss: last_loss,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn detach_all(&mut self) {
        for layer in &mut self.layers {
            layer.weight = layer.weight.detach();
            layer.bias = layer.bias.detach();
        }
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

/// SGD with momentum and Adam, with PyTorch's update rules, so fine-tuning
/// settings carry over between driftd and PyTorch.
struct Optimizer {
    kind: OptimizerKind,
    lr: f64,
    momentum: f64,
    params: Vec<Tensor>,
    state1: Vec<Option<Tensor>>,
    state2: Vec<Option<Tensor>>,
    step: i32,
}

impl Optimizer {
    fn new(settings: &TrainSettings, params: &[Tensor]) -> Self {
        Optimizer {
            kind: settings.optimizer,
            lr: settings.learning_rate,
            momentum: settings.momentum,
            params: params.iter().map(Tensor::shallow_clone).collect(),
            state1: params.iter().map(|_| None).collect(),
            state2: params.iter().map(|_| None).collect(),
            step: 0,
        }
    }

    fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.zero_grad();
        }
    }

    fn step(&mut self) {
        let _guard = tch::no_grad_guard();
        self.step += 1;
        for (i, p) in self.params.iter_mut().enumerate() {
            let grad = p.grad();
            if !grad.defined() {
                continue;
            }
            match self.kind {
                OptimizerKind::Sgd => {
                    let update = if self.momentum > 0.0 {
                        match &mut self.state1[i] {
                            Some(buf) => {
                                *buf *= self.momentum;
                                *buf += &grad;
                                buf.shallow_clone()
                            }
                            slot @ None => {
                                let buf = grad.copy();
                                *slot = Some(buf.shallow_clone());
                                buf
                            }
                        }
                    } else {
                        grad
                    };
                    *p -= update * self.lr;
                }
                OptimizerKind::Adam => {
                    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
                    let m = self.state1[i].get_or_insert_with(|| grad.zeros_like());
                    *m *= b1;
                    *m += &grad * (1.0 - b1);
                    let v = self.state2[i].get_or_insert_with(|| grad.zeros_like());
                    *v *= b2;
                    *v += (&grad * &grad) * (1.0 - b2);
                    let bias1 = 1.0 - b1.powi(self.step);
                    let bias2 = 1.0 - b2.powi(self.step);
                    let denom = (&*v / bias2).sqrt() + eps;
                    *p -= (&*m / &denom) * (self.lr / bias1);
                }
            }
        }
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
        }
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
