//! `model.safetensors` checkpoints: writing, loading (driftd's own and
//! PyTorch state_dicts) and checking without libtorch.
//!
//! Checkpoint layout (documented in docs/registry.md): the tensors of the
//! equivalent `torch.nn.Sequential(Linear, Act, Linear, Act, ..., Linear)`
//! named `"{index}.weight"` / `"{index}.bias"` (index = position in the
//! Sequential, so 0, 2, 4, ...), plus `input.mean` and `input.std` (the
//! standardization; mean 0 and std 1 when it is off). The output layer emits
//! logits: one for binary models (apply a sigmoid), `classes` otherwise
//! (apply a softmax).

use std::collections::HashMap;

use tch::Tensor;

use super::{Architecture, CheckpointError, Linear, Mlp, ModelError, Scaler};

impl Mlp {
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
                    .map_err(CheckpointError::Encode)
            })
            .collect::<Result<_, _>>()?;
        // One metadata key: safetensors takes a HashMap, whose order is
        // random, and the file's bytes must be reproducible (checksums).
        let header = serde_json::json!({"format": "driftd-mlp-v1", "architecture": &self.arch});
        let metadata: HashMap<String, String> =
            HashMap::from([("driftd".to_string(), header.to_string())]);
        Ok(safetensors::serialize(views, Some(metadata)).map_err(CheckpointError::Encode)?)
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

/// Checks a driftd checkpoint against `arch` (names, dtypes, shapes, finite
/// values) without libtorch: what the registry's verification runs.
pub fn verify_checkpoint(bytes: &[u8], arch: &Architecture) -> Result<(), ModelError> {
    CheckpointValues::parse(bytes, arch, true)?;
    Ok(())
}

/// A checkpoint's values, checked against an architecture; plain vectors so
/// that checking needs no libtorch.
struct CheckpointValues {
    /// (weight row-major `[out, in]`, bias) per linear layer.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
    scaler: Scaler,
}

impl CheckpointValues {
    fn parse(
        bytes: &[u8],
        arch: &Architecture,
        scaler_required: bool,
    ) -> Result<Self, CheckpointError> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(CheckpointError::NotSafetensors)?;
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
                return Err(CheckpointError::UnknownTensor {
                    name: name.clone(),
                    inputs: arch.inputs,
                    hidden: arch.hidden.clone(),
                    outputs: arch.outputs(),
                    expected: expected.iter().map(|(n, _)| n.clone()).collect(),
                });
            }
        }
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f32>, CheckpointError> {
            let view = st
                .tensor(name)
                .map_err(|_| CheckpointError::MissingTensor {
                    name: name.to_string(),
                    shape: shape.to_vec(),
                })?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(CheckpointError::WrongDtype {
                    name: name.to_string(),
                    dtype: view.dtype(),
                });
            }
            if view.shape() != shape {
                return Err(CheckpointError::WrongShape {
                    name: name.to_string(),
                    found: view.shape().to_vec(),
                    expected: shape.to_vec(),
                });
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
                return Err(CheckpointError::NonFinite { layer: 2 * i });
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
            return Err(CheckpointError::BadScaler);
        }
        Ok(CheckpointValues { layers, scaler })
    }
}

pub(super) fn tensor_values(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    Ok(Vec::<f32>::try_from(t.detach().contiguous().view([-1]))?)
}

#[cfg(test)]
mod tests {
    use crate::config::Init;
    use crate::model::test_support::{arch, toy};
    use crate::model::{Mlp, Scaler};

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
}
