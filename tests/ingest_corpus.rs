//! A running daemon ingests a corpus written by pyarrow: every good file's
//! rows exactly once, every bad file quarantined with its reason, and the
//! daemon still running.
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const HUGE_ROWS: usize = 200_000;

fn python() -> String {
    std::env::var("DRIFTD_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn ingest_policy(root: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(root.join("incoming")).unwrap();
    let text = r#"[data]
dir = "incoming"
features = ["f0", "f1", "f2", "f3"]
label = "label"
classes = ["no", "yes"]
poll_interval_ms = 50
initial_rows = 100000000
incomplete_after_ms = 300
batch_rows = 50000
[schedule]
enabled = false
[registry]
dir = "models"
[state]
dir = "state"
"#;
    let p = root.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Waits (bounded) until every name in `names` is in the manifest.
fn wait_manifest(root: &Path, names: &[String]) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(m) = manifest(root) {
            if names.iter().all(|n| m["files"].get(n).is_some()) {
                return m;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {names:?} in the manifest: {:?}",
            manifest(root)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn corpus_of_good_and_bad_files() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let policy = ingest_policy(root);
    let incoming = root.join("incoming");
    let out = Command::new(python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/ingest_corpus.py"
        ))
        .arg(&incoming)
        .arg(HUGE_ROWS.to_string())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "corpus script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let corpus: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut good: BTreeMap<String, u64> = corpus["good"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    let mut bad: BTreeMap<String, String> = corpus["bad"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();

    // Unreadable: a good file's copy with no permissions. Root reads it
    // anyway; then it is an ordinary good file.
    let locked = incoming.join("g7-unreadable.parquet");
    std::fs::copy(incoming.join("g1-snappy.parquet"), &locked).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    if std::fs::File::open(&locked).is_ok() {
        println!(
            "skipping the unreadable case: running as root, so a mode-000 file is still readable; it counts as good"
        );
        good.insert("g7-unreadable.parquet".into(), good["g1-snappy.parquet"]);
    } else {
        bad.insert("g7-unreadable.parquet".into(), "Permission denied".into());
    }

    let mut daemon = spawn_daemon(&policy);

    // A producer still writing a temp file, and a file that vanishes while
    // the daemon scans (deleted right after it appears): neither is counted.
    let tmp_name = incoming.join("g8-late.parquet.tmp");
    std::fs::write(&tmp_name, b"PAR1 still being written").unwrap();
    for i in 0..20 {
        let p = incoming.join(format!("v{i:02}-vanishing.parquet"));
        std::fs::copy(incoming.join("g5-dictpages.parquet"), &p).unwrap();
        std::fs::remove_file(&p).unwrap();
    }

    let mut expected: Vec<String> = good.keys().chain(bad.keys()).cloned().collect();
    let m = wait_manifest(root, &expected);
    // The temp file is then renamed into place: read once, complete.
    std::fs::copy(incoming.join("g3-gzip-ints.parquet"), &tmp_name).unwrap();
    std::fs::rename(&tmp_name, incoming.join("g8-late.parquet")).unwrap();
    good.insert("g8-late.parquet".into(), good["g3-gzip-ints.parquet"]);
    expected.push("g8-late.parquet".into());
    let m = {
        drop(m);
        wait_manifest(root, &expected)
    };

    for (name, rows) in &good {
        let e = &m["files"][name];
        assert_eq!(e["outcome"], "ingested", "{name}: {e}");
        assert_eq!(e["rows"].as_u64(), Some(*rows), "{name}: {e}");
    }
    for (name, reason) in &bad {
        let e = &m["files"][name];
        assert_eq!(e["outcome"], "quarantined", "{name}: {e}");
        let got = e["reason"].as_str().unwrap();
        assert!(
            got.contains(reason.as_str()),
            "{name}: {got:?} lacks {reason:?}"
        );
    }
    let total: u64 = good.values().sum();
    assert_eq!(m["rows_ingested"].as_u64(), Some(total));
    // Nothing else was read: not the vanished files, temporaries, markers,
    // hidden files or names outside the pattern.
    let names: Vec<&String> = m["files"].as_object().unwrap().keys().collect();
    assert_eq!(names.len(), good.len() + bad.len(), "{names:?}");
    let s = wait_status(root, "all files counted", |s| {
        s["rows_ingested"].as_u64() == Some(total)
    });
    assert_eq!(s["files_ingested"].as_u64(), Some(good.len() as u64));
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );

    // Every bad file was logged as a file_quarantined event with its reason.
    signal(&daemon, "TERM");
    let status = daemon.wait().unwrap();
    assert!(status.success(), "daemon exit: {status}");
    let mut logs = String::new();
    daemon
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    for (name, reason) in &bad {
        let logged = logs.lines().any(|l| {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(l) else {
                return false;
            };
            let f = &v;
            f["event"] == "file_quarantined"
                && f["file"] == name.as_str()
                && f["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(reason.as_str()))
        });
        assert!(logged, "no file_quarantined event for {name}");
    }
    let events = logs
        .lines()
        .filter(|l| l.contains("\"file_quarantined\""))
        .count();
    println!(
        "{} files ingested ({total} rows), {} quarantined, {events} quarantine events",
        good.len(),
        bad.len()
    );
}

/// SIGKILL at many points while files are being ingested, restart each
/// time: in the end every row of every file is counted exactly once.
#[test]
fn sigkill_during_ingestion_neither_loses_nor_double_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let incoming = root.join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let policy = root.join("policy.toml");
    // Small batches: each file takes several read steps, so kills land
    // inside files as well as between them.
    std::fs::write(
        &policy,
        r#"[data]
dir = "incoming"
features = "f*"
poll_interval_ms = 20
initial_rows = 100000000
batch_rows = 700
[schedule]
enabled = false
[registry]
dir = "models"
[state]
dir = "state"
"#,
    )
    .unwrap();
    let (files, per_file) = (30, 2000);
    gen_stream(&incoming, files * per_file, None, per_file, 11);
    let files_in = |m: &serde_json::Value| m["files"].as_object().map_or(0, |f| f.len());
    let mut kills = 0;
    for round in 0..12 {
        let mut daemon = spawn_daemon(&policy);
        // Kill points: right at start, and after more and more files.
        let target = round * 2;
        let deadline = Instant::now() + Duration::from_secs(60);
        while manifest(root).map_or(0, |m| files_in(&m)) < target {
            assert!(Instant::now() < deadline, "no progress in round {round}");
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(round as u64 * 3));
        signal(&daemon, "KILL");
        daemon.wait().unwrap();
        kills += 1;
        if manifest(root).is_some_and(|m| files_in(&m) == files) {
            break;
        }
    }
    let mut daemon = spawn_daemon(&policy);
    let names: Vec<String> = (0..files).map(|i| format!("part-{i:06}.parquet")).collect();
    let m = wait_manifest(root, &names);
    assert!(
        daemon.try_wait().unwrap().is_none(),
        "the daemon is running"
    );
    signal(&daemon, "TERM");
    daemon.wait().unwrap();
    let entries = m["files"].as_object().unwrap();
    assert_eq!(entries.len(), files, "{:?}", entries.keys());
    for (name, e) in entries {
        assert_eq!(e["outcome"], "ingested", "{name}: {e}");
        assert_eq!(e["rows"].as_u64(), Some(per_file as u64), "{name}");
    }
    assert_eq!(m["rows_ingested"].as_u64(), Some((files * per_file) as u64));
    // A file recorded twice (re-read after its commit) would bump the
    // sequence past the number of files.
    assert_eq!(
        m["next_seq"].as_u64(),
        Some(files as u64),
        "every file recorded once"
    );
    println!(
        "{kills} SIGKILLs during ingestion; {} rows counted exactly once",
        files * per_file
    );
}

/// inotify wakes the daemon: with a rescan only every ten minutes, a file
/// renamed into place after the first scan is still read at once.
#[test]
fn inotify_wakes_the_daemon_between_rescans() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let incoming = root.join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let policy = root.join("policy.toml");
    std::fs::write(
        &policy,
        r#"[data]
dir = "incoming"
features = "f*"
poll_interval_ms = 600000
initial_rows = 100000000
[schedule]
enabled = false
[registry]
dir = "models"
[state]
dir = "state"
"#,
    )
    .unwrap();
    let staging = root.join("staging");
    gen_stream(&staging, 600, None, 300, 5);
    // One file for the first scan, at start; its manifest entry shows the
    // scan is over.
    std::fs::rename(
        staging.join("part-000000.parquet"),
        incoming.join("part-000000.parquet"),
    )
    .unwrap();
    let mut daemon = spawn_daemon(&policy);
    wait_manifest(root, &["part-000000.parquet".to_string()]);
    let started = Instant::now();
    std::fs::rename(
        staging.join("part-000001.parquet"),
        incoming.join("part-000001.parquet"),
    )
    .unwrap();
    let m = wait_manifest(root, &["part-000001.parquet".to_string()]);
    let waited = started.elapsed();
    assert_eq!(m["rows_ingested"], 600);
    assert!(
        waited < Duration::from_secs(60),
        "took {waited:?}: not woken by inotify"
    );
    println!("a renamed file was ingested {waited:?} after it appeared");
    signal(&daemon, "TERM");
    assert!(daemon.wait().unwrap().success());
}

fn write_df(path: &Path, cols: Vec<polars::prelude::Column>) {
    use polars::prelude::*;
    let mut df = DataFrame::new_infer_height(cols).unwrap();
    ParquetWriter::new(std::fs::File::create(path).unwrap())
        .finish(&mut df)
        .unwrap();
}

/// `data.bad_rows = "drop"`: bad rows are dropped and counted per file; a
/// file with no row left is quarantined.
#[test]
fn bad_rows_are_dropped_and_counted_per_file() {
    use polars::prelude::Column;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let incoming = root.join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let policy = root.join("policy.toml");
    std::fs::write(
        &policy,
        r#"[data]
dir = "incoming"
features = ["f0", "f1"]
bad_rows = "drop"
poll_interval_ms = 20
initial_rows = 100000000
[schedule]
enabled = false
[registry]
dir = "models"
[state]
dir = "state"
"#,
    )
    .unwrap();
    let mut f0: Vec<f64> = (0..100).map(|i| i as f64).collect();
    f0[5] = f64::NAN;
    f0[6] = f64::NEG_INFINITY;
    let mut label: Vec<i64> = (0..100).map(|i| i % 2).collect();
    label[10] = 7;
    label[6] = 9; // the same row twice bad: dropped once
    write_df(
        &incoming.join("a.parquet"),
        vec![
            Column::new("f0".into(), f0),
            Column::new("f1".into(), vec![1.0f32; 100]),
            Column::new("label".into(), label),
        ],
    );
    let f1: Vec<Option<f32>> = (0..50).map(|i| (i != 0).then_some(1.0)).collect();
    write_df(
        &incoming.join("b.parquet"),
        vec![
            Column::new("f0".into(), vec![1.0f64; 50]),
            Column::new("f1".into(), f1),
            Column::new("label".into(), vec![1i64; 50]),
        ],
    );
    write_df(
        &incoming.join("c.parquet"),
        vec![
            Column::new("f0".into(), vec![f64::NAN; 10]),
            Column::new("f1".into(), vec![1.0f32; 10]),
            Column::new("label".into(), vec![1i64; 10]),
        ],
    );
    let daemon = spawn_daemon(&policy);
    let names = ["a.parquet", "b.parquet", "c.parquet"].map(String::from);
    let m = wait_manifest(root, &names);
    let files = &m["files"];
    assert_eq!(files["a.parquet"]["rows"], 97, "{}", files["a.parquet"]);
    assert_eq!(files["a.parquet"]["dropped"], 3);
    assert_eq!(files["b.parquet"]["rows"], 49);
    assert_eq!(files["b.parquet"]["dropped"], 1);
    assert_eq!(files["c.parquet"]["outcome"], "quarantined");
    assert!(
        files["c.parquet"]["reason"]
            .as_str()
            .unwrap()
            .contains("every row was dropped as bad (10 rows)"),
        "{}",
        files["c.parquet"]
    );
    assert_eq!(m["rows_ingested"], 146);
    assert_eq!(m["rows_dropped"], 4);
    wait_status(root, "rows counted", |s| s["rows_dropped"] == 4);
    signal(&daemon, "TERM");
    let out = daemon.into_inner().wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    let logged = logs.lines().any(|l| {
        serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
            v["event"] == "file_ingested" && v["file"] == "a.parquet" && v["dropped_rows"] == 3
        })
    });
    assert!(
        logged,
        "no file_ingested event with dropped_rows = 3: {logs}"
    );
}
