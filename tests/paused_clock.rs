//! The schedule, the cooldown and the daily cap on a paused clock: the
//! daemon runs in-process on [`Clock::Paused`] with tokio's time paused, and
//! the test moves time with `tokio::time::advance`, so days pass in moments
//! and every time in the assertions is exact.
//!
//! Tokio auto-advances a paused clock whenever the runtime is idle (for
//! example while the daemon waits for its trainer thread). The test task
//! never lets it idle: it waits by yielding in a loop, so time moves only
//! when the test says so.
#![forbid(unsafe_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use driftd::config::Policy;
use driftd::daemon;
use driftd::status::{Status, Trigger, TriggerKind};
use driftd::synth;
use driftd::trigger::schedule::ScheduleState;
use driftd::trigger::Clock;
use tokio::sync::{mpsc, oneshot, watch};

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap()
}

/// Updates never promote (`min_improvement = 0.5`), so every fire finds the
/// same 1000 new rows and can run a full tournament.
fn policy(root: &std::path::Path, cron: &str, update: &str, epochs: usize) -> Policy {
    let text = format!(
        "[data]\nfeatures = \"f*\"\npoll_interval_ms = 1000\ninitial_rows = 500\n\
         [training]\nepochs = {epochs}\n[monitor]\nwindow = 200\n\
         [schedule]\nenabled = true\ncron = \"{cron}\"\n\
         [update]\ncandidates = [\"refit_new\"]\nmin_improvement = 0.5\n{update}"
    );
    let mut p = Policy::parse(&text).expect("valid policy");
    p.data.dir = root.join("incoming");
    p.registry.dir = root.join("models");
    p.state.dir = root.join("state");
    std::fs::create_dir_all(&p.data.dir).unwrap();
    let spec = synth::StreamSpec {
        rows: 1500,
        concept: synth::ClassificationSpec::reference(21),
        drift_at: vec![],
        drift_width: 0,
        drift_magnitude: 1.0,
        rows_per_file: 250,
        timestamps: None,
        seed: 21,
    };
    synth::write_stream(&p.data.dir, &spec).unwrap();
    p
}

struct Running {
    stop: oneshot::Sender<()>,
    status: watch::Receiver<Status>,
    task: tokio::task::JoinHandle<Result<Status, daemon::DaemonError>>,
}

fn start(p: Policy, origin: DateTime<Utc>) -> Running {
    let (trig_tx, trig_rx) = mpsc::channel::<Trigger>(4);
    let (status_tx, status) = watch::channel(Status::default());
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(daemon::run_with(
        p,
        Clock::starting_at(origin),
        async {
            let _ = stop_rx.await;
        },
        trig_tx,
        trig_rx,
        status_tx,
        daemon::service::Service::default(),
    ));
    Running { stop, status, task }
}

/// Waits without letting the runtime idle (so the paused clock stays put);
/// gives up after a minute of real time.
async fn wait(rx: &watch::Receiver<Status>, what: &str, f: impl Fn(&Status) -> bool) -> Status {
    let started = std::time::Instant::now();
    loop {
        {
            let s = rx.borrow();
            if f(&s) {
                return s.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {:?}",
            *rx.borrow()
        );
        tokio::task::yield_now().await;
    }
}

async fn ready(d: &Running) {
    wait(&d.status, "version 1 and 1500 rows", |s| {
        s.live_version == Some(1) && s.rows_ingested == 1500 && s.rows_since_live == 1000
    })
    .await;
}

fn idle(s: &Status) -> bool {
    !s.update_running && !s.update_pending
}

async fn stop(d: Running) -> Status {
    d.stop.send(()).unwrap();
    d.task.await.unwrap().unwrap()
}

#[tokio::test(start_paused = true)]
async fn fires_during_an_update_coalesce_into_one_follow_up() {
    let dir = tempfile::tempdir().unwrap();
    // Daily at 03:00; 100 epochs keep the first update busy (a second or
    // more of real time) while the test fires twice more in milliseconds.
    let p = policy(dir.path(), "0 0 3 * * *", "cooldown_seconds = 0\n", 100);
    let d = start(p, at(5, 0));
    ready(&d).await;

    tokio::time::advance(Duration::from_secs(3 * 3600)).await;
    wait(&d.status, "the first update", |s| s.update_running).await;
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    wait(&d.status, "the second fire", |s| s.triggers == 2).await;
    tokio::time::advance(Duration::from_secs(24 * 3600)).await;
    let s = wait(&d.status, "the third fire", |s| s.triggers == 3).await;
    assert!(
        s.update_running,
        "the fires came while the update ran: {s:?}"
    );
    assert!(s.update_pending);
    assert_eq!(s.triggers_coalesced, 1, "the third fire joined the second");

    let s = wait(&d.status, "the follow-up", |s| {
        s.updates.len() == 2 && idle(s)
    })
    .await;
    assert!(s.updates.iter().all(|u| u.trigger == TriggerKind::Schedule));
    // The follow-up started when the first ended, on the same (still) clock.
    assert_eq!(s.updates[0].started_at, Some(at(5, 3)));
    assert_eq!(s.updates[1].started_at, Some(at(7, 3)));
    let last = stop(d).await;
    assert_eq!(last.updates.len(), 2, "exactly one follow-up");
}

#[tokio::test(start_paused = true)]
async fn the_cooldown_holds_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    // Hourly; two hours of cooldown after an update ends.
    let p = policy(dir.path(), "0 0 * * * *", "cooldown_seconds = 7200\n", 5);
    let d = start(p, at(5, 0));
    ready(&d).await;

    tokio::time::advance(Duration::from_secs(3600)).await;
    let s = wait(&d.status, "the 01:00 update", |s| {
        s.updates.len() == 1 && idle(s)
    })
    .await;
    assert_eq!(s.updates[0].ended_at, Some(at(5, 1)));
    tokio::time::advance(Duration::from_secs(3600)).await;
    let s = wait(&d.status, "the 02:00 fire", |s| s.triggers == 2).await;
    assert_eq!(s.triggers_suppressed, 1, "02:00 is inside the cooldown");
    assert!(idle(&s));
    tokio::time::advance(Duration::from_secs(3600)).await;
    let s = wait(&d.status, "the 03:00 update", |s| {
        s.updates.len() == 2 && idle(s)
    })
    .await;
    assert_eq!(s.updates[1].started_at, Some(at(5, 3)), "two hours after");
    assert_eq!(s.triggers_suppressed, 1);
    stop(d).await;
}

#[tokio::test(start_paused = true)]
async fn the_daily_cap_holds_on_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(
        dir.path(),
        "0 0 * * * *",
        "cooldown_seconds = 0\nmax_updates_per_day = 2\n",
        5,
    );
    let d = start(p, at(5, 0));
    ready(&d).await;

    // Hourly fires from 01:00 on 5 January to 01:00 on the 6th.
    for hour in 1..=25u64 {
        tokio::time::advance(Duration::from_secs(3600)).await;
        wait(&d.status, &format!("fire {hour}"), |s| {
            s.triggers == hour && idle(s)
        })
        .await;
    }
    let s = stop(d).await;
    let starts: Vec<_> = s.updates.iter().map(|u| u.started_at.unwrap()).collect();
    // 01:00 and 02:00 run; 03:00 to 00:00 (22 fires) are capped; at 01:00
    // the next day the 01:00 update is 24 hours old and a third runs.
    assert_eq!(starts, vec![at(5, 1), at(5, 2), at(6, 1)]);
    assert_eq!(s.triggers_suppressed, 22);
}

#[tokio::test(start_paused = true)]
async fn a_fire_missed_while_down_runs_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // Weekly, Monday 03:00. The last fire taken was three weeks before a
    // Thursday start: three fires were missed; one update runs.
    let p = policy(dir.path(), "0 0 3 * * Mon", "cooldown_seconds = 0\n", 5);
    std::fs::create_dir_all(&p.state.dir).unwrap();
    let thursday = at(8, 12);
    let three_weeks_before = thursday - chrono::Duration::days(21);
    ScheduleState {
        last_fire: three_weeks_before,
    }
    .save(&p.state.dir)
    .unwrap();
    let state_dir = p.state.dir.clone();
    let d = start(p, thursday);
    let s = wait(&d.status, "the caught-up update", |s| {
        s.updates.len() == 1 && idle(s)
    })
    .await;
    assert_eq!(s.triggers, 1, "one update for three missed fires");
    assert_eq!(s.updates[0].trigger, TriggerKind::Schedule);
    assert_eq!(ScheduleState::load(&state_dir).unwrap().last_fire, thursday);

    // Next Monday 03:00 fires as usual.
    tokio::time::advance(Duration::from_secs((3 * 24 + 15) * 3600)).await;
    let s = wait(&d.status, "Monday's fire", |s| s.triggers == 2 && idle(s)).await;
    assert_eq!(s.updates.len(), 2);
    assert_eq!(s.updates[1].started_at, Some(at(12, 3)));
    stop(d).await;
}
