//! `driftd report`: the backtest's picture for a live daemon, from its
//! registry (versions, `history.jsonl`) and its `state/status.json` (the
//! rolling-accuracy trace, one point per ingested file, the last
//! `TRACE_LIMIT`; the recent alerts and updates).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Policy;
use crate::daemon::{self, Status, TracePoint};
use crate::plot::{Alert, Band, Chart, Series, Update};
use crate::registry::{CheckMode, HistoryEntry, Registry};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error("no status in {0}: the daemon has not run with this policy yet")]
    NoStatus(std::path::PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionLine {
    pub version: u64,
    pub strategy: String,
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    pub holdout_accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LiveReport {
    pub live_version: Option<u64>,
    pub rolling_accuracy: Option<f64>,
    pub baseline: Option<f64>,
    pub rows_ingested: u64,
    pub files_ingested: u64,
    pub files_quarantined: u64,
    pub versions: Vec<VersionLine>,
    pub history: Vec<HistoryEntry>,
    pub status: Status,
}

/// Reads the registry (read-only) and the daemon's status.
pub fn gather(policy: &Policy) -> Result<LiveReport, ReportError> {
    let status = daemon::read_status(&policy.state.dir)
        .ok_or_else(|| ReportError::NoStatus(policy.state.dir.clone()))?;
    let (registry, _) =
        Registry::open_checked(&policy.registry.dir, "driftd report", CheckMode::ReadOnly)?;
    let mut versions = Vec::new();
    for v in registry.versions()? {
        if let Ok(meta) = registry.read_meta(v) {
            versions.push(VersionLine {
                version: v,
                strategy: meta.strategy,
                trigger: meta.trigger,
                created_at: meta.created_at,
                holdout_accuracy: meta.holdout.map(|s| s.accuracy),
            });
        }
    }
    Ok(LiveReport {
        live_version: status.live_version,
        rolling_accuracy: status.rolling_accuracy,
        baseline: status.baseline,
        rows_ingested: status.rows_ingested,
        files_ingested: status.files_ingested,
        files_quarantined: status.files_quarantined,
        versions,
        history: registry.history()?,
        status,
    })
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

pub fn render(r: &LiveReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "live version {}: rolling accuracy {} (baseline {}); {} rows in {} files, {} quarantined",
        r.live_version.map_or("-".into(), |v| v.to_string()),
        opt(r.rolling_accuracy),
        opt(r.baseline),
        r.rows_ingested,
        r.files_ingested,
        r.files_quarantined
    );
    let _ = writeln!(s, "versions:");
    for v in &r.versions {
        let _ = writeln!(
            s,
            "  {:>4} {:<13} {:<9} {} holdout {}",
            v.version,
            v.strategy,
            v.trigger,
            v.created_at.to_rfc3339(),
            opt(v.holdout_accuracy)
        );
    }
    let _ = writeln!(s, "history:");
    for h in &r.history {
        let _ = writeln!(
            s,
            "  {} {} version {}: {}",
            h.at.to_rfc3339(),
            h.event,
            h.version,
            h.reason
        );
    }
    if !r.status.alerts.is_empty() {
        let _ = writeln!(s, "recent alerts:");
        for a in &r.status.alerts {
            let _ = writeln!(
                s,
                "  {} {} {}: accuracy {:.4}, {} rows into version {}",
                a.kind,
                a.detector,
                a.severity.as_str(),
                a.current,
                a.rows_since_live,
                a.live_version.map_or("-".into(), |v| v.to_string())
            );
        }
    }
    if !r.status.updates.is_empty() {
        let _ = writeln!(s, "recent updates:");
        for u in &r.status.updates {
            let _ = writeln!(
                s,
                "  {} trigger: {}",
                u.trigger.as_str(),
                u.promoted
                    .map_or_else(|| u.decision.clone(), |v| format!("promoted version {v}"))
            );
        }
    }
    s
}

/// Where version `v` starts on the trace: the rows before its first point.
fn start_of(trace: &[TracePoint], v: u64) -> Option<f64> {
    let i = trace.iter().position(|p| p.live_version == Some(v))?;
    Some(if i == 0 {
        0.0
    } else {
        trace[i - 1].rows_total as f64
    })
}

/// The picture of the daemon's trace (rows on x, as `rows_total` counts
/// them since the process started).
pub fn chart(r: &LiveReport) -> Chart {
    let trace = &r.status.trace;
    let window = r.status.metrics.as_ref().map_or(0, |m| m.rows);
    let points: Vec<(f64, f64)> = trace
        .iter()
        .filter_map(|p| p.rolling_accuracy.map(|a| (p.rows_total as f64, a)))
        .collect();
    let mut bands: Vec<Band> = Vec::new();
    let mut from = 0.0;
    for (i, p) in trace.iter().enumerate() {
        let next = trace.get(i + 1).map(|q| q.live_version);
        if let Some(v) = p.live_version {
            if next != Some(Some(v)) {
                bands.push(Band {
                    from,
                    to: p.rows_total as f64,
                    version: v,
                });
            }
        }
        if next != Some(p.live_version) {
            from = p.rows_total as f64;
        }
    }
    let alerts = r
        .status
        .alerts
        .iter()
        .filter_map(|a| {
            let start = start_of(trace, a.live_version?)?;
            Some(Alert {
                row: start + a.rows_since_live as f64,
                detector: a.detector.clone(),
                drift: a.severity == crate::detect::Severity::Drift,
            })
        })
        .collect();
    let updates = r
        .status
        .updates
        .iter()
        .filter_map(|u| {
            let by_version = u.promoted.and_then(|v| start_of(trace, v));
            let by_time = u.ended_at.and_then(|end| {
                trace
                    .iter()
                    .find(|p| p.at.is_some_and(|at| at >= end))
                    .map(|p| p.rows_total as f64)
            });
            let row = by_version.or(by_time)?;
            let winner = u.leaderboard.iter().find(|c| c.promoted);
            Some(Update {
                row,
                label: match winner {
                    Some(c) if u.promoted.is_some() => {
                        format!("{} ({})", c.strategy, u.trigger.as_str())
                    }
                    _ => format!("rejected ({})", u.trigger.as_str()),
                },
                promoted: u.promoted.is_some(),
            })
        })
        .collect();
    Chart {
        title: format!(
            "driftd: live version {}, rolling accuracy {}",
            r.live_version.map_or("-".into(), |v| v.to_string()),
            opt(r.rolling_accuracy)
        ),
        subtitle: Some(format!(
            "{} rows in {} files; {} versions; the trace holds the last {} files",
            r.rows_ingested,
            r.files_ingested,
            r.versions.len(),
            trace.len()
        )),
        x_label: "rows ingested (since the daemon started)".into(),
        y_label: if window > 0 {
            format!("accuracy over the last {window} rows")
        } else {
            "rolling accuracy".into()
        },
        series: vec![Series {
            name: "live model".into(),
            points,
        }],
        alerts,
        updates,
        bands,
    }
}
