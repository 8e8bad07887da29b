//! What the daemon publishes: the status (also `state/status.json`) with its
//! trace and update history, and the triggers that start an update.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::monitor::{DriftAlert, WindowMetrics};
use crate::registry::CandidateScore;

/// Why an update runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Drift,
    Schedule,
    Manual,
    /// `update.every_rows` new rows since the last update.
    Continual,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Drift => "drift",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
            TriggerKind::Continual => "continual",
        }
    }
}

/// A request for an update, from outside the ingest path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

/// One point of the rolling-accuracy trace (one per ingested file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    pub file: String,
    /// Rows ingested over every run of the daemon, this file's included.
    pub rows_total: u64,
    pub live_version: Option<u64>,
    pub rolling_accuracy: Option<f64>,
    pub file_accuracy: Option<f64>,
    /// When the file was ingested, on the daemon's clock (`driftd report`
    /// places updates on the trace by it).
    #[serde(default)]
    pub at: Option<chrono::DateTime<Utc>>,
}

/// The leaderboard of the last update, for status and the demo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateSummary {
    pub trigger: TriggerKind,
    /// New rows the candidates trained on (before sampling).
    pub train_rows: usize,
    /// Old rows available to the `*_all` strategies (bounded by
    /// `update.reservoir_rows`).
    pub old_rows: usize,
    pub holdout_rows: usize,
    /// NaN (`null` in JSON) when the update failed before scoring.
    #[serde(deserialize_with = "nan_if_null")]
    pub live_accuracy: f64,
    pub leaderboard: Vec<CandidateScore>,
    pub promoted: Option<u64>,
    pub decision: String,
    /// On the daemon's clock.
    #[serde(default)]
    pub started_at: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<chrono::DateTime<Utc>>,
}

/// serde_json writes NaN as `null`; read it back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What the daemon publishes after every step (also written to
/// `state/status.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub live_version: Option<u64>,
    pub baseline: Option<f64>,
    pub rolling_accuracy: Option<f64>,
    /// Metrics over the last `monitor.window` rows and over the last
    /// `monitor.time_window_seconds`.
    #[serde(default)]
    pub metrics: Option<WindowMetrics>,
    #[serde(default)]
    pub time_window_metrics: Option<WindowMetrics>,
    /// The last input-drift check: the features that moved most.
    #[serde(default)]
    pub input_drift: Vec<crate::input_drift::FeatureDrift>,
    /// Rows the live version has scored in this process (its monitor's
    /// rows): 0 right after a promotion, a rollback or a start.
    pub rows_since_live: u64,
    /// Since this process started (the totals are `manifest_*`).
    pub files_ingested: u64,
    pub files_quarantined: u64,
    pub rows_ingested: u64,
    /// Over every run: what the manifest holds.
    #[serde(default)]
    pub manifest_files_ingested: u64,
    #[serde(default)]
    pub manifest_files_quarantined: u64,
    #[serde(default)]
    pub manifest_rows_ingested: u64,
    /// Bad rows dropped (with `data.bad_rows = "drop"`).
    #[serde(default)]
    pub rows_dropped: u64,
    /// Rows the monitor judged by what was served (`data.prediction` /
    /// `data.probability`) rather than by re-scoring.
    #[serde(default)]
    pub rows_judged_as_served: u64,
    pub alerts: Vec<DriftAlert>,
    pub updates: Vec<UpdateSummary>,
    pub update_running: bool,
    pub update_pending: bool,
    /// Triggers received (alerts, schedule fires, manual requests) and how
    /// many of them the cooldown or the daily cap suppressed.
    #[serde(default)]
    pub triggers: u64,
    #[serde(default)]
    pub triggers_suppressed: u64,
    /// Promotions the daemon rolled back by itself.
    #[serde(default)]
    pub rollbacks: u64,
    /// Triggers merged into an update already waiting behind a running one.
    #[serde(default)]
    pub triggers_coalesced: u64,
    pub trace: Vec<TracePoint>,
    pub updated_at: Option<chrono::DateTime<Utc>>,
    /// Set in the last status a daemon writes when it stops cleanly.
    #[serde(default)]
    pub stopped: bool,
    /// Since this process started (the metrics endpoint's counters):
    /// drift_alert events by detector and severity, updates by outcome
    /// (`promoted`, `rejected`, `failed`, `abandoned`).
    #[serde(default)]
    pub alerts_by_detector: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default)]
    pub updates_by_outcome: BTreeMap<String, u64>,
    /// Wall time of the last finished update.
    #[serde(default)]
    pub last_update_seconds: Option<f64>,
    /// Final training loss of the last promoted version.
    #[serde(default)]
    pub last_train_loss: Option<f64>,
    /// The online challenger (`[update.online]`); `None` when it is off.
    #[serde(default)]
    pub online: Option<OnlineStatus>,
}

/// Where the online challenger stands (see `update::online`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnlineStatus {
    /// Following: the version the online versions are compared with (and
    /// rolled back to); `None` while the challenger is still to beat the
    /// live version.
    pub anchor: Option<u64>,
    /// Rows behind the comparison: since the challenger was forked, or
    /// since the first online version went live.
    pub rows_compared: u64,
    /// Challenging: (challenger, live version); following: (the online
    /// versions, the anchor), on those rows.
    pub accuracy: Option<f64>,
    pub compared_accuracy: Option<f64>,
    /// Online versions promoted and online rollbacks, in this process.
    pub promotions: u64,
    pub rollbacks: u64,
}

impl Status {
    /// A new process's status: the history the previous process left in
    /// `state/status.json` (the accuracy trace, the alerts, the updates) is
    /// kept, so `status` and `report` show it after a restart; everything
    /// else starts anew.
    pub fn carried_over(state_dir: &Path) -> Status {
        let previous = read_status(state_dir).unwrap_or_default();
        Status {
            trace: previous.trace,
            alerts: previous.alerts,
            updates: previous.updates,
            ..Status::default()
        }
    }
}

/// Reads `state/status.json` written by a running (or stopped) daemon.
pub fn read_status(state_dir: &Path) -> Option<Status> {
    let bytes = std::fs::read(state_dir.join("status.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An optional number as driftd prints it (`status`, `report`, the
/// backtest's text report): four decimals, or `-`.
pub fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a failed update's NaN live accuracy became `null` in
    /// status.json, which then failed to parse, so `driftd status` said
    /// there was no status file.
    #[test]
    fn a_status_with_a_failed_update_reads_back() {
        let status = Status {
            updates: vec![UpdateSummary {
                trigger: TriggerKind::Manual,
                train_rows: 0,
                old_rows: 0,
                holdout_rows: 0,
                live_accuracy: f64::NAN,
                leaderboard: Vec::new(),
                promoted: None,
                decision: "failed: diverged".into(),
                started_at: None,
                ended_at: None,
            }],
            ..Status::default()
        };
        let json = serde_json::to_string(&status).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert!(back.updates[0].live_accuracy.is_nan());
        assert_eq!(back.updates[0].decision, "failed: diverged");
    }
}
