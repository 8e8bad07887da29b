//! `[monitor]`: rolling metrics, drift detectors and input drift.

use serde::{Deserialize, Serialize};

use crate::detect::DetectorSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Rows in the rolling window the live model's accuracy is reported over.
    pub window: usize,
    /// Drift detectors fed with every row's error (empty: no drift
    /// triggers, only the schedule and manual updates).
    pub detectors: Vec<DetectorSpec>,
    /// A drift episode is over (and its detector re-armed) once the
    /// rolling accuracy over a full window is back within this much of the
    /// baseline.
    pub recovery_margin: f64,
    /// While an episode lasts, the alert is repeated after this many rows
    /// (0: never; only a recovery re-arms the detector).
    pub realert_after_rows: u64,
    /// A new version raises no drift alert before it has scored this many
    /// rows (its detectors still see them).
    pub min_rows_before_alert: u64,
    /// Metrics are also reported over the rows of the last this many
    /// seconds (by the timestamp column, else arrival time; 0: off).
    pub time_window_seconds: u64,
    /// At most this many rows are kept for the time window.
    pub time_window_max_rows: usize,
    /// Input drift: feature distributions against the live version's.
    pub input: InputDriftConfig,
}

/// `[monitor.input]`: input drift without labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputDriftConfig {
    pub enabled: bool,
    /// Recent rows compared with the training distribution.
    pub window: usize,
    /// A comparison runs every this many rows.
    pub check_every: usize,
    /// A feature has moved when its population stability index reaches
    /// this…
    pub psi_threshold: f64,
    /// …or its Kolmogorov–Smirnov p-value is below this divided by the
    /// number of features.
    pub ks_p_value: f64,
    /// Features named in an input alert (the most moved first).
    pub report_features: usize,
    /// Whether an input alert also triggers an update (else it only warns).
    pub trigger_update: bool,
}

impl Default for InputDriftConfig {
    fn default() -> Self {
        InputDriftConfig {
            enabled: true,
            window: 1000,
            check_every: 500,
            psi_threshold: 0.25,
            ks_p_value: 0.001,
            report_features: 3,
            trigger_update: false,
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            window: 500,
            detectors: vec![DetectorSpec::default()],
            recovery_margin: 0.02,
            realert_after_rows: 5000,
            min_rows_before_alert: 200,
            time_window_seconds: 3600,
            time_window_max_rows: 100_000,
            input: InputDriftConfig::default(),
        }
    }
}
