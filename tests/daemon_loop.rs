//! The daemon loop in-process (as mini-redis tests its server): shutdown is a
//! future we control, triggers go through the same channel the schedule
//! uses, and we wait on the published status instead of sleeping.
#![forbid(unsafe_code)]

use std::time::Duration;

use driftd::config::Policy;
use driftd::daemon;
use driftd::status::{Status, Trigger, TriggerKind};
use driftd::synth;
use tokio::sync::{mpsc, oneshot, watch};

fn policy(root: &std::path::Path, cron: Option<&str>) -> Policy {
    policy_with(root, cron, "")
}

fn policy_with(root: &std::path::Path, cron: Option<&str>, extra: &str) -> Policy {
    let text = format!(
        "[data]\nfeatures = \"f*\"\npoll_interval_ms = 10\ninitial_rows = 500\n\
         [training]\nepochs = 20\n[monitor]\nwindow = 200\n\
         [schedule]\nenabled = {}\ncron = \"{}\"\n",
        cron.is_some(),
        cron.unwrap_or("0 0 3 * * Mon")
    ) + extra;
    let mut p = Policy::parse(&text).expect("valid policy");
    p.data.dir = root.join("incoming");
    p.registry.dir = root.join("models");
    p.state.dir = root.join("state");
    std::fs::create_dir_all(&p.data.dir).unwrap();
    p
}

fn stream(dir: &std::path::Path, rows: usize, seed: u64) {
    let spec = synth::StreamSpec {
        rows,
        concept: synth::ClassificationSpec::reference(seed),
        drift_at: vec![],
        drift_width: 0,
        drift_magnitude: 1.0,
        rows_per_file: 250,
        timestamps: None,
        seed,
    };
    synth::write_stream(dir, &spec).unwrap();
}

async fn wait(rx: &mut watch::Receiver<Status>, what: &str, f: impl Fn(&Status) -> bool) -> Status {
    let waited = tokio::time::timeout(Duration::from_secs(120), rx.wait_for(|s| f(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match waited {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("the daemon stopped while waiting for {what}"),
        Err(_) => panic!("timed out waiting for {what}: {:?}", *rx.borrow()),
    }
}

struct Running {
    stop: oneshot::Sender<()>,
    status: watch::Receiver<Status>,
    triggers: mpsc::Sender<Trigger>,
    task: tokio::task::JoinHandle<Result<Status, daemon::DaemonError>>,
}

fn start(p: Policy) -> Running {
    let (trig_tx, trig_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = watch::channel(Status::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let triggers = trig_tx.clone();
    let task = tokio::spawn(daemon::run(
        p,
        async {
            let _ = stop_rx.await;
        },
        trig_tx,
        trig_rx,
        status_tx,
    ));
    Running {
        stop: stop_tx,
        status: status_rx,
        triggers,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_trigger_runs_one_tournament_on_the_new_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), None);
    stream(&p.data.dir, 1500, 11);
    let mut d = start(p);
    let s = wait(&mut d.status, "1500 rows and version 1", |s| {
        s.rows_ingested == 1500 && s.live_version == Some(1)
    })
    .await;
    assert_eq!(s.rows_since_live, 1000);

    d.triggers.send(Trigger::Manual).await.unwrap();
    let s = wait(&mut d.status, "the update", |s| {
        !s.updates.is_empty() && !s.update_running
    })
    .await;
    let u = &s.updates[0];
    assert_eq!(u.trigger, TriggerKind::Manual);
    // 1000 new rows: the newest 20% are the holdout.
    assert_eq!(u.holdout_rows, 200);
    assert_eq!(u.train_rows, 800);
    assert_eq!(u.leaderboard.len(), 7);
    for c in &u.leaderboard {
        let acc = c.scores.expect("every candidate trains").accuracy;
        if c.promoted {
            assert!(acc > u.live_accuracy, "{u:?}");
        }
    }
    assert_eq!(s.live_version, u.promoted.or(Some(1)));
    // Regression: right after a promotion the status showed the previous
    // version's 1000 rows as the new version's.
    if u.promoted.is_some() {
        assert_eq!(
            s.rows_since_live, 0,
            "nothing scored by the new version yet"
        );
        assert_eq!(s.rolling_accuracy, None);
    }

    d.stop.send(()).unwrap();
    let last = d.task.await.unwrap().unwrap();
    assert!(!last.update_running);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_without_enough_rows_is_rejected_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy(dir.path(), None);
    stream(&p.data.dir, 500, 12);
    let mut d = start(p);
    wait(&mut d.status, "version 1", |s| s.live_version == Some(1)).await;
    d.triggers.send(Trigger::Manual).await.unwrap();
    // No new rows since version 1: the request is dropped, nothing pends.
    wait(&mut d.status, "the request handled", |s| {
        !s.update_pending && !s.update_running
    })
    .await;
    d.stop.send(()).unwrap();
    let last = d.task.await.unwrap().unwrap();
    assert!(last.updates.is_empty());
    assert_eq!(last.live_version, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cron_schedule_fires_an_update() {
    let dir = tempfile::tempdir().unwrap();
    // Every second: the scheduler runs on the wall clock, so this is the one
    // test that waits for real time (about a second).
    let p = policy(dir.path(), Some("* * * * * *"));
    stream(&p.data.dir, 1000, 13);
    let mut d = start(p);
    let s = wait(&mut d.status, "a scheduled update", |s| {
        s.updates.iter().any(|u| u.trigger == TriggerKind::Schedule)
    })
    .await;
    assert!(s.live_version.is_some());
    d.stop.send(()).unwrap();
    d.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_memory_is_bounded_by_the_reservoir_however_many_rows_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy_with(
        dir.path(),
        None,
        "[update]\nreservoir_rows = 300\nmax_new_rows = 400\nmin_new_rows = 200\nmin_holdout_rows = 50\n\
         candidates = [\"continue_all\", \"refit_all\"]\n",
    );
    stream(&p.data.dir, 6000, 14); // 24 files
    let mut d = start(p);
    wait(&mut d.status, "6000 rows", |s| s.rows_ingested == 6000).await;
    d.triggers.send(Trigger::Manual).await.unwrap();
    let s = wait(&mut d.status, "the update", |s| {
        !s.updates.is_empty() && !s.update_running
    })
    .await;
    let u = &s.updates[0];
    assert_eq!(u.old_rows, 300, "old rows come from the bounded reservoir");
    assert_eq!(u.train_rows + u.holdout_rows, 400, "new rows are capped");
    for c in &u.leaderboard {
        // *_all strategies train on the reservoir plus the new training rows.
        assert_eq!(c.train_rows, 300 + u.train_rows, "{c:?}");
    }
    d.stop.send(()).unwrap();
    d.task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_that_scores_worse_live_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    // No drift detectors: the updates here are the test's own.
    let p = policy_with(
        dir.path(),
        None,
        "[update]\ncandidates = [\"refit_new\", \"continue_new\"]\n\
         [update.rollback]\nwatch_rows = 500\nmargin = 0.05\n",
    );
    let mut p = p;
    p.monitor.detectors.clear();
    // 500 rows of concept A (version 1's), then 2000 of concept B, staged
    // outside the data directory and moved in a few files at a time; then
    // 1000 more rows of concept A.
    let staging = dir.path().join("staging");
    let spec = synth::StreamSpec {
        rows: 2500,
        concept: synth::ClassificationSpec::reference(31),
        drift_at: vec![500],
        drift_width: 0,
        drift_magnitude: 1.0,
        rows_per_file: 250,
        timestamps: None,
        seed: 31,
    };
    let files = synth::write_stream(&staging, &spec).unwrap();
    let back = synth::StreamSpec {
        rows: 1000,
        drift_at: vec![],
        seed: 32,
        ..spec
    };
    let staging_back = dir.path().join("staging-back");
    let files_back = synth::write_stream(&staging_back, &back).unwrap();
    let incoming = p.data.dir.clone();
    let registry_dir = p.registry.dir.clone();
    let feed = |range: std::ops::Range<usize>| {
        for f in &files[range] {
            std::fs::rename(f, incoming.join(f.file_name().unwrap())).unwrap();
        }
    };
    feed(0..2);
    let mut d = start(p);
    wait(&mut d.status, "version 1 and 500 rows", |s| {
        s.live_version == Some(1) && s.rows_ingested == 500
    })
    .await;
    // Version 2 is made on the rows of concept B.
    feed(2..10);
    wait(&mut d.status, "2500 rows", |s| s.rows_ingested == 2500).await;
    d.triggers.send(Trigger::Manual).await.unwrap();
    let s = wait(&mut d.status, "the update", |s| {
        !s.updates.is_empty() && !s.update_running
    })
    .await;
    assert_eq!(
        s.live_version,
        Some(2),
        "the update promotes: {:?}",
        s.updates[0]
    );
    let winner = s.updates[0]
        .leaderboard
        .iter()
        .find(|c| c.promoted)
        .unwrap()
        .strategy
        .clone();

    // Concept A comes back right after the promotion: on version 2's
    // probation rows version 1, which scores them too, is far more accurate.
    for (i, f) in files_back.iter().enumerate() {
        let name = format!("part-{:06}.parquet", 10 + i);
        std::fs::rename(f, incoming.join(name)).unwrap();
    }
    let s = wait(&mut d.status, "the rollback", |s| s.rollbacks == 1).await;
    assert_eq!(s.live_version, Some(1));
    let history = std::fs::read_to_string(registry_dir.join("history.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "rollback");
    assert_eq!(last["version"], 1);
    assert!(
        last["reason"]
            .as_str()
            .unwrap()
            .contains("version 2 scored"),
        "{last}"
    );

    // The next update leaves the rolled-back strategy out.
    d.triggers.send(Trigger::Manual).await.unwrap();
    let s = wait(&mut d.status, "the next update", |s| {
        s.updates.len() == 2 && !s.update_running
    })
    .await;
    let strategies: Vec<&str> = s.updates[1]
        .leaderboard
        .iter()
        .map(|c| c.strategy.as_str())
        .collect();
    assert!(!strategies.contains(&winner.as_str()), "{strategies:?}");
    assert_eq!(strategies.len(), 1);
    d.stop.send(()).unwrap();
    d.task.await.unwrap().unwrap();
}
