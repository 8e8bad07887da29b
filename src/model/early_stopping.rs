//! Early stopping: the held-out rows, their loss after every epoch, the best
//! epoch's weights and what the run reports about them.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

use super::{Dataset, Mlp, ModelError};
use crate::config::EarlyStopping;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    pub rows: usize,
    pub best_epoch: usize,
    pub best_loss: f64,
    pub stopped_early: bool,
}

/// The held-out rows of an early-stopped run, as the lowest trainable
/// layer sees them.
pub(super) struct Validation {
    x: Tensor,
    target: Tensor,
    labels: Tensor,
    weights: Option<Tensor>,
}

/// Splits rows `0..n` into (held out, kept): `held_out` rows drawn with
/// `seed`, each part in arrival order.
pub(super) fn split_held_out(n: usize, held_out: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a11_da7e);
    let mut is_held = vec![false; n];
    for i in rand::seq::index::sample(&mut rng, n, held_out) {
        is_held[i] = true;
    }
    (0..n).partition(|&i| is_held[i])
}

/// Early stopping during a run: the best epoch so far, its loss and its
/// weights, and whether the run stops.
pub(super) struct EarlyStop {
    best: Option<(usize, f64, Tensor)>,
    pub(super) stopped_early: bool,
}

impl EarlyStop {
    pub(super) fn new() -> Self {
        EarlyStop {
            best: None,
            stopped_early: false,
        }
    }

    /// Records the validation `loss` of `epoch`, whose weights are `params`:
    /// kept when it beats the best by `min_delta`; the run stops after
    /// `patience` epochs without such an improvement.
    pub(super) fn observe(
        &mut self,
        epoch: usize,
        loss: f64,
        params: &Tensor,
        es: &EarlyStopping,
    ) -> Result<(), ModelError> {
        match &mut self.best {
            Some((best_epoch, best_loss, weights)) => {
                if loss < *best_loss - es.min_delta {
                    (*best_epoch, *best_loss) = (epoch, loss);
                    weights.f_copy_(params)?;
                } else if epoch - *best_epoch >= es.patience {
                    self.stopped_early = true;
                }
            }
            None => self.best = Some((epoch, loss, params.copy())),
        }
        Ok(())
    }

    /// Puts the best epoch's weights back into `params` and reports on
    /// `validation` (nothing without one).
    pub(super) fn finish(
        self,
        validation: Option<&Validation>,
        params: &mut Tensor,
    ) -> Result<Option<ValidationReport>, ModelError> {
        Ok(match (validation, self.best) {
            (Some(v), Some((best_epoch, best_loss, weights))) => {
                // The best epoch's weights (the layers are views of params).
                params.f_copy_(&weights)?;
                Some(ValidationReport {
                    rows: v.x.size()[0] as usize,
                    best_epoch,
                    best_loss,
                    stopped_early: self.stopped_early,
                })
            }
            _ => None,
        })
    }
}

impl Mlp {
    /// The held-out rows `v` (instance weights `vw`) as layer `lowest` sees
    /// them.
    pub(super) fn validation_of(
        &self,
        v: &Dataset,
        vw: Option<&[f32]>,
        lowest: usize,
    ) -> Validation {
        let labels = Tensor::from_slice(&v.labels);
        Validation {
            x: self.input_of_layer(v, lowest),
            target: self.target_of(&labels),
            labels,
            weights: vw.map(Tensor::from_slice),
        }
    }

    /// Mean (or weighted mean) loss of the current weights on the held-out
    /// rows.
    pub(super) fn validation_loss(&self, v: &Validation, lowest: usize) -> Result<f64, ModelError> {
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
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use crate::config::{EarlyStopping, Init};
    use crate::model::test_support::{arch, settings, toy};
    use crate::model::{score, Mlp, Scaler, TrainSettings};

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
}
