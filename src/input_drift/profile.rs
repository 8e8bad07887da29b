//! A version's [`InputProfile`] (each feature's training quantiles and
//! decile shares) and the two measures against it: PSI and the KS test.

use serde::{Deserialize, Serialize};

use crate::model::Dataset;

/// Quantiles kept per feature: 0 %, 0.5 %, …, 100 %.
const QUANTILES: usize = 201;
/// Deciles: the PSI bins.
const PSI_BINS: usize = 10;
/// Floor on a bin's share so an empty bin does not make PSI infinite.
const PSI_FLOOR: f64 = 1e-4;

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

    /// Each feature of `recent` against its profile, in column order.
    pub fn compare(&self, recent: &Dataset) -> Vec<FeatureDrift> {
        self.features
            .iter()
            .enumerate()
            .filter(|(j, _)| *j < recent.width)
            .map(|(j, profile)| {
                let mut values: Vec<f32> = (0..recent.len())
                    .map(|i| recent.row(i)[j])
                    .filter(|v| v.is_finite())
                    .collect();
                values.sort_by(f32::total_cmp);
                let psi = profile.psi(&values);
                let d = profile.ks_statistic(&values);
                let p = ks_p_value(d, self.rows as f64, values.len() as f64);
                FeatureDrift {
                    feature: profile.name.clone(),
                    psi,
                    ks_statistic: d,
                    ks_p_value: p,
                }
            })
            .collect()
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
        FeatureProfile {
            name,
            mean,
            std: var.sqrt(),
            quantiles,
            bin_edges,
            bin_shares,
        }
    }

    /// PSI of the recent (sorted) values against the training bins.
    pub fn psi(&self, recent_sorted: &[f32]) -> f64 {
        if recent_sorted.is_empty() || self.quantiles.is_empty() {
            return 0.0;
        }
        let actual = bin_shares(&self.bin_edges, recent_sorted);
        self.bin_shares
            .iter()
            .zip(&actual)
            .map(|(&e, &a)| {
                let (e, a) = (e.max(PSI_FLOOR), a.max(PSI_FLOOR));
                (a - e) * (a / e).ln()
            })
            .sum()
    }

    /// The training CDF at `x`: the share of values `<= x` (`inclusive`) or
    /// `< x`, interpolated linearly between the stored quantiles.
    fn cdf(&self, x: f32, inclusive: bool) -> f64 {
        let q = &self.quantiles;
        let below = |v: f32| if inclusive { v <= x } else { v < x };
        // Number of quantiles at or below (or strictly below) x.
        let k = q.partition_point(|&v| below(v));
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

    /// The KS statistic sup |F_train − F_recent| over the recent (sorted)
    /// values, both CDFs taken on each side of every distinct value so that
    /// discrete features are compared fairly.
    pub fn ks_statistic(&self, recent_sorted: &[f32]) -> f64 {
        let m = recent_sorted.len();
        if m == 0 || self.quantiles.is_empty() {
            return 0.0;
        }
        let mut d = 0f64;
        let mut i = 0;
        while i < m {
            let x = recent_sorted[i];
            let mut j = i;
            while j < m && recent_sorted[j] == x {
                j += 1;
            }
            let recent_below = i as f64 / m as f64;
            let recent_at_or_below = j as f64 / m as f64;
            d = d
                .max((recent_below - self.cdf(x, false)).abs())
                .max((recent_at_or_below - self.cdf(x, true)).abs());
            i = j;
        }
        d
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
    fn psi_by_hand() {
        // Training: 0..100, deciles at 9.9, 19.8, ... -> ten bins of 10 %.
        let train: Vec<f32> = (0..100).map(|v| v as f32).collect();
        let p = InputProfile::from_dataset(&column(&train), &["x".into()]);
        let f = &p.features[0];
        assert_eq!(f.bin_shares.len(), 10);
        assert!(f.bin_shares.iter().all(|&s| (s - 0.1).abs() < 1e-12));
        // Recent: everything in the first bin -> PSI by hand:
        // (1 - .1) ln(1 / .1) + 9 (1e-4 - .1) ln(1e-4 / .1).
        let recent = vec![0.0f32; 50];
        let expected = 0.9 * (10f64).ln() + 9.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln();
        assert!(
            (f.psi(&recent) - expected).abs() < 1e-9,
            "{}",
            f.psi(&recent)
        );
        // The same distribution: zero.
        assert!(f.psi(&train).abs() < 1e-12);
    }

    #[test]
    fn ks_statistic_by_hand() {
        // Training uniform on [0, 100]; recent all at 25: the training CDF is
        // 0.25 there, the recent one jumps 0 -> 1, so D = 0.75.
        let train: Vec<f32> = (0..=1000).map(|v| v as f32 / 10.0).collect();
        let p = InputProfile::from_dataset(&column(&train), &["x".into()]);
        let d = p.features[0].ks_statistic(&[25.0; 10]);
        assert!((d - 0.75).abs() < 1e-6, "{d}");
        // Recent = the training values: D is the interpolation error only.
        assert!(p.features[0].ks_statistic(&train) < 0.006);
    }

    #[test]
    fn discrete_features_compare_fairly() {
        // 70 % zeros, 30 % ones, in training and in the recent rows.
        let train: Vec<f32> = (0..1000).map(|i| (i % 10 >= 7) as u8 as f32).collect();
        let p = InputProfile::from_dataset(&column(&train), &["flag".into()]);
        let mut recent: Vec<f32> = (0..500).map(|i| (i % 10 >= 7) as u8 as f32).collect();
        recent.sort_by(f32::total_cmp);
        let f = &p.features[0];
        assert!(
            f.ks_statistic(&recent) < 0.011,
            "{}",
            f.ks_statistic(&recent)
        );
        assert!(f.psi(&recent) < 1e-9);
        // Flipped shares: 30 % zeros -> D = 0.4.
        let mut flipped: Vec<f32> = (0..500).map(|i| (i % 10 >= 3) as u8 as f32).collect();
        flipped.sort_by(f32::total_cmp);
        assert!((f.ks_statistic(&flipped) - 0.4).abs() < 0.011);
        assert!(f.psi(&flipped) > 0.25);
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
