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
//! updates, probation, publishing) and the event loop. The rules the
//! backtest shares live in `trigger` and `update`, the published state in
//! `status`: no stage imports the daemon.

mod alerts;
mod event_loop;
mod ingest_score;
mod live;
mod online;
mod probation;
mod publish;
pub mod service;
mod state;
pub mod state_lock;
mod triggers;
mod updates;

pub use event_loop::{run, run_with};

// `service` names the state `super::Daemon`.
use state::Daemon;

// What the daemon's files share from the stages they wire together.
use crate::status::{Status, TracePoint, Trigger, TriggerKind, UpdateSummary};
use crate::trigger::{schedule, Clock, Pending};
use crate::update::{NewRows, Probation, Reservoir};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("cannot create the directory {path}: {source}")]
    State {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Lock(#[from] crate::registry::lock::LockError),
    #[error(transparent)]
    StateLock(#[from] state_lock::StateLockError),
    #[error("schedule: {0}")]
    Schedule(#[source] schedule::ScheduleError),
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
    #[error("cannot start a libtorch thread: {0}")]
    Thread(std::io::Error),
}
