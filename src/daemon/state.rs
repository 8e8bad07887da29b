//! The daemon's state: one task owns it all (see the event loop); its
//! methods are spread over this folder by concern.

use tokio::sync::watch;

use super::live::{Live, LiveSlot};
use super::updates::RunningUpdate;
use super::{Clock, NewRows, Pending, Probation, Reservoir, Status};
use crate::config::Policy;
use crate::ingest::probe;
use crate::ingest::Ingestor;
use crate::input_drift::InputMonitor;
use crate::model::Dataset;
use crate::monitor::Monitor;
use crate::registry::Registry;
use crate::sd_notify::Notifier;
use crate::update::StrategyName;
use crate::worker::Worker;

pub(super) const TRACE_LIMIT: usize = 2000;
pub(super) const HISTORY_LIMIT: usize = 100;

pub(super) struct Daemon {
    /// One daemon per state directory, for as long as this one lives.
    pub(super) _state_lock: super::state_lock::StateLock,
    pub(super) policy: Policy,
    pub(super) registry: Registry,
    pub(super) ingestor: Ingestor,
    pub(super) scorer: Worker<LiveSlot>,
    pub(super) trainer: Worker<()>,
    pub(super) live: Option<Live>,
    pub(super) monitor: Monitor,
    pub(super) input_monitor: InputMonitor,
    /// Rows scored since the open input-drift episode's last alert.
    pub(super) input_episode: Option<u64>,
    pub(super) bootstrap: Option<Dataset>,
    pub(super) new_rows: Option<NewRows>,
    pub(super) reservoir: Option<Reservoir>,
    pub(super) rows_total: u64,
    pub(super) pending: Option<Pending>,
    pub(super) running: Option<RunningUpdate>,
    pub(super) status: Status,
    pub(super) status_tx: watch::Sender<Status>,
    pub(super) last_file: Option<String>,
    pub(super) last_seq: u64,
    /// When recent updates started (for the daily cap) and the last ended
    /// (for the cooldown).
    pub(super) update_starts: Vec<tokio::time::Instant>,
    pub(super) last_update_end: Option<tokio::time::Instant>,
    pub(super) clock: Clock,
    pub(super) probation: Option<Probation>,
    /// The online challenger (`[update.online]`): the live model continued
    /// on every batch.
    pub(super) online: Option<crate::update::OnlineLearner>,
    /// Where the last update's rows ended: the next continual update counts
    /// `update.every_rows` from here (until then, from the rows since the
    /// live version).
    pub(super) continual_from: Option<u64>,
    /// Left out of the next update: its last promotion was rolled back.
    pub(super) excluded_strategy: Option<StrategyName>,
    /// systemd: readiness is sent once, after the first successful scan of
    /// the data directory; `STATUS=` when its line changes.
    pub(super) notifier: Notifier,
    pub(super) ready: bool,
    /// A file the previous process was reading when it died (see `ingest::probe`).
    pub(super) suspect: Option<probe::ReadingNote>,
    pub(super) scan_ok: bool,
    /// The last scan found more files than one turn of the loop read.
    pub(super) backlog: bool,
    /// The last scan of the data directory failed (logged once).
    pub(super) scan_failing: bool,
    /// The data directory came back: set up the inotify watch again.
    pub(super) rewatch: bool,
    /// The last write of status.json failed (logged once).
    pub(super) status_write_failing: bool,
    /// status.json is older than the published status; when it was written.
    pub(super) status_file_stale: bool,
    pub(super) status_written: Option<std::time::Instant>,
    pub(super) status_line: String,
}
