//! `driftd report`: the backtest's picture for a live daemon, from its
//! registry (versions, `history.jsonl`) and its `state/status.json` (the
//! rolling-accuracy trace, one point per ingested file, the last
//! `TRACE_LIMIT`; the recent alerts and updates).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Policy;
use crate::plot::{Alert, Band, Chart, Series, Update};
use crate::registry::{CheckMode, HistoryEntry, Registry};
use crate::status::{self, Status, TracePoint};

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
    /// `monitor.window`: rows of the rolling accuracy.
    pub window: usize,
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
    let status = status::read_status(&policy.state.dir)
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
        window: policy.monitor.window,
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

use crate::status::fmt_opt as opt;

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
                "  {} {} {}: {}, {} rows into version {}",
                a.kind,
                a.detector,
                a.severity.as_str(),
                a.summary(),
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

/// Stretches of the trace during which one version was live: a point's
/// `live_version` is the version live after its file, so a version's
/// stretch starts at the point where it first appears.
fn stretches(trace: &[TracePoint]) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    for p in trace {
        let at = p.rows_total as f64;
        match (bands.last_mut(), p.live_version) {
            (Some(b), Some(v)) if b.version == v => b.to = at,
            (last, v) => {
                if let Some(b) = last {
                    b.to = at;
                }
                if let Some(version) = v {
                    bands.push(Band {
                        from: at,
                        to: at,
                        version,
                    });
                }
            }
        }
    }
    bands
}

/// The picture of the daemon's trace (rows on x, as `rows_total` counts
/// them since the process started).
pub fn chart(r: &LiveReport) -> Chart {
    let trace = &r.status.trace;
    let window = r.window;
    let points: Vec<(f64, f64)> = trace
        .iter()
        .filter_map(|p| p.rolling_accuracy.map(|a| (p.rows_total as f64, a)))
        .collect();
    let bands = stretches(trace);
    let last_row = trace.last().map_or(0.0, |p| p.rows_total as f64);
    // An alert names its version and the rows since it went live; a
    // version live twice (a rollback) is matched to the stretch at or
    // after the previous alert's.
    let mut cursor = 0;
    let mut alerts = Vec::new();
    for a in &r.status.alerts {
        let Some(v) = a.live_version else { continue };
        let found = bands.iter().enumerate().skip(cursor).find(|(_, b)| {
            b.version == v && b.from + a.rows_since_live as f64 <= b.to.max(last_row)
        });
        if let Some((i, b)) = found {
            cursor = i;
            alerts.push(Alert {
                row: b.from + a.rows_since_live as f64,
                detector: a.detector.clone(),
                drift: a.severity == crate::detect::Severity::Drift,
            });
        }
    }
    let updates = r
        .status
        .updates
        .iter()
        .filter_map(|u| {
            // The first point ingested after it ended (its version went
            // live there); after the last point, at the end of the trace.
            let end = u.ended_at?;
            let row = trace
                .iter()
                .find(|p| p.at.is_some_and(|at| at >= end))
                .map_or(last_row, |p| p.rows_total as f64);
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
            "driftd: live version {}, {}",
            r.live_version.map_or("-".into(), |v| v.to_string()),
            r.rolling_accuracy.map_or_else(
                || "no rows scored since it went live".into(),
                |a| format!("rolling accuracy {a:.4}")
            )
        ),
        subtitle: Some(format!(
            "{} rows in {} files; {} versions; the trace holds the last {} files",
            r.rows_ingested,
            r.files_ingested,
            r.versions.len(),
            trace.len()
        )),
        x_label: "rows ingested (since the daemon started)".into(),
        y_label: format!("accuracy over the last {window} rows"),
        series: vec![Series {
            name: "live model".into(),
            points,
        }],
        baseline_updates: Vec::new(),
        alerts,
        updates,
        bands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(rows_total: u64, live_version: Option<u64>) -> TracePoint {
        TracePoint {
            file: format!("f{rows_total}"),
            rows_total,
            live_version,
            rolling_accuracy: Some(0.9),
            file_accuracy: Some(0.9),
            at: None,
        }
    }

    #[test]
    fn a_version_live_twice_gets_two_stretches() {
        // Version 1 trained after the second file; 2 promoted, rolled back.
        let trace = [
            point(100, None),
            point(200, Some(1)),
            point(300, Some(1)),
            point(400, Some(2)),
            point(500, Some(1)),
            point(600, Some(1)),
        ];
        let got: Vec<(f64, f64, u64)> = stretches(&trace)
            .iter()
            .map(|b| (b.from, b.to, b.version))
            .collect();
        assert_eq!(
            got,
            [(200.0, 400.0, 1), (400.0, 500.0, 2), (500.0, 600.0, 1)]
        );
    }
}
