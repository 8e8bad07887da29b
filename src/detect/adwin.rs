//! ADWIN (Bifet & Gavaldà 2007): an adaptive window over an exponential
//! histogram, cut where its two halves differ.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Detector, Severity};

/// Parameters of [`Adwin`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdwinParams {
    /// δ: confidence of the cut test.
    pub delta: f64,
    /// M: buckets kept per size in the exponential histogram.
    pub max_buckets: usize,
    /// The cut test runs every `clock` rows.
    pub clock: u64,
    /// Rows each side of a cut must hold at least.
    pub min_window: u64,
}

impl Default for AdwinParams {
    fn default() -> Self {
        AdwinParams {
            // Chosen from the harness (see `DetectorSpec::default`). With
            // δ' = δ/n this is far more conservative than the same δ in MOA
            // or River, which use ln(2 ln n / δ).
            delta: 0.02,
            max_buckets: 5,
            clock: 32,
            min_window: 5,
        }
    }
}

/// A bucket of `2^level` rows: their sum and the sum of squared deviations
/// from their own mean.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// ADWIN2: adaptive windowing over an exponential histogram.
///
/// A. Bifet, R. Gavaldà, "Learning from Time-Changing Data with Adaptive
/// Windowing", *Proceedings of the 2007 SIAM International Conference on Data
/// Mining (SDM)*, pp. 443–448, 2007.
///
/// The window `W` of recent error bits is an exponential histogram (the
/// paper's ADWIN2): buckets of `2^i` rows, at most `M` of each size; when an
/// `M + 1`-th bucket of a size appears, its two oldest merge into one of the
/// next size. Each bucket keeps its sum and variance, so the window's mean
/// and variance are exact and memory is `O(M log W)`.
///
/// Every `clock` rows (32 in MOA's reference implementation) every boundary
/// between buckets splits `W` into an older `W0` and a newer `W1`. With
/// `n = |W|`, `m = 1 / (1/|W0| + 1/|W1|)` (harmonic mean), `δ' = δ / n` and
/// `σ²_W` the variance of `W`, the cut test is the paper's practical bound
///
/// ```text
/// ε_cut = sqrt(2/m · σ²_W · ln(2/δ')) + 2/(3m) · ln(2/δ')
/// ```
///
/// and `|μ̂_W0 − μ̂_W1| > ε_cut` drops the oldest bucket, after which the test
/// repeats on the shorter window (as the reference implementation does).
/// Both parts must hold at least `min_window` rows.
///
/// Only a cut where the newer part has the higher error rate is a `Drift`; a
/// cut because the model got better shrinks the window silently. ADWIN has no
/// warning level.
#[derive(Debug, Clone)]
pub struct Adwin {
    params: AdwinParams,
    /// `levels[i]` holds the buckets of `2^i` rows, oldest first. The oldest
    /// bucket of the window is the front of the last level.
    levels: Vec<VecDeque<Bucket>>,
    width: u64,
    total: f64,
    /// Sum of squared deviations from the window's mean.
    variance: f64,
    rows: u64,
}

impl Adwin {
    /// Sizes of 0 (rejected by `validate`) are taken as 1.
    pub fn new(mut params: AdwinParams) -> Self {
        params.max_buckets = params.max_buckets.max(1);
        params.clock = params.clock.max(1);
        params.min_window = params.min_window.max(1);
        Adwin {
            params,
            levels: Vec::new(),
            width: 0,
            total: 0.0,
            variance: 0.0,
            rows: 0,
        }
    }

    /// Rows in the window.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// The window's error rate (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.total / self.width as f64
        }
    }

    /// The window's variance `σ²_W` (0 when empty).
    pub fn variance(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            (self.variance / self.width as f64).max(0.0)
        }
    }

    /// Buckets held (the memory bound is on this number).
    pub fn buckets(&self) -> usize {
        self.levels.iter().map(VecDeque::len).sum()
    }

    /// Buckets per level, level 0 (single rows) first.
    pub fn bucket_counts(&self) -> Vec<usize> {
        self.levels.iter().map(VecDeque::len).collect()
    }

    fn insert(&mut self, x: f64) {
        self.width += 1;
        if self.width > 1 {
            // Welford's update of the sum of squared deviations.
            let prev = (self.width - 1) as f64;
            let d = x - self.total / prev;
            self.variance += prev * d * d / self.width as f64;
        }
        self.total += x;
        if self.levels.is_empty() {
            self.levels.push(VecDeque::new());
        }
        self.levels[0].push_back(Bucket {
            total: x,
            variance: 0.0,
        });
        let mut level = 0;
        while self.levels[level].len() > self.params.max_buckets {
            let a = self.levels[level].pop_front().expect("M + 1 buckets");
            let b = self.levels[level].pop_front().expect("M + 1 buckets");
            let n = (1u64 << level) as f64;
            let d = a.total / n - b.total / n;
            let merged = Bucket {
                total: a.total + b.total,
                variance: a.variance + b.variance + n * n * d * d / (2.0 * n),
            };
            if self.levels.len() == level + 1 {
                self.levels.push(VecDeque::new());
            }
            self.levels[level + 1].push_back(merged);
            level += 1;
        }
    }

    fn drop_oldest(&mut self) {
        let level = self.levels.len() - 1;
        let b = self.levels[level]
            .pop_front()
            .expect("a non-empty top level");
        if self.levels[level].is_empty() {
            self.levels.pop();
        }
        let n = (1u64 << level) as f64;
        self.width -= 1u64 << level;
        self.total -= b.total;
        if self.width == 0 {
            self.total = 0.0;
            self.variance = 0.0;
            return;
        }
        let w = self.width as f64;
        let d = b.total / n - self.total / w;
        self.variance -= b.variance + n * w * d * d / (n + w);
    }

    /// The first boundary (oldest first) where the cut test passes: whether
    /// the newer part has the higher mean.
    fn find_cut(&self) -> Option<bool> {
        let min = self.params.min_window;
        let n = self.width;
        if n < min.saturating_mul(2) {
            return None;
        }
        let var = self.variance();
        let ln = (2.0 * n as f64 / self.params.delta).ln(); // ln(2/δ'), δ' = δ/n
        let (mut n0, mut u0) = (0u64, 0.0);
        for level in (0..self.levels.len()).rev() {
            for b in &self.levels[level] {
                n0 += 1u64 << level;
                u0 += b.total;
                let n1 = n - n0;
                if n1 < min {
                    return None;
                }
                if n0 < min {
                    continue;
                }
                let mean0 = u0 / n0 as f64;
                let mean1 = (self.total - u0) / n1 as f64;
                let inv_m = 1.0 / n0 as f64 + 1.0 / n1 as f64;
                // |μ0 − μ1| > sqrt(2/m σ² ln) + 2/(3m) ln, without the sqrt
                // (this loop is most of ADWIN's cost).
                let beyond = (mean0 - mean1).abs() - 2.0 / 3.0 * inv_m * ln;
                if beyond > 0.0 && beyond * beyond > 2.0 * inv_m * var * ln {
                    return Some(mean1 > mean0);
                }
            }
        }
        None
    }
}

impl Detector for Adwin {
    fn update(&mut self, error: bool) -> Option<Severity> {
        self.insert(f64::from(u8::from(error)));
        self.rows += 1;
        if !self.rows.is_multiple_of(self.params.clock) {
            return None;
        }
        let mut increased = false;
        while let Some(up) = self.find_cut() {
            increased |= up;
            self.drop_oldest();
        }
        increased.then_some(Severity::Drift)
    }

    fn reset(&mut self) {
        *self = Adwin::new(self.params.clone());
    }

    fn name(&self) -> &'static str {
        "adwin"
    }

    fn estimate(&self) -> f64 {
        self.mean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::{bits, close, run};
    use crate::detect::Severity::Drift;
    use crate::detect::{Scenario, REFERENCE_ERROR};

    /// M = 64: no bucket merges in the first 64 rows, so every row boundary
    /// is a candidate cut and the arithmetic can be done by hand.
    fn adwin_singletons(delta: f64, clock: u64) -> Adwin {
        Adwin::new(AdwinParams {
            delta,
            max_buckets: 64,
            clock,
            min_window: 5,
        })
    }

    #[test]
    fn adwin_cut_position_worked_by_hand() {
        // δ = 0.1, clock 1, 30 right rows then errors. With k errors the window
        // (n = 30 + k) has σ²_W = (30/n)(k/n) and the split between the right
        // and the wrong rows |μ0 − μ1| = 1. With m = 1/(1/n0 + 1/n1) and
        // ln(2/δ') = ln(2n/δ):
        //  n = 45, 30|15: m = 10, σ² = 0.2222, ln 900 = 6.8024,
        //     ε = sqrt(2/10 · 0.2222 · 6.8024) + 2/30 · 6.8024 = 0.5498 + 0.4535 = 1.0033 > 1: no cut
        //  n = 46, 30|16: m = 10.4348, σ² = 0.2268, ln 920 = 6.8244,
        //     ε = 0.5447 + 0.4360 = 0.9807 < 1: cut, and the newer part errs more: drift.
        // Splits inside either run have |μ0 − μ1| < 1 and fail (e.g. n = 46,
        // 29|17: 0.9412 < ε = 0.9620); the brute-force test below checks all.
        // The oldest rows then go one at a time while a cut remains:
        //  n = 45, 29|16: m = 10.3111, σ² = 0.2291: ε = 0.5498 + 0.4398 = 0.9897 < 1, drop
        //  n = 44, 28|16: m = 10.1818, σ² = 0.2314, ln 880 = 6.7799: ε = 0.5551 + 0.4439 = 0.9991 < 1, drop
        //  n = 43, 27|16: m = 10.0465, σ² = 0.2336, ln 860 = 6.7569: ε = 0.5606 + 0.4484 = 1.0090 > 1: keep 43.
        let mut d = adwin_singletons(0.1, 1);
        let seq = bits(&[(false, 30), (true, 16)]);
        assert_eq!(run(&mut d, &seq), vec![(46, Drift)]);
        assert_eq!(d.width(), 43);
        assert!(close(d.mean(), 16.0 / 43.0));
    }

    #[test]
    fn adwin_improvement_shrinks_the_window_silently() {
        // The mirror image: 30 errors then 16 right rows. σ²_W and |μ0 − μ1|
        // are the same as above, so the same cuts happen at row 46, down to
        // 27 errors + 16 right rows, but a falling error rate is no drift.
        let mut d = adwin_singletons(0.1, 1);
        let seq = bits(&[(true, 30), (false, 16)]);
        assert_eq!(run(&mut d, &seq), vec![]);
        assert_eq!(d.width(), 43);
        assert!(close(d.mean(), 27.0 / 43.0));
    }

    #[test]
    fn adwin_tests_only_on_the_clock() {
        // Clock 32: the test runs at rows 32 and 64 only. At row 32 (30 right,
        // 2 wrong) every split leaves fewer than 5 rows on one side or has
        // μ0 = 0, μ1 ≤ 2/5 against ε > 1: no cut. At row 64 the 30|34 split
        // has |μ0 − μ1| = 1 and a larger m than the 30|16 one that already cut.
        let mut d = adwin_singletons(0.1, 32);
        let seq = bits(&[(false, 30), (true, 34)]);
        assert_eq!(run(&mut d, &seq), vec![(64, Drift)]);
    }

    #[test]
    fn adwin_exponential_histogram_by_hand() {
        // M = 2: a size holds at most 2 buckets; a third merges the two oldest
        // into one of twice the size, like a binary counter:
        //   n: 1 [1]  2 [2]  3 [1,1]  4 [2,1]  5 [1,2]  6 [2,2]  7 [1,1,1]  8 [2,1,1]
        // (buckets per level, level 0 = single rows first).
        let mut d = Adwin::new(AdwinParams {
            max_buckets: 2,
            clock: 1_000_000,
            ..AdwinParams::default()
        });
        let expected: [&[usize]; 8] = [
            &[1],
            &[2],
            &[1, 1],
            &[2, 1],
            &[1, 2],
            &[2, 2],
            &[1, 1, 1],
            &[2, 1, 1],
        ];
        for (i, want) in expected.iter().enumerate() {
            d.update(i % 3 == 0);
            assert_eq!(d.bucket_counts(), *want, "after {} rows", i + 1);
        }
        // Sums and variances survive the merges: rows 1, 4, 7 were errors.
        assert!(close(d.mean(), 3.0 / 8.0));
        assert!(close(d.variance(), 3.0 / 8.0 * 5.0 / 8.0));
    }

    #[test]
    fn adwin_memory_is_logarithmic() {
        // At most M buckets per size and ⌊log2 W⌋ + 1 sizes.
        let bound = |d: &Adwin| 5 * (63 - d.width().leading_zeros() as usize + 1);
        let mut constant = Adwin::new(AdwinParams::default());
        for _ in 0..1_000_000 {
            constant.update(false);
        }
        assert_eq!(
            constant.width(),
            1_000_000,
            "nothing to cut in a constant stream"
        );
        assert!(
            constant.buckets() <= bound(&constant),
            "{}",
            constant.buckets()
        );

        let sc = Scenario::stable(REFERENCE_ERROR, 1_000_000);
        let mut d = Adwin::new(AdwinParams::default());
        let mut most = 0;
        for e in sc.stream(7) {
            d.update(e);
            most = most.max(d.buckets());
        }
        assert!(d.width() > 100_000);
        assert!(most <= bound(&d), "{most} buckets for width {}", d.width());
        assert!(most <= 5 * 21, "{most}");
    }

    #[test]
    fn adwin_window_statistics_stay_exact_through_cuts() {
        // The window is always the newest `width` rows of the stream, so its
        // mean and variance can be recomputed from them.
        let sc = Scenario::abrupt(0.1, 0.4);
        let seq: Vec<bool> = sc.stream(3).collect();
        let mut d = Adwin::new(AdwinParams::default());
        let mut shrank = false;
        for (i, &e) in seq.iter().enumerate() {
            let before = d.width();
            d.update(e);
            shrank |= d.width() <= before;
            if i % 97 != 0 && i + 1 != seq.len() {
                continue;
            }
            let w = &seq[i + 1 - d.width() as usize..=i];
            let n = w.len() as f64;
            let mean = w.iter().filter(|&&b| b).count() as f64 / n;
            assert!((d.mean() - mean).abs() < 1e-9, "row {i}");
            assert!((d.variance() - mean * (1.0 - mean)).abs() < 1e-9, "row {i}");
        }
        assert!(shrank, "the drift should have cut the window");
    }

    /// ADWIN with the whole window kept row by row and every split tested.
    #[derive(Debug)]
    struct BruteAdwin {
        delta: f64,
        window: VecDeque<bool>,
    }

    impl BruteAdwin {
        fn update(&mut self, e: bool) -> (Option<Severity>, usize) {
            self.window.push_back(e);
            let mut up = false;
            'again: loop {
                let n = self.window.len();
                let x: Vec<f64> = self
                    .window
                    .iter()
                    .map(|&b| f64::from(u8::from(b)))
                    .collect();
                let total: f64 = x.iter().sum();
                let mean = total / n as f64;
                let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
                let ln = (2.0 * n as f64 / self.delta).ln();
                let mut u0 = 0.0;
                for n0 in 1..n {
                    u0 += x[n0 - 1];
                    let n1 = n - n0;
                    if n0 < 5 || n1 < 5 {
                        continue;
                    }
                    let (mu0, mu1) = (u0 / n0 as f64, (total - u0) / n1 as f64);
                    let m = 1.0 / (1.0 / n0 as f64 + 1.0 / n1 as f64);
                    let eps = (2.0 / m * var * ln).sqrt() + 2.0 / (3.0 * m) * ln;
                    if (mu0 - mu1).abs() > eps {
                        up |= mu1 > mu0;
                        self.window.pop_front();
                        continue 'again;
                    }
                }
                break;
            }
            (up.then_some(Drift), self.window.len())
        }
    }

    #[test]
    fn adwin_matches_a_brute_force_window_when_buckets_are_single_rows() {
        for seed in 0..20 {
            let sc = Scenario {
                drift_at: 150,
                after: 250,
                ..Scenario::abrupt(0.1, 0.5)
            };
            let mut d = Adwin::new(AdwinParams {
                delta: 0.05,
                max_buckets: 400,
                clock: 1,
                min_window: 5,
            });
            let mut brute = BruteAdwin {
                delta: 0.05,
                window: VecDeque::new(),
            };
            for (row, e) in sc.stream(seed).enumerate() {
                let level = d.update(e);
                let (want, width) = brute.update(e);
                assert_eq!(
                    (level, d.width() as usize),
                    (want, width),
                    "seed {seed} row {row}"
                );
            }
        }
    }
}
