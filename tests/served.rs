//! The monitor judges what was served (`data.prediction`) when the files
//! carry it, instead of re-scoring the rows with the live model.

mod common;

use std::path::Path;

use common::*;
use polars::prelude::*;

/// Copies a gen-data file into `dir` (temp name, then rename) with a
/// `served` column: the true label, or its opposite when `wrong`.
fn with_served(src: &Path, dir: &Path, wrong: bool) {
    let mut df = ParquetReader::new(std::fs::File::open(src).unwrap())
        .finish()
        .unwrap();
    let labels: Vec<i64> = df
        .column("label")
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let served: Vec<i64> = labels
        .iter()
        .map(|&l| if wrong { 1 - l } else { l })
        .collect();
    df.with_column(Column::new("served".into(), served))
        .unwrap();
    let name = src.file_name().unwrap().to_string_lossy().into_owned();
    publish_parquet(&mut df, dir, &name);
}

#[test]
fn the_monitor_judges_the_served_predictions() {
    let root = tempfile::tempdir().unwrap();
    let policy = write_policy(root.path(), "");
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("[data]\n", "[data]\nprediction = \"served\"\n")
        // No update: a promotion would reset the rolling window this test
        // reads (the update raced the status read: a flake).
        .replace("[update]\n", "[update]\nmax_updates_per_day = 0\n");
    std::fs::write(&policy, text).unwrap();
    let staging = root.path().join("staging");
    gen_stream(&staging, 2000, None, 250, 7);
    let mut files: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    let incoming = root.path().join("incoming");
    for f in &files[..2] {
        with_served(f, &incoming, false);
    }
    let mut daemon = spawn_daemon(&policy);
    wait_status(root.path(), "version 1", |s| s["live_version"] == 1);
    // The model that is live would score all these rows well (no drift in
    // the stream); what was served turns always wrong after 500 rows, and
    // that is what users got. (Detectors look for a change, so the served
    // stream starts right.)
    for (i, f) in files[2..].iter().enumerate() {
        with_served(f, &incoming, i >= 2);
    }
    let s = wait_status(root.path(), "all rows and an alert", |s| {
        s["rows_ingested"] == 2000 && !s["alerts"].as_array().unwrap().is_empty()
    });
    signal(&daemon, "TERM");
    daemon.wait().unwrap();
    assert_eq!(s["rows_judged_as_served"], 1500, "{s}");
    let accuracy = s["rolling_accuracy"].as_f64().unwrap();
    assert!(accuracy < 0.01, "served accuracy {accuracy}");
    assert_eq!(s["alerts"][0]["kind"], "error", "{}", s["alerts"][0]);
    // Re-scoring the same rows with version 1 would have found them easy.
    let baseline = s["baseline"].as_f64().unwrap();
    assert!(baseline > 0.8, "baseline {baseline}");
}
