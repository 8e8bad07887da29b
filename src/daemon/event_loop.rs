//! The event loop: one task owns the daemon's state and reacts to the poll
//! timer and inotify, triggers, policy reloads, the watchdog, the end of a
//! running update, and shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Notify};
use tracing::{error, info, warn};

use super::service::{self, Reload};
use super::state::Daemon;
use super::state_lock::StateLock;
use super::updates::TournamentError;
use super::{Clock, DaemonError, Status, Trigger};
use crate::config::Policy;
use crate::ingest::probe;
use crate::ingest::Ingestor;
use crate::input_drift::InputMonitor;
use crate::model::Classifier;
use crate::monitor::Monitor;
use crate::registry::Registry;
use crate::trigger::schedule::{self, Scheduler};
use crate::worker::Worker;

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
    let mut d = Daemon::open(policy, clock, status_tx, &mut service)?;
    d.start_up().await?;
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
    let wake = Arc::new(Notify::new());
    let mut watcher = d.watch_data_dir(&wake);
    let mut poll = poll_timer(&d.policy);
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
                d.apply_reload(reload, &mut poll, &mut scheduler, &schedule_tx).await;
            }
            _ = watchdog.tick(), if watchdog_every.is_some() => d.ping_watchdog(),
            result = async { (&mut d.running.as_mut().expect("guarded").result).await },
                if d.running.is_some() => {
                let running = d.running.take().expect("guarded");
                d.finish_update(running, result.unwrap_or(Err(TournamentError::Panicked))).await;
            }
        }
        if std::mem::take(&mut d.rewatch) {
            drop(watcher.take());
            watcher = d.watch_data_dir(&wake);
        }
        d.maybe_start_update();
        d.publish();
        d.notify_progress();
    }
    drop(watcher);
    d.shut_down(scheduler).await;
    Ok(d.status.clone())
}

/// The poll timer: a tick late by a slow poll is not caught up in a burst.
fn poll_timer(policy: &Policy) -> tokio::time::Interval {
    let mut poll = tokio::time::interval(Duration::from_millis(policy.data.poll_interval_ms));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll
}

impl Daemon {
    /// Opens the state, the registry, the manifest and both libtorch
    /// threads; nothing is read or trained yet.
    fn open(
        policy: Policy,
        clock: Clock,
        status_tx: watch::Sender<Status>,
        service: &mut service::Service,
    ) -> Result<Daemon, DaemonError> {
        tch::set_num_threads(policy.training.threads as i32);
        // Before anything is written: a second daemon on this state
        // directory stops here.
        let state_lock = match service.state_lock.take() {
            Some(lock) => lock,
            None => StateLock::acquire(&policy.state.dir)?,
        };
        crate::fsutil::create_private_dir(&policy.registry.dir).map_err(|source| {
            DaemonError::State {
                path: policy.registry.dir.clone(),
                source,
            }
        })?;
        let (registry, _) = Registry::open_checked(
            &policy.registry.dir,
            "driftd run",
            crate::registry::CheckMode::Repair,
        )?;
        let ingestor = Ingestor::open(&policy)?;
        let scorer =
            Worker::spawn("driftd-scorer", None::<Classifier>).map_err(DaemonError::Thread)?;
        let trainer = Worker::spawn("driftd-trainer", ()).map_err(DaemonError::Thread)?;
        let monitor = Monitor::new(&policy.monitor, 2, None, None);
        let input_monitor = InputMonitor::new(policy.monitor.input.clone(), None, 0);
        let carried = Status::carried_over(&policy.state.dir);
        let mut d = Daemon {
            _state_lock: state_lock,
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
                ..carried
            },
            status_tx,
            last_file: None,
            last_seq: 0,
            update_starts: Vec::new(),
            last_update_end: None,
            clock,
            probation: None,
            continual_from: None,
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
            online: None,
        };
        d.count_manifest();
        Ok(d)
    }

    /// What a start does before the loop: the file a previous process died
    /// reading, the live model, the buffers, a missed schedule fire and an
    /// update abandoned at the last shutdown.
    async fn start_up(&mut self) -> Result<(), DaemonError> {
        self.suspect = probe::left_over(&self.policy.state.dir);
        self.load_live().await?;
        self.restore_buffers().await;
        if self.policy.schedule.enabled {
            self.catch_up_schedule();
        }
        self.resume_abandoned_update();
        Ok(())
    }

    /// Watches the data directory; inotify wake-ups notify `wake`.
    fn watch_data_dir(&self, wake: &Arc<Notify>) -> Option<::notify::RecommendedWatcher> {
        let wake = wake.clone();
        let dir = &self.policy.data.dir;
        match crate::ingest::watch(dir, self.policy.data.recursive, move || wake.notify_one()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "cannot watch the data directory; finding files by rescanning only");
                None
            }
        }
    }

    /// Applies a policy re-read on SIGHUP, then restarts what it changed:
    /// the poll timer and the schedule.
    async fn apply_reload(
        &mut self,
        reload: Reload,
        poll: &mut tokio::time::Interval,
        scheduler: &mut Option<Scheduler>,
        schedule_tx: &mpsc::Sender<Trigger>,
    ) {
        let effects = self.reload(reload);
        if effects.poll_interval {
            *poll = poll_timer(&self.policy);
        }
        if effects.schedule {
            if let Some(s) = scheduler.take() {
                s.stop().await;
            }
            if self.policy.schedule.enabled {
                match schedule::start(&self.policy.schedule, &self.clock, schedule_tx.clone()).await
                {
                    Ok(s) => *scheduler = Some(s),
                    Err(e) => {
                        error!(error = %e, "cannot restart the schedule; it stays off until the next reload")
                    }
                }
            }
        }
        self.notify(self.notifier.ready(&service::status_line(&self.status)));
    }

    /// After the loop: the schedule, the running update and the libtorch
    /// threads stop, the manifest is compacted, a last status is written.
    async fn shut_down(&mut self, scheduler: Option<Scheduler>) {
        self.notify(self.notifier.stopping());
        if let Some(s) = scheduler {
            s.stop().await;
        }
        self.stop_running_update().await;
        self.stop_workers().await;
        // Fold the manifest journal into manifest.json for whoever reads it next.
        if let Err(e) = self.ingestor.compact() {
            error!(error = %e, "cannot compact the manifest; its journal is replayed at the next start");
        }
        info!(event = "daemon_stopped", "driftd stopped");
        self.status.stopped = true;
        self.publish();
    }
}
