//! The daemon as a service: what SIGHUP may change live, the update
//! abandoned at shutdown, and the one-line status for systemd.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use std::time::Duration;

use tracing::{error, info, warn};

use crate::config::{ConfigError, Policy};
use crate::sd_notify::{Notifier, NotifyError};

use super::updates::TournamentError;
use super::{Daemon, Pending, Status, TriggerKind};

/// A policy re-read on SIGHUP: valid, or every problem found in it.
pub type Reload = Result<Policy, ConfigError>;

/// What a daemon under a service manager has besides `run`'s arguments.
#[derive(Debug, Default)]
pub struct Service {
    /// systemd notifications; a no-op outside systemd.
    pub notifier: Notifier,
    /// Policies re-read on SIGHUP.
    pub reloads: Option<tokio::sync::mpsc::Receiver<Reload>>,
    /// The state directory's lock, when the caller took it before starting
    /// anything else (`driftd run`: before the metrics listener); taken at
    /// open otherwise.
    pub state_lock: Option<super::state_lock::StateLock>,
}

/// Keys a running daemon cannot change: the files it reads, the shape of
/// the model, where versions and state live, the metrics socket. A reload
/// that changes them logs `restart required` and keeps the old value.
const RESTART_REQUIRED: &[&str] = &[
    "data.dir",
    "data.label",
    "data.features",
    "data.exclude",
    "data.timestamp",
    "data.weight",
    "data.row_id",
    "model",
    "registry",
    "state",
    "metrics",
    // The reservoir is a uniform sample of a fixed size; resizing it live
    // would bias it.
    "update.reservoir_rows",
];

pub fn needs_restart(key: &str) -> bool {
    RESTART_REQUIRED
        .iter()
        .any(|k| key == *k || key.starts_with(&format!("{k}.")))
}

/// Dotted keys whose values differ between two policies (lists compare as
/// one value).
pub fn changed_keys(old: &Policy, new: &Policy) -> Vec<String> {
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    let mut out = Vec::new();
    diff("", &old, &new, &mut out);
    out
}

fn diff(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff(
                    &key,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// `new` with every restart-only value taken from `old`.
pub fn merge_live(old: &Policy, new: &Policy) -> Policy {
    let mut merged = new.clone();
    merged.data.dir = old.data.dir.clone();
    merged.data.label = old.data.label.clone();
    merged.data.features = old.data.features.clone();
    merged.data.exclude = old.data.exclude.clone();
    merged.data.timestamp = old.data.timestamp.clone();
    merged.data.weight = old.data.weight.clone();
    merged.data.row_id = old.data.row_id.clone();
    merged.model = old.model.clone();
    merged.registry = old.registry.clone();
    merged.state = old.state.clone();
    merged.metrics = old.metrics.clone();
    merged.update.reservoir_rows = old.update.reservoir_rows;
    merged
}

/// An update abandoned at shutdown, rerun at the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbandonedUpdate {
    pub trigger: TriggerKind,
}

const ABANDONED: &str = "abandoned_update.json";

impl AbandonedUpdate {
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(&state_dir.join(ABANDONED), &json)
    }

    /// Takes the record (it is removed so that it runs once).
    pub fn take(state_dir: &Path) -> Option<AbandonedUpdate> {
        let path = state_dir.join(ABANDONED);
        let bytes = std::fs::read(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        serde_json::from_slice(&bytes).ok()
    }
}

/// The `STATUS=` line systemd shows in `systemctl status`.
pub fn status_line(s: &Status) -> String {
    let version = s
        .live_version
        .map_or("no live version yet".to_string(), |v| {
            format!("version {v} live")
        });
    let accuracy = s
        .rolling_accuracy
        .map_or(String::new(), |a| format!(", rolling accuracy {a:.3}"));
    let update = if s.update_running {
        ", update running"
    } else {
        ""
    };
    format!(
        "{version}{accuracy}{update}; {} files, {} rows ingested, {} quarantined",
        s.manifest_files_ingested, s.manifest_rows_ingested, s.manifest_files_quarantined
    )
}

/// The next reload, or never when there is no reload channel.
pub(super) async fn next_reload(
    reloads: &mut Option<tokio::sync::mpsc::Receiver<Reload>>,
) -> Option<Reload> {
    match reloads {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// What the event loop must redo after a reload.
#[derive(Debug, Default)]
pub(super) struct ReloadEffects {
    pub poll_interval: bool,
    pub schedule: bool,
}

impl Daemon {
    pub(super) fn notify(&self, result: Result<(), NotifyError>) {
        if let Err(e) = result {
            warn!(error = %e, "cannot notify the service manager");
        }
    }

    /// `READY=1` once the data directory has been read; `STATUS=` whenever
    /// the line changes.
    pub(super) fn notify_progress(&mut self) {
        if !self.notifier.enabled() {
            return;
        }
        let line = status_line(&self.status);
        if !self.ready {
            if self.scan_ok {
                self.ready = true;
                self.notify(self.notifier.ready(&line));
                self.status_line = line;
            }
            return;
        }
        if line != self.status_line {
            self.notify(self.notifier.status(&line));
            self.status_line = line;
        }
    }

    /// The watchdog is fed only while the loop turns (this runs from it)
    /// and both libtorch threads are alive.
    pub(super) fn ping_watchdog(&self) {
        if self.scorer.alive() && self.trainer.alive() {
            self.notify(self.notifier.watchdog());
        } else {
            error!("a libtorch worker thread is gone; not feeding the watchdog");
        }
    }

    /// Applies a policy re-read on SIGHUP. An invalid policy changes
    /// nothing; restart-only keys keep their running values.
    pub(super) fn reload(&mut self, reload: Reload) -> ReloadEffects {
        self.notify(self.notifier.reloading());
        let new = match reload {
            Ok(p) => p,
            Err(e) => {
                let messages = e.messages();
                for m in &messages {
                    error!(event = "config_reloaded", outcome = "rejected", error = %m, "{m}");
                }
                warn!(
                    event = "config_reloaded",
                    outcome = "rejected",
                    errors = messages.len(),
                    "the reloaded policy has {} error{}; driftd keeps running on the previous policy",
                    messages.len(),
                    if messages.len() == 1 { "" } else { "s" }
                );
                return ReloadEffects::default();
            }
        };
        let changed = changed_keys(&self.policy, &new);
        let (restart, live): (Vec<String>, Vec<String>) =
            changed.into_iter().partition(|k| needs_restart(k));
        for key in &restart {
            warn!(
                event = "config_reloaded",
                key = %key,
                "restart required: {key} changed in the policy; the running value stays until driftd restarts"
            );
        }
        let merged = merge_live(&self.policy, &new);
        let touched = |prefix: &str| live.iter().any(|k| k.starts_with(prefix));
        let effects = ReloadEffects {
            poll_interval: touched("data.poll_interval_ms"),
            schedule: touched("schedule."),
        };
        if touched("training.threads") {
            tch::set_num_threads(merged.training.threads as i32);
        }
        let new_filter = touched("log.filter").then(|| merged.log.filter.clone());
        self.policy = merged;
        if touched("monitor.") {
            // A new window or detector set starts from empty.
            self.reset_monitors();
        }
        if touched("update.online.enabled") {
            // On: a challenger of the live version; off: none.
            self.fork_online();
        }
        info!(
            event = "config_reloaded",
            outcome = "applied",
            changed = ?live,
            restart_required = ?restart,
            "policy reloaded: {}{}",
            if live.is_empty() {
                "nothing to change".to_string()
            } else {
                format!("changed {}", live.join(", "))
            },
            if restart.is_empty() {
                String::new()
            } else {
                format!("; restart required for {}", restart.join(", "))
            }
        );
        // Last, so that the summary above is logged under the old filter.
        if let Some(filter) = new_filter {
            if let Err(e) = crate::logging::set_filter(&filter) {
                warn!(error = %e, "cannot apply log.filter");
            }
        }
        effects
    }

    pub(super) fn count_alert(&mut self, alert: &crate::monitor::DriftAlert) {
        let severity = alert.severity.as_str();
        *self
            .status
            .alerts_by_detector
            .entry(alert.detector.clone())
            .or_default()
            .entry(severity.to_string())
            .or_default() += 1;
    }

    pub(super) fn count_update(&mut self, outcome: &str) {
        *self
            .status
            .updates_by_outcome
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    /// After SIGTERM: a running update may finish (and be promoted) within
    /// `service.stop_timeout_seconds`; otherwise it is abandoned (the
    /// trainer writes nothing, so no partial version exists) and recorded to
    /// run again at the next start.
    pub(super) async fn stop_running_update(&mut self) {
        let Some(mut running) = self.running.take() else {
            return;
        };
        let grace = Duration::from_secs(self.policy.service.stop_timeout_seconds);
        info!(
            "stopping: waiting up to {}s for the running update",
            grace.as_secs()
        );
        match tokio::time::timeout(grace, &mut running.result).await {
            Ok(result) => {
                let result = result.unwrap_or(Err(TournamentError::Panicked));
                self.finish_update(running, result).await;
            }
            Err(_) => {
                running
                    .cancel
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                self.status.update_running = false;
                self.count_update("abandoned");
                let record = AbandonedUpdate {
                    trigger: running.kind,
                };
                if let Err(e) = record.save(&self.policy.state.dir) {
                    warn!(error = %e, "cannot record the abandoned update; it will not rerun at start");
                }
                info!(
                    event = "update_abandoned",
                    trigger = running.kind.as_str(),
                    "the update did not finish within {}s of the stop request; abandoned (nothing was written), it runs again at the next start",
                    grace.as_secs()
                );
            }
        }
    }

    /// Leaves both libtorch threads idle, with no model, before the process
    /// exits: libtorch's static destructors must not run under a thread
    /// that still trains or frees tensors. A cancelled update stops at its
    /// next batch; the wait is bounded all the same.
    pub(super) async fn stop_workers(&mut self) {
        let bound = Duration::from_secs(10);
        let scorer = self.scorer.run(|slot| *slot = None);
        let trainer = self.trainer.run(|_| ());
        if tokio::time::timeout(bound, async {
            let _ = scorer.await;
            let _ = trainer.await;
        })
        .await
        .is_err()
        {
            warn!(
                "the libtorch threads did not stop within {}s",
                bound.as_secs()
            );
        }
    }

    /// An update abandoned at the last shutdown is requested again.
    pub(super) fn resume_abandoned_update(&mut self) {
        if let Some(a) = AbandonedUpdate::take(&self.policy.state.dir) {
            info!(
                trigger = a.trigger.as_str(),
                "resuming the {} update abandoned at the last shutdown",
                a.trigger.as_str()
            );
            self.request(Pending {
                kind: a.trigger,
                from_row: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EXAMPLE_POLICY;

    #[test]
    fn changed_keys_are_dotted_leaves() {
        let old = Policy::parse(EXAMPLE_POLICY).unwrap();
        let mut new = old.clone();
        new.training.epochs = 7;
        new.update.candidates.clear();
        new.data.dir = "/elsewhere".into();
        let keys = changed_keys(&old, &new);
        assert_eq!(
            keys,
            vec!["data.dir", "training.epochs", "update.candidates"]
        );
        assert!(needs_restart("data.dir"));
        assert!(needs_restart("model.hidden"));
        assert!(!needs_restart("training.epochs"));
        assert!(!needs_restart("data.poll_interval_ms"));
        let merged = merge_live(&old, &new);
        assert_eq!(merged.data.dir, old.data.dir);
        assert_eq!(merged.training.epochs, 7);
    }

    #[test]
    fn an_abandoned_update_is_taken_once() {
        let dir = tempfile::tempdir().unwrap();
        AbandonedUpdate {
            trigger: TriggerKind::Manual,
        }
        .save(dir.path())
        .unwrap();
        assert_eq!(
            AbandonedUpdate::take(dir.path()).map(|a| a.trigger),
            Some(TriggerKind::Manual)
        );
        assert_eq!(AbandonedUpdate::take(dir.path()), None);
    }
}
