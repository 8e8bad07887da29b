//! Drift alerts: logging error and input alerts, recording them in the
//! status, and requesting an update when one is a drift.

use tracing::warn;

use super::state::{Daemon, HISTORY_LIMIT};
use super::{Pending, TriggerKind};
use crate::detect::Severity;
use crate::input_drift::InputCheck;
use crate::monitor::DriftAlert;
use crate::update::input_alert;

impl Daemon {
    /// One input-drift alert per episode: the episode ends at the first
    /// check where no feature moved; while it lasts the alert is repeated
    /// every `monitor.realert_after_rows` rows (if set).
    pub(super) fn on_input_check(&mut self, check: InputCheck, at_row: u64) {
        let report = self.policy.monitor.input.report_features.max(1);
        self.status.input_drift = check.features.iter().take(report).cloned().collect();
        let Some(alert) = input_alert(
            &self.policy.monitor,
            &check,
            &mut self.input_episode,
            &self.monitor,
            self.status.live_version,
        ) else {
            return;
        };
        // Train on the rows of the window that moved.
        let from = at_row.saturating_sub(check.window as u64);
        self.raise_input_alert(alert, check.moved, from);
    }

    fn raise_input_alert(&mut self, alert: DriftAlert, moved: usize, from_row: u64) {
        let version = self.status.live_version.unwrap_or(0);
        let severity = alert.severity.as_str();
        let named: Vec<String> = alert
            .features
            .iter()
            .map(|f| {
                format!(
                    "{} (PSI {:.2}, KS D {:.3}, p {:.1e})",
                    f.feature, f.psi, f.ks_statistic, f.ks_p_value
                )
            })
            .collect();
        warn!(
            event = "drift_alert",
            kind = "input",
            detector = "input",
            severity,
            metric = "psi",
            features = %alert.features.iter().map(|f| f.feature.as_str()).collect::<Vec<_>>().join(","),
            moved,
            max_psi = alert.estimated_error,
            window = alert.window,
            rows_since_live = alert.rows_since_live,
            live_version = version,
            repeat = alert.repeat,
            "{moved} feature(s) moved away from version {version}'s training data over the last {} rows; most: {}",
            alert.window,
            named.join(", ")
        );
        if alert.severity == Severity::Drift {
            self.request(Pending {
                kind: TriggerKind::Drift,
                from_row: Some(from_row),
            });
        }
        self.push_alert(alert);
    }

    /// The one place every alert (error or input) is recorded: the status
    /// and the metrics' per-detector counts.
    fn push_alert(&mut self, alert: DriftAlert) {
        self.count_alert(&alert);
        self.status.alerts.push(alert);
        if self.status.alerts.len() > HISTORY_LIMIT {
            self.status.alerts.remove(0);
        }
    }

    pub(super) fn raise_alert(&mut self, alert: DriftAlert, at_row: u64) {
        let version = self.status.live_version.unwrap_or(0);
        let severity = alert.severity.as_str();
        let still = if alert.repeat > 0 { "still " } else { "" };
        let sentence = match alert.baseline {
            Some(b) => format!(
                "accuracy over the last {} rows {} {:.3}, {:.3} below the baseline {:.3} of version {version}",
                alert.window,
                if alert.repeat > 0 { "is still" } else { "fell to" },
                alert.current,
                b - alert.current,
                b
            ),
            None => format!(
                "accuracy over the last {} rows is {still}{:.3} on version {version}",
                alert.window, alert.current
            ),
        };
        warn!(
            event = "drift_alert",
            kind = "error",
            detector = %alert.detector,
            severity,
            metric = %alert.metric,
            baseline = ?alert.baseline,
            current = alert.current,
            estimated_error = alert.estimated_error,
            window = alert.window,
            rows_since_live = alert.rows_since_live,
            live_version = version,
            repeat = alert.repeat,
            "{sentence} ({} detector: {severity}, estimated error rate {:.3})",
            alert.detector,
            alert.estimated_error
        );
        if alert.severity == Severity::Drift {
            // Train on the rows after the alert: the rows before it mostly
            // follow the old concept.
            self.request(Pending {
                kind: TriggerKind::Drift,
                from_row: Some(at_row),
            });
        }
        self.push_alert(alert);
    }
}
