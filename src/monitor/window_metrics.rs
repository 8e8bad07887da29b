//! Per-row outcomes and the metrics over a window of them, kept as running
//! sums ([`Tally`]) so a sliding window costs nothing per row.

use serde::{Deserialize, Serialize};

/// What the live model did with one labelled row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowOutcome {
    pub label: u32,
    pub predicted: u32,
    /// Probability the model gave the true label (for log loss).
    pub p_label: f32,
    /// Probability of class 1 (for ROC AUC on binary tasks).
    pub p_positive: f32,
    /// The row's time (timestamp column, else arrival), µs since the epoch.
    pub time_us: i64,
}

impl RowOutcome {
    pub fn correct(&self) -> bool {
        self.label == self.predicted
    }
}

/// Precision, recall and F1 of one class, with the label and prediction
/// distributions (`support`, `predicted` as shares of the window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub class: usize,
    /// Share of rows with this label.
    pub label_share: f64,
    /// Share of rows predicted as this class.
    pub predicted_share: f64,
    /// None when the class was never predicted (precision) or never seen
    /// (recall).
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

/// The live model's metrics over a window of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    pub rows: usize,
    pub accuracy: f64,
    pub log_loss: f64,
    /// Binary tasks, when both classes are in the window.
    pub auc: Option<f64>,
    pub classes: Vec<ClassMetrics>,
}

/// Log loss clips probabilities as scikit-learn does, so one confident
/// mistake costs a finite amount.
const LOG_LOSS_EPS: f64 = 1e-7;
/// ROC AUC is counted over this many bins of the positive-class probability,
/// so a window's AUC is kept up to date row by row (pairs in the same bin
/// count one half, as ties do; the error is below the share of such pairs).
const AUC_BINS: usize = 1000;

/// Running sums behind [`WindowMetrics`]: a row is added when it enters a
/// window and removed when it leaves, so metrics over 100,000 rows cost
/// nothing per row.
#[derive(Debug, Clone)]
pub(super) struct Tally {
    pub(super) rows: usize,
    pub(super) correct: usize,
    loss: f64,
    labelled: Vec<usize>,
    predicted: Vec<usize>,
    hits: Vec<usize>,
    /// Binary models: histograms of p(class 1) for label 1 and label 0.
    positives: Vec<u32>,
    negatives: Vec<u32>,
}

impl Tally {
    pub(super) fn new(classes: usize) -> Self {
        let bins = if classes == 2 { AUC_BINS } else { 0 };
        Tally {
            rows: 0,
            correct: 0,
            loss: 0.0,
            labelled: vec![0; classes],
            predicted: vec![0; classes],
            hits: vec![0; classes],
            positives: vec![0; bins],
            negatives: vec![0; bins],
        }
    }

    pub(super) fn row_loss(r: &RowOutcome) -> f64 {
        -(r.p_label as f64).clamp(LOG_LOSS_EPS, 1.0).ln()
    }

    fn bin(p: f32) -> usize {
        ((p.clamp(0.0, 1.0) * AUC_BINS as f32) as usize).min(AUC_BINS - 1)
    }

    /// `sign` is +1 to add the row, -1 to remove it; `loss` is its
    /// [`Tally::row_loss`] (computed once per row, though a row enters and
    /// leaves two windows).
    pub(super) fn apply(&mut self, r: &RowOutcome, loss: f64, sign: isize) {
        let step = |v: &mut usize| *v = v.wrapping_add_signed(sign);
        step(&mut self.rows);
        if r.correct() {
            step(&mut self.correct);
            if let Some(c) = self.hits.get_mut(r.label as usize) {
                step(c);
            }
        }
        self.loss += sign as f64 * loss;
        if let Some(c) = self.labelled.get_mut(r.label as usize) {
            step(c);
        }
        if let Some(c) = self.predicted.get_mut(r.predicted as usize) {
            step(c);
        }
        if !self.positives.is_empty() {
            let hist = if r.label == 1 {
                &mut self.positives
            } else {
                &mut self.negatives
            };
            let b = &mut hist[Self::bin(r.p_positive)];
            *b = b.wrapping_add_signed(sign as i32);
        }
        if self.rows == 0 {
            // Keep rounding from piling up across many windows.
            self.loss = 0.0;
        }
    }

    fn auc(&self) -> Option<f64> {
        let p: f64 = self.positives.iter().map(|&c| c as f64).sum();
        let n: f64 = self.negatives.iter().map(|&c| c as f64).sum();
        if p == 0.0 || n == 0.0 {
            return None;
        }
        let mut below = 0f64;
        let mut wins = 0f64;
        for (&pos, &neg) in self.positives.iter().zip(&self.negatives) {
            wins += pos as f64 * (below + 0.5 * neg as f64);
            below += neg as f64;
        }
        Some(wins / (p * n))
    }

    pub(super) fn metrics(&self) -> WindowMetrics {
        let n = self.rows;
        let share = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
        let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
        let classes = (0..self.labelled.len())
            .map(|c| {
                let precision = ratio(self.hits[c], self.predicted[c]);
                let recall = ratio(self.hits[c], self.labelled[c]);
                let f1 = match (precision, recall) {
                    (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
                    (Some(_), Some(_)) => Some(0.0),
                    _ => None,
                };
                ClassMetrics {
                    class: c,
                    label_share: share(self.labelled[c]),
                    predicted_share: share(self.predicted[c]),
                    precision,
                    recall,
                    f1,
                }
            })
            .collect();
        WindowMetrics {
            rows: n,
            accuracy: if n == 0 {
                f64::NAN
            } else {
                share(self.correct)
            },
            log_loss: if n == 0 {
                f64::NAN
            } else {
                self.loss / n as f64
            },
            auc: self.auc(),
            classes,
        }
    }
}

impl WindowMetrics {
    pub fn of<'a>(rows: impl Iterator<Item = &'a RowOutcome>, classes: usize) -> Self {
        let mut t = Tally::new(classes);
        for r in rows {
            t.apply(r, Tally::row_loss(r), 1);
        }
        t.metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_metrics_by_hand() {
        // Three classes; (label, predicted, p_label):
        let table = [
            (0, 0, 0.8),
            (0, 1, 0.3),
            (1, 1, 0.6),
            (2, 2, 0.9),
            (2, 1, 0.2),
        ];
        let outcomes: Vec<RowOutcome> = table
            .iter()
            .map(|&(l, p, pl)| RowOutcome {
                label: l,
                predicted: p,
                p_label: pl,
                p_positive: 0.0,
                time_us: 0,
            })
            .collect();
        let w = WindowMetrics::of(outcomes.iter(), 3);
        assert_eq!(w.rows, 5);
        assert!((w.accuracy - 0.6).abs() < 1e-12);
        let ll = -(0.8f64.ln() + 0.3f64.ln() + 0.6f64.ln() + 0.9f64.ln() + 0.2f64.ln()) / 5.0;
        assert!((w.log_loss - ll).abs() < 1e-6);
        assert_eq!(w.auc, None);
        // Class 1: predicted 3 times, right once; seen once.
        let c1 = &w.classes[1];
        assert_eq!(c1.precision, Some(1.0 / 3.0));
        assert_eq!(c1.recall, Some(1.0));
        assert!((c1.f1.unwrap() - 0.5).abs() < 1e-12);
        assert!((c1.label_share - 0.2).abs() < 1e-12);
        assert!((c1.predicted_share - 0.6).abs() < 1e-12);
        // Class 0: predicted once, right; seen twice.
        assert_eq!(w.classes[0].precision, Some(1.0));
        assert_eq!(w.classes[0].recall, Some(0.5));
    }
}
