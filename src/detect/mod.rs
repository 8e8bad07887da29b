//! Concept-drift detectors on the stream of per-row errors, and the harness
//! that measures them on generated streams.
//!
//! Boundary: a detector sees one bit per labelled row (was the live model
//! wrong?) and answers with the level that row reached ([`Severity`]). It
//! knows nothing of files, versions or clocks. Turning levels into alerts
//! (once per episode, re-arm, cooldown, daily cap) is the trigger's job.
//!
//! Detectors: [`Threshold`] (the rolling-window rule driftd started with),
//! [`Ddm`], [`PageHinkley`] and [`Adwin`], each implemented from its paper.
//! [`DetectorSpec`] is their policy form. The harness ([`Scenario`],
//! [`evaluate`], [`table`]) runs a spec over seeded synthetic error streams
//! and reports detection rate, delay and false alarms; the defaults of
//! [`DetectorSpec::default`] were chosen from its table.

mod adwin;
mod ddm;
mod evaluation;
mod page_hinkley;
mod spec;
mod threshold;

#[cfg(test)]
mod tests;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use adwin::{Adwin, AdwinParams};
pub use ddm::{Ddm, DdmParams};
pub use evaluation::{
    candidate_specs, evaluate, reference_scenarios, robustness_scenarios, table, ErrorStream,
    EvalRow, Scenario, Shape, PRE_DRIFT_ROWS, REFERENCE_ERROR,
};
pub use page_hinkley::{PageHinkley, PageHinkleyParams};
pub use spec::DetectorSpec;
pub use threshold::{Threshold, ThresholdParams, ThresholdRule};

/// The level a detector reached at a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Drift,
}

impl Severity {
    /// The name in logs, status and metrics (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Drift => "drift",
        }
    }
}

/// A detector over the stream of per-row errors of the live model.
pub trait Detector: Send + fmt::Debug {
    /// Feeds one row: `error` is true when the live model was wrong. Returns
    /// the level reached *at this row* (None = in control).
    fn update(&mut self, error: bool) -> Option<Severity>;
    /// Forgets the stream; keeps the configuration (and a configured baseline).
    fn reset(&mut self);
    /// The policy's name of the method (`DetectorSpec`'s `kind`).
    fn name(&self) -> &'static str;
    /// The detector's current estimate of the error rate (for alert
    /// messages); 0 before any row. Right after a `Drift` it still describes
    /// the rows that raised it.
    fn estimate(&self) -> f64;
    /// A detector that judges a fixed window of rows (the threshold): its
    /// length. Its alerts then report its own window and accuracy
    /// (`1 - estimate`), not the monitor's rolling window, which may differ.
    fn window_rows(&self) -> Option<usize> {
        None
    }
}
