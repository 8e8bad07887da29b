//! Rolling metrics of the live model and the drift detectors.
//!
//! Boundary: the monitor sees only per-row outcomes (was the live model
//! right?) and the version's baseline; it never touches models or files. It
//! answers with at most one alert per drift episode: after a detector
//! signals drift, its next drift alert waits `min_rows_between_alerts` rows.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::detect::{Detector, DetectorSpec, Severity};

/// A detector's signal, with the rolling accuracy beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    pub detector: String,
    pub severity: Severity,
    pub metric: String,
    /// The version's holdout accuracy (or its first full window).
    pub baseline: Option<f64>,
    /// Rolling accuracy over the last `window` rows.
    pub current: f64,
    /// The detector's estimate of the error rate when it signalled.
    pub estimated_error: f64,
    pub window: usize,
    /// Rows scored since the live version went live.
    pub rows_since_live: u64,
}

/// Rolling accuracy over the last `window` rows plus the policy's detectors
/// fed with every row's error.
pub struct Monitor {
    window: usize,
    outcomes: VecDeque<bool>,
    correct_in_window: usize,
    rows_seen: u64,
    baseline: Option<f64>,
    detectors: Vec<(Box<dyn Detector>, Option<u64>)>,
    min_rows_between_alerts: u64,
    min_rows_before_alert: u64,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("window", &self.window)
            .field("rows_seen", &self.rows_seen)
            .field("baseline", &self.baseline)
            .field("detectors", &self.detectors.len())
            .finish()
    }
}

impl Monitor {
    /// `baseline`: the version's holdout accuracy; when `None`, the first
    /// full window becomes the baseline (and threshold detectors learn
    /// theirs).
    pub fn new(
        window: usize,
        specs: &[DetectorSpec],
        min_rows_between_alerts: u64,
        min_rows_before_alert: u64,
        baseline: Option<f64>,
    ) -> Self {
        let baseline_error = baseline.map(|a| 1.0 - a);
        Monitor {
            window,
            outcomes: VecDeque::with_capacity(window + 1),
            correct_in_window: 0,
            rows_seen: 0,
            baseline,
            detectors: specs
                .iter()
                .map(|s| (s.build(baseline_error), None))
                .collect(),
            min_rows_between_alerts,
            min_rows_before_alert,
        }
    }

    pub fn baseline(&self) -> Option<f64> {
        self.baseline
    }

    pub fn rows_seen(&self) -> u64 {
        self.rows_seen
    }

    /// Accuracy over the rows in the window (which may not be full yet).
    pub fn rolling_accuracy(&self) -> Option<f64> {
        if self.outcomes.is_empty() {
            None
        } else {
            Some(self.correct_in_window as f64 / self.outcomes.len() as f64)
        }
    }

    /// Feeds per-row outcomes in order; returns the alerts they raise (a
    /// drift alert per detector at most once per episode; warnings only
    /// when no drift was signalled in the same batch).
    pub fn observe(&mut self, correct: &[bool]) -> Vec<DriftAlert> {
        let mut alerts: Vec<DriftAlert> = Vec::new();
        for &c in correct {
            self.outcomes.push_back(c);
            self.correct_in_window += c as usize;
            if self.outcomes.len() > self.window {
                let old = self.outcomes.pop_front().expect("non-empty");
                self.correct_in_window -= old as usize;
            }
            self.rows_seen += 1;
            if self.baseline.is_none() && self.outcomes.len() == self.window {
                self.baseline = self.rolling_accuracy();
            }
            let current = self.rolling_accuracy().unwrap_or(f64::NAN);
            for (detector, last_drift) in &mut self.detectors {
                let Some(severity) = detector.update(!c) else {
                    continue;
                };
                let name = detector.name();
                let quiet = self.rows_seen < self.min_rows_before_alert
                    || last_drift
                        .is_some_and(|at| self.rows_seen - at < self.min_rows_between_alerts);
                let already = alerts
                    .iter()
                    .any(|a| a.detector == name && a.severity == severity);
                if quiet || already {
                    tracing::debug!(
                        detector = name,
                        ?severity,
                        "alert suppressed: same drift episode"
                    );
                    continue;
                }
                if severity == Severity::Drift {
                    *last_drift = Some(self.rows_seen);
                }
                alerts.push(DriftAlert {
                    detector: name.to_string(),
                    severity,
                    metric: "accuracy".into(),
                    baseline: self.baseline,
                    current,
                    estimated_error: detector.estimate(),
                    window: self.window,
                    rows_since_live: self.rows_seen,
                });
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::{ThresholdParams, ThresholdRule};

    fn threshold(window: usize, limit: f64) -> DetectorSpec {
        DetectorSpec::Threshold(ThresholdParams {
            window,
            rule: ThresholdRule::AbsoluteDrop,
            limit,
            warning_fraction: 0.5,
        })
    }

    #[test]
    fn one_drift_alert_per_episode() {
        let mut m = Monitor::new(10, &[threshold(10, 0.2)], 100, 0, Some(0.9));
        assert!(m.observe(&[true; 10]).is_empty());
        let alerts = m.observe(&[false; 6]);
        let drift: Vec<_> = alerts
            .iter()
            .filter(|a| a.severity == Severity::Drift)
            .collect();
        assert_eq!(drift.len(), 1, "{alerts:?}");
        assert_eq!(drift[0].baseline, Some(0.9));
        assert!(m.observe(&[false; 50]).is_empty(), "same episode");
        // After the quiet period a persisting drift is reported again.
        let later = m.observe(&[false; 60]);
        assert!(
            later.iter().any(|a| a.severity == Severity::Drift),
            "{later:?}"
        );
    }

    #[test]
    fn default_detector_catches_an_abrupt_drop() {
        let mut m = Monitor::new(500, &[DetectorSpec::default()], 1000, 200, Some(0.93));
        // 93% right for 3000 rows, then 60%.
        let before: Vec<bool> = (0..3000).map(|i| i % 100 >= 7).collect();
        assert!(m.observe(&before).is_empty());
        let after: Vec<bool> = (0..1000).map(|i| i % 10 >= 4).collect();
        let alerts = m.observe(&after);
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
        let mut m = Monitor::new(10, &[threshold(10, 0.2)], 100, 50, Some(0.9));
        assert!(m.observe(&[false; 49]).is_empty());
        assert!(!m.observe(&[false; 2]).is_empty());
    }

    #[test]
    fn first_full_window_is_the_baseline_when_none_is_given() {
        let mut m = Monitor::new(4, &[], 100, 0, None);
        m.observe(&[true, true, true, false]);
        assert_eq!(m.baseline(), Some(0.75));
        assert_eq!(m.rolling_accuracy(), Some(0.75));
    }
}
