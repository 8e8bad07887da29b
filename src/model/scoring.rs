//! Scoring: [`Mlp::predict_proba`], by the plain-Rust [`kernel`] for ReLU
//! networks or through libtorch a block of rows at a time, both with the
//! scaler folded into the first layer.

use tch::{Kind, Tensor};

use super::{kernel, Dataset, Mlp, ModelError};
use crate::config::Activation;

/// Rows scored per block by [`Mlp::predict_proba`]: small enough that a
/// block's activations stay in the CPU's cache, large enough that libtorch's
/// per-call overhead is negligible.
pub const SCORING_BLOCK: usize = 4096;

impl Mlp {
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
}

#[cfg(test)]
mod tests {
    use crate::config::Init;
    use crate::model::test_support::{arch, settings, toy};
    use crate::model::{Mlp, Scaler, SCORING_BLOCK};

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
}
