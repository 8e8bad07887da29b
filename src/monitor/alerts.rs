//! [`DriftAlert`], and the episode rules that decide when a detector's
//! signal becomes one: once per episode, repeats, re-arming on recovery.

use serde::{Deserialize, Serialize};

use super::Monitor;
use crate::config::MonitorConfig;
use crate::detect::{Detector, Severity};
use crate::input_drift::FeatureDrift;

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
    /// Accuracy over the last `window` rows: the monitor's rolling window,
    /// or a windowed detector's own (the threshold's `window`).
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

pub(super) fn error_kind() -> String {
    "error".into()
}

impl DriftAlert {
    /// What the alert measured, in its own terms (see [`alert_summary`]).
    pub fn summary(&self) -> String {
        alert_summary(
            &self.kind,
            &self.metric,
            self.current,
            self.baseline,
            &self.features,
        )
    }
}

/// The one wording of what an alert measured, for `status`, `report` and
/// the backtest: an error alert's rolling metric against the version's
/// baseline; an input alert's moved features with their PSI and KS p-value
/// (an accuracy means nothing there).
pub fn alert_summary(
    kind: &str,
    metric: &str,
    current: f64,
    baseline: Option<f64>,
    features: &[FeatureDrift],
) -> String {
    if kind == "input" {
        let moved: Vec<String> = features
            .iter()
            .map(|f| {
                format!(
                    "{} (PSI {:.3}, KS p {:.1e})",
                    f.feature, f.psi, f.ks_p_value
                )
            })
            .collect();
        return format!("features moved: {}", moved.join(", "));
    }
    let against = baseline.map_or(String::new(), |b| format!(" (baseline {b:.4})"));
    format!("rolling {metric} {current:.4}{against}")
}

/// One detector and where it stands in the current drift episode.
#[derive(Debug)]
pub(super) struct Armed {
    pub(super) detector: Box<dyn Detector>,
    /// Row (of `rows_seen`) the open drift episode began at, and of its
    /// last alert.
    pub(super) episode: Option<(u64, u64)>,
    repeats: u32,
    last_warning: Option<u64>,
}

impl Armed {
    pub(super) fn new(detector: Box<dyn Detector>) -> Self {
        Armed {
            detector,
            episode: None,
            repeats: 0,
            last_warning: None,
        }
    }

    /// What the detector's `signal` at row `rows_seen` raises, as (severity,
    /// repeat): a drift opens an episode; a warning outside one is raised at
    /// most once per window of rows; inside an episode only the repeats are,
    /// `realert_after_rows` rows apart, then twice, four and eight times that
    /// ([`repeat_after`]). `young`: the version has scored fewer
    /// than `min_rows_before_alert` rows, so nothing is raised.
    pub(super) fn respond(
        &mut self,
        signal: Option<Severity>,
        rows_seen: u64,
        young: bool,
        config: &MonitorConfig,
    ) -> Option<(Severity, u32)> {
        let name = self.detector.name();
        match (signal, self.episode) {
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
                self.episode = Some((rows_seen, rows_seen));
                self.repeats = 0;
                Some((Severity::Drift, 0))
            }
            (Some(Severity::Warning), None) => {
                let rearmed = self
                    .last_warning
                    .is_none_or(|at| rows_seen - at >= config.window as u64);
                if rearmed {
                    self.last_warning = Some(rows_seen);
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
                let every = repeat_after(config.realert_after_rows, self.repeats);
                if every > 0 && rows_seen - last >= every {
                    self.episode = Some((began, rows_seen));
                    self.repeats += 1;
                    Some((Severity::Drift, self.repeats))
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
        }
    }
}

/// Rows from the `repeats`-th repeat of an episode's alert to the next:
/// `realert_after_rows`, doubling with each repeat up to 8 times it. Each
/// repeat asks for another update while the model stays bad; the backoff
/// keeps a model no update can fix from retraining at full pace forever.
pub(super) fn repeat_after(realert_after_rows: u64, repeats: u32) -> u64 {
    realert_after_rows.saturating_mul(1 << repeats.min(3))
}

impl Monitor {
    /// An episode ends once a full window of rows after it began scores
    /// within `recovery_margin` of the baseline.
    pub(super) fn end_recovered_episodes(&mut self, current: f64) {
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

    #[test]
    fn an_input_alert_reads_in_psi_and_an_error_alert_in_its_metric() {
        let moved = FeatureDrift {
            feature: "f3".into(),
            psi: 0.4204,
            ks_statistic: 0.3,
            ks_p_value: 1.2e-9,
        };
        assert_eq!(
            alert_summary("input", "psi", 0.59, Some(0.945), &[moved]),
            "features moved: f3 (PSI 0.420, KS p 1.2e-9)"
        );
        assert_eq!(
            alert_summary("error", "accuracy", 0.59, Some(0.945), &[]),
            "rolling accuracy 0.5900 (baseline 0.9450)"
        );
        assert_eq!(
            alert_summary("error", "accuracy", 0.59, None, &[]),
            "rolling accuracy 0.5900"
        );
    }
    use crate::monitor::tests::{config, drifts, rows, threshold};

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
    fn a_persisting_drift_is_repeated_with_backoff() {
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
        let later = m.observe(&rows(&[false; 1750]));
        let repeats: Vec<(u64, u32)> = later
            .iter()
            .filter(|a| a.severity == Severity::Drift)
            .map(|a| (a.rows_since_live, a.repeat))
            .collect();
        // 100 rows, then 200, 400 and 800, and 800 from then on.
        assert_eq!(repeats, vec![(114, 1), (314, 2), (714, 3), (1514, 4)]);
        assert_eq!(repeat_after(100, 9), 800);
        assert_eq!(repeat_after(0, 2), 0, "0 stays never");
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
}
