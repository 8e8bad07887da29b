//! Paired evidence: is one model better than another on the same rows, by
//! more than the noise of those rows? The one statistic behind promotion
//! (a challenger against the live model on the tournament's holdout) and
//! probation (the promoted version against the one it replaced, on the rows
//! that arrive after the promotion).
//!
//! Both models score the same rows, so the per-row differences d_i (1, 0 or
//! -1 for accuracy; the difference of log losses for log loss) carry the
//! comparison, and their standard error shrinks with the rows *on which the
//! two disagree*. This is the paired t-test; for accuracy it is the normal
//! form of McNemar's test. Choosing the best of k candidates on the same
//! holdout inflates the best one's score, so the confidence is split
//! Bonferroni-style over the k comparisons.

use serde::{Deserialize, Serialize};

use crate::config::Metric;

/// The mean per-row advantage of a challenger over a champion and its
/// standard error (positive: the challenger is better).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedDifference {
    pub rows: usize,
    pub difference: f64,
    pub standard_error: f64,
}

impl PairedDifference {
    /// From per-row advantages of the challenger (any metric where larger
    /// `advantage` means a better challenger on that row).
    pub fn of(advantages: impl IntoIterator<Item = f64>) -> Self {
        let (mut n, mut sum, mut sum_sq) = (0usize, 0.0f64, 0.0f64);
        for d in advantages {
            n += 1;
            sum += d;
            sum_sq += d * d;
        }
        Self::from_sums(n, sum, sum_sq)
    }

    /// From the count, sum and sum of squares of the per-row advantages
    /// (what a running tally keeps).
    pub fn from_sums(n: usize, sum: f64, sum_sq: f64) -> Self {
        if n == 0 {
            return PairedDifference {
                rows: 0,
                difference: 0.0,
                standard_error: f64::INFINITY,
            };
        }
        let mean = sum / n as f64;
        // Sample variance (n - 1): a single row is no evidence at all.
        let variance = if n > 1 {
            ((sum_sq - n as f64 * mean * mean) / (n as f64 - 1.0)).max(0.0)
        } else {
            f64::INFINITY
        };
        PairedDifference {
            rows: n,
            difference: mean,
            standard_error: (variance / n as f64).sqrt(),
        }
    }

    /// Accuracy: rows the challenger gets right and the champion wrong count
    /// +1, the reverse -1.
    pub fn accuracy(champion_correct: &[bool], challenger_correct: &[bool]) -> Self {
        debug_assert_eq!(champion_correct.len(), challenger_correct.len());
        Self::of(
            champion_correct
                .iter()
                .zip(challenger_correct)
                .map(|(&a, &b)| f64::from(u8::from(b)) - f64::from(u8::from(a))),
        )
    }

    /// Log loss: the champion's loss minus the challenger's, row by row.
    pub fn log_loss(champion_loss: &[f64], challenger_loss: &[f64]) -> Self {
        debug_assert_eq!(champion_loss.len(), challenger_loss.len());
        Self::of(
            champion_loss
                .iter()
                .zip(challenger_loss)
                .map(|(a, b)| a - b),
        )
    }

    /// The one-sided lower confidence bound of the difference.
    pub fn lower_bound(&self, z: f64) -> f64 {
        if self.standard_error == 0.0 {
            // Every row agrees on the same difference (often 0: the two
            // models predict alike): no noise to allow for.
            self.difference
        } else {
            self.difference - z * self.standard_error
        }
    }

    /// The one-sided upper confidence bound of the difference.
    pub fn upper_bound(&self, z: f64) -> f64 {
        if self.standard_error == 0.0 {
            self.difference
        } else {
            self.difference + z * self.standard_error
        }
    }

    /// Whether the challenger is better by more than `margin`, beyond the
    /// noise at the confidence `z` stands for.
    pub fn beats(&self, margin: f64, z: f64) -> bool {
        self.rows > 0 && self.lower_bound(z) > margin
    }
}

/// Each holdout row's result for one model: right or wrong, and its log
/// loss. Two models' results on the same rows are what a paired comparison
/// takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowResults {
    pub correct: Vec<bool>,
    pub loss: Vec<f64>,
}

impl RowResults {
    /// From class probabilities (`classes` per row), with the clamp
    /// [`crate::model::score`] uses for the log loss.
    pub fn of(probs: &[f32], labels: &[i64], classes: usize) -> Self {
        let (correct, loss) = labels
            .iter()
            .enumerate()
            .map(|(i, &label)| {
                let row = &probs[i * classes..(i + 1) * classes];
                let p = (row.get(label as usize).copied().unwrap_or(0.0) as f64).clamp(1e-7, 1.0);
                (
                    crate::model::predicted_class(row) == label as usize,
                    -p.ln(),
                )
            })
            .unzip();
        RowResults { correct, loss }
    }

    pub fn len(&self) -> usize {
        self.correct.len()
    }

    pub fn is_empty(&self) -> bool {
        self.correct.is_empty()
    }

    /// The paired advantage of `self` (the challenger) over `champion` on
    /// `metric`'s per-row form: accuracy rows for accuracy, log loss for
    /// log loss and for AUC (which has no per-row form; log loss ranks the
    /// same probabilities).
    pub fn advantage_over(&self, champion: &RowResults, metric: Metric) -> PairedDifference {
        match metric {
            Metric::Accuracy => PairedDifference::accuracy(&champion.correct, &self.correct),
            Metric::LogLoss | Metric::Auc => PairedDifference::log_loss(&champion.loss, &self.loss),
        }
    }
}

/// The one-sided normal quantile for `confidence` split over `comparisons`
/// (Bonferroni): the best of k candidates must clear 1 - (1 - c) / k.
/// A confidence of 0.5 or less asks for no evidence beyond the point
/// estimate (z = 0).
pub fn z_for(confidence: f64, comparisons: usize) -> f64 {
    if confidence <= 0.5 {
        return 0.0;
    }
    let alpha = (1.0 - confidence) / comparisons.max(1) as f64;
    normal_quantile(1.0 - alpha)
}

/// The standard normal quantile (Acklam's rational approximation, relative
/// error below 1.2e-9 over (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    const LOW: f64 = 0.024_25;
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_the_tables() {
        assert!((normal_quantile(0.975) - 1.959_964).abs() < 1e-5);
        assert!((normal_quantile(0.95) - 1.644_854).abs() < 1e-5);
        assert!((normal_quantile(0.5)).abs() < 1e-12);
        assert!((normal_quantile(0.001) + 3.090_232).abs() < 1e-5);
        assert!((z_for(0.95, 1) - 1.644_854).abs() < 1e-5);
        // Best of 5 at 95 %: each comparison at 99 %.
        assert!((z_for(0.95, 5) - 2.326_348).abs() < 1e-5);
        assert_eq!(z_for(0.0, 3), 0.0);
        assert_eq!(z_for(0.5, 7), 0.0);
    }

    #[test]
    fn accuracy_difference_and_error_by_hand() {
        // 10 rows: the challenger alone right on 3, the champion alone on 1.
        let champion = [
            true, false, false, false, true, true, true, true, false, true,
        ];
        let challenger = [false, true, true, true, true, true, true, true, false, true];
        let d = PairedDifference::accuracy(&champion, &challenger);
        assert_eq!(d.rows, 10);
        assert!((d.difference - 0.2).abs() < 1e-12);
        // d = [-1, 1, 1, 1, 0 x 6]: sample variance (4 - 10 * 0.04) / 9 = 0.4.
        assert!((d.standard_error - (0.4f64 / 10.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_small_holdout_needs_a_large_difference() {
        // 68 rows (the real stream's holdouts), the challenger ahead by 3
        // rows out of 7 disagreements: not evidence.
        let mut champion = vec![true; 68];
        let mut challenger = vec![true; 68];
        champion[..5].fill(false);
        challenger[5..7].fill(false);
        let d = PairedDifference::accuracy(&champion, &challenger);
        assert!(d.difference > 0.04);
        assert!(!d.beats(0.0, z_for(0.95, 7)));
        // 2,000 rows with the same shares are.
        let big_champion: Vec<bool> = (0..2000).map(|i| champion[i % 68]).collect();
        let big_challenger: Vec<bool> = (0..2000).map(|i| challenger[i % 68]).collect();
        let d = PairedDifference::accuracy(&big_champion, &big_challenger);
        assert!(d.beats(0.0, z_for(0.95, 7)));
    }

    #[test]
    fn identical_predictions_never_win() {
        let rows = vec![true; 500];
        let d = PairedDifference::accuracy(&rows, &rows);
        assert_eq!(d.difference, 0.0);
        assert!(!d.beats(0.0, 1.645));
        assert!(!PairedDifference::of([]).beats(0.0, 0.0));
        // One row is no evidence.
        assert!(!PairedDifference::accuracy(&[false], &[true]).beats(0.0, 1.0));
    }

    #[test]
    fn log_loss_is_positive_when_the_challenger_loses_less() {
        let d = PairedDifference::log_loss(&[0.7, 0.6, 0.9, 0.8], &[0.2, 0.3, 0.1, 0.2]);
        assert!((d.difference - 0.55).abs() < 1e-12);
        assert!(d.beats(0.0, 1.645));
    }

    #[test]
    fn row_results_from_probabilities() {
        // Two rows of two classes: the first right (p 0.8), the second wrong.
        let r = RowResults::of(&[0.2, 0.8, 0.9, 0.1], &[1, 1], 2);
        assert_eq!(r.correct, vec![true, false]);
        assert!((r.loss[0] + 0.8f64.ln()).abs() < 1e-6);
        assert!((r.loss[1] + 0.1f64.ln()).abs() < 1e-6);
        let better = RowResults::of(&[0.1, 0.9, 0.4, 0.6], &[1, 1], 2);
        let d = better.advantage_over(&r, Metric::Accuracy);
        assert_eq!((d.rows, d.difference), (2, 0.5));
        assert!(better.advantage_over(&r, Metric::LogLoss).difference > 0.0);
    }
}
