//! Rolling metrics of the live model and the drift detectors.
//!
//! Boundary: the monitor sees only per-row outcomes (label, prediction, the
//! probabilities the live model gave, the row's time) and the version's
//! baseline; it never touches models or files. It answers with alerts, at
//! most one per detector and drift episode: an episode ends when the rolling
//! accuracy over a full window after it began is back within
//! `recovery_margin` of the baseline, which re-arms the detector; while it
//! lasts the alert is repeated every `realert_after_rows` rows (if set).
//!
//! Files: `window_metrics.rs` (per-row outcomes and the running sums behind
//! a window's metrics), `alerts.rs` (the alert and the episode rules), and
//! here the [`Monitor`] that keeps both windows and feeds the detectors.

mod alerts;
mod window_metrics;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use crate::config::MonitorConfig;
use crate::detect::Severity;

pub use alerts::{alert_summary, DriftAlert};
use alerts::{error_kind, Armed};
use window_metrics::Tally;
pub use window_metrics::{ClassMetrics, RowOutcome, WindowMetrics};

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
                .map(|s| Armed::new(s.build(baseline_error)))
                .collect(),
        }
    }

    /// The live version changed without a new baseline (the online
    /// challenger's next version of the same process): alerts name it.
    pub fn set_version(&mut self, version: u64) {
        self.version = Some(version);
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
                let raise = armed.respond(signal, rows_seen, young, &self.config);
                if let Some((severity, repeat)) = raise {
                    let (current, window) = match armed.detector.window_rows() {
                        Some(rows) => (1.0 - armed.detector.estimate(), rows),
                        None => (current, self.config.window),
                    };
                    alerts.push(DriftAlert {
                        kind: error_kind(),
                        detector: name.to_string(),
                        severity,
                        metric: "accuracy".into(),
                        baseline: self.baseline,
                        current,
                        estimated_error: armed.detector.estimate(),
                        window,
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
}
