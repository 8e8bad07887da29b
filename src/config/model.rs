//! `[model]`: the network's shape.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Relu,
    Tanh,
    Gelu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    HeNormal,
    XavierUniform,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    pub hidden: Vec<i64>,
    pub activation: Activation,
    pub init: Init,
    /// Number of classes; labels are integers `0..classes`. Two means a
    /// binary model with one sigmoid output.
    pub classes: i64,
    /// Standardize inputs with the training rows' mean and std.
    pub standardize: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            hidden: vec![20, 10],
            activation: Activation::Relu,
            init: Init::HeNormal,
            classes: 2,
            standardize: true,
        }
    }
}
