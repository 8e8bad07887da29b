//! A version's [`InputProfile`] (each feature's training quantiles and
//! decile shares) and the two measures against it: PSI and the KS test.

use serde::{Deserialize, Serialize};

use crate::model::Dataset;

/// Quantiles kept per feature: 0 %, 0.5 %, …, 100 %.
const QUANTILES: usize = 201;
/// Deciles: the PSI bins.
const PSI_BINS: usize = 10;
/// Floor on a bin's share so an empty bin does not make PSI infinite.
pub(super) const PSI_FLOOR: f64 = 1e-4;

/// The training distribution of one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    pub mean: f64,
    pub std: f64,
    /// Values at 0 %, 0.5 %, …, 100 % of the training rows.
    pub quantiles: Vec<f32>,
    /// Upper edges of the PSI bins (the distinct training deciles); the last
    /// bin is open above.
    pub bin_edges: Vec<f32>,
    /// Share of training rows in each bin (`bin_edges.len() + 1` entries).
    pub bin_shares: Vec<f64>,
    /// Share of training rows at or below each of `quantiles` (exact where
    /// values tie; empty in profiles written before it was stored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quantile_shares: Vec<f64>,
}

/// The training distribution of every feature of a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputProfile {
    pub rows: u64,
    pub features: Vec<FeatureProfile>,
}

/// How far one feature moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub psi: f64,
    pub ks_statistic: f64,
    pub ks_p_value: f64,
}

impl InputProfile {
    /// The profile of `data`'s rows; `names` are the feature names in
    /// column order. Non-finite values are left out.
    pub fn from_dataset(data: &Dataset, names: &[String]) -> InputProfile {
        let features = (0..data.width)
            .map(|j| {
                let mut values: Vec<f32> = (0..data.len())
                    .map(|i| data.row(i)[j])
                    .filter(|v| v.is_finite())
                    .collect();
                values.sort_by(f32::total_cmp);
                let name = names.get(j).cloned().unwrap_or_else(|| format!("#{j}"));
                FeatureProfile::from_sorted(name, &values)
            })
            .collect();
        InputProfile {
            rows: data.len() as u64,
            features,
        }
    }
}

impl FeatureProfile {
    fn from_sorted(name: String, sorted: &[f32]) -> FeatureProfile {
        if sorted.is_empty() {
            return FeatureProfile {
                name,
                mean: f64::NAN,
                std: f64::NAN,
                quantiles: Vec::new(),
                bin_edges: Vec::new(),
                bin_shares: vec![1.0],
                quantile_shares: Vec::new(),
            };
        }
        let n = sorted.len() as f64;
        let mean = sorted.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = sorted
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let quantiles: Vec<f32> = (0..QUANTILES)
            .map(|k| quantile(sorted, k as f64 / (QUANTILES - 1) as f64))
            .collect();
        let mut bin_edges: Vec<f32> = (1..PSI_BINS)
            .map(|k| quantile(sorted, k as f64 / PSI_BINS as f64))
            .collect();
        bin_edges.dedup();
        // A top edge equal to the maximum would leave the last bin empty.
        if bin_edges.last() == sorted.last() {
            bin_edges.pop();
        }
        let bin_shares = bin_shares(&bin_edges, sorted);
        let quantile_shares = quantiles
            .iter()
            .map(|&q| sorted.partition_point(|&v| v <= q) as f64 / n)
            .collect();
        FeatureProfile {
            name,
            mean,
            std: var.sqrt(),
            quantiles,
            bin_edges,
            bin_shares,
            quantile_shares,
        }
    }

    /// The training share of values `<= x`: exact at a stored quantile
    /// when the profile holds the shares, else interpolated.
    pub(super) fn share_at_or_below(&self, x: f32) -> f64 {
        let k = self.quantiles.partition_point(|&q| q <= x);
        if k > 0 && self.quantiles[k - 1] == x {
            if let Some(&share) = self.quantile_shares.get(k - 1) {
                return share;
            }
        }
        self.interpolated_share(x)
    }

    /// The training share of values `<= x`, interpolated linearly between
    /// the stored quantiles (a tied value at the last of its quantiles).
    fn interpolated_share(&self, x: f32) -> f64 {
        let q = &self.quantiles;
        // Number of quantiles at or below x.
        let k = q.partition_point(|&v| v <= x);
        if k == 0 {
            return 0.0;
        }
        if k == q.len() {
            return 1.0;
        }
        let (lo, hi) = (q[k - 1], q[k]);
        let step = 1.0 / (q.len() - 1) as f64;
        let within = if hi > lo {
            ((x - lo) / (hi - lo)) as f64
        } else {
            0.0
        };
        ((k - 1) as f64 + within.clamp(0.0, 1.0)) * step
    }
}

/// The `p` quantile of sorted values (linear interpolation, as numpy's
/// default).
fn quantile(sorted: &[f32], p: f64) -> f32 {
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = (pos - lo as f64) as f32;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// Share of sorted values in each bin `(-inf, e0], (e0, e1], …, (e_last, inf)`.
fn bin_shares(edges: &[f32], sorted: &[f32]) -> Vec<f64> {
    let n = sorted.len().max(1) as f64;
    let mut shares = Vec::with_capacity(edges.len() + 1);
    let mut previous = 0usize;
    for &e in edges {
        let upto = sorted.partition_point(|&v| v <= e);
        shares.push((upto - previous) as f64 / n);
        previous = upto;
    }
    shares.push((sorted.len() - previous) as f64 / n);
    shares
}

/// Asymptotic p-value of the two-sample KS statistic `d` for sample sizes
/// `n` and `m` (Numerical Recipes, `probks`, with Stephens' correction).
pub fn ks_p_value(d: f64, n: f64, m: f64) -> f64 {
    if d <= 0.0 || n <= 0.0 || m <= 0.0 {
        return 1.0;
    }
    let en = (n * m / (n + m)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    let a2 = -2.0 * lambda * lambda;
    let mut sum = 0f64;
    let mut sign = 2f64;
    let mut previous_term = 0f64;
    for j in 1..=100 {
        let term = sign * (a2 * (j * j) as f64).exp();
        sum += term;
        if term.abs() <= 1e-3 * previous_term || term.abs() <= 1e-8 * sum {
            return sum.clamp(0.0, 1.0);
        }
        sign = -sign;
        previous_term = term.abs();
    }
    // The series did not converge: lambda is tiny, the samples agree.
    1.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input_drift::column;

    #[test]
    fn shares_are_exact_where_values_tie_and_interpolated_in_old_profiles() {
        // 70 % zeros: the quantiles up to 69.5 % are all 0.
        let train: Vec<f32> = (0..1000).map(|i| (i % 10 >= 7) as u8 as f32).collect();
        let mut p = InputProfile::from_dataset(&column(&train), &["flag".into()]);
        let f = &mut p.features[0];
        assert!((f.share_at_or_below(0.0) - 0.7).abs() < 1e-12);
        assert!((f.share_at_or_below(1.0) - 1.0).abs() < 1e-12);
        // A profile without the shares (written by an older driftd) counts
        // a tied value at the last of its quantiles: 139 / 200.
        f.quantile_shares.clear();
        assert!((f.share_at_or_below(0.0) - 0.695).abs() < 1e-12);
        // Between quantiles, the share is interpolated either way.
        assert!((f.share_at_or_below(-1.0)).abs() < 1e-12);
    }

    #[test]
    fn profiles_without_the_shares_still_load() {
        let train: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let p = InputProfile::from_dataset(&column(&train), &["x".into()]);
        let mut json: serde_json::Value = serde_json::to_value(&p).unwrap();
        json["features"][0]
            .as_object_mut()
            .unwrap()
            .remove("quantile_shares");
        let old: InputProfile = serde_json::from_value(json).unwrap();
        assert!(old.features[0].quantile_shares.is_empty());
        assert_eq!(old.features[0].quantiles, p.features[0].quantiles);
    }

    #[test]
    fn p_value_matches_the_kolmogorov_distribution() {
        // P(K > 1.36) = 0.049 (the classic 5 % critical value); with
        // n = m = 20000 the corrections are negligible.
        let n: f64 = 20000.0;
        let en = (n * n / (2.0 * n)).sqrt();
        let d = 1.358 / en;
        let p = ks_p_value(d, n, n);
        assert!((p - 0.05).abs() < 0.002, "{p}");
        assert_eq!(ks_p_value(0.0, n, n), 1.0);
        assert!(ks_p_value(0.5, n, n) < 1e-100);
    }
}
