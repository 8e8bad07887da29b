//! The daemon: wires ingest → monitor → trigger → update → registry → live
//! model together on a tokio runtime.
//!
//! One task owns all mutable state and reacts to four inputs: the poll
//! timer (and inotify wake-ups, which trigger the same rescan), triggers
//! (schedule fires, manual requests), the end of a running update, and
//! shutdown. libtorch work runs on two dedicated threads: the
//! scorer (owns the live model) and the trainer (runs tournaments), so
//! ingestion keeps scoring while an update trains.
//!
//! Invariants: at most one update runs at a time (a trigger during an update
//! is coalesced into one follow-up); the live model changes only by
//! promotion, after the version is durable in the registry; a file is
//! recorded in the manifest only after its rows are in the buffers.
//!
//! The files here hold one concern each: the state (`state`) and its
//! methods by concern (the live model, ingest and score, alerts, triggers,
//! updates, probation, publishing), the event loop, and the pure rules
//! the backtest shares (`*_rules`), with the types they publish.

mod alerts;
mod buffers;
mod event_loop;
pub mod guard;
mod ingest_score;
mod live;
mod probation;
mod probation_rules;
mod promotion;
mod publish;
pub mod schedule;
pub mod service;
mod state;
mod status;
mod trigger_rules;
mod triggers;
mod update_rules;
mod updates;

pub use event_loop::{run, run_with};
pub use promotion::{
    leaderboard_of, log_candidates, promote_version, train_first_version, Promotion,
};
pub use schedule::Clock;
pub use status::{read_status, Status, TracePoint, Trigger, TriggerKind, UpdateSummary};
pub use update_rules::outcomes_of;

// `service` names the state `super::Daemon`.
use state::Daemon;

pub(crate) use buffers::{NewRows, Reservoir};
pub(crate) use probation_rules::{probation_count, probation_holds, Probation};
pub(crate) use trigger_rules::{coalesce, suppression, Pending};
pub(crate) use update_rules::{
    buffer_new_rows, consume_trained, input_alert, monitors_for, reservoir_of, strategies_for,
    update_rows, UpdateRows,
};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("state directory {path}: {source}")]
    State {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    #[error("schedule: {0}")]
    Schedule(String),
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
    #[error("cannot start a libtorch thread: {0}")]
    Thread(std::io::Error),
}
