//! `driftd run` on real Parquet files: version 1 from the first rows, bad
//! files quarantined without stopping, SIGTERM exits cleanly, and a restart
//! neither loses nor double-counts a file.
#![forbid(unsafe_code)]

mod common;
use common::*;

use polars::prelude::*;

fn manifest(root: &std::path::Path) -> serde_json::Value {
    common::manifest(root).expect("a manifest")
}

fn write_df(path: &std::path::Path, cols: Vec<Column>) {
    let mut df = DataFrame::new_infer_height(cols).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

#[test]
fn daemon_ingests_quarantines_stops_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "");
    let incoming = root.join("incoming");
    gen_stream(&incoming, 1500, None, 250, 3);

    // Bad input of several kinds, beside the good files.
    std::fs::write(
        incoming.join("part-000002-garbage.parquet"),
        b"not parquet at all",
    )
    .unwrap();
    let mut cols: Vec<Column> = (0..20)
        .map(|i| Column::new(format!("f{i}").into(), vec![0.5f32; 10]))
        .collect();
    cols.push(Column::new("label".into(), vec![7i64; 10]));
    write_df(&incoming.join("part-000003-bad-label.parquet"), cols);
    std::fs::write(
        incoming.join("part-000009.parquet.tmp"),
        b"still being written",
    )
    .unwrap();
    std::fs::write(incoming.join(".part-000010.parquet"), b"hidden").unwrap();

    let mut child = spawn_daemon(&policy);
    let s = wait_status(root, "6 files ingested, 2 quarantined", |s| {
        s["files_ingested"] == 6 && s["files_quarantined"] == 2 && s["live_version"] == 1
    });
    assert_eq!(s["rows_ingested"], 1500);
    // Still running after the bad files.
    assert!(child.try_wait().unwrap().is_none(), "the daemon stopped");

    let m = manifest(root);
    assert_eq!(m["rows_ingested"], 1500);
    let files = m["files"].as_object().unwrap();
    assert_eq!(files.len(), 8);
    let garbage = &files["part-000002-garbage.parquet"];
    assert_eq!(garbage["outcome"], "quarantined");
    assert!(
        garbage["reason"].as_str().unwrap().contains("Parquet"),
        "{garbage}"
    );
    let bad_label = &files["part-000003-bad-label.parquet"];
    assert!(
        bad_label["reason"].as_str().unwrap().contains("label 7"),
        "{bad_label}"
    );
    // User data is never deleted.
    assert!(incoming.join("part-000002-garbage.parquet").exists());

    signal(&child, "TERM");
    let out = child.into_inner().wait_with_output().unwrap();
    assert!(out.status.success(), "exit status {:?}", out.status);
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("\"event\":\"file_quarantined\""), "{logs}");
    assert!(logs.contains("\"event\":\"model_promoted\""), "{logs}");

    // Restart: nothing is read twice; a new file is read once.
    gen_stream(&root.join("more"), 250, None, 250, 4);
    std::fs::rename(
        root.join("more/part-000000.parquet"),
        incoming.join("part-000100.parquet"),
    )
    .unwrap();
    let mut child = spawn_daemon(&policy);
    wait_status(root, "the new file", |s| s["files_ingested"] == 1);
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let m = manifest(root);
    assert_eq!(m["rows_ingested"], 1750);
    assert_eq!(m["files"].as_object().unwrap().len(), 9);

    // status and versions read the daemon's files.
    let o = driftd(&["status", "--json", "--config", policy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["live_version"], 1);
    assert_eq!(st["daemon_running"], false);
}

#[test]
fn daemon_with_a_bad_policy_refuses_to_start_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, "[data]\nfeatures = []\n").unwrap();
    let o = driftd(&["run", "--config", p.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("data.features"), "{}", stderr(&o));
}

#[test]
fn sigusr1_requests_an_update() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "");
    gen_stream(&root.join("incoming"), 1000, None, 250, 5);
    let mut child = spawn_daemon(&policy);
    let s = wait_status(root, "version 1 and 500 new rows", |s| {
        s["live_version"] == 1 && s["rows_ingested"] == 1000
    });
    assert_eq!(s["daemon_running"], serde_json::Value::Null); // not part of status.json
    signal(&child, "USR1");
    let s = wait_status(root, "a manual update", |s| {
        s["updates"].as_array().is_some_and(|u| !u.is_empty()) && s["update_running"] == false
    });
    assert_eq!(s["updates"][0]["trigger"], "manual");
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    assert_eq!(common::status(root).unwrap()["stopped"], true);
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(snapshot(&e.path()));
        } else {
            out.push((
                e.path(),
                std::fs::read(e.path()).unwrap(),
                m.modified().unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_second_daemon_on_the_same_state_refuses_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "");
    gen_stream(&root.join("incoming"), 500, None, 250, 6);
    let first = spawn_daemon(&policy);
    let pid = first.id();
    wait_status(root, "the first daemon serves version 1", |s| {
        s["pid"] == pid && s["live_version"] == 1 && s["files_ingested"] == 2
    });
    // Frozen, it still holds the lock and writes nothing meanwhile.
    signal(&first, "STOP");
    let before = (
        snapshot(&root.join("state")),
        snapshot(&root.join("models")),
    );
    let o = driftd(&["run", "--config", policy.to_str().unwrap()]);
    let after = (
        snapshot(&root.join("state")),
        snapshot(&root.join("models")),
    );
    signal(&first, "CONT");
    assert!(!o.status.success());
    let state = root.join("state").canonicalize().unwrap();
    let expected = format!(
        "error: another driftd (pid {pid}) is running on state directory {} (lock {})",
        state.display(),
        state.join("driftd.lock").display()
    );
    assert!(stderr(&o).contains(&expected), "{}", stderr(&o));
    assert!(before == after, "the refused daemon changed the state");

    // A SIGKILLed daemon leaves the lock behind it: a restart takes it.
    signal(&first, "KILL");
    let _ = first.into_inner().wait_with_output();
    let mut second = spawn_daemon(&policy);
    let pid = second.id();
    wait_status(root, "the restarted daemon", |s| s["pid"] == pid);
    signal(&second, "TERM");
    assert!(second.wait().unwrap().success());
}

/// A test that fails while its daemon runs does not leave it running: the
/// handle `spawn_daemon` returns kills and reaps it when dropped.
#[test]
fn a_failing_test_leaves_no_daemon_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "");
    gen_stream(&root.join("incoming"), 1000, None, 250, 5);
    let pid = std::sync::Mutex::new(None);
    let failed = std::panic::catch_unwind(|| {
        let daemon = spawn_daemon(&policy);
        *pid.lock().unwrap() = Some(daemon.id());
        wait_status(root, "the daemon runs", |s| s["pid"] == daemon.id());
        panic!("the test fails while its daemon runs");
    });
    assert!(failed.is_err());
    let pid = pid.lock().unwrap().expect("the daemon started");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "daemon {pid} outlived its failed test"
    );
}

/// After a restart, `status` counts every file the manifest holds, and
/// labels the new process's own counts as such (it once showed only the
/// last process's, unlabelled).
#[test]
fn status_after_a_restart_counts_the_manifest_and_labels_this_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "");
    let staging = root.join("staging");
    gen_stream(&staging, 1500, None, 250, 9);
    let mut files: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let incoming = root.join("incoming");
    let link = |f: &std::path::PathBuf| {
        std::fs::hard_link(f, incoming.join(f.file_name().unwrap())).unwrap()
    };
    files[..4].iter().for_each(link);
    std::fs::write(incoming.join("zz-garbage.parquet"), b"not parquet").unwrap();
    let mut first = spawn_daemon(&policy);
    wait_status(root, "the first run's files", |s| {
        s["files_ingested"] == 4 && s["files_quarantined"] == 1
    });
    signal(&first, "TERM");
    assert!(first.wait().unwrap().success());

    files[4..].iter().for_each(link);
    let mut second = spawn_daemon(&policy);
    let s = wait_status(root, "the second run's files", |s| {
        s["pid"] == second.id() && s["files_ingested"] == 2
    });
    assert_eq!(s["manifest_files_ingested"], 6, "{s}");
    assert_eq!(s["manifest_files_quarantined"], 1, "{s}");
    assert_eq!(s["manifest_rows_ingested"], 1500, "{s}");
    // Regression: the trace started anew at a restart (`report` drew an
    // empty plot). It is carried over and keeps counting rows over runs.
    let rows: Vec<u64> = s["trace"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rows_total"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [250, 500, 750, 1000, 1250, 1500], "{s}");
    let text = stdout(&driftd(&["status", "--config", policy.to_str().unwrap()]));
    assert!(
        text.contains(
            "6 files ingested, 1 quarantined, 1500 rows (since its start: 2 files, 0 quarantined, 500 rows)"
        ),
        "{text}"
    );
    // The quarantined file is named with its reason, though the running
    // process never saw it.
    let listed = text
        .lines()
        .skip_while(|l| !l.starts_with("quarantined files (1 of 1"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        listed.starts_with("  zz-garbage.parquet (") && listed.contains("Parquet"),
        "{text}"
    );
    signal(&second, "TERM");
    assert!(second.wait().unwrap().success());
}
