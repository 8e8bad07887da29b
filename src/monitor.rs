//! Rolling metrics of the live model and the drift detectors.
//!
//! Boundary: the monitor sees only per-row outcomes (label, prediction, the
//! probabilities the live model gave, the row's time) and the version's
//! baseline; it never touches models or files. It answers with alerts, at
//! most one per detector and drift episode: an episode ends when the rolling
//! accuracy over a full window after it began is back within
//! `recovery_margin` of the baseline, which re-arms the detector; while it
//! lasts the alert is repeated every `realert_after_rows` rows (if set).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::config::MonitorConfig;
use crate::detect::{Detector, Severity};
use crate::input_drift::FeatureDrift;

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
struct Tally {
    rows: usize,
    correct: usize,
    loss: f64,
    labelled: Vec<usize>,
    predicted: Vec<usize>,
    hits: Vec<usize>,
    /// Binary models: histograms of p(class 1) for label 1 and label 0.
    positives: Vec<u32>,
    negatives: Vec<u32>,
}

impl Tally {
    fn new(classes: usize) -> Self {
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

    fn row_loss(r: &RowOutcome) -> f64 {
        -(r.p_label as f64).clamp(LOG_LOSS_EPS, 1.0).ln()
    }

    fn bin(p: f32) -> usize {
        ((p.clamp(0.0, 1.0) * AUC_BINS as f32) as usize).min(AUC_BINS - 1)
    }

    /// `sign` is +1 to add the row, -1 to remove it; `loss` is its
    /// [`Tally::row_loss`] (computed once per row, though a row enters and
    /// leaves two windows).
    fn apply(&mut self, r: &RowOutcome, loss: f64, sign: isize) {
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

    fn metrics(&self) -> WindowMetrics {
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

/// A detector's signal (kind `error`) or an input-drift finding (kind
/// `input`), with the rolling accuracy beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    /// `error` (a detector on the per-row errors) or `input` (feature
    /// distributions).
    #[serde(default = "error_kind")]
    pub kind: String,
    pub detector: String,
    pub severity: Severity,
    pub metric: String,
    /// The version's holdout accuracy (or its first full window).
    pub baseline: Option<f64>,
    /// Rolling accuracy over the last `window` rows.
    pub current: f64,
    /// The detector's estimate of the error rate when it signalled (input
    /// alerts: the largest PSI).
    pub estimated_error: f64,
    pub window: usize,
    /// Rows scored since the live version went live.
    pub rows_since_live: u64,
    #[serde(default)]
    pub live_version: Option<u64>,
    /// 0 for the first alert of an episode, then 1, 2, … for repeats.
    #[serde(default)]
    pub repeat: u32,
    /// Input alerts: the features that moved most.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<FeatureDrift>,
}

fn error_kind() -> String {
    "error".into()
}

/// One detector and where it stands in the current drift episode.
#[derive(Debug)]
struct Armed {
    detector: Box<dyn Detector>,
    /// Row (of `rows_seen`) the open drift episode began at, and of its
    /// last alert.
    episode: Option<(u64, u64)>,
    repeats: u32,
    last_warning: Option<u64>,
}

/// Rolling metrics over the last `window` rows and over a time window, plus
/// the policy's detectors fed with every row's error.
#[derive(Debug)]
pub struct Monitor {
    config: MonitorConfig,
    version: Option<u64>,
    /// The window's rows with their log loss.
    outcomes: VecDeque<(RowOutcome, f64)>,
    tally: Tally,
    /// Rows of the last `time_window_seconds`, newest last.
    timed: VecDeque<(RowOutcome, f64)>,
    timed_tally: Tally,
    newest_time_us: i64,
    rows_seen: u64,
    baseline: Option<f64>,
    detectors: Vec<Armed>,
}

impl Monitor {
    /// `baseline`: the version's holdout accuracy; when `None`, the first
    /// full window becomes the baseline (and threshold detectors learn
    /// theirs).
    pub fn new(
        config: &MonitorConfig,
        classes: usize,
        version: Option<u64>,
        baseline: Option<f64>,
    ) -> Self {
        let baseline_error = baseline.map(|a| 1.0 - a);
        Monitor {
            config: config.clone(),
            version,
            outcomes: VecDeque::with_capacity(config.window + 1),
            tally: Tally::new(classes),
            timed: VecDeque::new(),
            timed_tally: Tally::new(classes),
            newest_time_us: i64::MIN,
            rows_seen: 0,
            baseline,
            detectors: config
                .detectors
                .iter()
                .map(|s| Armed {
                    detector: s.build(baseline_error),
                    episode: None,
                    repeats: 0,
                    last_warning: None,
                })
                .collect(),
        }
    }

    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    pub fn rows_seen(&self) -> u64 {
        self.rows_seen
    }

    pub fn window(&self) -> usize {
        self.config.window
    }

    /// Whether a drift episode is open on any detector.
    pub fn in_episode(&self) -> bool {
        self.detectors.iter().any(|a| a.episode.is_some())
    }

    /// Accuracy over the rows in the window (which may not be full yet).
    pub fn rolling_accuracy(&self) -> Option<f64> {
        if self.outcomes.is_empty() {
            None
        } else {
            Some(self.tally.correct as f64 / self.tally.rows as f64)
        }
    }

    /// Metrics over the last `window` rows.
    pub fn window_metrics(&self) -> Option<WindowMetrics> {
        (!self.outcomes.is_empty()).then(|| self.tally.metrics())
    }

    /// Metrics over the rows of the last `time_window_seconds`.
    pub fn time_window_metrics(&self) -> Option<WindowMetrics> {
        (!self.timed.is_empty()).then(|| self.timed_tally.metrics())
    }

    /// Feeds per-row outcomes in order; returns the alerts they raise.
    pub fn observe(&mut self, rows: &[RowOutcome]) -> Vec<DriftAlert> {
        let mut alerts: Vec<DriftAlert> = Vec::new();
        for r in rows {
            self.push(*r);
            let current = self.rolling_accuracy().unwrap_or(f64::NAN);
            self.end_recovered_episodes(current);
            let rows_seen = self.rows_seen;
            let young = rows_seen < self.config.min_rows_before_alert;
            for armed in &mut self.detectors {
                let signal = armed.detector.update(!r.correct());
                let name = armed.detector.name();
                let raise = match (signal, armed.episode) {
                    (Some(_), _) if young => {
                        tracing::debug!(
                            detector = name,
                            ?signal,
                            rows_seen,
                            "alert suppressed: the version has scored fewer than monitor.min_rows_before_alert rows"
                        );
                        None
                    }
                    (Some(Severity::Drift), None) => {
                        armed.episode = Some((rows_seen, rows_seen));
                        armed.repeats = 0;
                        Some((Severity::Drift, 0))
                    }
                    (Some(Severity::Warning), None) => {
                        let rearmed = armed
                            .last_warning
                            .is_none_or(|at| rows_seen - at >= self.config.window as u64);
                        if rearmed {
                            armed.last_warning = Some(rows_seen);
                            Some((Severity::Warning, 0))
                        } else {
                            tracing::debug!(
                                detector = name,
                                "warning suppressed: one per window of rows"
                            );
                            None
                        }
                    }
                    (signal, Some((began, last))) => {
                        let every = self.config.realert_after_rows;
                        if every > 0 && rows_seen - last >= every {
                            armed.episode = Some((began, rows_seen));
                            armed.repeats += 1;
                            Some((Severity::Drift, armed.repeats))
                        } else {
                            if signal.is_some() {
                                tracing::debug!(
                                    detector = name,
                                    ?signal,
                                    episode_began_at_row = began,
                                    "alert suppressed: same drift episode"
                                );
                            }
                            None
                        }
                    }
                    (None, None) => None,
                };
                if let Some((severity, repeat)) = raise {
                    alerts.push(DriftAlert {
                        kind: error_kind(),
                        detector: name.to_string(),
                        severity,
                        metric: "accuracy".into(),
                        baseline: self.baseline,
                        current,
                        estimated_error: armed.detector.estimate(),
                        window: self.config.window,
                        rows_since_live: rows_seen,
                        live_version: self.version,
                        repeat,
                        features: Vec::new(),
                    });
                }
            }
        }
        // A warning that became a drift in the same batch is the drift.
        let drifted: Vec<String> = alerts
            .iter()
            .filter(|a| a.severity == Severity::Drift)
            .map(|a| a.detector.clone())
            .collect();
        alerts.retain(|a| a.severity == Severity::Drift || !drifted.contains(&a.detector));
        alerts
    }

    fn push(&mut self, r: RowOutcome) {
        let loss = Tally::row_loss(&r);
        self.outcomes.push_back((r, loss));
        self.tally.apply(&r, loss, 1);
        if self.outcomes.len() > self.config.window {
            let (old, old_loss) = self.outcomes.pop_front().expect("non-empty");
            self.tally.apply(&old, old_loss, -1);
        }
        self.rows_seen += 1;
        if self.baseline.is_none() && self.outcomes.len() == self.config.window {
            self.baseline = self.rolling_accuracy();
        }
        let span_us = self.config.time_window_seconds.saturating_mul(1_000_000) as i64;
        if span_us > 0 {
            self.newest_time_us = self.newest_time_us.max(r.time_us);
            self.timed.push_back((r, loss));
            self.timed_tally.apply(&r, loss, 1);
            let oldest = self.newest_time_us.saturating_sub(span_us);
            while self.timed.len() > self.config.time_window_max_rows
                || self.timed.front().is_some_and(|(f, _)| f.time_us < oldest)
            {
                let (old, old_loss) = self.timed.pop_front().expect("non-empty");
                self.timed_tally.apply(&old, old_loss, -1);
            }
        }
    }

    /// An episode ends once a full window of rows after it began scores
    /// within `recovery_margin` of the baseline.
    fn end_recovered_episodes(&mut self, current: f64) {
        let Some(baseline) = self.baseline else {
            return;
        };
        let window = self.config.window as u64;
        let recovered = current >= baseline - self.config.recovery_margin;
        for armed in &mut self.detectors {
            if let Some((began, _)) = armed.episode {
                if recovered && self.rows_seen - began >= window {
                    tracing::info!(
                        event = "drift_recovered",
                        detector = armed.detector.name(),
                        live_version = ?self.version,
                        current,
                        baseline,
                        rows_since_live = self.rows_seen,
                        "accuracy over the last {window} rows is back to {current:.3} (baseline {baseline:.3}); the {} detector is re-armed",
                        armed.detector.name()
                    );
                    armed.episode = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{DetectorSpec, ThresholdParams, ThresholdRule};

    fn threshold(window: usize, limit: f64) -> DetectorSpec {
        DetectorSpec::Threshold(ThresholdParams {
            window,
            rule: ThresholdRule::AbsoluteDrop,
            limit,
            warning_fraction: 0.5,
        })
    }

    fn config(window: usize, detectors: Vec<DetectorSpec>) -> MonitorConfig {
        MonitorConfig {
            window,
            detectors,
            realert_after_rows: 0,
            min_rows_before_alert: 0,
            ..MonitorConfig::default()
        }
    }

    /// Binary outcomes: right or wrong on label 1.
    fn rows(correct: &[bool]) -> Vec<RowOutcome> {
        correct
            .iter()
            .map(|&c| RowOutcome {
                label: 1,
                predicted: if c { 1 } else { 0 },
                p_label: if c { 0.9 } else { 0.1 },
                p_positive: if c { 0.9 } else { 0.1 },
                time_us: 0,
            })
            .collect()
    }

    fn drifts(alerts: &[DriftAlert]) -> usize {
        alerts
            .iter()
            .filter(|a| a.severity == Severity::Drift)
            .count()
    }

    #[test]
    fn one_drift_alert_per_episode_until_recovery() {
        let mut m = Monitor::new(&config(10, vec![threshold(10, 0.2)]), 2, Some(3), Some(0.9));
        assert!(m.observe(&rows(&[true; 10])).is_empty());
        let alerts = m.observe(&rows(&[false; 6]));
        assert_eq!(drifts(&alerts), 1, "{alerts:?}");
        let a = alerts
            .iter()
            .find(|a| a.severity == Severity::Drift)
            .unwrap();
        assert_eq!(a.baseline, Some(0.9));
        assert_eq!(a.live_version, Some(3));
        assert_eq!(a.kind, "error");
        assert!(m.in_episode());
        // The drift persists: no repeat (realert_after_rows = 0).
        assert!(m.observe(&rows(&[false; 500])).is_empty());
        // Recovery: a full window back at the baseline re-arms...
        assert!(m.observe(&rows(&[true; 10])).is_empty());
        assert!(!m.in_episode());
        // ...so the next drop is a new episode with its own alert.
        assert_eq!(drifts(&m.observe(&rows(&[false; 6]))), 1);
    }

    #[test]
    fn a_persisting_drift_is_repeated_after_the_configured_rows() {
        let mut cfg = config(10, vec![threshold(10, 0.2)]);
        cfg.realert_after_rows = 100;
        let mut m = Monitor::new(&cfg, 2, None, Some(0.9));
        m.observe(&rows(&[true; 10]));
        // The threshold fires when the window's accuracy drops below
        // 0.9 - 0.2: 0.6 at the 4th wrong row, row 14.
        let first = m.observe(&rows(&[false; 6]));
        let at = first
            .iter()
            .find(|a| a.severity == Severity::Drift)
            .unwrap()
            .rows_since_live;
        assert_eq!(at, 14, "{first:?}");
        let later = m.observe(&rows(&[false; 250]));
        let repeats: Vec<(u64, u32)> = later
            .iter()
            .filter(|a| a.severity == Severity::Drift)
            .map(|a| (a.rows_since_live, a.repeat))
            .collect();
        assert_eq!(repeats, vec![(114, 1), (214, 2)]);
    }

    #[test]
    fn default_detector_catches_an_abrupt_drop() {
        let cfg = MonitorConfig::default();
        let mut m = Monitor::new(&cfg, 2, None, Some(0.93));
        // 93% right for 3000 rows, then 60%.
        let before: Vec<bool> = (0..3000).map(|i| i % 100 >= 7).collect();
        assert!(m.observe(&rows(&before)).is_empty());
        let after: Vec<bool> = (0..1000).map(|i| i % 10 >= 4).collect();
        let alerts = m.observe(&rows(&after));
        let a = alerts
            .iter()
            .find(|a| a.severity == Severity::Drift)
            .expect("drift");
        assert!(
            a.rows_since_live > 3000 && a.rows_since_live < 3500,
            "{a:?}"
        );
        assert_eq!(a.detector, "adwin");
    }

    #[test]
    fn no_alert_before_the_minimum_rows_of_a_version() {
        let mut cfg = config(10, vec![threshold(10, 0.2)]);
        cfg.min_rows_before_alert = 50;
        let mut m = Monitor::new(&cfg, 2, None, Some(0.9));
        assert!(m.observe(&rows(&[false; 49])).is_empty());
        assert!(!m.observe(&rows(&[false; 2])).is_empty());
    }

    #[test]
    fn first_full_window_is_the_baseline_when_none_is_given() {
        let mut m = Monitor::new(&config(4, vec![]), 2, None, None);
        m.observe(&rows(&[true, true, true, false]));
        assert_eq!(m.baseline(), Some(0.75));
        assert_eq!(m.rolling_accuracy(), Some(0.75));
    }

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

    #[test]
    fn sliding_tallies_match_a_fresh_count_and_auc_matches_the_exact_one() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let all: Vec<RowOutcome> = (0..5000)
            .map(|_| {
                let label = rng.random_range(0..2u32);
                // Informative but noisy scores.
                let p1: f32 = (0.3 * label as f32 + 0.7 * rng.random::<f32>()).clamp(0.0, 1.0);
                let predicted = (p1 >= 0.5) as u32;
                RowOutcome {
                    label,
                    predicted,
                    p_label: if label == 1 { p1 } else { 1.0 - p1 },
                    p_positive: p1,
                    time_us: 0,
                }
            })
            .collect();
        let mut m = Monitor::new(&config(700, vec![]), 2, None, None);
        m.observe(&all);
        let sliding = m.window_metrics().unwrap();
        let fresh = WindowMetrics::of(all[all.len() - 700..].iter(), 2);
        assert_eq!(sliding.rows, 700);
        assert_eq!(sliding.accuracy, fresh.accuracy);
        assert_eq!(sliding.classes, fresh.classes);
        assert!((sliding.log_loss - fresh.log_loss).abs() < 1e-9);
        let window = &all[all.len() - 700..];
        let exact = crate::model::roc_auc(
            &window.iter().map(|r| r.p_positive).collect::<Vec<_>>(),
            &window.iter().map(|r| r.label as i64).collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(
            (sliding.auc.unwrap() - exact).abs() < 1e-3,
            "{sliding:?} vs {exact}"
        );
    }

    #[test]
    fn the_time_window_keeps_only_recent_rows() {
        let mut cfg = config(100, vec![]);
        cfg.time_window_seconds = 10;
        let mut m = Monitor::new(&cfg, 2, None, None);
        let mut batch = rows(&[true, true, false, false]);
        for (i, r) in batch.iter_mut().enumerate() {
            r.time_us = i as i64 * 6_000_000; // 0, 6, 12, 18 s
        }
        m.observe(&batch);
        // The newest row is at 18 s: rows before 8 s are out.
        let t = m.time_window_metrics().unwrap();
        assert_eq!(t.rows, 2);
        assert_eq!(t.accuracy, 0.0);
        assert_eq!(m.window_metrics().unwrap().rows, 4);
        assert_eq!(m.window_metrics().unwrap().auc, None, "one label only");
    }
}
