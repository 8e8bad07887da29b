//! Fault injection against the real daemon: a full disk during a version
//! write and during a manifest write, a read-only state directory, the data
//! directory vanishing and coming back, a policy replaced with garbage (and
//! deleted) then fixed under SIGHUP, SIGTERM right at start-up, and the wall
//! clock jumping back. Each must give a clear error naming what and where,
//! lose no data, and recover without a restart.
//!
//! Full and read-only disks are real where the test may mount (root with
//! `CAP_SYS_ADMIN`): a 16 MiB tmpfs filled up, or remounted read-only.
//! Everywhere, and also there, the same cases run through the test hook of
//! `fsutil::injected_fault` (`DRIFTD_FAULT_FILE`), which fails the daemon's
//! durable writes with ENOSPC / EROFS before they touch the disk: so no
//! variant is ever skipped silently; the output says which ran.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The daemon's stderr, collected line by line.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    fn follow(child: &mut Child) -> Logs {
        let logs = Logs::default();
        let lines = logs.0.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        logs
    }

    fn matching(&self, parts: &[&str]) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .cloned()
            .collect()
    }

    /// Waits (bounded) for `n` lines containing every one of `parts`.
    fn wait_for(&self, parts: &[&str], n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let found = self.matching(parts);
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} log lines with {parts:?}; logs:\n{}",
                self.0.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn(policy: &Path, fault_file: Option<&Path>) -> (Running, Logs) {
    let mut cmd = Command::new(BIN);
    cmd.args(["--log-format", "json", "run", "--config"])
        .arg(policy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = fault_file {
        cmd.env("DRIFTD_FAULT_FILE", f);
    }
    let mut child = Running::new(cmd.spawn().expect("driftd run starts"));
    let logs = Logs::follow(&mut child);
    (child, logs)
}

fn stop(mut child: Running) {
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

/// A policy with the state (and, with `registry_in_vol`, the registry) in
/// `root/vol`, where the faults are made.
fn vol_policy(root: &Path, registry_in_vol: bool, extra: &str) -> PathBuf {
    std::fs::create_dir_all(root.join("incoming")).unwrap();
    std::fs::create_dir_all(root.join("vol")).unwrap();
    let registry = if registry_in_vol {
        "vol/models"
    } else {
        "models"
    };
    let text = format!(
        r#"[data]
dir = "incoming"
features = "f*"
poll_interval_ms = 20
initial_rows = 500
[training]
epochs = 20
[monitor]
window = 200
[schedule]
enabled = false
[update]
candidates = ["refit_new"]
min_new_rows = 200
cooldown_seconds = 0
[update.rollback]
enabled = false
[registry]
dir = "{registry}"
[state]
dir = "vol/state"
{extra}"#
    );
    let p = root.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// 2 files of concept A (version 1 trains on them), then drifted files:
/// moved into `incoming` one at a time by [`deliver`].
fn make_pool(root: &Path) -> PathBuf {
    let pool = root.join("pool");
    gen_stream(&pool, 2000, Some(500), 250, 5);
    pool
}

fn deliver(root: &Path, index: usize) {
    let name = format!("part-{index:06}.parquet");
    std::fs::rename(
        root.join("pool").join(&name),
        root.join("incoming").join(&name),
    )
    .unwrap();
}

/// [`wait_status`] for the state directory in `root/vol`.
fn wait_vol(root: &Path, what: &str, f: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let path = root.join("vol/state/status.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        if let Some(s) = s.filter(|s| f(s)) {
            return s;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn manifest_of(root: &Path) -> driftd::ingest::Manifest {
    driftd::ingest::Manifest::load(&root.join("vol/state/manifest.json")).expect("manifest loads")
}

/// The manifest holds files 0..n exactly once, 250 rows each.
fn assert_exactly_once(root: &Path, n: usize) {
    let m = manifest_of(root);
    assert_eq!(m.files.len(), n, "{:?}", m.files.keys().collect::<Vec<_>>());
    assert_eq!(m.next_seq, n as u64, "a file recorded twice");
    assert_eq!(m.rows_ingested, 250 * n as u64);
}

fn can_mount() -> bool {
    let probe = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(probe.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        umount(probe.path());
    }
    ok
}

fn umount(dir: &Path) {
    let ok = Command::new("umount").arg(dir).status().unwrap().success();
    assert!(ok, "umount {}", dir.display());
}

fn remount(dir: &Path, mode: &str) {
    let ok = Command::new("mount")
        .args(["-o", &format!("remount,{mode}")])
        .arg(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "remount {mode} {}", dir.display());
}

/// How a fault is made: a real tmpfs on `root/vol`, or the test hook.
enum Disk {
    Tmpfs { vol: PathBuf },
    Hook { file: PathBuf, vol: PathBuf },
}

impl Disk {
    fn new(root: &Path, real: bool) -> Disk {
        let vol = root.join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        if real {
            let ok = Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=16m", "tmpfs"])
                .arg(&vol)
                .status()
                .unwrap()
                .success();
            assert!(ok, "mount tmpfs");
            Disk::Tmpfs { vol }
        } else {
            Disk::Hook {
                file: root.join("fault"),
                vol,
            }
        }
    }

    fn hook(&self) -> Option<&Path> {
        match self {
            Disk::Hook { file, .. } => Some(file),
            Disk::Tmpfs { .. } => None,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Disk::Tmpfs { .. } => "tmpfs",
            Disk::Hook { .. } => "injected",
        }
    }

    fn fill(&self) {
        match self {
            Disk::Tmpfs { vol } => {
                // Fill to the last byte.
                use std::io::Write;
                let mut f = std::fs::File::create(vol.join("filler")).unwrap();
                let block = vec![0u8; 64 * 1024];
                while f.write_all(&block).is_ok() {}
                while f.write_all(&block[..1]).is_ok() {}
            }
            Disk::Hook { file, vol } => {
                std::fs::write(file, format!("enospc {}\n", vol.display())).unwrap()
            }
        }
    }

    fn read_only(&self) {
        match self {
            Disk::Tmpfs { vol } => remount(vol, "ro"),
            Disk::Hook { file, vol } => {
                std::fs::write(file, format!("erofs {}\n", vol.display())).unwrap()
            }
        }
    }

    fn heal(&self, was_read_only: bool) {
        match self {
            Disk::Tmpfs { vol } if was_read_only => remount(vol, "rw"),
            Disk::Tmpfs { vol } => std::fs::remove_file(vol.join("filler")).unwrap(),
            Disk::Hook { file, .. } => std::fs::remove_file(file).unwrap(),
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Disk::Tmpfs { vol } = self {
            let _ = Command::new("umount").arg(vol).status();
        }
    }
}

fn variants() -> Vec<bool> {
    if can_mount() {
        vec![true, false]
    } else {
        println!("cannot mount a tmpfs here (not root?): the injected variant only");
        vec![false]
    }
}

/// A full disk while files arrive (manifest writes fail) and while an
/// update promotes (the version write fails); then space comes back.
#[test]
fn a_full_disk_loses_nothing_and_recovers_without_a_restart() {
    for real in variants() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let policy = vol_policy(root, true, "");
        make_pool(root);
        let disk = Disk::new(root, real);
        let (child, logs) = spawn(&policy, disk.hook());
        deliver(root, 0);
        deliver(root, 1);
        wait_vol(root, "version 1", |s| {
            s["live_version"] == 1 && s["files_ingested"] == 2
        });

        disk.fill();
        // Drifted files: ingested while nothing can be written; their drift
        // triggers an update whose promotion cannot be written either.
        for i in 2..6 {
            deliver(root, i);
        }
        logs.wait_for(&["file_ingested"], 6);
        // A commit's append fails ("cannot persist"), or, when the append
        // still fits in the journal's last page (tmpfs), the rewrite of
        // manifest.json does ("cannot write the manifest", once).
        let manifest_errors = logs.wait_for(&["\"level\":\"ERROR\"", "manifest"], 1);
        assert!(
            manifest_errors[0].contains("No space left on device")
                && manifest_errors[0].contains("vol/state/manifest"),
            "{}",
            manifest_errors[0]
        );
        signal(&child, "USR1");
        let version_errors = logs.wait_for(&["cannot write the new version"], 1);
        assert!(
            version_errors[0].contains("No space left on device")
                && version_errors[0].contains("000002"),
            "{}",
            version_errors[0]
        );
        // status.json is rewritten at most every 200 ms: its error may come
        // after the version's.
        logs.wait_for(&["cannot write", "status.json"], 1);
        let models = root.join("vol/models");
        assert_eq!(
            driftd::registry::Registry::open(&models)
                .unwrap()
                .live_version()
                .unwrap(),
            Some(1)
        );
        let leftovers: Vec<_> = std::fs::read_dir(models.join("versions"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().starts_with('.'))
            .collect();
        assert!(
            leftovers.is_empty(),
            "a failed version write left {leftovers:?}"
        );
        assert!(child_running(&child));
        let status_errors = logs.matching(&["cannot write", "status.json"]);
        assert_eq!(status_errors.len(), 1, "said once: {status_errors:?}");

        // Space again: the next file's commit writes the whole manifest, the
        // next update promotes; no restart.
        disk.heal(false);
        deliver(root, 6);
        signal(&child, "USR1");
        wait_vol(root, "a new version and 7 files", |s| {
            s["live_version"].as_u64() >= Some(2) && s["files_ingested"] == 7
        });
        assert_exactly_once(root, 7);
        stop(child);
        assert_exactly_once(root, 7);
        println!("full disk ({}): ok", disk.name());
    }
}

fn child_running(child: &Child) -> bool {
    Path::new(&format!("/proc/{}", child.id())).exists()
}

/// A read-only state directory: files are still read and counted, every
/// write failure is an error naming the file; once writable again the
/// manifest catches up without a restart, and a restart reads nothing twice.
#[test]
fn a_read_only_state_directory_loses_nothing_and_recovers() {
    for real in variants() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let policy = vol_policy(root, false, "");
        make_pool(root);
        let disk = Disk::new(root, real);
        std::fs::create_dir_all(root.join("vol/state")).unwrap();
        let (child, logs) = spawn(&policy, disk.hook());
        deliver(root, 0);
        deliver(root, 1);
        wait_vol(root, "version 1", |s| {
            s["live_version"] == 1 && s["files_ingested"] == 2
        });
        disk.read_only();
        deliver(root, 2);
        deliver(root, 3);
        logs.wait_for(&["file_ingested"], 4);
        let errors = logs.wait_for(&["cannot persist the manifest"], 2);
        assert!(
            errors[0].contains("Read-only file system") && errors[0].contains("vol/state/manifest"),
            "{}",
            errors[0]
        );
        logs.wait_for(&["cannot write", "status.json", "Read-only"], 1);
        disk.heal(true);
        deliver(root, 4);
        wait_vol(root, "5 files", |s| s["files_ingested"] == 5);
        assert_exactly_once(root, 5);
        stop(child);
        // A restart reads nothing again.
        let (child, _logs) = spawn(&policy, disk.hook());
        let pid = child.id();
        wait_vol(root, "the restart", |s| s["pid"] == pid);
        std::thread::sleep(Duration::from_millis(300));
        stop(child);
        assert_exactly_once(root, 5);
        println!("read-only state directory ({}): ok", disk.name());
    }
}

/// The data directory disappears (moved away), then comes back, once as
/// itself and once as a fresh copy (new inodes, same bytes) with a new file.
#[test]
fn the_data_directory_vanishing_and_coming_back_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let policy = vol_policy(root, false, "");
    make_pool(root);
    let (child, logs) = spawn(&policy, None);
    deliver(root, 0);
    deliver(root, 1);
    wait_vol(root, "version 1", |s| {
        s["live_version"] == 1 && s["files_ingested"] == 2
    });
    let incoming = root.join("incoming");
    let away = root.join("incoming.away");

    std::fs::rename(&incoming, &away).unwrap();
    let gone = logs.wait_for(&["cannot scan the data directory"], 1);
    assert!(
        gone[0].contains("incoming"),
        "names the directory: {}",
        gone[0]
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        logs.matching(&["cannot scan the data directory"]).len(),
        1,
        "said once per outage, not at every poll"
    );
    std::fs::rename(
        root.join("pool/part-000002.parquet"),
        away.join("part-000002.parquet"),
    )
    .unwrap();
    std::fs::rename(&away, &incoming).unwrap();
    logs.wait_for(&["readable again"], 1);
    wait_vol(root, "3 files", |s| s["files_ingested"] == 3);

    // Gone again; back as a copy (new inodes) plus a new file.
    std::fs::rename(&incoming, &away).unwrap();
    logs.wait_for(&["cannot scan the data directory"], 2);
    std::fs::create_dir(&incoming).unwrap();
    for e in std::fs::read_dir(&away).unwrap() {
        let e = e.unwrap();
        let tmp = incoming.join(format!(".{}.tmp", e.file_name().to_string_lossy()));
        std::fs::copy(e.path(), &tmp).unwrap();
        std::fs::rename(&tmp, incoming.join(e.file_name())).unwrap();
    }
    deliver(root, 3);
    logs.wait_for(&["readable again"], 2);
    wait_vol(root, "4 files", |s| s["files_ingested"] == 4);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        logs.matching(&["file_ingested"]).len(),
        4,
        "the copies are not read again"
    );
    stop(child);
    assert_exactly_once(root, 4);
}

/// A policy replaced with garbage, then deleted, each followed by SIGHUP:
/// rejected with an error naming the file, the daemon keeps its policy and
/// keeps ingesting; fixed and SIGHUP again: applied.
#[test]
fn a_garbage_policy_under_sighup_is_rejected_then_the_fix_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let policy = vol_policy(root, false, "");
    let good = std::fs::read_to_string(&policy).unwrap();
    make_pool(root);
    let (child, logs) = spawn(&policy, None);
    deliver(root, 0);
    deliver(root, 1);
    wait_vol(root, "version 1", |s| s["live_version"] == 1);

    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&policy, &garbage).unwrap();
    signal(&child, "HUP");
    logs.wait_for(&["config_reloaded", "rejected"], 1);
    // Each problem is its own error line, naming the file.
    let errors = logs.wait_for(&["\"level\":\"ERROR\"", "policy.toml"], 1);
    println!("garbage policy: {}", errors[0]);
    deliver(root, 2);
    wait_vol(root, "a file after the garbage", |s| {
        s["files_ingested"] == 3
    });

    std::fs::remove_file(&policy).unwrap();
    signal(&child, "HUP");
    logs.wait_for(&["config_reloaded", "rejected"], 2);
    let errors = logs.wait_for(&["\"level\":\"ERROR\"", "policy.toml", "No such file"], 1);
    println!("deleted policy: {}", errors[0]);
    deliver(root, 3);
    wait_vol(root, "a file after the deletion", |s| {
        s["files_ingested"] == 4
    });

    std::fs::write(&policy, good.replace("window = 200", "window = 300")).unwrap();
    signal(&child, "HUP");
    let applied = logs.wait_for(&["config_reloaded", "applied"], 1);
    assert!(applied[0].contains("monitor.window"), "{}", applied[0]);
    assert!(child_running(&child));
    stop(child);
    assert_exactly_once(root, 4);
}

/// Regression (found by the chaos test): the SIGTERM handler was installed
/// only when the main loop first polled it, after the first status.json;
/// a SIGTERM in between killed the daemon with the default action.
#[test]
fn sigterm_right_after_start_up_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let policy = write_policy(root, "");
    for _ in 0..5 {
        let _ = std::fs::remove_file(root.join("state/status.json"));
        let child = spawn_daemon(&policy);
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        while status(root).is_none_or(|s| s["pid"] != pid) {
            assert!(Instant::now() < deadline, "no status");
            std::thread::sleep(Duration::from_millis(1));
        }
        signal(&child, "TERM");
        let out = child.into_inner().wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}: {}", out.status, stderr(&out));
    }
}

mod clock {
    //! The wall clock jumping back, on a paused clock in-process (the
    //! system clock cannot be moved by a test).
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};
    use driftd::config::Policy;
    use driftd::daemon;
    use driftd::status::{Status, Trigger};
    use driftd::synth;
    use driftd::trigger::Clock;
    use tokio::sync::{mpsc, oneshot, watch};

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0).unwrap()
    }

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

    /// Lets the daemon handle whatever is due without moving the clock.
    async fn settle() {
        for _ in 0..2000 {
            tokio::task::yield_now().await;
        }
    }

    fn idle(s: &Status) -> bool {
        !s.update_running && !s.update_pending
    }

    /// Hourly updates; the clock jumps back two hours after the 01:00 fire
    /// and one hour during the 02:00 update: the occurrences that already
    /// ran do not run again (no burst), no update ends before it started,
    /// nothing panics.
    #[tokio::test(start_paused = true)]
    async fn the_clock_jumping_back_neither_repeats_fires_nor_makes_negative_durations() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let text = "[data]\nfeatures = \"f*\"\npoll_interval_ms = 1000\ninitial_rows = 500\n\
             [training]\nepochs = 5\n[monitor]\nwindow = 200\n\
             [schedule]\nenabled = true\ncron = \"0 0 * * * *\"\n\
             [update]\ncandidates = [\"refit_new\"]\nmin_improvement = 0.5\ncooldown_seconds = 0\n";
        let mut p = Policy::parse(text).expect("valid policy");
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
        let clock = Clock::starting_at(at(5, 0));
        let (trig_tx, trig_rx) = mpsc::channel::<Trigger>(4);
        let (status_tx, status) = watch::channel(Status::default());
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(daemon::run_with(
            p,
            clock.clone(),
            async {
                let _ = stop_rx.await;
            },
            trig_tx,
            trig_rx,
            status_tx,
            daemon::service::Service::default(),
        ));
        wait(&status, "version 1 and 1500 rows", |s| {
            s.live_version == Some(1) && s.rows_ingested == 1500
        })
        .await;

        tokio::time::advance(Duration::from_secs(3600)).await;
        wait(&status, "the 01:00 update", |s| {
            s.updates.len() == 1 && idle(s)
        })
        .await;
        assert!(
            clock.jump(-chrono::Duration::hours(2)),
            "a paused clock jumps"
        );
        // The wall clock passes 00:00 and 01:00 again: both already ran.
        for _ in 0..2 {
            tokio::time::advance(Duration::from_secs(3600)).await;
            settle().await;
        }
        let s = wait(&status, "idle", idle).await;
        assert_eq!(s.triggers, 1, "00:00 and 01:00 ran before the jump: {s:?}");
        assert_eq!(s.updates.len(), 1);

        // 02:00 is new. Jump back an hour while its update runs.
        tokio::time::advance(Duration::from_secs(3600)).await;
        wait(&status, "the 02:00 fire", |s| s.triggers == 2).await;
        clock.jump(-chrono::Duration::hours(1));
        let s = wait(&status, "the 02:00 update", |s| {
            s.updates.len() == 2 && idle(s)
        })
        .await;
        assert_eq!(s.updates[1].started_at, Some(at(5, 2)));
        for u in &s.updates {
            assert!(u.ended_at.unwrap() >= u.started_at.unwrap(), "{u:?}");
        }
        stop.send(()).unwrap();
        let last = task.await.unwrap().expect("the daemon stops cleanly");
        assert_eq!(last.triggers, 2);
    }
}
