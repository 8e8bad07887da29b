//! Rolling metrics of the live model and the drift detector.
//!
//! Boundary: the monitor sees only per-row outcomes (was the live model
//! right?) and the version's baseline; it never touches models or files. It
//! answers with at most one alert per drift episode.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// A drop of the rolling accuracy below the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftAlert {
    pub detector: String,
    pub metric: String,
    pub baseline: f64,
    pub current: f64,
    pub threshold: f64,
    pub window: usize,
    /// Rows scored since the live version went live.
    pub rows_since_live: u64,
    /// Global row number (since the version went live) where the window that
    /// raised the alert starts: the earliest the drift can have begun.
    pub window_start_row: u64,
}

/// Rolling accuracy over the last `window` rows, with a threshold detector:
/// alert when the full window's accuracy is more than `max_drop` below the
/// baseline; re-arm once it recovers to within half that distance.
#[derive(Debug, Clone)]
pub struct Monitor {
    window: usize,
    max_drop: f64,
    outcomes: VecDeque<bool>,
    correct_in_window: usize,
    rows_seen: u64,
    baseline: Option<f64>,
    armed: bool,
}

impl Monitor {
    /// `baseline`: the version's holdout accuracy; when `None`, the first
    /// full window becomes the baseline.
    pub fn new(window: usize, max_drop: f64, baseline: Option<f64>) -> Self {
        Monitor {
            window,
            max_drop,
            outcomes: VecDeque::with_capacity(window + 1),
            correct_in_window: 0,
            rows_seen: 0,
            baseline,
            armed: true,
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

    pub fn window_full(&self) -> bool {
        self.outcomes.len() == self.window
    }

    /// Feeds per-row outcomes in order; returns the first alert they raise.
    pub fn observe(&mut self, correct: &[bool]) -> Option<DriftAlert> {
        let mut alert = None;
        for &c in correct {
            self.outcomes.push_back(c);
            self.correct_in_window += c as usize;
            if self.outcomes.len() > self.window {
                let old = self.outcomes.pop_front().expect("non-empty");
                self.correct_in_window -= old as usize;
            }
            self.rows_seen += 1;
            if !self.window_full() {
                continue;
            }
            let acc = self.correct_in_window as f64 / self.window as f64;
            let baseline = *self.baseline.get_or_insert(acc);
            if self.armed && acc < baseline - self.max_drop {
                self.armed = false;
                if alert.is_none() {
                    alert = Some(DriftAlert {
                        detector: "threshold".into(),
                        metric: "accuracy".into(),
                        baseline,
                        current: acc,
                        threshold: self.max_drop,
                        window: self.window,
                        rows_since_live: self.rows_seen,
                        window_start_row: self.rows_seen - self.window as u64,
                    });
                }
            } else if !self.armed && acc >= baseline - self.max_drop / 2.0 {
                self.armed = true;
            }
        }
        alert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_once_per_episode_and_rearms_after_recovery() {
        let mut m = Monitor::new(10, 0.2, Some(0.9));
        assert!(m.observe(&[true; 10]).is_none());
        // Accuracy falls: 6 wrong of 10 -> 0.4 < 0.7.
        let a = m.observe(&[false; 6]).expect("alert");
        assert_eq!(a.baseline, 0.9);
        assert!(a.current < 0.7);
        assert_eq!(a.rows_since_live, 14); // at 4 wrong: 0.6 < 0.7
        assert_eq!(a.window_start_row, 4);
        assert!(m.observe(&[false; 20]).is_none(), "one alert per episode");
        assert!(m.observe(&[true; 10]).is_none(), "recovered, re-armed");
        assert!(m.observe(&[false; 10]).is_some(), "a second episode");
    }

    #[test]
    fn first_full_window_is_the_baseline_when_none_is_given() {
        let mut m = Monitor::new(4, 0.1, None);
        m.observe(&[true, true, true, false]);
        assert_eq!(m.baseline(), Some(0.75));
        assert_eq!(m.rolling_accuracy(), Some(0.75));
    }
}
