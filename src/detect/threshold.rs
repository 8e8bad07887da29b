//! The rolling-window accuracy rule driftd started with, generalised to an
//! absolute drop, a relative drop or a floor.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{Detector, Severity};

/// How [`Threshold`] compares the window's accuracy with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdRule {
    /// Drift when accuracy < baseline − limit.
    AbsoluteDrop,
    /// Drift when accuracy < baseline · (1 − limit).
    RelativeDrop,
    /// Drift when accuracy < limit.
    Floor,
}

/// Parameters of [`Threshold`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThresholdParams {
    /// Rows in the rolling window; nothing is reported before it is full.
    pub window: usize,
    pub rule: ThresholdRule,
    /// Accuracy points (absolute drop), a fraction of the baseline accuracy
    /// (relative drop) or an accuracy (floor).
    pub limit: f64,
    /// Warning at this fraction of the way from the baseline to the drift
    /// level.
    pub warning_fraction: f64,
}

impl Default for ThresholdParams {
    fn default() -> Self {
        ThresholdParams {
            window: 500,
            rule: ThresholdRule::AbsoluteDrop,
            limit: 0.05,
            warning_fraction: 0.5,
        }
    }
}

/// Accuracies within this of a level count as on it (in control): a window
/// of 7 right out of 10 must not fall below a 0.9 − 0.2 limit by rounding.
const LEVEL_TOLERANCE: f64 = 1e-9;

/// The rolling-window rule driftd started with (`monitor::Monitor`),
/// generalised: over the last `window` rows, compare the accuracy with the
/// baseline's by an absolute drop, a relative drop, or a floor.
///
/// The baseline is the version's holdout error rate when known; otherwise
/// the first full window's. The warning level lies `warning_fraction` of the
/// way from the baseline accuracy to the drift level (for a floor at or above
/// the baseline, warning and drift coincide). The window is not cleared by a
/// drift: the level is reported on every row while the window stays bad, and
/// the trigger decides what is one episode.
#[derive(Debug, Clone)]
pub struct Threshold {
    params: ThresholdParams,
    configured_baseline: Option<f64>,
    /// Baseline error rate, configured or learned.
    baseline: Option<f64>,
    outcomes: VecDeque<bool>,
    errors: usize,
}

impl Threshold {
    /// `baseline_error`: the version's holdout error rate (1 − accuracy). A
    /// window of 0 (rejected by `validate`) is taken as 1.
    pub fn new(mut params: ThresholdParams, baseline_error: Option<f64>) -> Self {
        params.window = params.window.max(1);
        Threshold {
            outcomes: VecDeque::new(),
            params,
            configured_baseline: baseline_error,
            baseline: baseline_error,
            errors: 0,
        }
    }

    /// The baseline error rate, once known.
    pub fn baseline_error(&self) -> Option<f64> {
        self.baseline
    }

    /// Accuracy levels `(warning, drift)` for a baseline accuracy.
    fn levels(&self, base_acc: f64) -> (f64, f64) {
        let ThresholdParams {
            limit,
            warning_fraction: f,
            ..
        } = self.params;
        let drift = match self.params.rule {
            ThresholdRule::AbsoluteDrop => base_acc - limit,
            ThresholdRule::RelativeDrop => base_acc * (1.0 - limit),
            ThresholdRule::Floor => limit,
        };
        let warning = if drift < base_acc {
            base_acc - f * (base_acc - drift)
        } else {
            drift
        };
        (warning, drift)
    }
}

impl Detector for Threshold {
    fn update(&mut self, error: bool) -> Option<Severity> {
        self.outcomes.push_back(error);
        self.errors += usize::from(error);
        if self.outcomes.len() > self.params.window {
            let old = self.outcomes.pop_front().expect("non-empty");
            self.errors -= usize::from(old);
        }
        if self.outcomes.len() < self.params.window {
            return None;
        }
        let err = self.errors as f64 / self.params.window as f64;
        let base_acc = 1.0 - *self.baseline.get_or_insert(err);
        let acc = 1.0 - err;
        let (warning, drift) = self.levels(base_acc);
        if acc < drift - LEVEL_TOLERANCE {
            Some(Severity::Drift)
        } else if acc < warning - LEVEL_TOLERANCE {
            Some(Severity::Warning)
        } else {
            None
        }
    }

    fn reset(&mut self) {
        self.outcomes.clear();
        self.errors = 0;
        self.baseline = self.configured_baseline;
    }

    fn name(&self) -> &'static str {
        "threshold"
    }

    fn estimate(&self) -> f64 {
        if self.outcomes.is_empty() {
            0.0
        } else {
            self.errors as f64 / self.outcomes.len() as f64
        }
    }

    fn window_rows(&self) -> Option<usize> {
        Some(self.params.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::tests::{bits, close, run};
    use crate::detect::Severity::{Drift, Warning};

    fn threshold(rule: ThresholdRule, limit: f64, baseline: Option<f64>) -> Threshold {
        Threshold::new(
            ThresholdParams {
                window: 10,
                rule,
                limit,
                warning_fraction: 0.5,
            },
            baseline,
        )
    }

    #[test]
    fn threshold_rules_worked_by_hand() {
        // Window 10, baseline accuracy 0.9, warning half-way to the drift level:
        //   absolute_drop 0.2: drift below 0.9 − 0.2 = 0.7, warning below 0.9 − 0.1 = 0.8
        //   relative_drop 0.25: drift below 0.9 · 0.75 = 0.675, warning below 0.9 − 0.5 · 0.225 = 0.7875
        //   floor 0.65: drift below 0.65, warning below 0.9 − 0.5 · 0.25 = 0.775
        // Ten right rows, then errors: rows 11-15 have accuracy 0.9, 0.8, 0.7,
        // 0.6, 0.5. All three: warning at row 13, drift from row 14 on (the
        // window is not cleared). Rows 12 and 13 sit exactly on the absolute
        // rule's warning and drift levels, which count as in control.
        let seq = bits(&[(false, 10), (true, 5)]);
        for (rule, limit) in [
            (ThresholdRule::AbsoluteDrop, 0.2),
            (ThresholdRule::RelativeDrop, 0.25),
            (ThresholdRule::Floor, 0.65),
        ] {
            let mut d = threshold(rule, limit, Some(0.1));
            assert_eq!(
                run(&mut d, &seq),
                vec![(13, Warning), (14, Drift), (15, Drift)],
                "{rule:?}"
            );
            assert!(close(d.estimate(), 0.5));
        }
    }

    #[test]
    fn threshold_waits_for_a_full_window_and_learns_a_missing_baseline() {
        let mut d = threshold(ThresholdRule::AbsoluteDrop, 0.2, Some(0.1));
        assert_eq!(run(&mut d, &[true; 9]), vec![], "window not full yet");
        assert_eq!(d.update(true), Some(Drift));

        // No baseline: the first full window's error rate (3/10) becomes it.
        let mut d = threshold(ThresholdRule::AbsoluteDrop, 0.2, None);
        run(&mut d, &bits(&[(true, 3), (false, 7)]));
        assert!(close(d.baseline_error().unwrap(), 0.3));
        // reset forgets a learned baseline but keeps a configured one.
        d.reset();
        assert_eq!(d.baseline_error(), None);
        let mut d = threshold(ThresholdRule::AbsoluteDrop, 0.2, Some(0.1));
        run(&mut d, &[true; 10]);
        d.reset();
        assert_eq!(d.baseline_error(), Some(0.1));
        assert_eq!(d.estimate(), 0.0);
    }
}
