//! `driftd backtest`: replays a directory of historical Parquet files
//! through the policy, offline and much faster than real time, with the
//! daemon's own pieces: ingest's scan and reader, the
//! [`Monitor`](crate::monitor::Monitor) and its detectors, the input-drift
//! monitor, the trigger rules (coalescing, cooldown, daily cap), the rows
//! an update trains on (new rows since the live version, the reservoir of
//! old rows, the policy's bounds),
//! [`update::run_tournament`](crate::update::run_tournament),
//! [`update::promote_version`](crate::update::promote_version) into a
//! temporary registry and the probation with its automatic rollback. The
//! decision functions are the ones the daemon calls
//! (`update::update_rows`, `trigger::suppression`, `update::probation_count`,
//! ...): the replay is a synchronous driver around them, not a second
//! implementation.
//!
//! What differs from the daemon, on purpose: time is simulated (each file
//! arrives at its rows' time; see [`ReplayTime`]), an update trains "instantly"
//! at the simulated moment it starts (the daemon keeps scoring with the
//! old version while it trains), and the same replay runs three times: the
//! policy, "periodic only" (the schedule, no detector triggers) and "never
//! update" (version 1 throughout). Version 1 is trained once and shared.
//!
//! The files: `history.rs` reads the directory in replay order and sets
//! the clock; `initial.rs` trains version 1; `replay.rs` is one run's
//! replay and `tournament.rs` its updates; `runs.rs` runs the three replays
//! and compares them; `report.rs` is the JSON report, `render.rs` its text
//! and `chart.rs` its picture. `session.rs` replays one history under any
//! number of policies (`driftd tune`).

use std::path::PathBuf;

mod chart;
mod history;
mod initial;
mod online;
mod render;
mod replay;
mod report;
mod runs;
mod session;
mod tournament;

pub use chart::chart;
pub use history::ReplayTime;
pub use render::render;
pub(crate) use replay::count;
pub use report::{
    AlertRecord, Comparison, DataReport, QuarantinedFile, Report, RollbackRecord, RunReport,
    UpdateRecord, VersionRecord, WindowAccuracy,
};
pub use runs::{run, Run};
pub use session::Session;

#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("data directory {path}: {reason}")]
    Data { path: PathBuf, reason: String },
    #[error("no usable rows in {0}: every file was quarantined or empty")]
    NoRows(PathBuf),
    #[error("{rows} rows in {dir} are fewer than data.initial_rows = {initial}: nothing would be scored")]
    TooFewRows {
        dir: PathBuf,
        rows: usize,
        initial: usize,
    },
    #[error("temporary registry: {0}")]
    Temp(std::io::Error),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

pub struct Options {
    pub data_dir: PathBuf,
    /// See [`ReplayTime::RowsPerTime`].
    pub seconds_per_row: Option<f64>,
    /// Rows per window of the per-window accuracy (default: about 20
    /// windows, at least `monitor.window`).
    pub window_rows: Option<usize>,
}
