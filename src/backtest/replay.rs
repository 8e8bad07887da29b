//! One run's replay on the simulated clock: the daemon's state minus the
//! async plumbing, fed one file at a time (scoring, monitors, triggers,
//! the schedule, probation), and the driver that runs it over the history.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};

use super::history::{time_of, HistoryFile};
use super::initial::Initial;
use super::report::{AlertRecord, RollbackRecord, RunReport, VersionRecord};
use super::{BacktestError, Run};
use crate::config::Policy;
use crate::detect::Severity;
use crate::input_drift::InputMonitor;
use crate::model::{Classifier, Dataset};
use crate::monitor::{DriftAlert, Monitor, RowOutcome};
use crate::progress::Progress;
use crate::registry::{CheckMode, Registry, TrainedFile};
use crate::status::TriggerKind;
use crate::trigger::{self, Pending};
use crate::update::{self, Probation};

/// One replay's state: the daemon's, minus the async plumbing.
pub(super) struct Replay<'a> {
    pub(super) policy: Policy,
    pub(super) run: Run,
    pub(super) registry: Registry,
    pub(super) features: Vec<String>,
    pub(super) live: Option<(crate::registry::VersionMeta, Classifier)>,
    pub(super) monitor: Monitor,
    input_monitor: InputMonitor,
    input_episode: Option<u64>,
    pub(super) new_rows: Option<update::NewRows>,
    pub(super) reservoir: Option<update::Reservoir>,
    pub(super) rows_total: u64,
    pub(super) pending: Option<Pending>,
    pub(super) update_starts: Vec<DateTime<Utc>>,
    pub(super) last_update_end: Option<DateTime<Utc>>,
    pub(super) probation: Option<Probation>,
    /// Where the last update's rows ended (see the daemon's field).
    pub(super) continual_from: Option<u64>,
    pub(super) excluded_strategy: Option<crate::update::StrategyName>,
    next_fire: Option<DateTime<Utc>>,
    /// Files since the live version (for its meta.json).
    pub(super) files_since_live: Vec<TrainedFile>,
    pub(super) file_seq: u64,
    pub(super) report: RunReport,
    /// The open stretch of the live version: (version, strategy, from row,
    /// online versions promoted after it within the stretch).
    pub(super) stretch: Option<(u64, String, u64, u64)>,
    /// The online challenger (`[update.online]`, policy run only).
    pub(super) online: Option<update::OnlineLearner>,
    pub(super) progress: &'a mut Progress,
}

impl Replay<'_> {
    fn now_of(&self, data: &Dataset) -> Option<DateTime<Utc>> {
        data.times_us.iter().copied().max().and_then(time_of)
    }

    pub(super) fn install(&mut self, meta: crate::registry::VersionMeta, model: Classifier) {
        self.close_stretch();
        self.stretch = Some((meta.version, meta.strategy.clone(), self.rows_total, 0));
        (self.monitor, self.input_monitor) =
            update::monitors_for(&self.policy, &meta, model.inputs());
        self.input_episode = None;
        self.files_since_live.clear();
        self.live = Some((meta, model));
        let recent = self.online.take().map(|l| l.window().clone());
        self.fork_online(recent.as_ref());
    }

    /// A new online learner for the live version, its training window
    /// seeded with `recent`.
    pub(super) fn fork_online(&mut self, recent: Option<&Dataset>) {
        self.online = None;
        if self.run != Run::Policy || !self.policy.update.online.enabled {
            return;
        }
        let (meta, live) = self.live.as_ref().expect("a version is live");
        let anchor = update::anchor_for(&self.registry, meta.version);
        self.online = Some(update::OnlineLearner::new(
            &self.policy,
            live,
            anchor,
            recent,
        ));
    }

    pub(super) fn close_stretch(&mut self) {
        if let Some((version, strategy, from, later_online_versions)) = self.stretch.take() {
            let until = self.rows_total;
            let (scored, correct) = count(&self.report.outcomes, from, until);
            self.report.versions.push(VersionRecord {
                version,
                strategy,
                live_from_row: from,
                live_until_row: until,
                rows_scored: scored,
                accuracy: (scored > 0).then(|| correct as f64 / scored as f64),
                later_online_versions,
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
        if trigger::suppression(&self.policy, since_last_end, self.update_starts.len()).is_some() {
            self.report.triggers_suppressed += 1;
            return;
        }
        trigger::coalesce(&mut self.pending, p);
    }

    /// Schedule fires up to `until` (the next file's first row). Fires
    /// between two files meet the same rows: the first asks for an update
    /// and the later ones are counted as suppressed. The daemon would run
    /// them, on the same rows with the same seed, and decide the same (or,
    /// after a promotion, find no new rows): one tournament instead of one
    /// per fire when rows come more slowly than the schedule.
    fn fire_schedule(&mut self, until: DateTime<Utc>) -> Result<(), BacktestError> {
        let mut first = None;
        while let Some(fire) = self.next_fire.filter(|f| *f <= until) {
            self.next_fire = trigger::schedule::next_fire(&self.policy.schedule, fire);
            match first {
                None => first = Some(fire),
                Some(_) => {
                    self.report.triggers += 1;
                    self.report.triggers_suppressed += 1;
                }
            }
        }
        if let Some(fire) = first {
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
        let outcomes = update::outcomes_of(data, &probs, classes);
        self.report
            .outcomes
            .extend(outcomes.iter().map(|o| o.correct() as u8));
        let monitor_before = self.monitor.rows_seen();
        let alerts = self.monitor.observe(&outcomes);
        let input_checks = self.input_monitor.observe(data);
        let first_new = self.rows_total;
        self.rows_total += n;
        update::buffer_new_rows(
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
            if let Some(alert) = update::input_alert(
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
        self.online_step(data, &outcomes)?;
        self.judge_probation(data, &outcomes)?;
        if self.run == Run::Policy && self.pending.is_none() {
            let since = self
                .continual_from
                .or(self.new_rows.as_ref().map(|n| n.first))
                .unwrap_or(self.rows_total);
            if let Some(p) = trigger::continual_due(&self.policy, self.rows_total, since) {
                let time = self.now_of(data).unwrap_or_default();
                self.request(p, time);
            }
        }
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
            metric: alert.metric.clone(),
            features: alert.features.clone(),
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

    /// The daemon's probation: the previous version scores the watched
    /// rows too, and the paired difference decides.
    fn judge_probation(
        &mut self,
        data: &Dataset,
        outcomes: &[RowOutcome],
    ) -> Result<(), BacktestError> {
        let watch = self.policy.update.rollback.watch_rows;
        let Some(p) = &mut self.probation else {
            return Ok(());
        };
        let take = p.watched(outcomes.len(), watch);
        let rows = data.slice(0, take);
        let probs = p.previous_model.predict_proba(&rows)?;
        let previous = update::outcomes_of(&rows, &probs, p.previous_model.classes());
        let Some(difference) = update::probation_count(p, &outcomes[..take], &previous, watch)
        else {
            return Ok(());
        };
        let p = self.probation.take().expect("checked");
        let (margin, confidence) = (
            self.policy.update.rollback.margin,
            self.policy.update.confidence,
        );
        if update::probation_holds(&difference, margin, confidence) {
            return Ok(());
        }
        let reason = update::rollback_reason(&p, &difference, margin);
        let (meta, model) = self.registry.load_model(p.previous)?;
        self.registry.set_live(p.previous, "rollback", &reason)?;
        self.report.rollbacks.push(RollbackRecord {
            row: self.rows_total,
            from_version: p.version,
            to_version: p.previous,
            accuracy: p.accuracy(),
            previous_accuracy: p.previous_accuracy(),
        });
        self.install(meta, model);
        self.excluded_strategy = Some(p.strategy);
        Ok(())
    }
}

/// (scored, correct) over global rows `from..until`.
pub(crate) fn count(outcomes: &[u8], from: u64, until: u64) -> (u64, u64) {
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

/// One replay of the history: the policy or a baseline, in its own
/// registry under `work`.
pub(super) fn replay(
    policy: &Policy,
    run: Run,
    history: &[HistoryFile],
    initial: &Initial,
    features: &[String],
    work: &Path,
    progress: &mut Progress,
) -> Result<RunReport, BacktestError> {
    let started = Instant::now();
    let mut r = Replay::open(policy, run, features, work, progress)?;
    progress_message(&mut r);
    // Version 1, as the daemon's first start makes it.
    r.start_with(history, initial)?;
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
        r.next_fire = start.and_then(|s| trigger::schedule::next_fire(&r.policy.schedule, s));
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
    Ok(tally(r.report, started))
}

impl<'a> Replay<'a> {
    /// A replay before version 1, with its registry and state directories
    /// under `work/RUN`.
    fn open(
        policy: &Policy,
        run: Run,
        features: &[String],
        work: &Path,
        progress: &'a mut Progress,
    ) -> Result<Self, BacktestError> {
        let mut policy = policy.clone();
        let root = work.join(run.as_str());
        policy.registry.dir = root.join("registry");
        policy.state.dir = root.join("state");
        for dir in [&policy.registry.dir, &policy.state.dir] {
            crate::fsutil::create_private_dir(dir).map_err(BacktestError::Temp)?;
        }
        let (registry, _) =
            Registry::open_checked(&policy.registry.dir, "driftd backtest", CheckMode::Repair)?;
        Ok(Replay {
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
            continual_from: None,
            excluded_strategy: None,
            next_fire: None,
            files_since_live: Vec::new(),
            file_seq: 0,
            report: empty_report(run),
            stretch: None,
            online: None,
            progress,
        })
    }
}

/// A run's report before anything is replayed.
fn empty_report(run: Run) -> RunReport {
    RunReport {
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
        online_promotions: 0,
        rollback_count: 0,
        triggers: 0,
        triggers_suppressed: 0,
        training_seconds: 0.0,
        replay_seconds: 0.0,
        outcomes: Vec::new(),
    }
}

/// The run's totals, once every file is replayed.
fn tally(mut report: RunReport, started: Instant) -> RunReport {
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
    report
}

fn progress_message(r: &mut Replay) {
    let title = r.run.title();
    r.progress.set_message(title);
}
