//! The daemon: wires ingest → monitor → trigger → update → registry → live
//! model together on a tokio runtime.
//!
//! One task owns all mutable state and reacts to four inputs: the poll
//! timer, triggers (schedule fires, manual requests), the end of a running
//! update, and shutdown. libtorch work runs on two dedicated threads: the
//! scorer (owns the live model) and the trainer (runs tournaments), so
//! ingestion keeps scoring while an update trains.
//!
//! Invariants: at most one update runs at a time (a trigger during an update
//! is coalesced into one follow-up); the live model changes only by
//! promotion, after the version is durable in the registry; a file is
//! recorded in the manifest only after its rows are in the buffers.

pub mod schedule;
pub mod service;

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
use crate::ingest::{FileEvent, FileProblem, Ingestor, NewFile, Outcome};
use crate::model::{self, Classifier, Dataset, Mlp, ModelError, TrainSettings};
use crate::monitor::{DriftAlert, Monitor};
use crate::notify::Notifier;
use crate::registry::{CandidateScore, DataSummary, Registry, VersionMeta};
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
    pub live_accuracy: f64,
    pub leaderboard: Vec<CandidateScore>,
    pub promoted: Option<u64>,
    pub decision: String,
}

/// What the daemon publishes after every step (also written to
/// `state/status.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub live_version: Option<u64>,
    pub baseline: Option<f64>,
    pub rolling_accuracy: Option<f64>,
    pub rows_since_live: u64,
    pub files_ingested: u64,
    pub files_quarantined: u64,
    pub rows_ingested: u64,
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
struct Reservoir {
    rows: Dataset,
    capacity: usize,
    seen: u64,
    rng: ChaCha8Rng,
}

impl Reservoir {
    fn new(width: usize, capacity: usize, seed: u64) -> Self {
        Reservoir {
            rows: Dataset::new(width),
            capacity,
            seen: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn add(&mut self, data: &Dataset) {
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
struct NewRows {
    rows: Dataset,
    /// Global number of `rows`' first row.
    first: u64,
}

impl NewRows {
    fn end(&self) -> u64 {
        self.first + self.rows.len() as u64
    }

    /// Rows with global number >= `from`.
    fn since(&self, from: u64) -> Dataset {
        let start = from.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        self.rows.slice(start, self.rows.len())
    }

    fn before(&self, until: u64) -> Dataset {
        let end = until.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        self.rows.slice(0, end)
    }

    fn drop_before(&mut self, until: u64) {
        let end = until.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        let keep = self.rows.len() - end;
        self.rows.keep_last(keep);
        self.first += end as u64;
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    kind: TriggerKind,
    /// Train on rows from this global row number on (drift: the alert).
    from_row: Option<u64>,
}

struct RunningUpdate {
    kind: TriggerKind,
    /// Global row number one past the last row in the snapshot.
    end_row: u64,
    /// Manifest sequence of the last file in the snapshot.
    last_seq: u64,
    started: std::time::Instant,
    result: oneshot::Receiver<Result<Tournament, String>>,
    /// Set to stop the trainer at its next batch (shutdown).
    cancel: std::sync::Arc<std::sync::atomic::AtomicBool>,
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
    /// systemd: readiness is sent once, after the first successful scan of
    /// the data directory; `STATUS=` when its line changes.
    notifier: Notifier,
    ready: bool,
    scan_ok: bool,
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
    let service = service::Service::default();
    run_with(policy, shutdown, triggers_tx, triggers, status_tx, service).await
}

/// [`run`] as a service: systemd notifications and policy reloads.
pub async fn run_with(
    policy: Policy,
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
    let registry = Registry::open(&policy.registry.dir)?;
    let ingestor = Ingestor::open(&policy)?;
    let scorer = Worker::spawn("driftd-scorer", None::<Classifier>).map_err(DaemonError::Thread)?;
    let trainer = Worker::spawn("driftd-trainer", ()).map_err(DaemonError::Thread)?;
    let monitor = new_monitor(&policy, None);
    let mut d = Daemon {
        policy,
        registry,
        ingestor,
        scorer,
        trainer,
        live: None,
        monitor,
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
        notifier: std::mem::take(&mut service.notifier),
        ready: false,
        scan_ok: false,
        status_line: String::new(),
    };
    d.load_live().await?;
    d.restore_buffers().await;
    if d.policy.schedule.enabled {
        d.catch_up_schedule();
    }
    d.resume_abandoned_update();
    let mut scheduler = if d.policy.schedule.enabled {
        Some(
            schedule::start(&d.policy.schedule, triggers_tx.clone())
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
            Some(t) = triggers.recv() => d.on_trigger(t),
            Some(reload) = service::next_reload(&mut reloads) => {
                let effects = d.reload(reload);
                if effects.poll_interval {
                    poll = tokio::time::interval(Duration::from_millis(d.policy.data.poll_interval_ms));
                    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                }
                if effects.schedule {
                    if let Some(mut s) = scheduler.take() {
                        let _ = s.shutdown().await;
                    }
                    if d.policy.schedule.enabled {
                        match schedule::start(&d.policy.schedule, schedule_tx.clone()).await {
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
        d.maybe_start_update();
        d.publish();
        d.notify_progress();
    }
    d.notify(d.notifier.stopping());
    if let Some(mut s) = scheduler {
        let _ = s.shutdown().await;
    }
    d.stop_running_update().await;
    d.stop_workers().await;
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
        self.monitor = new_monitor(&self.policy, baseline);
        self.last_seq = meta.data.last_seq;
        self.status.live_version = Some(meta.version);
        self.status.baseline = baseline;
        self.live = Some(Live { meta, model: mlp });
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
            crate::ingest::rows_from_manifest(&dir, &manifest, &schema, last_seq, max_old, max_new)
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
        let cap = self.policy.update.reservoir_rows;
        let seed = self.policy.training.seed;
        self.reservoir
            .get_or_insert_with(|| Reservoir::new(width, cap, seed))
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
                // The directory may come back (remounts, deploys): keep going.
                warn!(error = %e, "cannot scan the data directory");
                self.scan_ok = false;
                return false;
            }
        };
        self.scan_ok = true;
        let started = std::time::Instant::now();
        let mut files = files.into_iter();
        for file in files.by_ref() {
            self.ingest_file(file).await;
            if started.elapsed() >= POLL_BUDGET {
                break;
            }
        }
        files.next().is_some()
    }

    async fn ingest_file(&mut self, file: NewFile) {
        if file.replaced {
            warn!(file = %file.name, "file was replaced with different content; ingesting it as a new file");
        }
        // polars is CPU-bound: keep it off the async worker threads.
        let reader = self.ingestor.reader();
        let to_read = file.clone();
        let result = tokio::task::spawn_blocking(move || reader.read(&to_read))
            .await
            .unwrap_or_else(|e| {
                Err(FileProblem::Unreadable(format!(
                    "the reader task failed: {e}"
                )))
            });
        let event = match result {
            Ok((schema, data)) => {
                self.ingestor.schema.get_or_insert(schema);
                FileEvent::Ingested {
                    name: file.name.clone(),
                    data,
                }
            }
            Err(problem) => FileEvent::Quarantined {
                name: file.name.clone(),
                problem,
            },
        };
        match event {
            FileEvent::Quarantined { name, problem } => {
                warn!(event = "file_quarantined", file = %name, reason = %problem, "quarantined {name}: {problem}");
                self.status.files_quarantined += 1;
                self.commit(
                    &file,
                    Outcome::Quarantined {
                        reason: problem.to_string(),
                    },
                );
            }
            FileEvent::Ingested { name, data } => {
                let rows = data.len();
                let file_accuracy = self.absorb(&name, data).await;
                self.commit(&file, Outcome::Ingested { rows });
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
                self.status.rolling_accuracy = self.monitor.rolling_accuracy();
                let point = TracePoint {
                    file: name.clone(),
                    rows_total: self.rows_total,
                    live_version: self.status.live_version,
                    rolling_accuracy: self.monitor.rolling_accuracy(),
                    file_accuracy,
                };
                self.status.trace.push(point);
                if self.status.trace.len() > TRACE_LIMIT {
                    self.status.trace.remove(0);
                }
                info!(
                    event = "file_ingested",
                    file = %name,
                    rows,
                    live_version = ?self.status.live_version,
                    rolling_accuracy = ?self.monitor.rolling_accuracy(),
                    "ingested {name}: {rows} rows"
                );
            }
        }
    }

    fn commit(&mut self, file: &NewFile, outcome: Outcome) {
        if let Err(e) = self.ingestor.commit(file, outcome) {
            // The rows are in memory; the file will be re-read after a
            // restart, which the buffers tolerate. Say so loudly.
            error!(error = %e, file = %file.name, "cannot persist the manifest");
        }
        self.last_file = Some(file.name.clone());
    }

    /// Scores a file's rows with the live model, feeds the monitor and the
    /// training buffers. Returns the file's accuracy when scored.
    async fn absorb(&mut self, name: &str, data: Dataset) -> Option<f64> {
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
        let labels = data.labels.clone();
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
            Ok(None) | Err(_) => {
                error!(file = %name, "the scorer has no live model");
                return None;
            }
        };
        let correct: Vec<bool> = labels
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                model::predicted_class(&probs[i * classes..(i + 1) * classes]) == l as usize
            })
            .collect();
        let file_accuracy =
            correct.iter().filter(|&&c| c).count() as f64 / correct.len().max(1) as f64;
        let monitor_before = self.monitor.rows_seen();
        let alerts = self.monitor.observe(&correct);
        let first_new = self.rows_total;
        self.rows_total += n;
        let new_rows = self.new_rows.get_or_insert_with(|| NewRows {
            rows: Dataset::new(width),
            first: first_new,
        });
        new_rows.rows.extend(&data);
        let max = self.policy.update.max_new_rows;
        if new_rows.rows.len() > max {
            let over = (new_rows.rows.len() - max) as u64;
            let until = new_rows.first + over;
            let dropped = new_rows.before(until);
            new_rows.drop_before(until);
            self.reservoir_mut(width).add(&dropped);
        }
        self.status.rows_since_live = self.monitor.rows_seen();
        for alert in alerts {
            // Global row number of the row that raised the alert.
            let at = first_new + (alert.rows_since_live - monitor_before);
            self.count_alert(&alert);
            self.raise_alert(alert, at);
        }
        Some(file_accuracy)
    }

    fn raise_alert(&mut self, alert: DriftAlert, at_row: u64) {
        let version = self.status.live_version.unwrap_or(0);
        let severity = match alert.severity {
            Severity::Warning => "warning",
            Severity::Drift => "drift",
        };
        let sentence = match alert.baseline {
            Some(b) => format!(
                "accuracy over the last {} rows fell to {:.3}, {:.3} below the baseline {:.3} of version {version}",
                alert.window,
                alert.current,
                b - alert.current,
                b
            ),
            None => format!(
                "accuracy over the last {} rows is {:.3} on version {version}",
                alert.window, alert.current
            ),
        };
        warn!(
            event = "drift_alert",
            detector = %alert.detector,
            severity,
            metric = %alert.metric,
            baseline = ?alert.baseline,
            current = alert.current,
            estimated_error = alert.estimated_error,
            window = alert.window,
            rows_since_live = alert.rows_since_live,
            live_version = version,
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
        self.status.alerts.push(alert);
        if self.status.alerts.len() > HISTORY_LIMIT {
            self.status.alerts.remove(0);
        }
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
        let now = Utc::now();
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
                let now = Utc::now();
                info!(event = "schedule_fired", scheduled = %now, actual = %now, "the update schedule fired");
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
        match &mut self.pending {
            Some(existing) => {
                debug!(
                    trigger = p.kind.as_str(),
                    "an update is already pending; coalescing"
                );
                // A drift trigger is more specific about which rows to use.
                if p.kind == TriggerKind::Drift {
                    *existing = p;
                }
            }
            None => self.pending = Some(p),
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
        let cooldown = Duration::from_secs(self.policy.update.cooldown_seconds);
        if let Some(last) = self.last_update_end {
            if now.duration_since(last) < cooldown {
                return Some(format!(
                    "in the cooldown of {}s after the last update",
                    cooldown.as_secs()
                ));
            }
        }
        let cap = self.policy.update.max_updates_per_day;
        if self.update_starts.len() >= cap {
            return Some(format!("{cap} updates already ran in the last 24 hours"));
        }
        None
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
        let width = live.model.inputs();
        let empty = NewRows {
            rows: Dataset::new(width),
            first: self.rows_total,
        };
        let new_rows = self.new_rows.as_ref().unwrap_or(&empty);
        let from = pending.from_row.unwrap_or(new_rows.first);
        let new = new_rows.since(from);
        let needed = match pending.kind {
            TriggerKind::Drift => self.policy.update.min_new_rows,
            _ => (self.policy.update.min_holdout_rows as f64 / self.policy.update.holdout_fraction)
                .ceil() as usize,
        };
        if new.len() < needed {
            if pending.kind != TriggerKind::Drift {
                info!(
                    event = "update_rejected",
                    trigger = pending.kind.as_str(),
                    new_rows = new.len(),
                    "not enough new rows for an update ({} of {} needed)",
                    new.len(),
                    needed
                );
                self.pending = None;
                self.status.update_pending = false;
            }
            return;
        }
        let mut old = self
            .reservoir
            .as_ref()
            .map(|r| r.rows.clone())
            .unwrap_or_else(|| Dataset::new(new.width));
        // Rows since the version but before the drift belong to the old
        // concept: they join the old rows for the *_all strategies.
        old.extend(&new_rows.before(from));
        let lineage = match self.policy.update.ensemble.members {
            EnsembleMembers::LastVersions => self.registry.lineage(
                &live.meta,
                self.policy.update.ensemble.max_members.saturating_sub(2),
            ),
            EnsembleMembers::Grow => Vec::new(),
        };
        let data = UpdateData { old, new, lineage };
        let strategies = self.policy.update.candidates.clone();
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
        let end_row = new_rows.end();
        let live_model = live.model.clone();
        let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cancel.clone();
        let job = self.trainer.submit(move |_| {
            model::with_cancel(flag, || {
                update::run_tournament(&policy, &live_model, &data, &strategies, seed)
                    .map_err(|e| e.to_string())
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

    async fn finish_update(&mut self, running: RunningUpdate, result: Result<Tournament, String>) {
        self.status.update_running = false;
        self.last_update_end = Some(tokio::time::Instant::now());
        let seconds = running.started.elapsed().as_secs_f64();
        self.status.last_update_seconds = Some(seconds);
        let tournament = match result {
            Ok(t) => t,
            Err(reason) => {
                self.count_update("failed");
                warn!(event = "update_rejected", trigger = running.kind.as_str(), reason = %reason, "update failed: {reason}");
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
                let final_loss = built.report.as_ref().map(|r| r.final_loss);
                match self
                    .promote(
                        built.model.clone(),
                        c.strategy,
                        running.kind,
                        built.scores,
                        Some(tournament.live),
                        built.report.clone(),
                        leaderboard,
                        tournament.train_rows,
                        tournament.holdout_rows,
                        running.last_seq,
                    )
                    .await
                {
                    Ok(version) => {
                        self.count_update("promoted");
                        self.status.last_train_loss = final_loss;
                        summary.promoted = Some(version);
                        // Rows the new version was trained on become old rows.
                        if let Some(new_rows) = &mut self.new_rows {
                            let consumed = new_rows.before(running.end_row);
                            new_rows.drop_before(running.end_row);
                            self.reservoir_mut(consumed.width).add(&consumed);
                        }
                    }
                    Err(e) => {
                        self.count_update("failed");
                        error!(error = %e, "cannot write the new version; the live model stays")
                    }
                }
            }
        }
        self.status.updates.push(summary);
        if self.status.updates.len() > HISTORY_LIMIT {
            self.status.updates.remove(0);
        }
    }

    async fn train_initial(&mut self, rows: Dataset) {
        let policy = self.policy.clone();
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
                train_first_version(&policy, &rows).map(|(m, s, r, t, h)| (m, s, r, t, h, rows))
            })
            .await;
        match result {
            Ok(Ok((m, scores, report, train_rows, holdout_rows, rows))) => {
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
    ) -> Result<u64, DaemonError> {
        let parent = self.live.as_ref().map(|l| l.meta.version);
        let promotion = Promotion {
            strategy: parent.map(|_| strategy),
            trigger: if parent.is_some() {
                trigger.as_str().into()
            } else {
                "initial".into()
            },
            features: self
                .ingestor
                .schema
                .as_ref()
                .map(|s| s.features.clone())
                .unwrap_or_default(),
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
        };
        let _lock = crate::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
        let meta = promote_version(&self.registry, &self.policy, parent, &model, promotion)?;
        let version = meta.version;
        self.install_live(meta, model).await;
        Ok(version)
    }

    /// Publishes the status when it changed: an idle poll writes nothing
    /// (status.json is fsynced, and the poll may run many times a second).
    fn publish(&mut self) {
        self.status.rolling_accuracy = self.monitor.rolling_accuracy();
        {
            let last = self.status_tx.borrow();
            self.status.updated_at = last.updated_at;
            if *last == self.status && last.pid != 0 {
                return;
            }
        }
        self.status.updated_at = Some(Utc::now());
        // The watch first: whoever reads status.json then finds the
        // metrics endpoint at least as new.
        self.status_tx.send_replace(self.status.clone());
        let path = self.policy.state.dir.join("status.json");
        if let Ok(json) = serde_json::to_vec(&self.status) {
            if let Err(e) = crate::fsutil::write_atomic(&path, &json) {
                debug!(error = %e, "cannot write status.json");
            }
        }
    }
}

fn new_monitor(policy: &Policy, baseline: Option<f64>) -> Monitor {
    Monitor::new(
        policy.monitor.window,
        &policy.monitor.detectors,
        policy.monitor.min_rows_between_alerts,
        policy.monitor.min_rows_before_alert,
        baseline,
    )
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
        training,
        threads: policy.training.threads,
        train_report: p.report,
        data: p.data,
        holdout: Some(p.holdout),
        live_holdout: p.live_holdout,
        leaderboard: p.leaderboard,
        driftd_version: env!("CARGO_PKG_VERSION").into(),
    };
    let meta = registry.write_version(meta, model)?;
    let reason = match parent {
        None => "initial training".to_string(),
        Some(_) => format!("{strategy} won the {} update", p.trigger),
    };
    registry.set_live(version, "model_promoted", &reason)?;
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
pub fn read_status(state_dir: &Path) -> Option<Status> {
    let bytes = std::fs::read(state_dir.join("status.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}
