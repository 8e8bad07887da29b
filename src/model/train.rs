//! The training loop: [`Mlp::train`] and [`Mlp::train_weighted`], epoch
//! after epoch of [flat steps](super::step) over batches gathered in the
//! epoch's order, with early stopping.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use super::early_stopping::{split_held_out, EarlyStop, ValidationReport};
use super::step::{BatchBuffers, BatchViews, FlatStep};
use super::threads::{cancelled, epochs_done};
use super::{Dataset, Mlp, ModelError};
use crate::config::{EarlyStopping, OptimizerKind, Policy};

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

impl Mlp {
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
        let (held, kept) = split_held_out(n, held_out, settings.seed);
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
        let trainable = trainable_layers(trainable, self.layers.len());
        let Some(&lowest) = trainable.first() else {
            return Err(ModelError::NothingTrainable);
        };
        let x = self.input_of_layer(data, lowest);
        let binary = self.arch.classes == 2;
        let labels = Tensor::from_slice(&data.labels);
        let target = self.target_of(&labels);
        let validation = validation.map(|(v, vw)| self.validation_of(v, vw, lowest));
        let mut step = FlatStep::new(self, &trainable, settings)?;
        let batch = settings.batch_size.max(1);
        let mut rows = EpochRows::new(self, lowest, batch, x, target, labels, w);
        let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x5eed_5eed);
        let mut order: Vec<i64> = (0..n as i64).collect();
        let mut loss_sum = Tensor::zeros([], (Kind::Float, tch::Device::Cpu));
        let mut steps = 0;
        let mut last_loss = f64::NAN;
        let mut epochs_run = 0;
        let mut early = EarlyStop::new();
        for epoch in 0..settings.epochs {
            if settings.shuffle {
                order.shuffle(&mut rng);
            }
            if settings.shuffle || epoch == 0 {
                rows.gather(&order, binary)?;
            }
            let _ = loss_sum.f_zero_()?;
            steps += self.run_epoch(&mut step, &mut rows, &mut loss_sum)?;
            if rows.weights.is_none() {
                // The epoch's summed loss, from the logits every step saw.
                let _ = loss_sum.f_add_(&rows.summed_loss(binary)?)?;
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
                early.observe(epoch, loss, &step.params, &settings.early_stopping)?;
            }
            if early.stopped_early {
                epochs_done((settings.epochs - epoch) as u64);
                break;
            }
            epochs_done(1);
        }
        let validation = early.finish(validation.as_ref(), &mut step.params)?;
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

    /// One epoch: a [flat step](Mlp::flat_step) on every batch of `rows`, in
    /// order, checking for cancellation before each. Returns the steps run.
    fn run_epoch(
        &self,
        step: &mut FlatStep,
        rows: &mut EpochRows,
        loss_sum: &mut Tensor,
    ) -> Result<usize, ModelError> {
        let mut steps = 0;
        for (views, &(_, len)) in rows.views.iter().zip(&rows.batches) {
            if cancelled() {
                return Err(ModelError::Cancelled);
            }
            let bufs = &mut rows
                .buffers
                .iter_mut()
                .find(|(l, _)| *l == len)
                .expect("buffers for every batch length")
                .1;
            self.flat_step(step, bufs, views, loss_sum)?;
            steps += 1;
        }
        Ok(steps)
    }

    /// The input of layer `lowest` for every row of `data`: scaled, then
    /// through the layers below it (frozen in a graft).
    pub(super) fn input_of_layer(&self, data: &Dataset, lowest: usize) -> Tensor {
        let mut x = self.scaler.apply(&data.features_tensor());
        for layer in &self.layers[..lowest] {
            x = self.activate(&x.linear(&layer.weight, Some(&layer.bias)));
        }
        x
    }

    /// Binary: the 0/1 target column of BCE; multiclass: one-hot rows (the
    /// gradient of softmax cross entropy is softmax - one_hot).
    pub(super) fn target_of(&self, labels: &Tensor) -> Tensor {
        if self.arch.classes == 2 {
            labels.to_kind(Kind::Float).view([-1, 1])
        } else {
            labels
                .one_hot(self.arch.classes as i64)
                .to_kind(Kind::Float)
        }
    }
}

/// The layers to train: `trainable` (all when `None`) without indices past
/// the last layer, sorted and without duplicates.
fn trainable_layers(trainable: Option<&[usize]>, count: usize) -> Vec<usize> {
    let mut trainable: Vec<usize> = match trainable {
        Some(t) => t.iter().copied().filter(|&i| i < count).collect(),
        None => (0..count).collect(),
    };
    trainable.sort_unstable();
    trainable.dedup();
    trainable
}

/// A run's rows as the lowest trainable layer sees them and, per epoch, the
/// same rows gathered in the epoch's order into buffers of which every batch
/// is a fixed view.
struct EpochRows {
    x: Tensor,
    target: Tensor,
    labels: Tensor,
    weights: Option<Tensor>,
    epoch_x: Tensor,
    epoch_logits: Tensor,
    epoch_target: Tensor,
    epoch_labels: Tensor,
    epoch_w: Option<Tensor>,
    /// (start, length) of every batch.
    batches: Vec<(usize, usize)>,
    views: Vec<BatchViews>,
    /// Per batch length: its activations and gradients.
    buffers: Vec<(usize, BatchBuffers)>,
}

impl EpochRows {
    fn new(
        mlp: &Mlp,
        lowest: usize,
        batch: usize,
        x: Tensor,
        target: Tensor,
        labels: Tensor,
        w: Option<Tensor>,
    ) -> Self {
        let n = labels.size()[0] as usize;
        // Per epoch the rows are gathered, in the epoch's order, into these
        // buffers; every batch is a fixed view of them.
        let epoch_x = x.empty_like();
        let epoch_logits = Tensor::zeros(
            [n as i64, mlp.arch.outputs() as i64],
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
                buffers.push((len, BatchBuffers::new(mlp, lowest, len)));
            }
        }
        EpochRows {
            x,
            target,
            labels,
            weights: w,
            epoch_x,
            epoch_logits,
            epoch_target,
            epoch_labels,
            epoch_w,
            batches,
            views,
            buffers,
        }
    }

    /// Gathers the rows in `order` into the epoch's buffers (the class
    /// indices only for multiclass losses).
    fn gather(&self, order: &[i64], binary: bool) -> Result<(), ModelError> {
        let idx = Tensor::from_slice(order);
        let _ = self.x.f_index_select_out(&self.epoch_x, 0, &idx)?;
        let _ = self
            .target
            .f_index_select_out(&self.epoch_target, 0, &idx)?;
        if !binary {
            let _ = self
                .labels
                .f_index_select_out(&self.epoch_labels, 0, &idx)?;
        }
        if let (Some(w), Some(ew)) = (&self.weights, &self.epoch_w) {
            let _ = w.f_index_select_out(ew, 0, &idx)?;
        }
        Ok(())
    }

    /// The epoch's summed (unweighted) loss, from the logits every step saw.
    fn summed_loss(&self, binary: bool) -> Result<Tensor, ModelError> {
        Ok(if binary {
            self.epoch_logits
                .f_binary_cross_entropy_with_logits::<Tensor>(
                    &self.epoch_target,
                    None,
                    None,
                    Reduction::Sum,
                )?
        } else {
            self.epoch_logits.f_cross_entropy_loss::<Tensor>(
                &self.epoch_labels,
                None,
                Reduction::Sum,
                -100,
                0.0,
            )?
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Init;
    use crate::model::checkpoint::tensor_values;
    use crate::model::test_support::{arch, settings, toy};
    use crate::model::{score, Mlp, ModelError, Scaler};

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
