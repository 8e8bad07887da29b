//! driftd under a service manager, on the real binary: readiness, status
//! and watchdog messages on a test NOTIFY_SOCKET; SIGHUP with a valid and
//! an invalid policy; SIGTERM in the middle of an update.
#![forbid(unsafe_code)]

mod common;
use common::*;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A policy for these tests; `training` and `update` are whole sections so
/// that a test can make updates slow or fast.
fn policy(root: &Path, training: &str, update: &str, extra: &str) -> PathBuf {
    std::fs::create_dir_all(root.join("incoming")).unwrap();
    let text = format!(
        r#"[data]
dir = "incoming"
features = "f*"
poll_interval_ms = 20
initial_rows = 500
[training]
epochs = 30
{training}
[monitor]
window = 200
[schedule]
enabled = false
[update]
min_new_rows = 200
{update}
[registry]
dir = "models"
[state]
dir = "state"
{extra}"#
    );
    let p = root.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn receive(sock: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 4096];
    sock.recv(&mut buf)
        .ok()
        .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn readiness_status_and_watchdog_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "");
    gen_stream(&root.join("incoming"), 1000, None, 250, 11);
    let sock_path = root.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut child = Running::new(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&policy)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "400000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let mut messages = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = |m: &[String], p: &str| m.iter().any(|x| x.lines().any(|l| l.starts_with(p)));
    // Version 1's first STATUS line may come before any row is scored (no
    // accuracy yet; asserting on that line was a flake under load): wait
    // for the line with the rolling accuracy of scored rows.
    while !(seen(&messages, "READY=1")
        && seen(&messages, "WATCHDOG=1")
        && messages
            .iter()
            .any(|m| m.contains("STATUS=version 1 live, rolling accuracy 0.")))
    {
        assert!(Instant::now() < deadline, "messages so far: {messages:?}");
        messages.extend(receive(&sock));
    }
    // READY=1 comes before any STATUS-only update, with a status line.
    let ready = messages.iter().position(|m| m.contains("READY=1")).unwrap();
    assert!(messages[ready].contains("STATUS="), "{}", messages[ready]);
    assert!(
        messages[..ready].iter().all(|m| !m.starts_with("STATUS=")),
        "{messages:?}"
    );

    signal(&child, "TERM");
    let mut stopping = false;
    while let Some(m) = receive(&sock) {
        if m.contains("STOPPING=1") {
            stopping = true;
            break;
        }
    }
    assert!(stopping, "no STOPPING=1");
    assert!(child.wait().unwrap().success());
}

#[test]
fn sighup_applies_a_valid_policy_and_keeps_the_old_one_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let p = policy(root, "", "", "");
    gen_stream(&root.join("incoming"), 750, None, 250, 12);
    let mut child = spawn_daemon(&p);
    let logs = Logs::collect(&mut child);
    wait_status(root, "version 1", |s| {
        s["live_version"] == 1 && s["files_ingested"] == 3
    });

    // Live changes, and a change that needs a restart.
    policy(root, "learning_rate = 0.02", "", "");
    let text = std::fs::read_to_string(&p)
        .unwrap()
        .replace("window = 200", "window = 100")
        .replace("dir = \"models\"", "dir = \"models-elsewhere\"");
    std::fs::write(&p, text).unwrap();
    signal(&child, "HUP");
    let applied = logs.wait_for(&["config_reloaded", "\"outcome\":\"applied\""], 1);
    let line = &applied[0];
    assert!(line.contains("training.learning_rate"), "{line}");
    assert!(line.contains("monitor.window"), "{line}");
    let restart = logs.wait_for(&["config_reloaded", "restart required: registry.dir"], 1);
    assert!(restart[0].contains("\"level\":\"WARN\""), "{}", restart[0]);

    // An invalid policy: every error logged, the daemon keeps running.
    std::fs::write(
        &p,
        "[data]\ndir = \"incoming\"\nfeatures = []\n[training]\nepochs = -3\nbogus = 1\n",
    )
    .unwrap();
    signal(&child, "HUP");
    logs.wait_for(
        &[
            "config_reloaded",
            "\"outcome\":\"rejected\"",
            "keeps running",
        ],
        1,
    );
    let errors = logs.wait_for(&["config_reloaded", "\"level\":\"ERROR\""], 3);
    let all = errors.join("\n");
    for key in ["data.features", "training.epochs", "bogus"] {
        assert!(all.contains(key), "no error for {key}: {all}");
    }
    assert!(all.contains("policy.toml:"), "errors name the file: {all}");
    assert!(child.try_wait().unwrap().is_none(), "the daemon stopped");

    // Still running on the old policy: a new file is ingested from the old
    // data directory and registry.
    gen_stream(&root.join("more"), 250, None, 250, 13);
    std::fs::rename(
        root.join("more/part-000000.parquet"),
        root.join("incoming/part-000100.parquet"),
    )
    .unwrap();
    wait_status(root, "the new file", |s| s["files_ingested"] == 4);
    assert!(!root.join("models-elsewhere").exists());
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}

#[test]
fn sigterm_during_an_update_abandons_it_cleanly_and_a_restart_reruns_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Fine-tuning for 100000 epochs: the update outlasts the stop timeout.
    let slow = "candidates = [\"continue_new\"]\n[update.fine_tune]\nepochs = 100000";
    let p = policy(root, "", slow, "[service]\nstop_timeout_seconds = 1\n");
    gen_stream(&root.join("incoming"), 1000, None, 250, 14);
    let mut child = spawn_daemon(&p);
    let logs = Logs::collect(&mut child);
    wait_status(root, "version 1 and every file", |s| {
        s["live_version"] == 1 && s["rows_ingested"] == 1000
    });
    signal(&child, "USR1");
    wait_status(root, "the update running", |s| s["update_running"] == true);
    let asked = Instant::now();
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "exit status {status:?}");
    // The bound: stop_timeout_seconds (1 s) plus the time to stop.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    logs.wait_for(&["update_abandoned"], 1);

    // No partial version: version 1 only, no temporary folder.
    let versions: Vec<String> = std::fs::read_dir(root.join("models/versions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(versions, vec!["000001".to_string()], "{versions:?}");
    let live: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("models/live.json")).unwrap()).unwrap();
    assert_eq!(live["version"], 1);
    let manifest: serde_json::Value = common::manifest(root).unwrap();
    assert_eq!(manifest["rows_ingested"], 1000);
    assert!(root.join("state/abandoned_update.json").exists());

    // A restart (with fast fine-tuning) reruns the abandoned update on the
    // same rows and reads no file twice.
    let fast = "candidates = [\"continue_new\"]\n[update.fine_tune]\nepochs = 5";
    policy(root, "", fast, "[service]\nstop_timeout_seconds = 1\n");
    let mut child = spawn_daemon(&p);
    let logs = Logs::collect(&mut child);
    let s = wait_status(root, "the resumed update", |s| {
        s["pid"] == child.id()
            && s["updates"].as_array().is_some_and(|u| !u.is_empty())
            && s["update_running"] == false
    });
    assert_eq!(s["updates"][0]["trigger"], "manual");
    assert_eq!(s["files_ingested"], 0);
    logs.wait_for(&["resuming the manual update"], 1);
    assert!(!root.join("state/abandoned_update.json").exists());
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let manifest: serde_json::Value = common::manifest(root).unwrap();
    assert_eq!(manifest["rows_ingested"], 1000);
}

#[test]
fn sigterm_during_a_backlog_stops_taking_files_and_a_restart_reads_the_rest_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let p = policy(root, "", "", "");
    // 300 small files: reading them all takes seconds (one manifest fsync
    // per file), far more than one poll's budget.
    gen_stream(&root.join("incoming"), 3_000, None, 10, 15);
    let mut child = spawn_daemon(&p);
    let logs = Logs::collect(&mut child);
    // Signal as soon as the backlog is being taken (the first file's log
    // line, not a status snapshot: status.json is written at most every
    // 200 ms, and a fast machine could take all 300 files in between).
    logs.wait_for(&["file_ingested"], 1);
    let asked = Instant::now();
    signal(&child, "TERM");
    let status = child.wait().unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    logs.wait_for(&["daemon_stopped"], 1);
    let manifest = |root: &Path| -> serde_json::Value { common::manifest(root).unwrap() };
    // Whether the stop lands mid-backlog depends on the machine's speed (a
    // fast release build can read all 300 files before the signal arrives:
    // asserting that it did not was a flake on a fresh clone). What must
    // hold either way: a clean exit in time, and after the restart every
    // file counted exactly once.
    let read_first = manifest(root)["files"].as_object().unwrap().len();

    let mut child = spawn_daemon(&p);
    let s = wait_status(root, "the rest of the backlog", |s| {
        s["pid"] == child.id()
            && s["rows_ingested"].as_u64().unwrap() + 10 * read_first as u64 >= 3_000
    });
    assert_eq!(
        s["files_ingested"].as_u64().unwrap() + read_first as u64,
        300,
        "first run: {read_first} files; restart: {}",
        s["files_ingested"]
    );
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let m = manifest(root);
    assert_eq!(m["files"].as_object().unwrap().len(), 300);
    assert_eq!(m["rows_ingested"], 3_000);
}
