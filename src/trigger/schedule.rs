//! The update schedule: a six-field cron expression (seconds first) in a
//! time zone, fired by tokio-cron-scheduler into the daemon's trigger
//! channel, so a schedule fire and a manual request take the same path.
//!
//! Tests run the daemon on a [`Clock::Paused`]: wall time that advances
//! with tokio's paused clock. tokio-cron-scheduler reads the system clock,
//! so on a paused clock the fires come from a task that sleeps until
//! [`next_fire`] instead; everything after the fire is the same code.

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use crate::config::{parse_cron, CronError, ScheduleConfig};
use crate::status::Trigger;

/// The next time the schedule fires after `after`.
pub fn next_fire(config: &ScheduleConfig, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    occurrence(config, after, true)
}

/// The schedule's occurrence after `at` (`forward`), or at or before it,
/// evaluated in the policy's time zone.
fn occurrence(config: &ScheduleConfig, at: DateTime<Utc>, forward: bool) -> Option<DateTime<Utc>> {
    let tz: chrono_tz::Tz = config.timezone.parse().ok()?;
    let cron = parse_cron(&config.cron).ok()?;
    let local = at.with_timezone(&tz);
    let found = if forward {
        cron.find_next_occurrence(&local, false)
    } else {
        cron.find_previous_occurrence(&local, true)
    };
    found.ok().map(|t| t.with_timezone(&Utc))
}

/// The daemon's wall clock.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system clock; the schedule runs on tokio-cron-scheduler.
    System,
    /// Starts at `origin` when created and advances with tokio's clock
    /// (which a test may pause and let auto-advance).
    Paused {
        origin: DateTime<Utc>,
        start: tokio::time::Instant,
        /// Milliseconds added to the wall time by [`Clock::jump`] (shared
        /// by every clone: the daemon's and the test's).
        jumped_ms: std::sync::Arc<std::sync::atomic::AtomicI64>,
    },
}

impl Clock {
    /// A clock reading `origin` now, advancing with tokio's clock.
    pub fn starting_at(origin: DateTime<Utc>) -> Clock {
        Clock::Paused {
            origin,
            start: tokio::time::Instant::now(),
            jumped_ms: Default::default(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Paused {
                origin,
                start,
                jumped_ms,
            } => {
                let elapsed = tokio::time::Instant::now().duration_since(*start);
                let jumped = chrono::Duration::milliseconds(
                    jumped_ms.load(std::sync::atomic::Ordering::SeqCst),
                );
                *origin
                    + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
                    + jumped
            }
        }
    }

    /// Moves a paused clock's wall time by `by` (negative: back), as an
    /// operator or NTP stepping the system clock would; tokio's monotonic
    /// time (intervals, the cooldown) does not move. Returns false on the
    /// system clock, which a test cannot move.
    pub fn jump(&self, by: chrono::Duration) -> bool {
        match self {
            Clock::System => false,
            Clock::Paused { jumped_ms, .. } => {
                jumped_ms.fetch_add(by.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
                true
            }
        }
    }
}

/// The occurrence a fire at `now` stands for: the latest at or before it.
pub fn latest_fire(config: &ScheduleConfig, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    occurrence(config, now, false)
}

/// The last scheduled fire the daemon took, persisted in
/// `state/schedule.json` so a fire missed while it was down runs once at the
/// next start (like systemd's `Persistent=true`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleState {
    pub last_fire: DateTime<Utc>,
}

impl ScheduleState {
    pub fn load(state_dir: &std::path::Path) -> Option<ScheduleState> {
        let bytes = std::fs::read(state_dir.join("schedule.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn save(&self, state_dir: &std::path::Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).expect("schedule state serializes");
        crate::fsutil::write_atomic(&state_dir.join("schedule.json"), &json)
    }
}

/// The scheduled time of a fire missed since `last_fire`, if any: the most
/// recent occurrence at or before `now` that is after `last_fire`.
pub fn missed_fire(
    config: &ScheduleConfig,
    last_fire: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let previous = latest_fire(config, now)?;
    (previous > last_fire).then_some(previous)
}

/// Why the schedule cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error(transparent)]
    Cron(#[from] CronError),
    /// tokio-cron-scheduler failed at `step`; its messages are bare variant
    /// names (`CantInit`, `CantAdd`), hence the step.
    #[error("cannot {step} (tokio-cron-scheduler: {source})")]
    Scheduler {
        step: &'static str,
        #[source]
        source: JobSchedulerError,
    },
}

/// Names the step of starting the cron scheduler that failed.
fn at_step(step: &'static str) -> impl FnOnce(JobSchedulerError) -> ScheduleError {
    move |source| ScheduleError::Scheduler { step, source }
}

/// The time zone of `config`.
fn time_zone(config: &ScheduleConfig) -> Result<chrono_tz::Tz, ScheduleError> {
    config
        .timezone
        .parse()
        .map_err(|_| ScheduleError::UnknownTimeZone(config.timezone.clone()))
}

/// A running schedule; dropping it does not stop it, [`Scheduler::stop`]
/// does.
pub enum Scheduler {
    Cron(JobScheduler),
    OnClock(tokio::task::JoinHandle<()>),
}

impl Scheduler {
    pub async fn stop(self) {
        match self {
            Scheduler::Cron(mut s) => {
                let _ = s.shutdown().await;
            }
            Scheduler::OnClock(task) => task.abort(),
        }
    }
}

/// Starts the schedule on `clock`; each fire sends [`Trigger::Schedule`].
pub async fn start(
    config: &ScheduleConfig,
    clock: &Clock,
    triggers: mpsc::Sender<Trigger>,
) -> Result<Scheduler, ScheduleError> {
    match clock {
        Clock::System => start_cron(config, triggers).await.map(Scheduler::Cron),
        Clock::Paused { .. } => {
            time_zone(config)?;
            parse_cron(&config.cron)?;
            let (config, clock) = (config.clone(), clock.clone());
            Ok(Scheduler::OnClock(tokio::spawn(async move {
                while let Some(next) = next_fire(&config, clock.now()) {
                    let wait = (next - clock.now()).to_std().unwrap_or_default();
                    tokio::time::sleep(wait).await;
                    // As the cron job does: a full channel means a fire is
                    // already waiting.
                    let _ = triggers.try_send(Trigger::Schedule);
                }
            })))
        }
    }
}

async fn start_cron(
    config: &ScheduleConfig,
    triggers: mpsc::Sender<Trigger>,
) -> Result<JobScheduler, ScheduleError> {
    let tz = time_zone(config)?;
    parse_cron(&config.cron)?;
    let scheduler = JobScheduler::new()
        .await
        .map_err(at_step("create the job scheduler"))?;
    let job = Job::new_async_tz(config.cron.as_str(), tz, move |_id, _lock| {
        let triggers = triggers.clone();
        Box::pin(async move {
            // A full channel means a fire is already waiting: coalesce.
            let _ = triggers.try_send(Trigger::Schedule);
        })
    })
    .map_err(at_step("create the cron job"))?;
    scheduler
        .add(job)
        .await
        .map_err(at_step("add the cron job to the scheduler"))?;
    scheduler
        .start()
        .await
        .map_err(at_step("start the job scheduler"))?;
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn weekly_default_fires_monday_at_three() {
        let cfg = ScheduleConfig::default();
        let after = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(); // a Thursday
        let next = next_fire(&cfg, after).unwrap();
        assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap());
    }

    #[test]
    fn a_fire_missed_while_down_is_found_once() {
        let cfg = ScheduleConfig::default(); // Mondays 03:00 UTC
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap(); // Thursday
        let monday = Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap();
        let before = Utc.with_ymd_and_hms(2026, 11, 16, 3, 0, 0).unwrap();
        assert_eq!(missed_fire(&cfg, before, now), Some(monday));
        assert_eq!(missed_fire(&cfg, monday, now), None);
    }

    /// The production path: on the system clock the schedule runs on
    /// tokio-cron-scheduler's `JobScheduler` (the paused-clock tests use the
    /// croner loop instead). A cron firing every second must reach the
    /// trigger channel; the timeout only bounds a failure.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cron_scheduler_fires_on_the_real_clock() {
        let cfg = ScheduleConfig {
            enabled: true,
            cron: "* * * * * *".into(),
            timezone: "Europe/Berlin".into(),
        };
        let (tx, mut rx) = mpsc::channel(1);
        let scheduler = start(&cfg, &Clock::System, tx).await.expect("starts");
        assert!(matches!(scheduler, Scheduler::Cron(_)));
        let fired = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv()).await;
        scheduler.stop().await;
        assert_eq!(
            fired.expect("no fire within 30 s of a schedule firing every second"),
            Some(Trigger::Schedule)
        );
    }

    #[tokio::test]
    async fn an_unknown_time_zone_is_named() {
        let cfg = ScheduleConfig {
            timezone: "Mars/Olympus".into(),
            ..ScheduleConfig::default()
        };
        let clock = Clock::starting_at(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
        let (tx, _rx) = mpsc::channel(1);
        let Err(e) = start(&cfg, &clock, tx).await else {
            panic!("a schedule in an unknown time zone started");
        };
        assert!(matches!(e, ScheduleError::UnknownTimeZone(_)), "{e:?}");
        assert_eq!(e.to_string(), "unknown time zone \"Mars/Olympus\"");
    }

    #[test]
    fn bad_expressions_say_why() {
        let short = parse_cron("0 3 * * Mon").unwrap_err();
        assert!(matches!(short, CronError::FieldCount { fields: 5, .. }));
        assert!(short.to_string().contains("5 fields"), "{short}");
        let bad = parse_cron("0 0 25 * * Mon").unwrap_err();
        assert!(matches!(bad, CronError::Invalid { .. }));
        assert!(
            bad.to_string()
                .starts_with("invalid cron expression \"0 0 25 * * Mon\": "),
            "{bad}"
        );
    }
}
