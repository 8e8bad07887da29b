//! [`Scaler`]: the per-feature standardization a model applies to its
//! inputs.

use tch::Tensor;

use super::Dataset;

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

    pub(super) fn apply(&self, x: &Tensor) -> Tensor {
        let mean = Tensor::from_slice(&self.mean);
        let std = Tensor::from_slice(&self.std);
        (x - mean) / std
    }
}
