//! The rows a strategy trains on: the seeded sample (`update.sample`) and
//! the instance weights (`update.weighting`: recency by rows or event time,
//! or the data's weight column).

use rand::seq::index;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::{Policy, WeightingKind};
use crate::model::Dataset;

/// Rows and their instance weights after the policy's sampling and
/// weighting. Weights follow arrival order: the last row is the newest.
pub(super) fn prepare(policy: &Policy, rows: &Dataset, seed: u64) -> (Dataset, Option<Vec<f32>>) {
    let n = rows.len();
    let w = &policy.update.weighting;
    let weights: Option<Vec<f32>> = match w.kind {
        WeightingKind::None => None,
        WeightingKind::Column => Some(rows.weights.clone()),
        WeightingKind::Recency => match w.half_life_seconds {
            Some(h) => {
                let newest = rows.times_us.iter().copied().max().unwrap_or(0);
                Some(
                    rows.times_us
                        .iter()
                        .map(|&t| 0.5f64.powf((newest - t) as f64 / 1e6 / h) as f32)
                        .collect(),
                )
            }
            None => Some(
                (0..n)
                    .map(|i| 0.5f64.powf((n - 1 - i) as f64 / w.half_life_rows) as f32)
                    .collect(),
            ),
        },
    };
    let keep = sample_size(policy, n);
    if keep == n {
        return (rows.clone(), weights);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5a3b1e_u64);
    let mut picked = index::sample(&mut rng, n, keep).into_vec();
    picked.sort_unstable(); // keep arrival order
    let out = rows.select(&picked);
    let weights = weights.map(|w| picked.iter().map(|&i| w[i]).collect());
    (out, weights)
}

/// Rows kept of `n` by `update.sample` (fraction, then the row cap).
pub(super) fn sample_size(policy: &Policy, n: usize) -> usize {
    let s = &policy.update.sample;
    let mut keep = ((n as f64) * s.fraction).round() as usize;
    if s.max_rows > 0 {
        keep = keep.min(s.max_rows);
    }
    keep.clamp(1.min(n), n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Init;
    use crate::update::test_fixtures::{policy, rows};

    #[test]
    fn sampling_and_recency_weights() {
        let mut p = policy();
        p.update.sample.fraction = 0.5;
        p.update.sample.max_rows = 40;
        p.update.weighting.kind = WeightingKind::Recency;
        p.update.weighting.half_life_rows = 10.0;
        let data = rows(100, 9);
        let (s, w) = prepare(&p, &data, 1);
        assert_eq!(s.len(), 40);
        let w = w.unwrap();
        assert_eq!(w.len(), 40);
        // Arrival order is kept, so weights never decrease along the rows.
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
        p.update.sample = Default::default();
        let (s, w) = prepare(&p, &data, 1);
        assert_eq!(s.len(), 100);
        let w = w.unwrap();
        assert_eq!(w[99], 1.0);
        assert!((w[89] - 0.5).abs() < 1e-6);
        let _ = Init::HeNormal;
    }

    #[test]
    fn time_recency_and_column_weights() {
        let mut p = policy();
        let mut data = rows(3, 10);
        data.times_us = vec![0, 3_600_000_000, 7_200_000_000]; // 0 h, 1 h, 2 h
        data.weights = vec![0.25, 1.0, 3.0];
        p.update.weighting.kind = WeightingKind::Recency;
        p.update.weighting.half_life_seconds = Some(3600.0);
        let (_, w) = prepare(&p, &data, 1);
        assert_eq!(w.unwrap(), vec![0.25, 0.5, 1.0]);
        p.update.weighting.kind = WeightingKind::Column;
        let (_, w) = prepare(&p, &data, 1);
        assert_eq!(w.unwrap(), vec![0.25, 1.0, 3.0]);
    }
}
