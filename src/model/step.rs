//! One training step written out by hand ([`Mlp::flat_step`]: forward, the
//! loss gradient, backward) and the optimizers (SGD with momentum, Adam) on
//! flat parameter tensors ([`FlatStep`]).

use tch::{Kind, Reduction, Tensor};

use super::train::TrainSettings;
use super::{Mlp, ModelError};
use crate::config::{Activation, OptimizerKind};

impl Mlp {
    /// One optimizer step on one batch: forward into `bufs`, the gradient of
    /// the batch loss, backward down to the lowest trainable layer, and the
    /// update of the flat parameters. Adds the batch's summed loss to
    /// `loss_sum`.
    pub(super) fn flat_step(
        &self,
        step: &mut FlatStep,
        bufs: &mut BatchBuffers,
        batch: &BatchViews,
        loss_sum: &mut Tensor,
    ) -> Result<(), ModelError> {
        self.forward(step, bufs, batch)?;
        self.loss_gradient(step, bufs, batch, loss_sum)?;
        self.backward(step, bufs, batch)?;
        step.update()
    }

    /// The forward pass of [`Mlp::flat_step`], from the lowest trainable
    /// layer up.
    fn forward(
        &self,
        step: &FlatStep,
        bufs: &BatchBuffers,
        batch: &BatchViews,
    ) -> Result<(), ModelError> {
        let last = self.layers.len() - 1;
        let lowest = bufs.lowest;
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
        Ok(())
    }

    /// The loss gradient of [`Mlp::flat_step`], into `bufs.dz[last]`.
    fn loss_gradient(
        &self,
        step: &FlatStep,
        bufs: &mut BatchBuffers,
        batch: &BatchViews,
        loss_sum: &mut Tensor,
    ) -> Result<(), ModelError> {
        let last = self.layers.len() - 1;
        let len = batch.x.size()[0];
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
        Ok(())
    }

    /// The backward pass of [`Mlp::flat_step`]: the gradients of the trained
    /// layers, down to the lowest trainable one.
    fn backward(
        &self,
        step: &FlatStep,
        bufs: &BatchBuffers,
        batch: &BatchViews,
    ) -> Result<(), ModelError> {
        let last = self.layers.len() - 1;
        let lowest = bufs.lowest;
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
        Ok(())
    }
}

/// One batch's rows: fixed views of the per-epoch gathered buffers.
pub(super) struct BatchViews {
    pub(super) x: Tensor,
    /// Where the forward pass writes the batch's logits.
    pub(super) logits: Tensor,
    /// BCE targets `[len, 1]`, or one-hot rows `[len, classes]`.
    pub(super) target: Tensor,
    /// Class indices (used by multiclass losses only).
    pub(super) labels: Tensor,
    pub(super) weights: Option<Tensor>,
}

/// Activations and gradients of one batch length, per layer `l`:
/// `z[l]` pre-activation, `h[l]` activation, `dz[l]` (and its transposed
/// view) the gradient at `z[l]`, `dh[l]` the gradient at `h[l]`; all
/// `[len, width of l]`.
pub(super) struct BatchBuffers {
    lowest: usize,
    z: Vec<Tensor>,
    h: Vec<Tensor>,
    dz: Vec<Tensor>,
    dz_t: Vec<Tensor>,
    dh: Vec<Tensor>,
}

impl BatchBuffers {
    pub(super) fn new(mlp: &Mlp, lowest: usize, len: usize) -> Self {
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
pub(super) struct FlatStep {
    kind: OptimizerKind,
    lr: f64,
    momentum: f64,
    /// Multiplies the loss gradient: the learning rate for SGD, folded in so
    /// that the update is `v = momentum * v + lr * g; p -= v` (PyTorch's
    /// `buf = momentum * buf + g; p -= lr * buf`, scaled by lr); 1 for Adam.
    grad_scale: f64,
    pub(super) params: Tensor,
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
    pub(super) fn new(
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

#[cfg(test)]
mod tests {
    use tch::{Kind, Reduction, Tensor};

    use crate::config::{Activation, Init, OptimizerKind};
    use crate::model::test_support::{arch, settings, toy};
    use crate::model::{Mlp, Scaler, TrainSettings};

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
}
