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

pub mod guard;
pub mod schedule;
pub mod service;

pub use schedule::Clock;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::config::{EnsembleMembers, Policy};
use crate::detect::Severity;
use crate::ingest::{FileProblem, Ingestor, NewFile, Outcome, Served};
use crate::input_drift::{InputCheck, InputMonitor, InputProfile};
use crate::model::{self, Classifier, Dataset, Mlp, ModelError, TrainSettings};
use crate::monitor::{DriftAlert, Monitor, RowOutcome, WindowMetrics};
use crate::notify::Notifier;
use crate::registry::{
    CandidateScore, DataSummary, Registry, Seeds, TrainedFile, TrainedFiles, VersionMeta,
};
use crate::update::{self, StrategyName, Tournament, UpdateData};
use crate::worker::Worker;

/// Why an update runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Drift,
    Schedule,
    Manual,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Drift => "drift",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
        }
    }
}

/// A request for an update, from outside the ingest path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

/// One point of the rolling-accuracy trace (one per ingested file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    pub file: String,
    pub rows_total: u64,
    pub live_version: Option<u64>,
    pub rolling_accuracy: Option<f64>,
    pub file_accuracy: Option<f64>,
    /// When the file was ingested, on the daemon's clock (`driftd report`
    /// places updates on the trace by it).
    #[serde(default)]
    pub at: Option<chrono::DateTime<Utc>>,
}

/// The leaderboard of the last update, for status and the demo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateSummary {
    pub trigger: TriggerKind,
    /// New rows the candidates trained on (before sampling).
    pub train_rows: usize,
    /// Old rows available to the `*_all` strategies (bounded by
    /// `update.reservoir_rows`).
    pub old_rows: usize,
    pub holdout_rows: usize,
    /// NaN (`null` in JSON) when the update failed before scoring.
    #[serde(deserialize_with = "nan_if_null")]
    pub live_accuracy: f64,
    pub leaderboard: Vec<CandidateScore>,
    pub promoted: Option<u64>,
    pub decision: String,
    /// On the daemon's clock.
    #[serde(default)]
    pub started_at: Option<chrono::DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<chrono::DateTime<Utc>>,
}

/// serde_json writes NaN as `null`; read it back as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// What the daemon publishes after every step (also written to
/// `state/status.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub live_version: Option<u64>,
    pub baseline: Option<f64>,
    pub rolling_accuracy: Option<f64>,
    /// Metrics over the last `monitor.window` rows and over the last
    /// `monitor.time_window_seconds`.
    #[serde(default)]
    pub metrics: Option<WindowMetrics>,
    #[serde(default)]
    pub time_window_metrics: Option<WindowMetrics>,
    /// The last input-drift check: the features that moved most.
    #[serde(default)]
    pub input_drift: Vec<crate::input_drift::FeatureDrift>,
    pub rows_since_live: u64,
    pub files_ingested: u64,
    pub files_quarantined: u64,
    pub rows_ingested: u64,
    /// Bad rows dropped (with `data.bad_rows = "drop"`).
    #[serde(default)]
    pub rows_dropped: u64,
    /// Rows the monitor judged by what was served (`data.prediction` /
    /// `data.probability`) rather than by re-scoring.
    #[serde(default)]
    pub rows_judged_as_served: u64,
    pub alerts: Vec<DriftAlert>,
    pub updates: Vec<UpdateSummary>,
    pub update_running: bool,
    pub update_pending: bool,
    /// Triggers received (alerts, schedule fires, manual requests) and how
    /// many of them the cooldown or the daily cap suppressed.
    #[serde(default)]
    pub triggers: u64,
    #[serde(default)]
    pub triggers_suppressed: u64,
    /// Promotions the daemon rolled back by itself.
    #[serde(default)]
    pub rollbacks: u64,
    /// Triggers merged into an update already waiting behind a running one.
    #[serde(default)]
    pub triggers_coalesced: u64,
    pub trace: Vec<TracePoint>,
    pub updated_at: Option<chrono::DateTime<Utc>>,
    /// Set in the last status a daemon writes when it stops cleanly.
    #[serde(default)]
    pub stopped: bool,
    /// Since this process started (the metrics endpoint's counters):
    /// drift_alert events by detector and severity, updates by outcome
    /// (`promoted`, `rejected`, `failed`, `abandoned`).
    #[serde(default)]
    pub alerts_by_detector: BTreeMap<String, BTreeMap<String, u64>>,
    #[serde(default)]
    pub updates_by_outcome: BTreeMap<String, u64>,
    /// Wall time of the last finished update.
    #[serde(default)]
    pub last_update_seconds: Option<f64>,
    /// Final training loss of the last promoted version.
    #[serde(default)]
    pub last_train_loss: Option<f64>,
}

const TRACE_LIMIT: usize = 2000;
/// How long one poll may read files before the loop turns again.
const POLL_BUDGET: Duration = Duration::from_millis(500);
const HISTORY_LIMIT: usize = 100;
/// How often status.json may be rewritten.
const STATUS_WRITE_EVERY: Duration = Duration::from_millis(200);

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

/// The live model as the scorer thread holds it.
type LiveSlot = Option<Classifier>;

/// A bounded uniform sample (Vitter's Algorithm R) of rows older versions
/// were trained on.
#[derive(Debug, Clone)]
pub(crate) struct Reservoir {
    pub(crate) rows: Dataset,
    capacity: usize,
    seen: u64,
    rng: ChaCha8Rng,
}

impl Reservoir {
    pub(crate) fn new(width: usize, capacity: usize, seed: u64) -> Self {
        Reservoir {
            rows: Dataset::new(width),
            capacity,
            seen: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub(crate) fn add(&mut self, data: &Dataset) {
        for i in 0..data.len() {
            self.seen += 1;
            if self.rows.len() < self.capacity {
                self.rows.push_row_with(
                    data.row(i),
                    data.labels[i],
                    data.weights[i],
                    data.times_us[i],
                );
            } else {
                let j = self.rng.random_range(0..self.seen) as usize;
                if j < self.capacity {
                    self.rows.set_row_from(j, data, i);
                }
            }
        }
    }
}

/// Rows that arrived since the live version, with global row numbers.
#[derive(Debug, Clone)]
pub(crate) struct NewRows {
    pub(crate) rows: Dataset,
    /// Global number of `rows`' first row.
    pub(crate) first: u64,
}

impl NewRows {
    pub(crate) fn end(&self) -> u64 {
        self.first + self.rows.len() as u64
    }

    /// Rows with global number >= `from`.
    pub(crate) fn since(&self, from: u64) -> Dataset {
        let start = from.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        self.rows.slice(start, self.rows.len())
    }

    pub(crate) fn before(&self, until: u64) -> Dataset {
        let end = until.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        self.rows.slice(0, end)
    }

    pub(crate) fn drop_before(&mut self, until: u64) {
        let end = until.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        let keep = self.rows.len() - end;
        self.rows.keep_last(keep);
        self.first += end as u64;
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) kind: TriggerKind,
    /// Train on rows from this global row number on (drift: the alert).
    pub(crate) from_row: Option<u64>,
}

struct RunningUpdate {
    kind: TriggerKind,
    /// Global row number one past the last row in the snapshot.
    end_row: u64,
    /// Manifest sequence of the last file in the snapshot.
    last_seq: u64,
    started: std::time::Instant,
    started_at: chrono::DateTime<Utc>,
    result: oneshot::Receiver<Result<(Tournament, InputProfile), String>>,
    /// Set to stop the trainer at its next batch (shutdown).
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// A version the daemon promoted, on probation for its first
/// `update.rollback.watch_rows` rows.
#[derive(Debug, Clone)]
pub(crate) struct Probation {
    pub(crate) version: u64,
    pub(crate) previous: u64,
    /// The previous version's rolling accuracy just before the promotion.
    pub(crate) previous_accuracy: f64,
    pub(crate) strategy: StrategyName,
    pub(crate) rows: u64,
    pub(crate) correct: u64,
}

struct Live {
    meta: VersionMeta,
    /// A copy of the scorer's model, handed to the trainer for updates.
    model: Classifier,
}

struct Daemon {
    policy: Policy,
    registry: Registry,
    ingestor: Ingestor,
    scorer: Worker<LiveSlot>,
    trainer: Worker<()>,
    live: Option<Live>,
    monitor: Monitor,
    input_monitor: InputMonitor,
    /// Rows scored since the open input-drift episode's last alert.
    input_episode: Option<u64>,
    bootstrap: Option<Dataset>,
    new_rows: Option<NewRows>,
    reservoir: Option<Reservoir>,
    rows_total: u64,
    pending: Option<Pending>,
    running: Option<RunningUpdate>,
    status: Status,
    status_tx: watch::Sender<Status>,
    last_file: Option<String>,
    last_seq: u64,
    /// When recent updates started (for the daily cap) and the last ended
    /// (for the cooldown).
    update_starts: Vec<tokio::time::Instant>,
    last_update_end: Option<tokio::time::Instant>,
    clock: Clock,
    probation: Option<Probation>,
    /// Left out of the next update: its last promotion was rolled back.
    excluded_strategy: Option<StrategyName>,
    /// systemd: readiness is sent once, after the first successful scan of
    /// the data directory; `STATUS=` when its line changes.
    notifier: Notifier,
    ready: bool,
    /// A file the previous process was reading when it died (see `guard`).
    suspect: Option<guard::ReadingNote>,
    scan_ok: bool,
    /// The last scan found more files than one turn of the loop read.
    backlog: bool,
    /// The last scan of the data directory failed (logged once).
    scan_failing: bool,
    /// The data directory came back: set up the inotify watch again.
    rewatch: bool,
    /// The last write of status.json failed (logged once).
    status_write_failing: bool,
    /// status.json is older than the published status; when it was written.
    status_file_stale: bool,
    status_written: Option<std::time::Instant>,
    status_line: String,
}

/// Runs the daemon until `shutdown` resolves. `triggers` carries schedule
/// fires and manual update requests; the schedule from the policy is
/// started here and feeds the same channel. `status` receives a snapshot
/// after every step (tests and the demo wait on it instead of sleeping).
pub async fn run(
    policy: Policy,
    shutdown: impl Future<Output = ()>,
    triggers_tx: mpsc::Sender<Trigger>,
    triggers: mpsc::Receiver<Trigger>,
    status_tx: watch::Sender<Status>,
) -> Result<Status, DaemonError> {
    run_with(
        policy,
        Clock::System,
        shutdown,
        triggers_tx,
        triggers,
        status_tx,
        service::Service::default(),
    )
    .await
}

/// [`run`] as a service (systemd notifications and policy reloads) on a
/// given clock: tests pass a [`Clock::Paused`] and pause tokio's time, so
/// days of schedule fires, cooldowns and daily caps pass in moments.
pub async fn run_with(
    policy: Policy,
    clock: Clock,
    shutdown: impl Future<Output = ()>,
    triggers_tx: mpsc::Sender<Trigger>,
    mut triggers: mpsc::Receiver<Trigger>,
    status_tx: watch::Sender<Status>,
    mut service: service::Service,
) -> Result<Status, DaemonError> {
    tch::set_num_threads(policy.training.threads as i32);
    for dir in [&policy.state.dir, &policy.registry.dir] {
        crate::fsutil::create_private_dir(dir).map_err(|source| DaemonError::State {
            path: dir.clone(),
            source,
        })?;
    }
    let (registry, _) = Registry::open_checked(
        &policy.registry.dir,
        "driftd run",
        crate::registry::CheckMode::Repair,
    )?;
    let ingestor = Ingestor::open(&policy)?;
    let scorer = Worker::spawn("driftd-scorer", None::<Classifier>).map_err(DaemonError::Thread)?;
    let trainer = Worker::spawn("driftd-trainer", ()).map_err(DaemonError::Thread)?;
    let monitor = Monitor::new(&policy.monitor, 2, None, None);
    let input_monitor = InputMonitor::new(policy.monitor.input.clone(), None, 0);
    let mut d = Daemon {
        policy,
        registry,
        ingestor,
        scorer,
        trainer,
        live: None,
        monitor,
        input_monitor,
        input_episode: None,
        bootstrap: None,
        new_rows: None,
        reservoir: None,
        rows_total: 0,
        pending: None,
        running: None,
        status: Status {
            pid: std::process::id(),
            ..Status::default()
        },
        status_tx,
        last_file: None,
        last_seq: 0,
        update_starts: Vec::new(),
        last_update_end: None,
        clock,
        probation: None,
        excluded_strategy: None,
        notifier: std::mem::take(&mut service.notifier),
        ready: false,
        scan_ok: false,
        backlog: false,
        scan_failing: false,
        rewatch: false,
        status_write_failing: false,
        status_file_stale: false,
        status_written: None,
        status_line: String::new(),
        suspect: None,
    };
    d.suspect = guard::left_over(&d.policy.state.dir);
    d.load_live().await?;
    d.restore_buffers().await;
    if d.policy.schedule.enabled {
        d.catch_up_schedule();
    }
    d.resume_abandoned_update();
    let mut scheduler = if d.policy.schedule.enabled {
        Some(
            schedule::start(&d.policy.schedule, &d.clock, triggers_tx.clone())
                .await
                .map_err(DaemonError::Schedule)?,
        )
    } else {
        None
    };
    // Kept to restart the schedule when a reload changes it.
    let schedule_tx = triggers_tx;
    let mut reloads = service.reloads.take();
    let watchdog_every = d.notifier.watchdog_interval();
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
    info!(
        event = "daemon_started",
        data_dir = %d.policy.data.dir.display(),
        live_version = ?d.live.as_ref().map(|l| l.meta.version),
        "driftd is watching {}",
        d.policy.data.dir.display()
    );
    d.publish();

    tokio::pin!(shutdown);
    // inotify only wakes the loop early; the rescan below is the truth.
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let watch_dir = |d: &Daemon| {
        let wake = wake.clone();
        let dir = &d.policy.data.dir;
        match crate::ingest::watch(dir, d.policy.data.recursive, move || wake.notify_one()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "cannot watch the data directory; finding files by rescanning only");
                None
            }
        }
    };
    let mut watcher = watch_dir(&d);
    let mut poll = tokio::time::interval(Duration::from_millis(d.policy.data.poll_interval_ms));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = poll.tick() => {
                if d.poll_files().await {
                    poll.reset_immediately();
                }
            }
            _ = wake.notified() => {
                d.poll_files().await;
            }
            Some(t) = triggers.recv() => d.on_trigger(t),
            Some(reload) = service::next_reload(&mut reloads) => {
                let effects = d.reload(reload);
                if effects.poll_interval {
                    poll = tokio::time::interval(Duration::from_millis(d.policy.data.poll_interval_ms));
                    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                if effects.schedule {
                    if let Some(s) = scheduler.take() {
                        s.stop().await;
                    }
                    if d.policy.schedule.enabled {
                        match schedule::start(&d.policy.schedule, &d.clock, schedule_tx.clone()).await {
                            Ok(s) => scheduler = Some(s),
                            Err(e) => error!(error = %e, "cannot restart the schedule; it stays off until the next reload"),
                        }
                    }
                }
                d.notify(d.notifier.ready(&service::status_line(&d.status)));
            }
            _ = watchdog.tick(), if watchdog_every.is_some() => d.ping_watchdog(),
            result = async { (&mut d.running.as_mut().expect("guarded").result).await },
                if d.running.is_some() => {
                let running = d.running.take().expect("guarded");
                d.finish_update(running, result.unwrap_or_else(|_| Err("the update panicked".into()))).await;
            }
        }
        if std::mem::take(&mut d.rewatch) {
            drop(watcher.take());
            watcher = watch_dir(&d);
        }
        d.maybe_start_update();
        d.publish();
        d.notify_progress();
    }
    drop(watcher);
    d.notify(d.notifier.stopping());
    if let Some(s) = scheduler {
        s.stop().await;
    }
    d.stop_running_update().await;
    d.stop_workers().await;
    // Fold the manifest journal into manifest.json for whoever reads it next.
    if let Err(e) = d.ingestor.compact() {
        error!(error = %e, "cannot compact the manifest; its journal is replayed at the next start");
    }
    info!(event = "daemon_stopped", "driftd stopped");
    d.status.stopped = true;
    d.publish();
    Ok(d.status.clone())
}

impl Daemon {
    async fn load_live(&mut self) -> Result<(), DaemonError> {
        let Some(version) = self.registry.live_version()? else {
            return Ok(());
        };
        let (meta, mlp) = self.registry.load_model(version)?;
        self.install_live(meta, mlp).await;
        Ok(())
    }

    async fn install_live(&mut self, meta: VersionMeta, mlp: Classifier) {
        let baseline = meta.holdout.map(|s| s.accuracy);
        if self.ingestor.schema.is_none() {
            self.ingestor.schema = Some(crate::ingest::Schema::of_version(&meta, &self.policy));
        }
        let for_scorer = mlp.clone();
        if let Err(e) = self.scorer.run(move |slot| *slot = Some(for_scorer)).await {
            error!(error = %e, "cannot hand the live model to the scorer");
        }
        if meta.input_profile.is_none() && self.policy.monitor.input.enabled {
            info!(
                version = meta.version,
                "version {} has no training distribution in its meta.json; input drift is not checked for it",
                meta.version
            );
        }
        self.last_seq = meta.data.last_seq;
        self.status.live_version = Some(meta.version);
        self.status.baseline = baseline;
        self.live = Some(Live { meta, model: mlp });
        self.reset_monitors();
    }

    /// Fresh monitors for the live version (a new version, or a reload that
    /// changed `[monitor]`): windows, detectors and episodes start empty.
    pub(crate) fn reset_monitors(&mut self) {
        let Some(live) = &self.live else {
            return;
        };
        (self.monitor, self.input_monitor) =
            monitors_for(&self.policy, &live.meta, live.model.inputs());
        self.input_episode = None;
        self.status.metrics = None;
        self.status.time_window_metrics = None;
        self.status.input_drift = Vec::new();
    }

    /// After a restart: rows since the live version (and a sample of older
    /// rows) are re-read from the files the manifest lists, so an update
    /// after a restart sees the same data as before it.
    async fn restore_buffers(&mut self) {
        if self.ingestor.manifest.rows_ingested == 0 {
            return;
        }
        let Some(schema) = self.ingestor.schema.clone() else {
            return;
        };
        let last_seq = self.last_seq;
        let dir = self.ingestor.dir().to_path_buf();
        let follow_symlinks = self.policy.data.follow_symlinks;
        let manifest = self.ingestor.manifest.clone();
        let (max_old, max_new) = if self.live.is_some() {
            (
                self.policy.update.reservoir_rows,
                self.policy.update.max_new_rows,
            )
        } else {
            // Before version 1 every row so far is bootstrap material.
            (usize::MAX, usize::MAX)
        };
        let (old, new) = tokio::task::spawn_blocking(move || {
            let limits = crate::ingest::RereadLimits {
                last_seq,
                max_old,
                max_new,
                follow_symlinks,
            };
            crate::ingest::rows_from_manifest(&dir, &manifest, &schema, limits)
        })
        .await
        .unwrap_or_default();
        if self.live.is_none() {
            let mut all = old;
            all.extend(&new);
            self.rows_total = all.len() as u64;
            self.bootstrap = Some(all);
            return;
        }
        self.reservoir_mut(old.width).add(&old);
        self.rows_total = new.len() as u64;
        let new_rows = NewRows {
            rows: new,
            first: 0,
        };
        info!(
            old_rows = self.reservoir.as_ref().map_or(0, |r| r.rows.len()),
            new_rows = new_rows.rows.len(),
            "restored training rows from the manifest"
        );
        self.status.rows_since_live = new_rows.rows.len() as u64;
        self.new_rows = Some(new_rows);
    }

    fn reservoir_mut(&mut self, width: usize) -> &mut Reservoir {
        reservoir_of(&mut self.reservoir, &self.policy, width)
    }

    /// Another process (`driftd update`, later `rollback` / `promote`) may
    /// move the live pointer: follow it.
    async fn follow_live_pointer(&mut self) {
        let current = self.live.as_ref().map(|l| l.meta.version);
        let pointer = match self.registry.live_version() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot read the live pointer");
                return;
            }
        };
        if pointer.is_none() || pointer == current {
            return;
        }
        let version = pointer.expect("checked");
        match self.registry.load_model(version) {
            Ok((meta, model)) => {
                info!(
                    event = "live_changed",
                    version,
                    previous = ?current,
                    "version {version} was made live by another process; scoring with it from now on"
                );
                self.install_live(meta, model).await;
            }
            Err(e) => {
                error!(version, error = %e, "the live pointer names a version that cannot be loaded; keeping the current model")
            }
        }
    }

    /// Reads new files for at most [`POLL_BUDGET`]; returns whether some
    /// are left for the next turn of the loop. The budget keeps a backlog
    /// (a restart after downtime) from holding the loop: signals, the
    /// watchdog and finished updates are served between batches.
    async fn poll_files(&mut self) -> bool {
        self.follow_live_pointer().await;
        let files = match self.ingestor.scan() {
            Ok(f) => f,
            Err(e) => {
                // The directory may come back (remounts, deploys): keep
                // going, say so once per outage, not every poll.
                if !self.scan_failing {
                    error!(error = %e, "cannot scan the data directory; retrying at every poll, its files are read when it is back");
                    self.scan_failing = true;
                }
                self.scan_ok = false;
                self.backlog = false;
                return false;
            }
        };
        if std::mem::take(&mut self.scan_failing) {
            info!(
                dir = %self.ingestor.dir().display(),
                "the data directory {} is readable again",
                self.ingestor.dir().display()
            );
            // A directory that was removed and made again has a new inode
            // the old inotify watch does not see.
            self.rewatch = true;
        }
        self.scan_ok = true;
        let started = std::time::Instant::now();
        let mut files = files.into_iter();
        for file in files.by_ref() {
            self.ingest_file(file).await;
            if started.elapsed() >= POLL_BUDGET {
                break;
            }
        }
        self.backlog = files.next().is_some();
        self.backlog
    }

    async fn ingest_file(&mut self, file: NewFile) {
        if file.replaced {
            warn!(file = %file.name, "file was replaced with different content; ingesting it as a new file");
        }
        let (rows, dropped, first_dropped, file_accuracy) = match self.read_and_absorb(&file).await
        {
            Ok(r) => r,
            Err(problem) => {
                let name = &file.name;
                warn!(event = "file_quarantined", file = %name, reason = %problem, "quarantined {name}: {problem}");
                self.status.files_quarantined += 1;
                // A vanished file is not recorded: if it comes back, it is read.
                if problem != FileProblem::Vanished {
                    let reason = problem.to_string();
                    self.commit(&file, Outcome::Quarantined { reason });
                }
                return;
            }
        };
        let name = file.name.clone();
        self.commit(&file, Outcome::Ingested { rows, dropped });
        let ready = self
            .bootstrap
            .as_ref()
            .is_some_and(|b| b.len() >= self.policy.data.initial_rows);
        if self.live.is_none() && ready {
            let rows = self.bootstrap.take().expect("checked");
            self.train_initial(rows).await;
        }
        self.status.files_ingested += 1;
        self.status.rows_ingested += rows as u64;
        self.status.rows_dropped += dropped as u64;
        self.status.rolling_accuracy = self.monitor.rolling_accuracy();
        let point = TracePoint {
            file: name.clone(),
            rows_total: self.rows_total,
            live_version: self.status.live_version,
            rolling_accuracy: self.monitor.rolling_accuracy(),
            file_accuracy,
            at: Some(self.clock.now()),
        };
        self.status.trace.push(point);
        if self.status.trace.len() > TRACE_LIMIT {
            self.status.trace.remove(0);
        }
        info!(
            event = "file_ingested",
            file = %name,
            rows,
            dropped_rows = dropped,
            first_dropped = first_dropped.map(|p| p.to_string()),
            live_version = ?self.status.live_version,
            rolling_accuracy = ?self.monitor.rolling_accuracy(),
            "ingested {name}: {rows} rows"
        );
    }

    /// Reads a file batch by batch and absorbs its rows; returns the rows
    /// kept, the rows dropped (and why the first were), and the file's
    /// accuracy (when scored). A file
    /// of several batches is checked whole before any row is used, so a
    /// problem in a late batch never leaves the early ones counted.
    async fn read_and_absorb(
        &mut self,
        file: &NewFile,
    ) -> Result<(usize, usize, Option<FileProblem>, Option<f64>), FileProblem> {
        if let Some(problem) = &file.problem {
            return Err(problem.clone());
        }
        // The previous process died reading this very file: read it in a
        // child first (see `guard`).
        if let Some(note) = self.suspect.take() {
            if note.is(file) {
                warn!(file = %file.name, "the previous process stopped while reading this file; reading it in a child process first");
                guard::probe(&self.policy, &file.path).await?;
            } else {
                self.suspect = Some(note);
            }
        }
        guard::note(&self.policy.state.dir, file);
        let reader = self.ingestor.reader();
        let to_open = file.clone();
        let opened = std::sync::Arc::new(off_thread(move || reader.open(&to_open)).await?);
        let batches = opened.batches.len();
        let mut first = None;
        let mut kept = 0;
        for i in 0..batches {
            let f = opened.clone();
            let batch = off_thread(move || f.read_batch(i)).await?;
            kept += batch.data.len();
            if batches == 1 {
                first = Some(batch);
            }
        }
        if kept == 0 {
            return Err(FileProblem::NoUsableRows {
                dropped: opened.rows(),
            });
        }
        let (mut dropped, mut scored, mut correct) = (0, 0usize, 0.0);
        let mut first_dropped = None;
        for i in 0..batches {
            let batch = match first.take() {
                Some(b) => b,
                None => {
                    let f = opened.clone();
                    off_thread(move || f.read_batch(i)).await?
                }
            };
            dropped += batch.dropped;
            first_dropped = first_dropped.or(batch.first_dropped);
            let n = batch.data.len();
            if n == 0 {
                continue;
            }
            if let Some(accuracy) = self.absorb(&file.name, batch.data, batch.served).await {
                scored += n;
                correct += accuracy * n as f64;
            }
        }
        self.ingestor.schema.get_or_insert(opened.schema.clone());
        self.ingestor.record_types(&opened.types);
        let accuracy = (scored > 0).then(|| correct / scored as f64);
        Ok((kept, dropped, first_dropped, accuracy))
    }

    fn commit(&mut self, file: &NewFile, outcome: Outcome) {
        if let Err(e) = self.ingestor.commit(file, outcome) {
            // The rows are in memory; the file will be re-read after a
            // restart, which the buffers tolerate. Say so loudly.
            error!(error = %e, file = %file.name, "cannot persist the manifest");
        }
        self.last_file = Some(file.name.clone());
        guard::clear(&self.policy.state.dir);
    }

    /// Scores a file's rows with the live model (or takes what was served),
    /// feeds the monitor and the training buffers. Returns the file's
    /// accuracy when judged.
    async fn absorb(&mut self, name: &str, data: Dataset, served: Option<Served>) -> Option<f64> {
        let width = data.width;
        let n = data.len() as u64;
        if self.live.is_none() {
            // Buffered for version 1, trained once the file is committed.
            let buf = self.bootstrap.get_or_insert_with(|| Dataset::new(width));
            buf.extend(&data);
            self.rows_total += n;
            return None;
        }
        let classes = self
            .live
            .as_ref()
            .expect("checked")
            .meta
            .architecture
            .classes;
        // What was served is what the monitor judges; the live model scores
        // the rows without a valid served value, and every row while a
        // promotion is on probation (which judges the promoted model, not
        // whatever the serving side still ran).
        let all_served = served.as_ref().is_some_and(|s| s.invalid_rows() == 0);
        let scored = if all_served && self.probation.is_none() {
            None
        } else {
            Some(self.score(name, &data, classes).await?)
        };
        let outcomes: Vec<RowOutcome> = match &served {
            None => scored.clone().expect("scored without served columns"),
            Some(s) => {
                let mut judged_as_served = 0;
                let outcomes = (0..data.len())
                    .map(|i| {
                        if !s.valid[i] {
                            return scored.as_ref().expect("scored when invalid")[i];
                        }
                        judged_as_served += 1;
                        RowOutcome {
                            label: data.labels[i] as u32,
                            predicted: s.predicted[i],
                            p_label: s.p_label[i],
                            p_positive: s.p_positive[i],
                            time_us: data.times_us[i],
                        }
                    })
                    .collect();
                self.status.rows_judged_as_served += judged_as_served;
                outcomes
            }
        };
        let file_accuracy =
            outcomes.iter().filter(|o| o.correct()).count() as f64 / outcomes.len().max(1) as f64;
        let monitor_before = self.monitor.rows_seen();
        let alerts = self.monitor.observe(&outcomes);
        self.status.metrics = self.monitor.window_metrics();
        self.status.time_window_metrics = self.monitor.time_window_metrics();
        let input_checks = self.input_monitor.observe(&data);
        let first_new = self.rows_total;
        self.rows_total += n;
        buffer_new_rows(
            &mut self.new_rows,
            &mut self.reservoir,
            &self.policy,
            &data,
            first_new,
        );
        self.status.rows_since_live = self.monitor.rows_seen();
        for alert in alerts {
            // Global row number of the row that raised the alert.
            let at = first_new + (alert.rows_since_live - monitor_before);
            self.raise_alert(alert, at);
        }
        for check in input_checks {
            self.on_input_check(check, first_new + n);
        }
        self.judge_probation(scored.as_deref().unwrap_or(&outcomes))
            .await;
        Some(file_accuracy)
    }

    /// The live model's outcome for each row.
    async fn score(
        &mut self,
        name: &str,
        data: &Dataset,
        classes: usize,
    ) -> Option<Vec<RowOutcome>> {
        let scored = {
            let data = data.clone();
            self.scorer
                .run(move |slot| slot.as_ref().map(|m| m.predict_proba(&data)))
                .await
        };
        let probs = match scored {
            Ok(Some(Ok(p))) => p,
            Ok(Some(Err(e))) => {
                error!(file = %name, error = %e, "cannot score the file's rows");
                return None;
            }
            Ok(None) => {
                error!(file = %name, "the scorer has no live model");
                return None;
            }
            Err(e) => {
                // A panicking scoring job (caught on the scorer thread,
                // which keeps serving): the rows stay unscored.
                error!(file = %name, error = %e, "cannot score the file's rows: {e}");
                return None;
            }
        };
        Some(outcomes_of(data, &probs, classes))
    }

    /// Counts the new version's first rows; once `watch_rows` are in, keeps
    /// it or rolls back to the previous version.
    async fn judge_probation(&mut self, outcomes: &[RowOutcome]) {
        let Some(p) = &mut self.probation else {
            return;
        };
        if self.status.live_version != Some(p.version) {
            // Someone else changed the live version: nothing to judge.
            self.probation = None;
            return;
        }
        let Some(accuracy) = probation_count(p, outcomes, self.policy.update.rollback.watch_rows)
        else {
            return;
        };
        let p = self.probation.take().expect("checked");
        if probation_holds(&p, accuracy, self.policy.update.rollback.margin) {
            info!(
                event = "promotion_confirmed",
                version = p.version,
                accuracy,
                previous_accuracy = p.previous_accuracy,
                "version {} scored {accuracy:.3} on its first {} rows (version {} scored {:.3} before it): it stays",
                p.version,
                p.rows,
                p.previous,
                p.previous_accuracy
            );
            return;
        }
        self.roll_back(p, accuracy).await;
    }

    async fn roll_back(&mut self, p: Probation, accuracy: f64) {
        let margin = self.policy.update.rollback.margin;
        let reason = format!(
            "version {} scored {accuracy:.3} on its first {} rows, {:.3} below version {}'s {:.3} before the promotion (margin {margin})",
            p.version,
            p.rows,
            p.previous_accuracy - accuracy,
            p.previous,
            p.previous_accuracy
        );
        let result = (|| {
            let _lock = crate::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
            let loaded = self.registry.load_model(p.previous)?;
            self.registry.set_live(p.previous, "rollback", &reason)?;
            Ok::<_, DaemonError>(loaded)
        })();
        match result {
            Ok((meta, model)) => {
                warn!(
                    event = "rollback",
                    version = p.previous,
                    from_version = p.version,
                    strategy = p.strategy.as_str(),
                    accuracy,
                    previous_accuracy = p.previous_accuracy,
                    margin,
                    rows = p.rows,
                    "rolled back to version {}: {reason}; {} is left out of the next update",
                    p.previous,
                    p.strategy.as_str()
                );
                self.install_live(meta, model).await;
                self.excluded_strategy = Some(p.strategy);
                self.status.rollbacks += 1;
            }
            Err(e) => error!(
                version = p.previous,
                error = %e,
                "version {} should be rolled back ({reason}) but cannot be: it stays live",
                p.version
            ),
        }
    }

    /// One input-drift alert per episode: the episode ends at the first
    /// check where no feature moved; while it lasts the alert is repeated
    /// every `monitor.realert_after_rows` rows (if set).
    fn on_input_check(&mut self, check: InputCheck, at_row: u64) {
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

    fn raise_alert(&mut self, alert: DriftAlert, at_row: u64) {
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

    fn record_fire(&self, at: chrono::DateTime<Utc>) {
        let state = schedule::ScheduleState { last_fire: at };
        if let Err(e) = state.save(&self.policy.state.dir) {
            warn!(error = %e, "cannot persist the schedule state; a fire missed while down may run again");
        }
    }

    /// A fire missed while the daemon was down runs once now. On a first
    /// start there is nothing to catch up: the schedule starts from now.
    fn catch_up_schedule(&mut self) {
        let now = self.clock.now();
        let Some(state) = schedule::ScheduleState::load(&self.policy.state.dir) else {
            self.record_fire(now);
            return;
        };
        if let Some(missed) = schedule::missed_fire(&self.policy.schedule, state.last_fire, now) {
            info!(
                event = "schedule_fired",
                scheduled = %missed,
                actual = %now,
                "the update scheduled for {missed} was missed while driftd was down; running it now"
            );
            self.record_fire(now);
            self.request(Pending {
                kind: TriggerKind::Schedule,
                from_row: None,
            });
        }
    }

    fn on_trigger(&mut self, trigger: Trigger) {
        let kind = match trigger {
            Trigger::Schedule => {
                let now = self.clock.now();
                let scheduled = schedule::latest_fire(&self.policy.schedule, now).unwrap_or(now);
                // After the wall clock went back, the scheduler meets
                // occurrences that already ran: they do not run again. A
                // last fire more than a day ahead of the clock is not
                // trusted (a clock that was wrong, then fixed): the
                // schedule must not stay silent until then.
                let taken = schedule::ScheduleState::load(&self.policy.state.dir)
                    .filter(|s| s.last_fire - now <= chrono::Duration::days(1))
                    .and_then(|s| {
                        schedule::latest_fire(&self.policy.schedule, s.last_fire)
                            .zip(Some(s.last_fire))
                    });
                if let Some((taken, last_fire)) = taken.filter(|(t, _)| scheduled <= *t) {
                    warn!(
                        scheduled = %scheduled,
                        actual = %now,
                        last_fire = %last_fire,
                        "schedule fire ignored: the occurrence at {scheduled} already ran (the last fire, for {taken}, was taken at {last_fire}); the clock went back"
                    );
                    return;
                }
                info!(event = "schedule_fired", scheduled = %scheduled, actual = %now, "the update scheduled for {scheduled} fired");
                self.record_fire(now);
                TriggerKind::Schedule
            }
            Trigger::Manual => TriggerKind::Manual,
        };
        self.request(Pending {
            kind,
            from_row: None,
        });
    }

    /// Coalesces triggers: at most one update waits behind a running one.
    fn request(&mut self, p: Pending) {
        self.status.triggers += 1;
        if let Some(reason) = self.suppressed(p.kind) {
            self.status.triggers_suppressed += 1;
            debug!(trigger = p.kind.as_str(), reason = %reason, "update trigger suppressed: {reason}");
            return;
        }
        if coalesce(&mut self.pending, p) {
            self.status.triggers_coalesced += 1;
            debug!(
                trigger = p.kind.as_str(),
                "an update is already pending; coalescing"
            );
        }
        self.status.update_pending = true;
    }

    /// Why an automatic trigger must not start an update now (a manual
    /// request is an operator's decision and is never suppressed).
    fn suppressed(&mut self, kind: TriggerKind) -> Option<String> {
        if kind == TriggerKind::Manual {
            return None;
        }
        let now = tokio::time::Instant::now();
        let day = Duration::from_secs(24 * 3600);
        self.update_starts.retain(|t| now.duration_since(*t) < day);
        let since_last_end = self.last_update_end.map(|last| now.duration_since(last));
        suppression(&self.policy, since_last_end, self.update_starts.len())
    }

    fn maybe_start_update(&mut self) {
        if self.running.is_some() {
            return;
        }
        let Some(pending) = self.pending else {
            return;
        };
        let Some(live) = &self.live else {
            debug!("an update was requested before version 1 exists; it waits");
            return;
        };
        if self.backlog && pending.kind == TriggerKind::Schedule {
            // A fire (or one missed while down) is about the rows that
            // have arrived: those already in the directory are read first.
            debug!("a scheduled update waits until the files already in the directory are read");
            return;
        }
        let (new, old, end_row) = match update_rows(
            &self.policy,
            self.new_rows.as_ref(),
            self.reservoir.as_ref(),
            pending,
            self.rows_total,
            live.model.inputs(),
        ) {
            UpdateRows::Ready { new, old, end_row } => (new, old, end_row),
            UpdateRows::Short { have, needed } => {
                if pending.kind != TriggerKind::Drift {
                    info!(
                        event = "update_rejected",
                        trigger = pending.kind.as_str(),
                        new_rows = have,
                        "not enough new rows for an update ({have} of {needed} needed)"
                    );
                    self.pending = None;
                    self.status.update_pending = false;
                }
                return;
            }
        };
        let lineage = match self.policy.update.ensemble.members {
            EnsembleMembers::LastVersions => self.registry.lineage(
                &live.meta,
                self.policy.update.ensemble.max_members.saturating_sub(2),
            ),
            EnsembleMembers::Grow => Vec::new(),
        };
        let data = UpdateData { old, new, lineage };
        let strategies = strategies_for(&self.policy, self.excluded_strategy.take());
        if strategies.is_empty() {
            info!(
                event = "update_rejected",
                trigger = pending.kind.as_str(),
                "no candidate left for this update"
            );
            self.pending = None;
            self.status.update_pending = false;
            return;
        }
        let policy = self.policy.clone();
        let live_version = live.meta.version;
        let seed = self.policy.training.seed.wrapping_add(live_version);
        info!(
            event = "update_started",
            trigger = pending.kind.as_str(),
            new_rows = data.new.len(),
            old_rows = data.old.len(),
            strategies = ?strategies.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "update started ({} trigger): {} candidates on {} new and {} old rows",
            pending.kind.as_str(),
            strategies.len(),
            data.new.len(),
            data.old.len()
        );
        let live_model = live.model.clone();
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cancel.clone();
        let names = self.feature_names();
        let job = self.trainer.submit(move |_| {
            model::with_cancel(flag, || {
                let tournament =
                    update::run_tournament(&policy, &live_model, &data, &strategies, seed)
                        .map_err(|e| e.to_string())?;
                // The new version is judged on the new rows: they are what
                // its inputs should look like.
                Ok((tournament, InputProfile::from_dataset(&data.new, &names)))
            })
        });
        match job {
            Ok(result) => {
                self.update_starts.push(tokio::time::Instant::now());
                self.running = Some(RunningUpdate {
                    kind: pending.kind,
                    end_row,
                    last_seq: self.ingestor.manifest.next_seq,
                    started: std::time::Instant::now(),
                    started_at: self.clock.now(),
                    result,
                    cancel,
                });
                self.pending = None;
                self.status.update_pending = false;
                self.status.update_running = true;
            }
            Err(e) => error!(error = %e, "cannot start the update"),
        }
    }

    fn feature_names(&self) -> Vec<String> {
        self.ingestor
            .schema
            .as_ref()
            .map(|s| s.features.clone())
            .unwrap_or_default()
    }

    async fn finish_update(
        &mut self,
        running: RunningUpdate,
        result: Result<(Tournament, InputProfile), String>,
    ) {
        self.status.update_running = false;
        self.last_update_end = Some(tokio::time::Instant::now());
        let seconds = running.started.elapsed().as_secs_f64();
        self.status.last_update_seconds = Some(seconds);
        // `ended_at` below is clamped to `started_at`: the wall clock may
        // have gone back while the update ran, a duration never does.
        let (tournament, profile) = match result {
            Ok(t) => t,
            Err(reason) => {
                self.count_update("failed");
                warn!(event = "update_rejected", trigger = running.kind.as_str(), reason = %reason, "update failed: {reason}");
                self.push_update(UpdateSummary {
                    trigger: running.kind,
                    train_rows: 0,
                    old_rows: 0,
                    holdout_rows: 0,
                    live_accuracy: f64::NAN,
                    leaderboard: Vec::new(),
                    promoted: None,
                    decision: format!("failed: {reason}"),
                    started_at: Some(running.started_at),
                    ended_at: Some(self.clock.now().max(running.started_at)),
                });
                return;
            }
        };
        log_candidates(&tournament);
        let leaderboard = leaderboard_of(&tournament);
        let mut summary = UpdateSummary {
            trigger: running.kind,
            train_rows: tournament.train_rows,
            old_rows: tournament.old_rows,
            holdout_rows: tournament.holdout_rows,
            live_accuracy: tournament.live.accuracy,
            leaderboard: leaderboard.clone(),
            promoted: None,
            decision: tournament.decision.clone(),
            started_at: Some(running.started_at),
            ended_at: Some(self.clock.now().max(running.started_at)),
        };
        match tournament.winner {
            None => {
                self.count_update("rejected");
                info!(
                    event = "update_rejected",
                    trigger = running.kind.as_str(),
                    reason = %tournament.decision,
                    seconds,
                    "no candidate promoted: {}",
                    tournament.decision
                );
            }
            Some(i) => {
                let c = &tournament.candidates[i];
                let built = c.outcome.as_ref().expect("winner succeeded");
                // What the live version scored just before it is replaced:
                // the bar the new one must hold on probation.
                let before = self
                    .live
                    .as_ref()
                    .map(|l| l.meta.version)
                    .zip(self.monitor.rolling_accuracy());
                let strategy = c.strategy;
                let final_loss = built.report.as_ref().map(|r| r.final_loss);
                match self
                    .promote(
                        built.model.clone(),
                        strategy,
                        running.kind,
                        built.scores,
                        Some(tournament.live),
                        built.report.clone(),
                        leaderboard,
                        tournament.train_rows,
                        tournament.holdout_rows,
                        running.last_seq,
                        Some(profile.clone()),
                    )
                    .await
                {
                    Ok(version) => {
                        self.count_update("promoted");
                        self.status.last_train_loss = final_loss;
                        summary.promoted = Some(version);
                        if let (true, Some((previous, accuracy))) =
                            (self.policy.update.rollback.enabled, before)
                        {
                            self.probation = Some(Probation {
                                version,
                                previous,
                                previous_accuracy: accuracy,
                                strategy,
                                rows: 0,
                                correct: 0,
                            });
                        }
                        consume_trained(
                            &mut self.new_rows,
                            &mut self.reservoir,
                            &self.policy,
                            running.end_row,
                        );
                    }
                    Err(e) => {
                        self.count_update("failed");
                        error!(error = %e, "cannot write the new version; the live model stays")
                    }
                }
            }
        }
        self.push_update(summary);
    }

    fn push_update(&mut self, summary: UpdateSummary) {
        self.status.updates.push(summary);
        if self.status.updates.len() > HISTORY_LIMIT {
            self.status.updates.remove(0);
        }
    }

    async fn train_initial(&mut self, rows: Dataset) {
        let policy = self.policy.clone();
        let names = self.feature_names();
        let n = rows.len();
        info!(
            event = "update_started",
            trigger = "initial",
            new_rows = n,
            "training version 1 on the first {n} rows"
        );
        let result = self
            .trainer
            .run(move |_| {
                train_first_version(&policy, &rows).map(|(m, s, r, t, h)| {
                    let profile = InputProfile::from_dataset(&rows, &names);
                    (m, s, r, t, h, rows, profile)
                })
            })
            .await;
        match result {
            Ok(Ok((m, scores, report, train_rows, holdout_rows, rows, profile))) => {
                let report_loss = report.final_loss;
                let board = vec![CandidateScore {
                    strategy: "initial".into(),
                    scores: Some(scores),
                    train_seconds: report.seconds,
                    train_rows,
                    learning_rate: None,
                    lr_search: Vec::new(),
                    error: None,
                    promoted: true,
                }];
                match self
                    .promote(
                        Classifier::Single(m),
                        StrategyName::RefitAll,
                        TriggerKind::Manual,
                        scores,
                        None,
                        Some(report),
                        board,
                        train_rows,
                        holdout_rows,
                        self.ingestor.manifest.next_seq,
                        Some(profile),
                    )
                    .await
                {
                    Ok(_) => {
                        self.status.last_train_loss = Some(report_loss);
                        let w = rows.width;
                        self.reservoir_mut(w).add(&rows);
                    }
                    Err(e) => {
                        error!(error = %e, "cannot write version 1; retrying with the next file");
                        self.bootstrap = Some(rows);
                    }
                }
            }
            Ok(Err(e)) => {
                error!(error = %e, "training version 1 failed; retrying when more rows arrive");
            }
            Err(e) => error!(error = %e, "training version 1 failed"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn promote(
        &mut self,
        model: Classifier,
        strategy: StrategyName,
        trigger: TriggerKind,
        holdout: model::Scores,
        live_holdout: Option<model::Scores>,
        report: Option<model::TrainReport>,
        leaderboard: Vec<CandidateScore>,
        train_rows: usize,
        holdout_rows: usize,
        last_seq: u64,
        input_profile: Option<InputProfile>,
    ) -> Result<u64, DaemonError> {
        let parent = self.live.as_ref().map(|l| l.meta.version);
        let promotion = Promotion {
            strategy: parent.map(|_| strategy),
            trigger: if parent.is_some() {
                trigger.as_str().into()
            } else {
                "initial".into()
            },
            features: self.feature_names(),
            holdout,
            live_holdout,
            report,
            leaderboard,
            data: DataSummary {
                train_rows,
                holdout_rows,
                first_file: None,
                last_file: self.last_file.clone(),
                last_seq,
            },
            input_profile,
            files: None,
        };
        let _lock = crate::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
        let meta = promote_version(&self.registry, &self.policy, parent, &model, promotion)?;
        let version = meta.version;
        self.install_live(meta, model).await;
        Ok(version)
    }

    /// Publishes the status when it changed: an idle poll writes nothing
    /// (status.json is fsynced, and the poll may run many times a second).
    /// The watch channel (metrics, tests) gets every change at once; the
    /// file is rewritten at most every [`STATUS_WRITE_EVERY`] (its trace
    /// holds up to [`TRACE_LIMIT`] points), and the next poll after that
    /// writes what is left, so it is never more than a poll interval late.
    fn publish(&mut self) {
        self.status.rolling_accuracy = self.monitor.rolling_accuracy();
        let changed = {
            let last = self.status_tx.borrow();
            self.status.updated_at = last.updated_at;
            *last != self.status || last.pid == 0
        };
        if changed {
            self.status.updated_at = Some(Utc::now());
            // The watch first: whoever reads status.json then finds the
            // metrics endpoint at least as new.
            self.status_tx.send_replace(self.status.clone());
            self.status_file_stale = true;
        }
        let due = self
            .status_written
            .is_none_or(|t| t.elapsed() >= STATUS_WRITE_EVERY);
        if !self.status_file_stale || !(due || self.status.stopped) {
            return;
        }
        self.status_written = Some(std::time::Instant::now());
        let path = self.policy.state.dir.join("status.json");
        if let Ok(json) = serde_json::to_vec(&self.status) {
            match crate::fsutil::write_atomic(&path, &json) {
                Err(e) if !self.status_write_failing => {
                    // Once per outage (a full or read-only state directory).
                    error!(path = %path.display(), error = %e, "cannot write {}: {e}; `driftd status` shows an older state until it can", path.display());
                    self.status_write_failing = true;
                }
                Err(_) => {}
                Ok(()) => {
                    self.status_write_failing = false;
                    self.status_file_stale = false;
                }
            }
        }
    }
}

/// Fresh monitors (error and input drift) for a version that goes live.
pub(crate) fn monitors_for(
    policy: &Policy,
    meta: &VersionMeta,
    inputs: usize,
) -> (Monitor, InputMonitor) {
    let monitor = Monitor::new(
        &policy.monitor,
        meta.architecture.classes,
        Some(meta.version),
        meta.holdout.map(|s| s.accuracy),
    );
    let input_monitor = InputMonitor::new(
        policy.monitor.input.clone(),
        meta.input_profile.clone(),
        inputs,
    );
    (monitor, input_monitor)
}

/// Per-row outcomes of a batch from the live model's class probabilities
/// (`classes` per row).
pub fn outcomes_of(data: &Dataset, probs: &[f32], classes: usize) -> Vec<RowOutcome> {
    data.labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let p = &probs[i * classes..(i + 1) * classes];
            RowOutcome {
                label: l as u32,
                predicted: model::predicted_class(p) as u32,
                p_label: p.get(l as usize).copied().unwrap_or(0.0),
                p_positive: p.get(1).copied().unwrap_or(0.0),
                time_us: data.times_us[i],
            }
        })
        .collect()
}

/// The reservoir of old rows, created on first use.
pub(crate) fn reservoir_of<'a>(
    reservoir: &'a mut Option<Reservoir>,
    policy: &Policy,
    width: usize,
) -> &'a mut Reservoir {
    let cap = policy.update.reservoir_rows;
    let seed = policy.training.seed;
    reservoir.get_or_insert_with(|| Reservoir::new(width, cap, seed))
}

/// Appends a scored batch (global rows from `first_new` on) to the rows
/// since the live version; beyond `update.max_new_rows` the oldest move to
/// the reservoir.
pub(crate) fn buffer_new_rows(
    new_rows: &mut Option<NewRows>,
    reservoir: &mut Option<Reservoir>,
    policy: &Policy,
    data: &Dataset,
    first_new: u64,
) {
    let new_rows = new_rows.get_or_insert_with(|| NewRows {
        rows: Dataset::new(data.width),
        first: first_new,
    });
    new_rows.rows.extend(data);
    let max = policy.update.max_new_rows;
    if new_rows.rows.len() > max {
        let over = (new_rows.rows.len() - max) as u64;
        let until = new_rows.first + over;
        let dropped = new_rows.before(until);
        new_rows.drop_before(until);
        reservoir_of(reservoir, policy, data.width).add(&dropped);
    }
}

/// After a promotion: the rows the new version was trained on (global rows
/// before `end_row`) become old rows.
pub(crate) fn consume_trained(
    new_rows: &mut Option<NewRows>,
    reservoir: &mut Option<Reservoir>,
    policy: &Policy,
    end_row: u64,
) {
    if let Some(new_rows) = new_rows {
        let consumed = new_rows.before(end_row);
        new_rows.drop_before(end_row);
        reservoir_of(reservoir, policy, consumed.width).add(&consumed);
    }
}

/// Merges a trigger into the pending update; returns whether one was
/// already pending (coalesced).
pub(crate) fn coalesce(pending: &mut Option<Pending>, p: Pending) -> bool {
    match pending {
        Some(existing) => {
            // A drift trigger is more specific about which rows to use.
            if p.kind == TriggerKind::Drift {
                *existing = p;
            }
            true
        }
        None => {
            *pending = Some(p);
            false
        }
    }
}

/// Why an automatic trigger must not start an update: the cooldown after
/// the last update (`since_last_end`) or the daily cap (`starts_last_day`
/// updates started in the last 24 hours).
pub(crate) fn suppression(
    policy: &Policy,
    since_last_end: Option<Duration>,
    starts_last_day: usize,
) -> Option<String> {
    let cooldown = Duration::from_secs(policy.update.cooldown_seconds);
    if since_last_end.is_some_and(|d| d < cooldown) {
        return Some(format!(
            "in the cooldown of {}s after the last update",
            cooldown.as_secs()
        ));
    }
    let cap = policy.update.max_updates_per_day;
    if starts_last_day >= cap {
        return Some(format!("{cap} updates already ran in the last 24 hours"));
    }
    None
}

/// The rows an update would train on, or why it must wait.
pub(crate) enum UpdateRows {
    /// Fewer new rows than the trigger needs.
    Short { have: usize, needed: usize },
    /// `new`: rows since the trigger's start (drift: the alert); `old`: the
    /// reservoir plus rows since the version but before the drift;
    /// `end_row`: one past the last global row used.
    Ready {
        new: Dataset,
        old: Dataset,
        end_row: u64,
    },
}

/// What the daemon hands the trainer for `pending`: a drift waits for
/// `update.min_new_rows` rows past the alert, other triggers need enough
/// rows for `update.min_holdout_rows` holdout rows.
pub(crate) fn update_rows(
    policy: &Policy,
    new_rows: Option<&NewRows>,
    reservoir: Option<&Reservoir>,
    pending: Pending,
    rows_total: u64,
    width: usize,
) -> UpdateRows {
    let empty = NewRows {
        rows: Dataset::new(width),
        first: rows_total,
    };
    let new_rows = new_rows.unwrap_or(&empty);
    let from = pending.from_row.unwrap_or(new_rows.first);
    let new = new_rows.since(from);
    // Enough rows for the holdout the tournament insists on: a drift update
    // started with fewer failed every time (found by the soak).
    let for_holdout =
        (policy.update.min_holdout_rows as f64 / policy.update.holdout_fraction).ceil() as usize;
    let needed = match pending.kind {
        TriggerKind::Drift => policy.update.min_new_rows.max(for_holdout),
        _ => for_holdout,
    };
    if new.len() < needed {
        return UpdateRows::Short {
            have: new.len(),
            needed,
        };
    }
    let mut old = reservoir
        .map(|r| r.rows.clone())
        .unwrap_or_else(|| Dataset::new(new.width));
    // Rows since the version but before the drift belong to the old
    // concept: they join the old rows for the *_all strategies.
    old.extend(&new_rows.before(from));
    UpdateRows::Ready {
        new,
        old,
        end_row: new_rows.end(),
    }
}

/// The policy's candidates, minus the strategy whose last promotion was
/// rolled back.
pub(crate) fn strategies_for(policy: &Policy, excluded: Option<StrategyName>) -> Vec<StrategyName> {
    let mut strategies = policy.update.candidates.clone();
    if let Some(excluded) = excluded {
        strategies.retain(|s| *s != excluded);
        info!(
            strategy = excluded.as_str(),
            "{} is left out of this update: its last promotion was rolled back",
            excluded.as_str()
        );
    }
    strategies
}

/// Counts a promoted version's first rows on probation; once `watch` rows
/// are in, returns its accuracy on them.
pub(crate) fn probation_count(
    p: &mut Probation,
    outcomes: &[RowOutcome],
    watch: u64,
) -> Option<f64> {
    let take = ((watch - p.rows) as usize).min(outcomes.len());
    p.rows += take as u64;
    p.correct += outcomes[..take].iter().filter(|o| o.correct()).count() as u64;
    (p.rows >= watch).then(|| p.correct as f64 / p.rows as f64)
}

/// A version on probation stays when its accuracy is within `margin` of
/// the previous version's before the promotion.
pub(crate) fn probation_holds(p: &Probation, accuracy: f64, margin: f64) -> bool {
    accuracy >= p.previous_accuracy - margin
}

/// One input-drift alert per episode: the episode ends at the first check
/// where no feature moved; while it lasts the alert is repeated every
/// `monitor.realert_after_rows` rows (if set). `episode` holds the rows the
/// monitor had seen at the episode's last alert.
pub(crate) fn input_alert(
    cfg: &crate::config::MonitorConfig,
    check: &InputCheck,
    episode: &mut Option<u64>,
    monitor: &Monitor,
    live_version: Option<u64>,
) -> Option<DriftAlert> {
    let top: Vec<_> = check
        .features
        .iter()
        .take(cfg.input.report_features.max(1))
        .cloned()
        .collect();
    let rows_seen = monitor.rows_seen();
    if check.moved == 0 {
        if episode.take().is_some() {
            info!(
                event = "drift_recovered",
                detector = "input",
                live_version = ?live_version,
                "no feature has moved over the last {} rows any more; input drift is re-armed",
                check.window
            );
        }
        return None;
    }
    let repeat = match *episode {
        None => 0,
        Some(last) if cfg.realert_after_rows > 0 && rows_seen - last >= cfg.realert_after_rows => 1,
        Some(last) => {
            debug!(
                detector = "input",
                moved = check.moved,
                rows_since_alert = rows_seen - last,
                "input alert suppressed: same drift episode"
            );
            return None;
        }
    };
    *episode = Some(rows_seen);
    let severity = if cfg.input.trigger_update {
        Severity::Drift
    } else {
        Severity::Warning
    };
    Some(DriftAlert {
        kind: "input".into(),
        detector: "input".into(),
        severity,
        metric: "psi".into(),
        baseline: monitor.baseline(),
        current: monitor.rolling_accuracy().unwrap_or(f64::NAN),
        estimated_error: top.first().map_or(0.0, |f| f.psi),
        window: check.window,
        rows_since_live: rows_seen,
        live_version,
        repeat,
        features: top,
    })
}

/// Logs one `candidate_scored` event per candidate.
pub fn log_candidates(t: &Tournament) {
    for c in &t.candidates {
        match &c.outcome {
            Ok(b) => info!(
                event = "candidate_scored",
                strategy = c.strategy.as_str(),
                accuracy = b.scores.accuracy,
                log_loss = b.scores.log_loss,
                auc = ?b.scores.auc,
                live_accuracy = t.live.accuracy,
                holdout_rows = t.holdout_rows,
                train_rows = b.train_rows,
                learning_rate = ?b.learning_rate,
                seconds = c.seconds,
                "{}: accuracy {:.4} (live {:.4}), log loss {:.4}, trained on {} rows in {:.2}s",
                c.strategy,
                b.scores.accuracy,
                t.live.accuracy,
                b.scores.log_loss,
                b.train_rows,
                c.seconds
            ),
            Err(e) => warn!(
                event = "candidate_scored",
                strategy = c.strategy.as_str(),
                error = %e,
                "{} failed and is dropped: {e}",
                c.strategy
            ),
        }
    }
}

/// The leaderboard kept in `meta.json` and shown by `update` and `demo`.
pub fn leaderboard_of(t: &Tournament) -> Vec<CandidateScore> {
    t.candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let built = c.outcome.as_ref().ok();
            CandidateScore {
                strategy: c.strategy.to_string(),
                scores: c.scores(),
                train_seconds: c.seconds,
                train_rows: built.map_or(0, |b| b.train_rows),
                learning_rate: built.and_then(|b| b.learning_rate),
                lr_search: built.map(|b| b.lr_search.clone()).unwrap_or_default(),
                error: c.outcome.as_ref().err().cloned(),
                promoted: t.winner == Some(i),
            }
        })
        .collect()
}

/// What a new version is, besides its weights.
pub struct Promotion {
    /// `None` for a first version trained from scratch (`initial`).
    pub strategy: Option<StrategyName>,
    pub trigger: String,
    pub features: Vec<String>,
    pub holdout: model::Scores,
    pub live_holdout: Option<model::Scores>,
    pub report: Option<model::TrainReport>,
    pub leaderboard: Vec<CandidateScore>,
    pub data: DataSummary,
    pub input_profile: Option<InputProfile>,
    /// The files of the new rows; `None`: taken from the manifest (files
    /// after the parent's `last_seq`, up to `data.last_seq`).
    pub files: Option<TrainedFiles>,
}

/// Writes `model` as the next version and makes it live (the version is
/// durable before the pointer moves).
pub fn promote_version(
    registry: &Registry,
    policy: &Policy,
    parent: Option<u64>,
    model: &Classifier,
    p: Promotion,
) -> Result<VersionMeta, crate::registry::RegistryError> {
    let version = registry.next_version()?;
    // The seed the tournament (or the first training) used.
    let seed = policy.training.seed.wrapping_add(parent.unwrap_or(0));
    let last_seq = p.data.last_seq;
    let mut training = TrainSettings::from_policy(policy);
    if matches!(
        p.strategy,
        Some(StrategyName::ContinueNew | StrategyName::ContinueAll)
    ) {
        training.learning_rate = policy.update.fine_tune.learning_rate;
        training.epochs = policy.update.fine_tune.epochs;
    }
    let strategy = p
        .strategy
        .map(|s| s.to_string())
        .unwrap_or_else(|| "initial".into());
    let meta = VersionMeta {
        version,
        parent,
        strategy: strategy.clone(),
        trigger: p.trigger.clone(),
        created_at: Utc::now(),
        architecture: model.newest().arch.clone(),
        members: Vec::new(),
        features: p.features,
        label: policy.data.label.clone(),
        training: Some(training),
        threads: policy.training.threads,
        train_report: p.report,
        data: p.data,
        holdout: Some(p.holdout),
        live_holdout: p.live_holdout,
        leaderboard: p.leaderboard,
        driftd_version: env!("CARGO_PKG_VERSION").into(),
        input_profile: p.input_profile,
        import: None,
        seeds: Some(Seeds {
            policy: policy.training.seed,
            tournament: seed,
            fresh_model: seed.wrapping_add(update::FRESH_SEED_OFFSET),
        }),
        update_settings: serde_json::to_value(&policy.update).ok(),
        files: p
            .files
            .or_else(|| files_from_manifest(registry, policy, parent, last_seq)),
    };
    let meta = registry.write_version(meta, model)?;
    let reason = match parent {
        None => "initial training".to_string(),
        Some(_) => format!("{strategy} won the {} update", p.trigger),
    };
    registry.set_live(version, "model_promoted", &reason)?;
    // Only now that the new pointer is durable may old versions go.
    if let Err(e) = registry.apply_retention(policy.registry.keep_last) {
        warn!(error = %e, "retention failed; old versions are kept");
    }
    info!(
        event = "model_promoted",
        version,
        parent = ?parent,
        strategy = %strategy,
        accuracy = p.holdout.accuracy,
        live_accuracy = ?p.live_holdout.map(|s| s.accuracy),
        "version {version} is live ({strategy}): holdout accuracy {:.4}{}",
        p.holdout.accuracy,
        p.live_holdout
            .map(|s| format!(" against {:.4} for the previous version", s.accuracy))
            .unwrap_or_default()
    );
    Ok(meta)
}

/// The manifest's ingested files after the parent version's `last_seq`, up
/// to `last_seq`: where a version's new rows came from.
fn files_from_manifest(
    registry: &Registry,
    policy: &Policy,
    parent: Option<u64>,
    last_seq: u64,
) -> Option<TrainedFiles> {
    let path = policy.state.dir.join("manifest.json");
    let manifest = match crate::ingest::Manifest::load(&path) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "cannot list the version's files from the manifest");
            return None;
        }
    };
    let after = parent
        .and_then(|p| registry.read_meta(p).ok())
        .map_or(0, |m| m.data.last_seq);
    let mut files: Vec<TrainedFile> = manifest
        .files
        .iter()
        .filter(|(_, e)| e.seq > after && e.seq <= last_seq)
        .filter_map(|(name, e)| match e.outcome {
            crate::ingest::Outcome::Ingested { rows, .. } => Some(TrainedFile {
                seq: e.seq,
                name: name.clone(),
                rows,
            }),
            crate::ingest::Outcome::Quarantined { .. } => None,
        })
        .collect();
    files.sort_by_key(|f| f.seq);
    Some(TrainedFiles::new(files))
}

/// Trains a first version on `rows` (newest `holdout_fraction` held out).
pub fn train_first_version(
    policy: &Policy,
    rows: &Dataset,
) -> Result<(Mlp, model::Scores, model::TrainReport, usize, usize), ModelError> {
    let (train, holdout) = update::split_holdout(rows, policy.update.holdout_fraction);
    let (m, report) = update::fit_fresh(policy, &train, policy.training.seed)?;
    let s = model::score(&m.predict_proba(&holdout)?, &holdout.labels, m.arch.classes);
    Ok((m, s, report, train.len(), holdout.len()))
}

/// Reads `state/status.json` written by a running (or stopped) daemon.
/// Runs CPU-bound file work (polars) off the async worker threads.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FileProblem> + Send + 'static,
) -> Result<T, FileProblem> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(FileProblem::Unreadable(format!(
            "the reader task failed: {e}"
        )))
    })
}

pub fn read_status(state_dir: &Path) -> Option<Status> {
    let bytes = std::fs::read(state_dir.join("status.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a failed update's NaN live accuracy became `null` in
    /// status.json, which then failed to parse, so `driftd status` said
    /// there was no status file.
    #[test]
    fn a_status_with_a_failed_update_reads_back() {
        let status = Status {
            updates: vec![UpdateSummary {
                trigger: TriggerKind::Manual,
                train_rows: 0,
                old_rows: 0,
                holdout_rows: 0,
                live_accuracy: f64::NAN,
                leaderboard: Vec::new(),
                promoted: None,
                decision: "failed: diverged".into(),
                started_at: None,
                ended_at: None,
            }],
            ..Status::default()
        };
        let json = serde_json::to_string(&status).unwrap();
        let back: Status = serde_json::from_str(&json).unwrap();
        assert!(back.updates[0].live_accuracy.is_nan());
        assert_eq!(back.updates[0].decision, "failed: diverged");
    }
}
