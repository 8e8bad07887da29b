//! The network: its [`Architecture`], linear layers and seeded
//! initialisation.
//!
//! Weights are plain tensors (no `VarStore`) so that initialisation and
//! shuffling come from our own seeded RNG: libtorch's global generator would
//! make concurrent trainings interfere, and bit-identical results for a fixed
//! seed and thread count are part of the contract.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::Scaler;
use crate::config::{Activation, Init, Policy};

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
    pub(super) fn layer_shapes(&self) -> Vec<(usize, usize)> {
        let mut widths = vec![self.inputs];
        widths.extend(&self.hidden);
        widths.push(self.outputs());
        widths.windows(2).map(|w| (w[0], w[1])).collect()
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

    pub(super) fn activate(&self, z: &Tensor) -> Tensor {
        match self.arch.activation {
            Activation::Relu => z.relu(),
            Activation::Tanh => z.tanh(),
            Activation::Gelu => z.gelu("none"),
        }
    }

    pub(super) fn max_abs_weight(&self) -> f64 {
        self.layers
            .iter()
            .flat_map(|l| [&l.weight, &l.bias])
            .map(|t| t.abs().max().double_value(&[]))
            .fold(0.0, f64::max)
    }
}
