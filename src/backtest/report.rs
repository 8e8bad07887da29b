//! The backtest's report: what `--json` writes as is, and what the text
//! report and the plot are made from.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ReplayTime, Run};
use crate::detect::Severity;
use crate::registry::CandidateScore;
use crate::status::TriggerKind;

/// The whole report (`--json` writes it as is).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub data: DataReport,
    /// Rows of each entry of a run's `windows`.
    pub window_rows: usize,
    /// Rows of the trailing window of the plotted rolling accuracy
    /// (`monitor.window`, or a 200th of the rows if more).
    pub rolling_window_rows: usize,
    /// policy, periodic_only, never_update.
    pub runs: Vec<RunReport>,
    /// The policy against each baseline, on prequential accuracy.
    pub comparisons: Vec<Comparison>,
    pub verdict: String,
    /// Wall time of the whole backtest.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataReport {
    pub dir: PathBuf,
    pub files: usize,
    pub rows: usize,
    pub quarantined: Vec<QuarantinedFile>,
    pub clock: ReplayTime,
    pub clock_description: String,
    pub first_time: Option<DateTime<Utc>>,
    pub last_time: Option<DateTime<Utc>>,
    /// Rows version 1 was trained on before anything was scored
    /// (`data.initial_rows`, rounded up to a whole file).
    pub bootstrap_rows: usize,
    /// Seconds spent training version 1 (shared by the three runs).
    pub initial_training_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantinedFile {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub run: Run,
    pub description: String,
    /// Every row after version 1, scored by the version live at that moment.
    pub rows_scored: u64,
    pub correct: u64,
    pub prequential_accuracy: Option<f64>,
    pub windows: Vec<WindowAccuracy>,
    pub alerts: Vec<AlertRecord>,
    pub updates: Vec<UpdateRecord>,
    pub rollbacks: Vec<RollbackRecord>,
    pub versions: Vec<VersionRecord>,
    /// Lengths of the lists above, and the updates that promoted a version.
    pub alert_count: usize,
    pub update_count: usize,
    pub promoted_count: usize,
    /// Versions the online challenger promoted (`[update.online]`).
    #[serde(default)]
    pub online_promotions: usize,
    pub rollback_count: usize,
    pub triggers: u64,
    pub triggers_suppressed: u64,
    /// Seconds spent in tournaments (version 1 is in `data`).
    pub training_seconds: f64,
    /// Wall time of this replay, training included.
    pub replay_seconds: f64,
    /// Per global row: 1 right, 0 wrong, 2 not scored (version 1's
    /// training rows). For the plot; not in the JSON.
    #[serde(skip)]
    pub outcomes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowAccuracy {
    /// Global rows `first_row..end_row`.
    pub first_row: u64,
    pub end_row: u64,
    pub rows_scored: u64,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Global row that raised it.
    pub row: u64,
    pub time: Option<DateTime<Utc>>,
    pub kind: String,
    pub detector: String,
    pub severity: Severity,
    pub current: f64,
    pub baseline: Option<f64>,
    pub live_version: Option<u64>,
    pub repeat: u32,
    /// Whether it asked for an update (drift severity, in the policy run).
    pub triggered: bool,
    /// The metric `current` and `baseline` are in (error alerts; reports
    /// written before it was recorded were all in accuracy).
    #[serde(default = "accuracy_metric")]
    pub metric: String,
    /// Input alerts: the features that moved most, with their PSI and KS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<crate::input_drift::FeatureDrift>,
}

fn accuracy_metric() -> String {
    "accuracy".into()
}

impl AlertRecord {
    /// What the alert measured, worded as `status` and `report` word it.
    pub fn summary(&self) -> String {
        crate::monitor::alert_summary(
            &self.kind,
            &self.metric,
            self.current,
            self.baseline,
            &self.features,
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// Global row after which it ran (the newest row it could see).
    pub row: u64,
    pub time: Option<DateTime<Utc>>,
    pub trigger: TriggerKind,
    pub new_rows: usize,
    pub old_rows: usize,
    pub holdout_rows: usize,
    /// The live version's accuracy on the holdout.
    pub live_accuracy: Option<f64>,
    pub candidates: Vec<CandidateScore>,
    pub winner: Option<String>,
    pub promoted_version: Option<u64>,
    pub decision: String,
    pub training_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub row: u64,
    pub from_version: u64,
    pub to_version: u64,
    pub accuracy: f64,
    pub previous_accuracy: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u64,
    pub strategy: String,
    /// Global rows `live_from_row..live_until_row` it scored (a version may
    /// be live again after a rollback: one record per stretch).
    pub live_from_row: u64,
    pub live_until_row: u64,
    pub rows_scored: u64,
    pub accuracy: Option<f64>,
    /// Versions the online challenger promoted after this one within the
    /// stretch (one record covers a run of them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub later_online_versions: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: Run,
    pub policy_accuracy: Option<f64>,
    pub baseline_accuracy: Option<f64>,
    /// policy minus baseline.
    pub difference: Option<f64>,
    pub policy_wins: bool,
}
