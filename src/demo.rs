//! `driftd demo`: generates a stream with an injected concept drift, feeds
//! it file by file into a directory watched by the real daemon loop (the
//! same `daemon::run` as `driftd run`), and summarises what happened.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Policy, EXAMPLE_POLICY};
use crate::daemon;
use crate::monitor::DriftAlert;
use crate::registry::Registry;
use crate::status::{Status, TracePoint, UpdateSummary};
use crate::synth;

/// Rows in the demo stream, where the concept changes, and file size.
const ROWS: usize = 6000;
const DRIFT_AT: usize = 3500;
const ROWS_PER_FILE: usize = 250;
const SEED: u64 = 7;

#[derive(Debug, Serialize)]
pub struct VersionLine {
    pub version: u64,
    pub strategy: String,
    pub trigger: String,
    pub holdout_accuracy: Option<f64>,
    pub live: bool,
}

#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub dir: PathBuf,
    /// Whether `dir` is kept (`--dir`); a temporary one is deleted at exit.
    pub kept: bool,
    pub drift_at_row: usize,
    pub rows_ingested: u64,
    pub files_ingested: u64,
    pub trace: Vec<TracePoint>,
    pub alerts: Vec<DriftAlert>,
    pub updates: Vec<UpdateSummary>,
    pub versions: Vec<VersionLine>,
    /// Rolling accuracy of the live model just before the drift.
    pub accuracy_before_drift: Option<f64>,
    /// The lowest rolling accuracy after the drift, before an update.
    pub accuracy_after_drift: Option<f64>,
    /// Rolling accuracy at the end of the stream (after the update).
    pub accuracy_after_update: Option<f64>,
    pub seconds: f64,
}

/// Runs the demo in `dir` (a temporary directory when `None`).
pub async fn run(dir: Option<PathBuf>) -> Result<DemoSummary> {
    let started = std::time::Instant::now();
    let (_tmp, root) = match dir {
        Some(d) => {
            // A previous demo's manifest and registry would make the daemon
            // skip the files it is fed and the demo wait for nothing.
            let used = std::fs::read_dir(&d).is_ok_and(|mut entries| entries.next().is_some());
            if used {
                anyhow::bail!(
                    "{}: not empty (a previous demo?); the demo needs a new or empty directory",
                    d.display()
                );
            }
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            (None, d.canonicalize()?)
        }
        None => {
            let t = tempfile::Builder::new().prefix("driftd-demo-").tempdir()?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    };
    let source = root.join("source");
    let incoming = root.join("incoming");
    for d in [&source, &incoming] {
        std::fs::create_dir_all(d)?;
    }
    let policy = demo_policy(&root)?;
    std::fs::write(root.join("policy.toml"), toml::to_string(&policy)?)?;

    let mut concept = synth::ClassificationSpec::reference(SEED);
    concept.n_features = policy_width(&policy);
    let spec = synth::StreamSpec {
        rows: ROWS,
        concept,
        drift_at: vec![DRIFT_AT],
        drift_width: 0,
        drift_magnitude: 1.0,
        rows_per_file: ROWS_PER_FILE,
        timestamps: None,
        seed: SEED,
    };
    let files = synth::write_stream(&source, &spec)?;
    tracing::info!(
        "demo: {} rows in {} files, concept drift injected at row {DRIFT_AT}; feeding them into {}",
        ROWS,
        files.len(),
        incoming.display()
    );

    let (trig_tx, trig_rx) = mpsc::channel(4);
    let (status_tx, mut status_rx) = watch::channel(Status::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let daemon_policy = policy.clone();
    let daemon = tokio::spawn(async move {
        daemon::run(
            daemon_policy,
            async {
                let _ = stop_rx.await;
            },
            trig_tx,
            trig_rx,
            status_tx,
        )
        .await
    });

    // Feed one file at a time, waiting until the daemon has taken it and no
    // update is training, so the story is the same on every machine.
    for (i, file) in files.iter().enumerate() {
        deliver(file, &incoming)?;
        let want = (i + 1) as u64;
        wait_for(&mut status_rx, |s| {
            s.files_ingested + s.files_quarantined >= want && !s.update_running
        })
        .await?;
    }
    let _ = stop_tx.send(());
    let status = daemon.await.context("the daemon task failed")??;

    let registry = Registry::open(&policy.registry.dir)?;
    let live = registry.live_version()?;
    let mut versions = Vec::new();
    for v in registry.versions()? {
        let m = registry.read_meta(v)?;
        versions.push(VersionLine {
            version: v,
            strategy: m.strategy,
            trigger: m.trigger,
            holdout_accuracy: m.holdout.map(|s| s.accuracy),
            live: Some(v) == live,
        });
    }
    let drift = DRIFT_AT as u64;
    let before = status
        .trace
        .iter()
        .rev()
        .filter(|p| p.rows_total <= drift)
        .find_map(|p| p.rolling_accuracy);
    let first_promoted_after_drift = status
        .trace
        .iter()
        .find(|p| p.rows_total > drift && p.live_version > Some(1))
        .map(|p| p.rows_total);
    let after_drift = status
        .trace
        .iter()
        .filter(|p| {
            p.rows_total > drift && first_promoted_after_drift.is_none_or(|end| p.rows_total < end)
        })
        .filter_map(|p| p.rolling_accuracy)
        .min_by(f64::total_cmp);
    let after_update = if first_promoted_after_drift.is_some() {
        status.trace.last().and_then(|p| p.rolling_accuracy)
    } else {
        None
    };
    Ok(DemoSummary {
        kept: _tmp.is_none(),
        dir: root,
        drift_at_row: DRIFT_AT,
        rows_ingested: status.rows_ingested,
        files_ingested: status.files_ingested,
        trace: status.trace,
        alerts: status.alerts,
        updates: status.updates,
        versions,
        accuracy_before_drift: before,
        accuracy_after_drift: after_drift,
        accuracy_after_update: after_update,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The example policy, pointed at the demo directory and polling fast.
fn demo_policy(root: &Path) -> Result<Policy> {
    let mut policy = Policy::parse(EXAMPLE_POLICY)
        .map_err(|d| anyhow::anyhow!("the built-in example policy is invalid: {d:?}"))?;
    policy.data.dir = root.join("incoming");
    policy.registry.dir = root.join("models");
    policy.state.dir = root.join("state");
    policy.data.poll_interval_ms = 20;
    // The weekly schedule would not fire during a demo; keep it out of the
    // story so the run is the same whatever the day.
    policy.schedule.enabled = false;
    // The demo tells the drift story (alert, tournament, version 2); a
    // continual update or the online challenger could learn the new
    // concept first and take it over.
    policy.update.every_rows = 0;
    policy.update.online.enabled = false;
    Ok(policy)
}

fn policy_width(policy: &Policy) -> usize {
    match &policy.data.features {
        crate::config::FeatureSpec::List(l) => l.len(),
        crate::config::FeatureSpec::Pattern(_) => 20,
    }
}

/// Copies a file in with the producer convention: hidden temp name, rename.
fn deliver(file: &Path, dir: &Path) -> Result<()> {
    let name = file.file_name().context("file name")?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::copy(file, &tmp)?;
    std::fs::rename(&tmp, dir.join(name))?;
    Ok(())
}

async fn wait_for(rx: &mut watch::Receiver<Status>, f: impl Fn(&Status) -> bool) -> Result<()> {
    tokio::time::timeout(Duration::from_secs(300), rx.wait_for(|s| f(s)))
        .await
        .context("the daemon did not take the file within 300 s")?
        .context("the daemon stopped early")?;
    Ok(())
}

impl DemoSummary {
    /// The human-readable summary printed at the end of the demo.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "\ndriftd demo — {} rows in {} files, concept drift injected at row {} ({:.1} s)\n",
            self.rows_ingested, self.files_ingested, self.drift_at_row, self.seconds
        ));
        if self.kept {
            out.push_str(&format!("files and policy: {}\n\n", self.dir.display()));
        } else {
            out.push_str(
                "files and policy: a temporary directory, deleted at exit (keep them with --dir DIR)\n\n",
            );
        }
        out.push_str("rolling accuracy of the live model, file by file:\n");
        out.push_str("  rows  version  rolling  file\n");
        for p in &self.trace {
            let marker = if p.rows_total > self.drift_at_row as u64
                && p.rows_total <= (self.drift_at_row + ROWS_PER_FILE) as u64
            {
                "   <- drift"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {:>5}  {:>7}  {:>7}  {:>5}{}\n",
                p.rows_total,
                p.live_version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into()),
                f(p.rolling_accuracy),
                f(p.file_accuracy),
                marker
            ));
        }
        out.push_str("\ndrift alerts:\n");
        if self.alerts.is_empty() {
            out.push_str("  none\n");
        }
        for a in &self.alerts {
            let severity = a.severity.as_str();
            if a.kind == "input" {
                let moved: Vec<String> = a
                    .features
                    .iter()
                    .map(|m| format!("{} PSI {:.2}", m.feature, m.psi))
                    .collect();
                out.push_str(&format!(
                    "  {} rows after the live version went live: input drift ({severity}); over the last {} rows the features moved most: {}\n",
                    a.rows_since_live,
                    a.window,
                    moved.join(", ")
                ));
                continue;
            }
            out.push_str(&format!(
                "  {} rows after the live version went live: {} signalled {severity}; rolling {} over the last {} rows {:.3} (baseline {}), estimated error rate {:.3}\n",
                a.rows_since_live,
                a.detector,
                a.metric,
                a.window,
                a.current,
                f(a.baseline),
                a.estimated_error
            ));
        }
        for u in &self.updates {
            out.push_str(&format!(
                "\nleaderboard ({} trigger; {} training rows, {} holdout rows):\n",
                u.trigger.as_str(),
                u.train_rows,
                u.holdout_rows
            ));
            out.push_str(&format!(
                "  {:<14} {:>8} {:>8}\n",
                "candidate", "accuracy", "log loss"
            ));
            out.push_str(&format!(
                "  {:<14} {:>8.3} {:>8}\n",
                "live model", u.live_accuracy, ""
            ));
            for c in &u.leaderboard {
                match &c.scores {
                    Some(s) => out.push_str(&format!(
                        "  {:<14} {:>8.3} {:>8.3}{}\n",
                        c.strategy,
                        s.accuracy,
                        s.log_loss,
                        if c.promoted { "  promoted" } else { "" }
                    )),
                    None => out.push_str(&format!(
                        "  {:<14} failed: {}\n",
                        c.strategy,
                        c.error.as_deref().unwrap_or("?")
                    )),
                }
            }
            out.push_str(&format!("  decision: {}\n", u.decision));
        }
        out.push_str("\nversions:\n");
        for v in &self.versions {
            out.push_str(&format!(
                "  {} {:>3}  {:<14} {:<9} holdout accuracy {}\n",
                if v.live { "*" } else { " " },
                v.version,
                v.strategy,
                v.trigger,
                f(v.holdout_accuracy)
            ));
        }
        out.push_str(&format!(
            "\nrolling accuracy: {} before the drift, {} after it, {} after the update\n",
            f(self.accuracy_before_drift),
            f(self.accuracy_after_drift),
            f(self.accuracy_after_update)
        ));
        out
    }
}
