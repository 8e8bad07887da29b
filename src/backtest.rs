//! `driftd backtest`: replays a directory of historical Parquet files
//! through the policy, offline and much faster than real time, with the
//! daemon's own pieces: ingest's scan and reader, the [`Monitor`] and its
//! detectors, the input-drift monitor, the trigger rules (coalescing,
//! cooldown, daily cap), the rows an update trains on (new rows since the
//! live version, the reservoir of old rows, the policy's bounds),
//! [`update::run_tournament`], [`daemon::promote_version`] into a temporary
//! registry and the probation with its automatic rollback. The decision
//! functions are the ones `daemon::Daemon` calls (`daemon::update_rows`,
//! `daemon::suppression`, `daemon::probation_count`, ...): the replay is a
//! synchronous driver around them, not a second implementation.
//!
//! What differs from the daemon, on purpose: time is simulated (each file
//! arrives at its rows' time; see [`Clock`]), an update trains "instantly"
//! at the simulated moment it starts (the daemon keeps scoring with the
//! old version while it trains), and the same replay runs three times: the
//! policy, "periodic only" (the schedule, no detector triggers) and "never
//! update" (version 1 throughout). Version 1 is trained once and shared.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{EnsembleMembers, Policy};
use crate::daemon::{self, Pending, Probation, Promotion, TriggerKind, UpdateRows};
use crate::detect::Severity;
use crate::ingest::Ingestor;
use crate::input_drift::{InputMonitor, InputProfile};
use crate::model::{self, Classifier, Dataset, Mlp};
use crate::monitor::{DriftAlert, Monitor, RowOutcome};
use crate::progress::Progress;
use crate::registry::{
    CandidateScore, CheckMode, DataSummary, Registry, TrainedFile, TrainedFiles,
};
use crate::update;

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

/// How the replay tells time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Clock {
    /// Each row's time is its `data.timestamp` value (the policy has one).
    Timestamp,
    /// No timestamp column: row `i` of the replay happens `i *
    /// seconds_per_row` after 2026-01-01T00:00:00Z (`--seconds-per-row`).
    RowsPerTime { seconds_per_row: f64 },
    /// No timestamp column and no `--seconds-per-row`: each file's rows
    /// carry its modification time, as in the daemon.
    FileMtime,
}

impl Clock {
    fn describe(self, policy: &Policy) -> String {
        match self {
            Clock::Timestamp => format!(
                "timestamp column {}",
                policy.data.timestamp.as_deref().unwrap_or("?")
            ),
            Clock::RowsPerTime { seconds_per_row } => {
                format!("{seconds_per_row} s per row from 2026-01-01T00:00:00Z")
            }
            Clock::FileMtime => "file modification times".into(),
        }
    }
}

/// Which replay: the policy or one of the baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Run {
    Policy,
    PeriodicOnly,
    NeverUpdate,
}

impl Run {
    pub fn as_str(self) -> &'static str {
        match self {
            Run::Policy => "policy",
            Run::PeriodicOnly => "periodic_only",
            Run::NeverUpdate => "never_update",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Run::Policy => "policy",
            Run::PeriodicOnly => "periodic only",
            Run::NeverUpdate => "never update",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Run::Policy => "the policy as the daemon runs it: detector triggers and the schedule",
            Run::PeriodicOnly => "the [schedule] cron alone (even if schedule.enabled = false); drift alerts are recorded but trigger nothing",
            Run::NeverUpdate => "version 1 scores every row; alerts are recorded but trigger nothing",
        }
    }
}

pub struct Options {
    pub data_dir: PathBuf,
    /// See [`Clock::RowsPerTime`].
    pub seconds_per_row: Option<f64>,
    /// Rows per window of the per-window accuracy (default: about 20
    /// windows, at least `monitor.window`).
    pub window_rows: Option<usize>,
}

/// The whole report (`--json` writes it as is).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub data: DataReport,
    /// Rows of each entry of a run's `windows`.
    pub window_rows: usize,
    /// Rows of the trailing window of the plotted rolling accuracy
    /// (`monitor.window`, or a 200th of the rows if more).
    pub rolling_window_rows: usize,
    /// policy, periodic_only, never_update.
    pub runs: Vec<RunReport>,
    /// The policy against each baseline, on prequential accuracy.
    pub comparisons: Vec<Comparison>,
    pub verdict: String,
    /// Wall time of the whole backtest.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataReport {
    pub dir: PathBuf,
    pub files: usize,
    pub rows: usize,
    pub quarantined: Vec<QuarantinedFile>,
    pub clock: Clock,
    pub clock_description: String,
    pub first_time: Option<DateTime<Utc>>,
    pub last_time: Option<DateTime<Utc>>,
    /// Rows version 1 was trained on before anything was scored
    /// (`data.initial_rows`, rounded up to a whole file).
    pub bootstrap_rows: usize,
    /// Seconds spent training version 1 (shared by the three runs).
    pub initial_training_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantinedFile {
    pub file: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub run: Run,
    pub description: String,
    /// Every row after version 1, scored by the version live at that moment.
    pub rows_scored: u64,
    pub correct: u64,
    pub prequential_accuracy: Option<f64>,
    pub windows: Vec<WindowAccuracy>,
    pub alerts: Vec<AlertRecord>,
    pub updates: Vec<UpdateRecord>,
    pub rollbacks: Vec<RollbackRecord>,
    pub versions: Vec<VersionRecord>,
    /// Lengths of the lists above, and the updates that promoted a version.
    pub alert_count: usize,
    pub update_count: usize,
    pub promoted_count: usize,
    pub rollback_count: usize,
    pub triggers: u64,
    pub triggers_suppressed: u64,
    /// Seconds spent in tournaments (version 1 is in `data`).
    pub training_seconds: f64,
    /// Wall time of this replay, training included.
    pub replay_seconds: f64,
    /// Per global row: 1 right, 0 wrong, 2 not scored (version 1's
    /// training rows). For the plot; not in the JSON.
    #[serde(skip)]
    pub outcomes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowAccuracy {
    /// Global rows `first_row..end_row`.
    pub first_row: u64,
    pub end_row: u64,
    pub rows_scored: u64,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Global row that raised it.
    pub row: u64,
    pub time: Option<DateTime<Utc>>,
    pub kind: String,
    pub detector: String,
    pub severity: Severity,
    pub current: f64,
    pub baseline: Option<f64>,
    pub live_version: Option<u64>,
    pub repeat: u32,
    /// Whether it asked for an update (drift severity, in the policy run).
    pub triggered: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateRecord {
    /// Global row after which it ran (the newest row it could see).
    pub row: u64,
    pub time: Option<DateTime<Utc>>,
    pub trigger: TriggerKind,
    pub new_rows: usize,
    pub old_rows: usize,
    pub holdout_rows: usize,
    /// The live version's accuracy on the holdout.
    pub live_accuracy: Option<f64>,
    pub candidates: Vec<CandidateScore>,
    pub winner: Option<String>,
    pub promoted_version: Option<u64>,
    pub decision: String,
    pub training_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub row: u64,
    pub from_version: u64,
    pub to_version: u64,
    pub accuracy: f64,
    pub previous_accuracy: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u64,
    pub strategy: String,
    /// Global rows `live_from_row..live_until_row` it scored (a version may
    /// be live again after a rollback: one record per stretch).
    pub live_from_row: u64,
    pub live_until_row: u64,
    pub rows_scored: u64,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: Run,
    pub policy_accuracy: Option<f64>,
    pub baseline_accuracy: Option<f64>,
    /// policy minus baseline.
    pub difference: Option<f64>,
    pub policy_wins: bool,
}

/// The files in replay order, the quarantined ones, and the feature
/// columns.
struct History {
    files: Vec<HistoryFile>,
    quarantined: Vec<QuarantinedFile>,
    features: Vec<String>,
}

/// One file of history, read and checked.
struct HistoryFile {
    name: String,
    data: Dataset,
}

/// Reads every file of the directory with the daemon's scan and reader,
/// in replay order: by first timestamp with `data.timestamp`, else by name.
fn load_history(policy: &Policy, clock: Clock) -> Result<History, BacktestError> {
    let mut ingestor = Ingestor::open(policy)?;
    let mut found = ingestor.scan()?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let mut files = Vec::new();
    let mut quarantined = Vec::new();
    for file in found {
        let read = (|| {
            if let Some(problem) = &file.problem {
                return Err(problem.clone());
            }
            let opened = ingestor.reader().open(&file)?;
            let mut data = Dataset::new(opened.schema.features.len());
            for i in 0..opened.batches.len() {
                data.extend(&opened.read_batch(i)?.data);
            }
            if data.is_empty() {
                return Err(crate::ingest::FileProblem::NoUsableRows {
                    dropped: opened.rows(),
                });
            }
            Ok((opened.schema.clone(), opened.types.clone(), data))
        })();
        match read {
            Ok((schema, types, data)) => {
                ingestor.schema.get_or_insert(schema);
                ingestor.record_types(&types);
                files.push(HistoryFile {
                    name: file.name.clone(),
                    data,
                });
            }
            Err(problem) => quarantined.push(QuarantinedFile {
                file: file.name.clone(),
                reason: problem.to_string(),
            }),
        }
    }
    if clock == Clock::Timestamp {
        // Stable: files with the same first time keep their name order.
        files.sort_by_key(|f| f.data.times_us.iter().copied().min().unwrap_or(i64::MAX));
    }
    if let Clock::RowsPerTime { seconds_per_row } = clock {
        let origin = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .map_or(0, |t| t.timestamp_micros());
        let mut row = 0u64;
        for f in &mut files {
            for t in &mut f.data.times_us {
                *t = origin + (row as f64 * seconds_per_row * 1e6) as i64;
                row += 1;
            }
        }
    }
    let features = ingestor.schema.map(|s| s.features).unwrap_or_default();
    Ok(History {
        files,
        quarantined,
        features,
    })
}

fn time_of(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}

/// Version 1, trained once on the first `data.initial_rows` rows (whole
/// files) and shared by every run.
struct Initial {
    model: Mlp,
    scores: model::Scores,
    report: model::TrainReport,
    train_rows: usize,
    holdout_rows: usize,
    /// Files (a prefix of the history) and rows it consumed.
    files: usize,
    rows: Dataset,
}

fn train_initial(policy: &Policy, history: &[HistoryFile]) -> Result<Initial, BacktestError> {
    let mut rows = Dataset::new(history[0].data.width);
    let mut files = 0;
    for f in history {
        rows.extend(&f.data);
        files += 1;
        if rows.len() >= policy.data.initial_rows {
            break;
        }
    }
    let (model, scores, report, train_rows, holdout_rows) =
        daemon::train_first_version(policy, &rows)?;
    Ok(Initial {
        model,
        scores,
        report,
        train_rows,
        holdout_rows,
        files,
        rows,
    })
}

/// One replay's state: the daemon's, minus the async plumbing.
struct Replay<'a> {
    policy: Policy,
    run: Run,
    registry: Registry,
    features: Vec<String>,
    live: Option<(crate::registry::VersionMeta, Classifier)>,
    monitor: Monitor,
    input_monitor: InputMonitor,
    input_episode: Option<u64>,
    new_rows: Option<daemon::NewRows>,
    reservoir: Option<daemon::Reservoir>,
    rows_total: u64,
    pending: Option<Pending>,
    update_starts: Vec<DateTime<Utc>>,
    last_update_end: Option<DateTime<Utc>>,
    probation: Option<Probation>,
    excluded_strategy: Option<crate::update::StrategyName>,
    next_fire: Option<DateTime<Utc>>,
    /// Files since the live version (for its meta.json).
    files_since_live: Vec<TrainedFile>,
    file_seq: u64,
    report: RunReport,
    /// The open stretch of the live version: (version, strategy, from row).
    stretch: Option<(u64, String, u64)>,
    progress: &'a mut Progress,
}

impl Replay<'_> {
    fn now_of(&self, data: &Dataset) -> Option<DateTime<Utc>> {
        data.times_us.iter().copied().max().and_then(time_of)
    }

    fn install(&mut self, meta: crate::registry::VersionMeta, model: Classifier) {
        self.close_stretch();
        self.stretch = Some((meta.version, meta.strategy.clone(), self.rows_total));
        (self.monitor, self.input_monitor) =
            daemon::monitors_for(&self.policy, &meta, model.inputs());
        self.input_episode = None;
        self.files_since_live.clear();
        self.live = Some((meta, model));
    }

    fn close_stretch(&mut self) {
        if let Some((version, strategy, from)) = self.stretch.take() {
            let until = self.rows_total;
            let (scored, correct) = count(&self.report.outcomes, from, until);
            self.report.versions.push(VersionRecord {
                version,
                strategy,
                live_from_row: from,
                live_until_row: until,
                rows_scored: scored,
                accuracy: (scored > 0).then(|| correct as f64 / scored as f64),
            });
        }
    }

    fn request(&mut self, p: Pending, now: DateTime<Utc>) {
        self.report.triggers += 1;
        let day = chrono::Duration::hours(24);
        self.update_starts.retain(|t| now - *t < day);
        let since_last_end = self
            .last_update_end
            .map(|end| (now - end).to_std().unwrap_or_default());
        if daemon::suppression(&self.policy, since_last_end, self.update_starts.len()).is_some() {
            self.report.triggers_suppressed += 1;
            return;
        }
        daemon::coalesce(&mut self.pending, p);
    }

    /// Schedule fires up to `until`, each followed by the update it asks for.
    fn fire_schedule(&mut self, until: DateTime<Utc>) -> Result<(), BacktestError> {
        while let Some(fire) = self.next_fire.filter(|f| *f <= until) {
            self.next_fire = daemon::schedule::next_fire(&self.policy.schedule, fire);
            self.request(
                Pending {
                    kind: TriggerKind::Schedule,
                    from_row: None,
                },
                fire,
            );
            self.maybe_update(fire)?;
        }
        Ok(())
    }

    fn absorb(&mut self, file: &HistoryFile) -> Result<(), BacktestError> {
        let data = &file.data;
        let n = data.len() as u64;
        self.file_seq += 1;
        self.files_since_live.push(TrainedFile {
            seq: self.file_seq,
            name: file.name.clone(),
            rows: data.len(),
        });
        let (meta, live) = self.live.as_ref().expect("version 1 is live");
        let classes = meta.architecture.classes;
        let live_version = meta.version;
        let probs = live.predict_proba(data)?;
        let outcomes = daemon::outcomes_of(data, &probs, classes);
        self.report
            .outcomes
            .extend(outcomes.iter().map(|o| o.correct() as u8));
        let monitor_before = self.monitor.rows_seen();
        let alerts = self.monitor.observe(&outcomes);
        let input_checks = self.input_monitor.observe(data);
        let first_new = self.rows_total;
        self.rows_total += n;
        daemon::buffer_new_rows(
            &mut self.new_rows,
            &mut self.reservoir,
            &self.policy,
            data,
            first_new,
        );
        for alert in alerts {
            let at = first_new + (alert.rows_since_live - monitor_before);
            let time = data
                .times_us
                .get((at - first_new) as usize)
                .copied()
                .and_then(time_of);
            self.alert(alert, at, at, time);
        }
        for check in input_checks {
            if let Some(alert) = daemon::input_alert(
                &self.policy.monitor,
                &check,
                &mut self.input_episode,
                &self.monitor,
                Some(live_version),
            ) {
                let from = (first_new + n).saturating_sub(check.window as u64);
                let time = self.now_of(data);
                self.alert(alert, first_new + n - 1, from, time);
            }
        }
        self.judge_probation(&outcomes)?;
        self.progress.inc(n);
        Ok(())
    }

    fn alert(&mut self, alert: DriftAlert, row: u64, from_row: u64, time: Option<DateTime<Utc>>) {
        let triggers = alert.severity == Severity::Drift && self.run == Run::Policy;
        self.report.alerts.push(AlertRecord {
            row,
            time,
            kind: alert.kind.clone(),
            detector: alert.detector.clone(),
            severity: alert.severity,
            current: alert.current,
            baseline: alert.baseline,
            live_version: alert.live_version,
            repeat: alert.repeat,
            triggered: triggers,
        });
        if triggers {
            self.request(
                Pending {
                    kind: TriggerKind::Drift,
                    from_row: Some(from_row),
                },
                time.unwrap_or_default(),
            );
        }
    }

    fn judge_probation(&mut self, outcomes: &[RowOutcome]) -> Result<(), BacktestError> {
        let watch = self.policy.update.rollback.watch_rows;
        let Some(p) = &mut self.probation else {
            return Ok(());
        };
        let Some(accuracy) = daemon::probation_count(p, outcomes, watch) else {
            return Ok(());
        };
        let p = self.probation.take().expect("checked");
        if daemon::probation_holds(&p, accuracy, self.policy.update.rollback.margin) {
            return Ok(());
        }
        let reason = format!(
            "version {} scored {accuracy:.3} on its first {} rows, below version {}'s {:.3}",
            p.version, p.rows, p.previous, p.previous_accuracy
        );
        let (meta, model) = self.registry.load_model(p.previous)?;
        self.registry.set_live(p.previous, "rollback", &reason)?;
        self.report.rollbacks.push(RollbackRecord {
            row: self.rows_total,
            from_version: p.version,
            to_version: p.previous,
            accuracy,
            previous_accuracy: p.previous_accuracy,
        });
        self.install(meta, model);
        self.excluded_strategy = Some(p.strategy);
        Ok(())
    }

    /// The daemon's `maybe_start_update` and `finish_update`, back to back:
    /// the tournament runs at simulated time `now`.
    fn maybe_update(&mut self, now: DateTime<Utc>) -> Result<(), BacktestError> {
        let Some(pending) = self.pending else {
            return Ok(());
        };
        let (meta, live) = self.live.as_ref().expect("version 1 is live");
        let (new, old, end_row) = match daemon::update_rows(
            &self.policy,
            self.new_rows.as_ref(),
            self.reservoir.as_ref(),
            pending,
            self.rows_total,
            live.inputs(),
        ) {
            UpdateRows::Ready { new, old, end_row } => (new, old, end_row),
            UpdateRows::Short { have, needed } => {
                if pending.kind != TriggerKind::Drift {
                    self.pending = None;
                    self.report.updates.push(UpdateRecord {
                        row: self.rows_total,
                        time: Some(now),
                        trigger: pending.kind,
                        new_rows: have,
                        old_rows: 0,
                        holdout_rows: 0,
                        live_accuracy: None,
                        candidates: Vec::new(),
                        winner: None,
                        promoted_version: None,
                        decision: format!(
                            "not enough new rows for an update ({have} of {needed} needed)"
                        ),
                        training_seconds: 0.0,
                    });
                }
                return Ok(());
            }
        };
        self.pending = None;
        let strategies = daemon::strategies_for(&self.policy, self.excluded_strategy.take());
        if strategies.is_empty() {
            return Ok(());
        }
        let lineage = match self.policy.update.ensemble.members {
            EnsembleMembers::LastVersions => self.registry.lineage(
                meta,
                self.policy.update.ensemble.max_members.saturating_sub(2),
            ),
            EnsembleMembers::Grow => Vec::new(),
        };
        let data = update::UpdateData { old, new, lineage };
        let live_version = meta.version;
        let seed = self.policy.training.seed.wrapping_add(live_version);
        self.update_starts.push(now);
        self.progress.set_message(&format!(
            "{}: training at row {}",
            self.run.title(),
            self.rows_total
        ));
        let started = Instant::now();
        let result = update::run_tournament(&self.policy, live, &data, &strategies, seed);
        let seconds = started.elapsed().as_secs_f64();
        self.progress.set_message(self.run.title());
        self.report.training_seconds += seconds;
        self.last_update_end = Some(now);
        let mut record = UpdateRecord {
            row: self.rows_total,
            time: Some(now),
            trigger: pending.kind,
            new_rows: data.new.len(),
            old_rows: data.old.len(),
            holdout_rows: 0,
            live_accuracy: None,
            candidates: Vec::new(),
            winner: None,
            promoted_version: None,
            decision: String::new(),
            training_seconds: seconds,
        };
        let tournament = match result {
            Ok(t) => t,
            Err(e) => {
                record.decision = format!("failed: {e}");
                self.report.updates.push(record);
                return Ok(());
            }
        };
        record.holdout_rows = tournament.holdout_rows;
        record.live_accuracy = Some(tournament.live.accuracy);
        record.candidates = daemon::leaderboard_of(&tournament);
        record.decision = tournament.decision.clone();
        if let Some(i) = tournament.winner {
            let c = &tournament.candidates[i];
            let built = c.outcome.as_ref().expect("winner succeeded");
            let before = self.monitor.rolling_accuracy();
            let promotion = Promotion {
                strategy: Some(c.strategy),
                trigger: pending.kind.as_str().into(),
                features: self.features.clone(),
                holdout: built.scores,
                live_holdout: Some(tournament.live),
                report: built.report.clone(),
                leaderboard: record.candidates.clone(),
                data: DataSummary {
                    train_rows: tournament.train_rows,
                    holdout_rows: tournament.holdout_rows,
                    first_file: self.files_since_live.first().map(|f| f.name.clone()),
                    last_file: self.files_since_live.last().map(|f| f.name.clone()),
                    last_seq: self.file_seq,
                },
                input_profile: Some(InputProfile::from_dataset(&data.new, &self.features)),
                files: Some(TrainedFiles::new(self.files_since_live.clone())),
            };
            let new_meta = daemon::promote_version(
                &self.registry,
                &self.policy,
                Some(live_version),
                &built.model,
                promotion,
            )?;
            let version = new_meta.version;
            record.winner = Some(c.strategy.to_string());
            record.promoted_version = Some(version);
            if let (true, Some(previous_accuracy)) = (self.policy.update.rollback.enabled, before) {
                self.probation = Some(Probation {
                    version,
                    previous: live_version,
                    previous_accuracy,
                    strategy: c.strategy,
                    rows: 0,
                    correct: 0,
                });
            }
            let model = built.model.clone();
            self.install(new_meta, model);
            daemon::consume_trained(
                &mut self.new_rows,
                &mut self.reservoir,
                &self.policy,
                end_row,
            );
        }
        self.report.updates.push(record);
        Ok(())
    }
}

/// (scored, correct) over global rows `from..until`.
fn count(outcomes: &[u8], from: u64, until: u64) -> (u64, u64) {
    let until = (until as usize).min(outcomes.len());
    let from = (from as usize).min(until);
    outcomes[from..until]
        .iter()
        .fold((0, 0), |(s, c), &o| match o {
            1 => (s + 1, c + 1),
            0 => (s + 1, c),
            _ => (s, c),
        })
}

fn replay(
    policy: &Policy,
    run: Run,
    history: &[HistoryFile],
    initial: &Initial,
    features: &[String],
    work: &Path,
    progress: &mut Progress,
) -> Result<RunReport, BacktestError> {
    let started = Instant::now();
    let mut policy = policy.clone();
    let root = work.join(run.as_str());
    policy.registry.dir = root.join("registry");
    policy.state.dir = root.join("state");
    for dir in [&policy.registry.dir, &policy.state.dir] {
        crate::fsutil::create_private_dir(dir).map_err(BacktestError::Temp)?;
    }
    let (registry, _) =
        Registry::open_checked(&policy.registry.dir, "driftd backtest", CheckMode::Repair)?;
    let mut r = Replay {
        monitor: Monitor::new(&policy.monitor, 2, None, None),
        input_monitor: InputMonitor::new(policy.monitor.input.clone(), None, 0),
        policy,
        run,
        registry,
        features: features.to_vec(),
        live: None,
        input_episode: None,
        new_rows: None,
        reservoir: None,
        rows_total: 0,
        pending: None,
        update_starts: Vec::new(),
        last_update_end: None,
        probation: None,
        excluded_strategy: None,
        next_fire: None,
        files_since_live: Vec::new(),
        file_seq: 0,
        report: RunReport {
            run,
            description: run.describe().into(),
            rows_scored: 0,
            correct: 0,
            prequential_accuracy: None,
            windows: Vec::new(),
            alerts: Vec::new(),
            updates: Vec::new(),
            rollbacks: Vec::new(),
            versions: Vec::new(),
            alert_count: 0,
            update_count: 0,
            promoted_count: 0,
            rollback_count: 0,
            triggers: 0,
            triggers_suppressed: 0,
            training_seconds: 0.0,
            replay_seconds: 0.0,
            outcomes: Vec::new(),
        },
        stretch: None,
        progress,
    };
    progress_message(&mut r);
    // Version 1, as the daemon's first start makes it.
    let first_files = &history[..initial.files];
    for f in first_files {
        r.file_seq += 1;
        r.files_since_live.push(TrainedFile {
            seq: r.file_seq,
            name: f.name.clone(),
            rows: f.data.len(),
        });
    }
    let board = vec![CandidateScore {
        strategy: "initial".into(),
        scores: Some(initial.scores),
        train_seconds: initial.report.seconds,
        train_rows: initial.train_rows,
        learning_rate: None,
        lr_search: Vec::new(),
        error: None,
        promoted: true,
    }];
    let model = Classifier::Single(initial.model.clone());
    let meta = daemon::promote_version(
        &r.registry,
        &r.policy,
        None,
        &model,
        Promotion {
            strategy: None,
            trigger: "initial".into(),
            features: r.features.clone(),
            holdout: initial.scores,
            live_holdout: None,
            report: Some(initial.report.clone()),
            leaderboard: board,
            data: DataSummary {
                train_rows: initial.train_rows,
                holdout_rows: initial.holdout_rows,
                first_file: first_files.first().map(|f| f.name.clone()),
                last_file: first_files.last().map(|f| f.name.clone()),
                last_seq: r.file_seq,
            },
            input_profile: Some(InputProfile::from_dataset(&initial.rows, &r.features)),
            files: Some(TrainedFiles::new(r.files_since_live.clone())),
        },
    )?;
    let bootstrap = initial.rows.len();
    r.report.outcomes = vec![2; bootstrap];
    r.rows_total = bootstrap as u64;
    daemon::reservoir_of(&mut r.reservoir, &r.policy, initial.rows.width).add(&initial.rows);
    r.install(meta, model);
    r.progress.inc(bootstrap as u64);
    let schedule =
        r.run != Run::NeverUpdate && (r.run == Run::PeriodicOnly || r.policy.schedule.enabled);
    if schedule {
        // As at a first start: the schedule counts from now, no catch-up.
        let start = initial
            .rows
            .times_us
            .iter()
            .copied()
            .max()
            .and_then(time_of);
        r.next_fire = start.and_then(|s| daemon::schedule::next_fire(&r.policy.schedule, s));
    }
    for file in &history[initial.files..] {
        if schedule {
            if let Some(t0) = file.data.times_us.iter().copied().min().and_then(time_of) {
                r.fire_schedule(t0)?;
            }
        }
        r.absorb(file)?;
        if let Some(now) = r.now_of(&file.data) {
            if r.run != Run::NeverUpdate {
                r.maybe_update(now)?;
            }
        }
    }
    r.close_stretch();
    let mut report = r.report;
    let (scored, correct) = count(&report.outcomes, 0, report.outcomes.len() as u64);
    report.rows_scored = scored;
    report.correct = correct;
    report.prequential_accuracy = (scored > 0).then(|| correct as f64 / scored as f64);
    report.alert_count = report.alerts.len();
    report.update_count = report.updates.len();
    report.promoted_count = report
        .updates
        .iter()
        .filter(|u| u.promoted_version.is_some())
        .count();
    report.rollback_count = report.rollbacks.len();
    report.replay_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn progress_message(r: &mut Replay) {
    let title = r.run.title();
    r.progress.set_message(title);
}

fn windows(outcomes: &[u8], window: usize) -> Vec<WindowAccuracy> {
    (0..outcomes.len())
        .step_by(window.max(1))
        .map(|from| {
            let until = (from + window).min(outcomes.len());
            let (scored, correct) = count(outcomes, from as u64, until as u64);
            WindowAccuracy {
                first_row: from as u64,
                end_row: until as u64,
                rows_scored: scored,
                accuracy: (scored > 0).then(|| correct as f64 / scored as f64),
            }
        })
        .collect()
}

/// Runs the backtest: the policy and both baselines over the directory.
pub fn run(policy: &Policy, options: &Options) -> Result<Report, BacktestError> {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("driftd-backtest-")
        .tempdir()
        .map_err(BacktestError::Temp)?;
    let mut policy = policy.clone();
    policy.data.dir = options.data_dir.clone();
    policy.state.dir = work.path().join("scan");
    policy.data.settle_ms = 0;
    policy.data.incomplete_after_ms = 0;
    crate::fsutil::create_private_dir(&policy.state.dir).map_err(BacktestError::Temp)?;
    let clock = match (&policy.data.timestamp, options.seconds_per_row) {
        (_, Some(s)) => Clock::RowsPerTime { seconds_per_row: s },
        (Some(_), None) => Clock::Timestamp,
        (None, None) => Clock::FileMtime,
    };
    tch::set_num_threads(policy.training.threads as i32);
    let History {
        files: history,
        quarantined,
        features,
    } = load_history(&policy, clock).map_err(|e| match e {
        BacktestError::Ingest(e) => BacktestError::Data {
            path: options.data_dir.clone(),
            reason: e.to_string(),
        },
        e => e,
    })?;
    let rows: usize = history.iter().map(|f| f.data.len()).sum();
    if history.is_empty() {
        return Err(BacktestError::NoRows(options.data_dir.clone()));
    }
    if rows <= policy.data.initial_rows {
        return Err(BacktestError::TooFewRows {
            dir: options.data_dir.clone(),
            rows,
            initial: policy.data.initial_rows,
        });
    }
    let initial = train_initial(&policy, &history)?;
    let runs = [Run::Policy, Run::PeriodicOnly, Run::NeverUpdate];
    let mut progress = Progress::new("backtest", rows as u64 * runs.len() as u64, "rows");
    let mut reports = Vec::new();
    for run in runs {
        reports.push(replay(
            &policy,
            run,
            &history,
            &initial,
            &features,
            work.path(),
            &mut progress,
        )?);
    }
    progress.finish();
    let window_rows = options.window_rows.unwrap_or_else(|| {
        let w = rows.div_ceil(20).div_ceil(100) * 100;
        w.max(policy.monitor.window)
    });
    for r in &mut reports {
        r.windows = windows(&r.outcomes, window_rows);
    }
    let policy_accuracy = reports[0].prequential_accuracy;
    let comparisons: Vec<Comparison> = reports[1..]
        .iter()
        .map(|b| {
            let difference = policy_accuracy
                .zip(b.prequential_accuracy)
                .map(|(p, b)| p - b);
            Comparison {
                baseline: b.run,
                policy_accuracy,
                baseline_accuracy: b.prequential_accuracy,
                difference,
                policy_wins: difference.is_some_and(|d| d > 0.0),
            }
        })
        .collect();
    let verdict = verdict_of(&comparisons);
    let times = history.iter().flat_map(|f| f.data.times_us.iter().copied());
    let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    Ok(Report {
        data: DataReport {
            dir: options.data_dir.clone(),
            files: history.len(),
            rows,
            quarantined,
            clock,
            clock_description: clock.describe(&policy),
            first_time: time_of(lo),
            last_time: time_of(hi),
            bootstrap_rows: initial.rows.len(),
            initial_training_seconds: initial.report.seconds,
        },
        window_rows,
        // monitor.window, or wider on long histories so that the lines
        // stay readable (about 200 windows across the plot).
        rolling_window_rows: policy.monitor.window.max(rows / 200),
        runs: reports,
        comparisons,
        verdict,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn verdict_of(comparisons: &[Comparison]) -> String {
    let parts: Vec<String> = comparisons
        .iter()
        .map(|c| match c.difference {
            Some(d) if d > 0.0 => format!("beats {} by {d:.4}", c.baseline.title()),
            Some(d) if d < 0.0 => format!("loses to {} by {:.4}", c.baseline.title(), -d),
            Some(_) => format!("ties with {}", c.baseline.title()),
            None => format!("cannot be compared with {}", c.baseline.title()),
        })
        .collect();
    format!("the policy {} (prequential accuracy)", parts.join(" and "))
}

fn opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// The text report: every number in it is in the JSON report.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let d = &report.data;
    let _ = writeln!(
        s,
        "backtest of {}: {} files, {} rows; clock: {}",
        d.dir.display(),
        d.files,
        d.rows,
        d.clock_description
    );
    if let (Some(a), Some(b)) = (d.first_time, d.last_time) {
        let _ = writeln!(s, "time span: {} to {}", a.to_rfc3339(), b.to_rfc3339());
    }
    let _ = writeln!(
        s,
        "version 1 trained on the first {} rows in {:.2} s (not scored)",
        d.bootstrap_rows, d.initial_training_seconds
    );
    for q in &d.quarantined {
        let _ = writeln!(s, "quarantined: {}: {}", q.file, q.reason);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<15} {:>11} {:>9} {:>8} {:>8} {:>7} {:>9} {:>10} {:>9}",
        "run",
        "prequential",
        "scored",
        "alerts",
        "updates",
        "promoted",
        "rollbacks",
        "training s",
        "replay s"
    );
    for r in &report.runs {
        let _ = writeln!(
            s,
            "{:<15} {:>11} {:>9} {:>8} {:>8} {:>7} {:>9} {:>10.2} {:>9.2}",
            r.run.title(),
            opt(r.prequential_accuracy),
            r.rows_scored,
            r.alert_count,
            r.update_count,
            r.promoted_count,
            r.rollback_count,
            r.training_seconds,
            r.replay_seconds
        );
    }
    let _ = writeln!(s);
    for c in &report.comparisons {
        let _ = writeln!(
            s,
            "policy vs {}: {} against {} ({})",
            c.baseline.title(),
            opt(c.policy_accuracy),
            opt(c.baseline_accuracy),
            c.difference.map_or("-".into(), |d| format!("{d:+.4}"))
        );
    }
    let _ = writeln!(s, "verdict: {}", report.verdict);
    let _ = writeln!(s);
    let _ = writeln!(s, "accuracy per window of {} rows:", report.window_rows);
    let _ = write!(s, "{:<17}", "rows");
    for r in &report.runs {
        let _ = write!(s, " {:>14}", r.run.title());
    }
    let _ = writeln!(s);
    let n = report.runs.first().map_or(0, |r| r.windows.len());
    for i in 0..n {
        let w = &report.runs[0].windows[i];
        let _ = write!(s, "{:<17}", format!("{}..{}", w.first_row, w.end_row));
        for r in &report.runs {
            let _ = write!(s, " {:>14}", opt(r.windows[i].accuracy));
        }
        let _ = writeln!(s);
    }
    for r in &report.runs {
        if r.alerts.is_empty() && r.updates.is_empty() && r.rollbacks.is_empty() {
            continue;
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{} run ({}):", r.run.title(), r.description);
        for a in &r.alerts {
            let _ = writeln!(
                s,
                "  alert at row {}: {} {} {}, accuracy {:.4}{}, version {}{}",
                a.row,
                a.kind,
                a.detector,
                a.severity.as_str(),
                a.current,
                a.baseline
                    .map_or(String::new(), |b| format!(" (baseline {b:.4})")),
                a.live_version.map_or("-".into(), |v| v.to_string()),
                if a.triggered {
                    ", update requested"
                } else {
                    ""
                }
            );
        }
        for u in &r.updates {
            let outcome = match (&u.winner, u.promoted_version) {
                (Some(w), Some(v)) => format!("promoted version {v} ({w})"),
                _ => "nothing promoted".into(),
            };
            let _ = writeln!(
                s,
                "  update at row {} ({} trigger): {outcome}; {} new, {} old, {} holdout rows; live {} on the holdout; {:.2} s",
                u.row,
                u.trigger.as_str(),
                u.new_rows,
                u.old_rows,
                u.holdout_rows,
                opt(u.live_accuracy),
                u.training_seconds
            );
            for c in &u.candidates {
                let _ = writeln!(
                    s,
                    "    {:<13} {} ({} rows, {:.2} s){}",
                    c.strategy,
                    opt(c.scores.map(|x| x.accuracy)),
                    c.train_rows,
                    c.train_seconds,
                    if c.promoted { " promoted" } else { "" }
                );
            }
            let _ = writeln!(s, "    {}", u.decision);
        }
        for b in &r.rollbacks {
            let _ = writeln!(
                s,
                "  rollback at row {}: version {} -> {} (accuracy {:.4} against {:.4})",
                b.row, b.from_version, b.to_version, b.accuracy, b.previous_accuracy
            );
        }
        for v in &r.versions {
            let _ = writeln!(
                s,
                "  version {} ({}): rows {}..{}, accuracy {}",
                v.version,
                v.strategy,
                v.live_from_row,
                v.live_until_row,
                opt(v.accuracy)
            );
        }
    }
    s
}

/// Rolling accuracy over the last `window` scored rows, at most `points`
/// points.
fn rolling(outcomes: &[u8], window: usize, points: usize) -> Vec<(f64, f64)> {
    let mut scored = vec![0u32; outcomes.len() + 1];
    let mut correct = vec![0u32; outcomes.len() + 1];
    for (i, &o) in outcomes.iter().enumerate() {
        scored[i + 1] = scored[i] + u32::from(o < 2);
        correct[i + 1] = correct[i] + u32::from(o == 1);
    }
    let step = outcomes.len().div_ceil(points.max(1)).max(1);
    let window = window.max(1);
    (step..=outcomes.len())
        .step_by(step)
        .filter_map(|end| {
            let start = end.saturating_sub(window);
            let s = scored[end] - scored[start];
            // A window mostly of unscored rows says little.
            (s as usize * 2 >= window.min(end)).then(|| {
                (
                    end as f64,
                    f64::from(correct[end] - correct[start]) / f64::from(s),
                )
            })
        })
        .collect()
}

/// 1234567 as "1,234,567".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The picture of a backtest.
pub fn chart(report: &Report) -> crate::plot::Chart {
    use crate::plot::{Alert, Band, BaselineUpdate, Chart, Series, Update};
    let window = report.rolling_window_rows;
    let policy = &report.runs[0];
    Chart {
        title: format!(
            "driftd backtest: {} rows of {}",
            thousands(report.data.rows),
            report.data.dir.file_name().map_or_else(
                || report.data.dir.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
        subtitle: Some(format!(
            "prequential accuracy (every row scored by the version live then): {}",
            report
                .runs
                .iter()
                .map(|r| format!("{} {}", r.run.title(), opt(r.prequential_accuracy)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        x_label: "rows replayed".into(),
        y_label: format!("accuracy over the last {window} rows"),
        series: report
            .runs
            .iter()
            .map(|r| Series {
                name: r.run.title().into(),
                points: rolling(&r.outcomes, window, 1500),
            })
            .collect(),
        alerts: policy
            .alerts
            .iter()
            .map(|a| Alert {
                row: a.row as f64,
                detector: a.detector.clone(),
                drift: a.severity == Severity::Drift,
            })
            .collect(),
        updates: policy
            .updates
            .iter()
            .filter(|u| !u.candidates.is_empty())
            .map(|u| Update {
                row: u.row as f64,
                label: match &u.winner {
                    Some(w) => format!("{} ({})", w, u.trigger.as_str()),
                    None => format!("rejected ({})", u.trigger.as_str()),
                },
                promoted: u.promoted_version.is_some(),
            })
            .collect(),
        // The baselines' own updates (periodic only; never update has none).
        baseline_updates: report
            .runs
            .iter()
            .enumerate()
            .skip(1)
            .flat_map(|(series, r)| {
                r.updates
                    .iter()
                    .filter(|u| !u.candidates.is_empty())
                    .map(move |u| BaselineUpdate {
                        row: u.row as f64,
                        series,
                        promoted: u.promoted_version.is_some(),
                    })
            })
            .collect(),
        bands: policy
            .versions
            .iter()
            .map(|v| Band {
                from: v.live_from_row as f64,
                to: v.live_until_row as f64,
                version: v.version,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(12_000), "12,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn windows_count_only_scored_rows() {
        let outcomes = [2, 2, 1, 0, 1, 1];
        let w = windows(&outcomes, 4);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].rows_scored, w[0].accuracy), (2, Some(0.5)));
        assert_eq!((w[1].rows_scored, w[1].accuracy), (2, Some(1.0)));
    }

    #[test]
    fn rolling_skips_mostly_unscored_windows() {
        let mut outcomes = vec![2u8; 10];
        outcomes.extend([1u8; 10]);
        let points = rolling(&outcomes, 4, 20);
        assert!(points.iter().all(|p| p.0 >= 12.0), "{points:?}");
        assert!(points.iter().all(|p| p.1 == 1.0));
    }
}
