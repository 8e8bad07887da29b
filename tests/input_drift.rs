//! Input drift end to end: the real daemon on real Parquet files stays
//! quiet on rows like version 1's, and names the feature that moved when
//! one does.

mod common;

use std::path::Path;

use common::*;
use polars::prelude::*;

/// Copies a gen-data file into `dir` (temp name, then rename), adding
/// `shift` to feature `f3`.
fn copy_shifted(src: &Path, dir: &Path, shift: f32) {
    let mut df = ParquetReader::new(std::fs::File::open(src).unwrap())
        .finish()
        .unwrap();
    let moved: Vec<f32> = df
        .column("f3")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .map(|v| v + shift)
        .collect();
    df.with_column(Column::new("f3".into(), moved)).unwrap();
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    publish_parquet(&mut df, dir, &name);
}

#[test]
fn input_drift_is_quiet_on_stable_rows_and_names_the_feature_that_moved() {
    let root = tempfile::tempdir().unwrap();
    let policy = write_policy(
        root.path(),
        "[monitor.input]\nwindow = 500\ncheck_every = 250\n",
    );
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        // No update: the test is about the monitor of version 1.
        .replace("[update]\n", "[update]\nmax_updates_per_day = 0\n");
    std::fs::write(&policy, text).unwrap();
    let staging = root.path().join("staging");
    gen_stream(&staging, 6000, None, 500, 11);
    let mut files: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 12);
    let incoming = root.path().join("incoming");
    copy_shifted(&files[0], &incoming, 0.0);
    let mut daemon = spawn_daemon(&policy);
    let logs = Logs::collect(&mut daemon);
    wait_status(root.path(), "version 1", |s| s["live_version"] == 1);

    // 3,500 more rows of the same stream: twelve checks, no alert.
    for f in &files[1..8] {
        copy_shifted(f, &incoming, 0.0);
    }
    let stable = wait_status(root.path(), "the stable rows", |s| {
        s["rows_ingested"] == 4000
    });
    let checked = stable["input_drift"].as_array().unwrap();
    assert!(!checked.is_empty(), "no input check ran: {stable}");
    assert!(
        !logs.text().contains("\"kind\":\"input\""),
        "an input alert on stable rows:\n{}",
        logs.text()
    );

    // f3 moves by a few standard deviations.
    for f in &files[8..] {
        copy_shifted(f, &incoming, 4.0);
    }
    let alert = logs.wait_for(&["\"event\":\"drift_alert\"", "\"kind\":\"input\""], 1);
    assert!(alert[0].contains("\"features\":\"f3"), "{}", alert[0]);
    let s = wait_status(root.path(), "the shifted rows", |s| {
        s["rows_ingested"] == 6000
    });
    signal(&daemon, "TERM");
    daemon.wait().unwrap();
    assert_eq!(s["input_drift"][0]["feature"], "f3", "{s}");
    assert!(s["input_drift"][0]["psi"].as_f64().unwrap() > 0.25, "{s}");
    // The alert reads in its own terms (it once printed the rolling
    // accuracy under a PSI label).
    let status = driftd(&["status", "--config", policy.to_str().unwrap()]);
    let text = stdout(&status);
    assert!(
        text.contains("last alert: input (Warning): features moved: f3 (PSI "),
        "{text}"
    );
}
