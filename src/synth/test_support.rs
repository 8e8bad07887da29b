//! Helpers shared by the generator's unit tests, among them the Bayes
//! classifier that tells which concept rows fit.

use super::concept::Concept;
use super::{ClassificationSpec, StreamSpec};
use crate::model::Dataset;

/// The Bayes classifier of a concept: the class of the cluster under
/// which the row's informative part is most likely. It is the best any
/// model of that concept can do, so it tells which concept rows fit.
pub(super) struct Bayes {
    /// Per cluster: inverse transform, log|det|, centroid, class.
    clusters: Vec<(Vec<f64>, f64, Vec<f64>, i64)>,
    /// Output column of each informative feature.
    informative_cols: Vec<usize>,
    d: usize,
}

/// Gauss-Jordan inverse with partial pivoting; returns (inverse, ln|det|).
fn invert(a: &[f64], d: usize) -> (Vec<f64>, f64) {
    let mut m = a.to_vec();
    let mut inv: Vec<f64> = (0..d * d)
        .map(|i| if i / d == i % d { 1.0 } else { 0.0 })
        .collect();
    let mut log_det = 0.0;
    for col in 0..d {
        let p = (col..d)
            .max_by(|&x, &y| m[x * d + col].abs().total_cmp(&m[y * d + col].abs()))
            .unwrap();
        for j in 0..d {
            m.swap(col * d + j, p * d + j);
            inv.swap(col * d + j, p * d + j);
        }
        let piv = m[col * d + col];
        log_det += piv.abs().ln();
        for j in 0..d {
            m[col * d + j] /= piv;
            inv[col * d + j] /= piv;
        }
        for r in 0..d {
            if r != col {
                let f = m[r * d + col];
                for j in 0..d {
                    m[r * d + j] -= f * m[col * d + j];
                    inv[r * d + j] -= f * inv[col * d + j];
                }
            }
        }
    }
    (inv, log_det)
}

impl Bayes {
    pub(super) fn new(c: &Concept) -> Bayes {
        let d = c.spec.n_informative;
        let informative_cols = (0..d)
            .map(|i| c.columns.iter().position(|&s| s == i).unwrap())
            .collect();
        let clusters = c
            .clusters
            .iter()
            .enumerate()
            .map(|(k, cl)| {
                let (inv, log_det) = invert(&cl.transform, d);
                let class = (k % c.spec.n_classes) as i64;
                (inv, log_det, cl.centroid.clone(), class)
            })
            .collect();
        Bayes {
            clusters,
            informative_cols,
            d,
        }
    }

    fn predict(&self, row: &[f32]) -> i64 {
        let d = self.d;
        let x: Vec<f64> = self
            .informative_cols
            .iter()
            .map(|&j| row[j] as f64)
            .collect();
        let mut best = (f64::NEG_INFINITY, 0);
        for (inv, log_det, centroid, class) in &self.clusters {
            // z = (x - c) * A^-1
            let ll = -(0..d)
                .map(|j| {
                    let z: f64 = (0..d).map(|i| (x[i] - centroid[i]) * inv[i * d + j]).sum();
                    z * z
                })
                .sum::<f64>()
                / 2.0
                - log_det;
            if ll > best.0 {
                best = (ll, *class);
            }
        }
        best.1
    }

    pub(super) fn accuracy(&self, data: &Dataset) -> f64 {
        let hits = (0..data.len())
            .filter(|&i| self.predict(data.row(i)) == data.labels[i])
            .count();
        hits as f64 / data.len() as f64
    }
}

pub(super) fn stream_spec(seed: u64) -> StreamSpec {
    StreamSpec {
        rows: 2500,
        concept: ClassificationSpec::reference(seed),
        drift_at: vec![1000],
        drift_width: 0,
        drift_magnitude: 1.0,
        rows_per_file: 400,
        timestamps: None,
        seed,
    }
}

pub(super) fn counts(labels: &[i64], classes: usize) -> Vec<usize> {
    let mut c = vec![0; classes];
    for &l in labels {
        c[l as usize] += 1;
    }
    c
}
