//! `driftd status`: the live version, broken versions, the daemon's
//! rolling metrics from `state/status.json`, and the next scheduled update.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::{fmt_opt, load_policy};
use crate::config::Policy;
use crate::logging::{self, LogFormat};
use crate::registry::{CheckMode, Registry};

pub(super) fn run(format: LogFormat, config: &Path, json: bool) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, "warn");
    status(&policy, json)?;
    Ok(ExitCode::SUCCESS)
}

fn status(policy: &Policy, json: bool) -> Result<()> {
    let (registry, report) =
        Registry::open_checked(&policy.registry.dir, "driftd status", CheckMode::ReadOnly)?;
    let live = registry.live_version()?;
    let live_broken = report
        .broken
        .iter()
        .find(|b| Some(b.version) == live)
        .map(|b| b.reason.clone());
    let status = crate::status::read_status(&policy.state.dir);
    let next = if policy.schedule.enabled {
        crate::trigger::schedule::next_fire(&policy.schedule, chrono::Utc::now())
    } else {
        None
    };
    if json {
        let running = status.as_ref().is_some_and(daemon_running);
        let v = serde_json::json!({
            "live_version": live,
            "live_broken": live_broken,
            "broken_versions": report.broken.iter().map(|b| b.version).collect::<Vec<_>>(),
            "next_scheduled_update": next,
            "daemon_running": running,
            "daemon": status,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if let (Some(v), Some(reason)) = (live, &live_broken) {
        println!("live version: {v} is BROKEN: {reason}");
        println!("  the daemon's next start falls back to the newest good version");
    }
    if !report.broken.is_empty() {
        let ids: Vec<String> = report
            .broken
            .iter()
            .map(|b| b.version.to_string())
            .collect();
        println!(
            "broken versions: {} (see `driftd versions`)",
            ids.join(", ")
        );
    }
    match live.filter(|_| live_broken.is_none()) {
        Some(v) => {
            let meta = registry.read_meta(v)?;
            println!(
                "live version: {v} ({}, created {}, holdout accuracy {})",
                meta.strategy,
                meta.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                meta.holdout
                    .map(|s| format!("{:.4}", s.accuracy))
                    .unwrap_or_else(|| "-".into())
            );
        }
        None if !registry.exists() => println!(
            "live version: none (no versions yet: the registry directory {} does not exist)",
            policy.registry.dir.display()
        ),
        None if live.is_none() => println!("live version: none (the registry is empty)"),
        None => {}
    }
    if let Some(s) = status {
        print_daemon(policy, &s);
        print_quarantined(policy, s.manifest_files_quarantined);
    } else {
        println!("daemon: no status file in {}", policy.state.dir.display());
    }
    if let Some(t) = next {
        println!(
            "next scheduled update: {}",
            t.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}

/// What the daemon's status file says: ingestion, rolling accuracy,
/// metrics, input drift, the last alert and update.
fn print_daemon(policy: &Policy, s: &crate::status::Status) {
    let running = daemon_running(s);
    println!(
        "daemon {} (pid {}, status of {}): {} files ingested, {} quarantined, {} rows \
         (since its start: {} files, {} quarantined, {} rows)",
        if running { "running" } else { "not running" },
        s.pid,
        s.updated_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default(),
        s.manifest_files_ingested,
        s.manifest_files_quarantined,
        s.manifest_rows_ingested,
        s.files_ingested,
        s.files_quarantined,
        s.rows_ingested
    );
    println!(
        "rolling accuracy: {} (baseline {}), {} rows scored by the live version since it went live or driftd started",
        fmt_opt(s.rolling_accuracy),
        fmt_opt(s.baseline),
        s.rows_since_live
    );
    if let Some(m) = &s.metrics {
        print_metrics(&format!("last {} rows", m.rows), m);
    }
    if let Some(m) = &s.time_window_metrics {
        print_metrics(
            &format!(
                "last {}s ({} rows)",
                policy.monitor.time_window_seconds, m.rows
            ),
            m,
        );
    }
    if !s.input_drift.is_empty() {
        let moved: Vec<String> = s
            .input_drift
            .iter()
            .map(|f| format!("{} PSI {:.3} KS {:.3}", f.feature, f.psi, f.ks_statistic))
            .collect();
        println!("input drift (most moved): {}", moved.join("; "));
    }
    if let Some(o) = &s.online {
        println!("{}", online_line(o, s.live_version));
    }
    if let Some(a) = s.alerts.last() {
        println!(
            "last alert: {} ({:?}): {}",
            a.detector,
            a.severity,
            a.summary()
        );
    }
    if let Some(u) = s.updates.last() {
        println!("last update: {}", u.decision);
    }
}

/// The online challenger's line (`[update.online]`).
fn online_line(o: &crate::status::OnlineStatus, live: Option<u64>) -> String {
    let counts = format!(
        "{} online versions promoted and {} rolled back since the daemon started",
        o.promotions, o.rollbacks
    );
    let live = live.map_or("-".into(), |v| v.to_string());
    match o.anchor {
        Some(anchor) => format!(
            "online challenger: following (live version {live} is its newest); accuracy {} against {} for version {anchor} on the same {} rows; {counts}",
            fmt_opt(o.accuracy),
            fmt_opt(o.compared_accuracy),
            o.rows_compared
        ),
        None => format!(
            "online challenger: challenging version {live}: accuracy {} against {} on the same {} rows; {counts}",
            fmt_opt(o.accuracy),
            fmt_opt(o.compared_accuracy),
            o.rows_compared
        ),
    }
}

/// The newest quarantined files and why, from the manifest (the status
/// file has only their count).
fn print_quarantined(policy: &Policy, count: u64) {
    const SHOWN: usize = 5;
    if count == 0 {
        return;
    }
    let path = policy.state.dir.join("manifest.json");
    let manifest = match crate::ingest::Manifest::load(&path) {
        Ok(m) => m,
        Err(e) => {
            println!("quarantined files: cannot read the manifest: {e}");
            return;
        }
    };
    let newest = manifest.quarantined_newest_first(SHOWN);
    let total = manifest.file_counts().1;
    println!(
        "quarantined files ({} of {total}, newest first; all of them in {}):",
        newest.len(),
        path.display()
    );
    for (name, reason, at) in newest {
        println!(
            "  {name} ({}): {reason}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
}

/// A status file's daemon is running if it did not say it stopped and its
/// process exists.
fn daemon_running(s: &crate::status::Status) -> bool {
    !s.stopped && Path::new(&format!("/proc/{}", s.pid)).exists()
}

/// One line of overall metrics, then one per class.
fn print_metrics(label: &str, m: &crate::monitor::WindowMetrics) {
    println!(
        "{label}: accuracy {:.4}, log loss {:.4}{}",
        m.accuracy,
        m.log_loss,
        m.auc
            .map(|a| format!(", ROC AUC {a:.4}"))
            .unwrap_or_default()
    );
    for c in &m.classes {
        println!(
            "  class {}: precision {} recall {} F1 {}; labels {:.1}%, predictions {:.1}%",
            c.class,
            fmt_opt(c.precision),
            fmt_opt(c.recall),
            fmt_opt(c.f1),
            100.0 * c.label_share,
            100.0 * c.predicted_share
        );
    }
}
