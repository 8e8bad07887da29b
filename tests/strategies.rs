//! The update strategies and the tournament end to end, on the real binary
//! and real Parquet files: `driftd update` and `driftd compare`.
#![forbid(unsafe_code)]

mod common;
use common::*;

use driftd::registry::Registry;
use driftd::synth::{self, ClassificationSpec, Concept};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Writes `n` rows of `concept` as one Parquet file.
fn write_rows(path: &std::path::Path, concept: &Concept, n: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    synth::write_parquet(path, &concept.sample(n, &mut rng), None).unwrap();
}

/// A daemon run that ingests `files` (in name order) without alerting, so
/// every row waits for a manual update; returns after it stopped.
fn ingest_all(root: &std::path::Path, extra: &str, expect_files: u64) -> std::path::PathBuf {
    let policy = write_policy(root, extra);
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("window = 200\n", "window = 200\ndetectors = []\n"),
    )
    .unwrap();
    let mut child = spawn_daemon(&policy);
    wait_status(root, "every file ingested", |s| {
        s["files_ingested"] == expect_files
    });
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    policy
}

fn update_json(policy: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["update", "--json", "--config", policy.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = driftd(&args);
    assert!(o.status.success(), "update failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn nothing_is_promoted_when_every_candidate_is_worse_than_the_live_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = Concept::new(&ClassificationSpec::reference(21));
    let b = a.drifted(1.0, 22);
    let inc = root.join("incoming");
    std::fs::create_dir_all(&inc).unwrap();
    // Version 1 learns concept A; the new rows to train on follow concept B,
    // but the newest rows (the holdout) are A again: any candidate that
    // learned B is worse than the live model there.
    write_rows(&inc.join("p0.parquet"), &a, 500, 1);
    for i in 1..=4 {
        write_rows(&inc.join(format!("p{i}.parquet")), &b, 200, 10 + i);
    }
    write_rows(&inc.join("p5.parquet"), &a, 200, 30);
    let policy = ingest_all(root, "", 6);

    let u = update_json(&policy, &[]);
    assert_eq!(u["holdout_rows"], 200);
    assert!(u["promoted"].is_null(), "{u:#}");
    let live = u["live"]["accuracy"].as_f64().unwrap();
    let board = u["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 7);
    for c in board {
        assert_eq!(c["promoted"], false);
        let acc = c["scores"]["accuracy"].as_f64().unwrap();
        assert!(
            acc <= live,
            "{} scored {acc} above the live {live}",
            c["strategy"]
        );
    }
    let reg = Registry::open(&root.join("models")).unwrap();
    assert_eq!(reg.versions().unwrap(), vec![1]);
}

#[test]
fn an_ensemble_version_survives_load_rollback_and_a_further_update() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = Concept::new(&ClassificationSpec::reference(31));
    let b = a.drifted(0.5, 32);
    let inc = root.join("incoming");
    std::fs::create_dir_all(&inc).unwrap();
    write_rows(&inc.join("p0.parquet"), &a, 500, 1);
    for i in 1..=5 {
        write_rows(&inc.join(format!("p{i}.parquet")), &b, 200, 40 + i);
    }
    let policy = ingest_all(root, "[update.ensemble]\nmax_members = 3\n", 6);

    // Version 2: an ensemble of version 1 and a model of the new rows.
    let u = update_json(&policy, &["--strategy", "ensemble_new"]);
    assert_eq!(u["promoted"], 2, "{u:#}");
    let reg = Registry::open(&root.join("models")).unwrap();
    let (meta, model) = reg.load_model(2).unwrap();
    assert_eq!(meta.members.len(), 2);
    // meta.json names the files of the new rows and the seeds.
    let files = meta.files.as_ref().unwrap();
    let names: Vec<&str> = files.list.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "p1.parquet",
            "p2.parquet",
            "p3.parquet",
            "p4.parquet",
            "p5.parquet"
        ]
    );
    assert_eq!(files.rows, 1000);
    let seeds = meta.seeds.as_ref().unwrap();
    assert_eq!(seeds.tournament, seeds.policy + 1);
    assert_eq!(
        meta.update_settings.as_ref().unwrap()["ensemble"]["max_members"],
        3
    );
    assert_eq!(model.members().len(), 2);
    assert!(root
        .join("models/versions/000002/member-1.safetensors")
        .exists());

    // Roll back to 1 and forward to 2 again (the pointer switch a rollback
    // makes), then update the ensemble further on rows that arrive after
    // it: it grows to three members.
    let cfg = policy.to_str().unwrap();
    let o = driftd(&["rollback", "--config", cfg]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.live_version().unwrap(), Some(1));
    let o = driftd(&["promote", "--config", cfg, "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.live_version().unwrap(), Some(2));
    let o = driftd(&["promote", "--config", cfg, "7"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("version 7"), "{}", stderr(&o));
    for i in 6..=8 {
        write_rows(&inc.join(format!("p{i}.parquet")), &b, 200, 40 + i);
    }
    ingest_all(root, "[update.ensemble]\nmax_members = 3\n", 3);
    let u = update_json(&policy, &["--strategy", "ensemble_all", "continue_new"]);
    let v = u["promoted"].as_u64().expect("a further update promotes");
    let (meta, model) = reg.load_model(v).unwrap();
    match meta.strategy.as_str() {
        "ensemble_all" => assert_eq!(model.members().len(), 3),
        // Fine-tuning an ensemble fine-tunes every member.
        "continue_new" => assert_eq!(model.members().len(), 2),
        other => panic!("unexpected winner {other}"),
    }
    assert_eq!(reg.history().unwrap().len(), 5);

    // `versions` lists all of them.
    let o = driftd(&["versions", "--json", "--config", policy.to_str().unwrap()]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
}

#[test]
fn dry_run_promotes_nothing_and_a_second_writer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let a = Concept::new(&ClassificationSpec::reference(41));
    let b = a.drifted(1.0, 42);
    let inc = root.join("incoming");
    std::fs::create_dir_all(&inc).unwrap();
    write_rows(&inc.join("p0.parquet"), &a, 500, 1);
    write_rows(&inc.join("p1.parquet"), &b, 500, 2);
    let policy = ingest_all(root, "", 2);

    let u = update_json(&policy, &["--dry-run", "--strategy", "refit_new"]);
    assert_eq!(u["dry_run"], true);
    assert!(u["promoted"].is_null());
    assert_eq!(
        u["leaderboard"][0]["promoted"], true,
        "refit_new beats v1 on B: {u:#}"
    );
    let reg = Registry::open(&root.join("models")).unwrap();
    assert_eq!(reg.versions().unwrap(), vec![1]);

    let _held =
        driftd::registry::lock::RegistryLock::acquire(&root.join("models"), "the test").unwrap();
    let o = driftd(&["update", "--config", policy.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("locked by the test"), "{}", stderr(&o));
}

#[test]
fn compare_runs_the_reference_experiment_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gen_reference(&root.join("ref"));
    let policy = write_policy(root, "");
    let r = |f: &str| root.join("ref").join(f).display().to_string();
    let (old, new, test) = (
        r("old.parquet"),
        r("new_train.parquet"),
        r("new_test.parquet"),
    );
    let o = driftd(&[
        "compare",
        "--json",
        "--repeats",
        "2",
        "--config",
        policy.to_str().unwrap(),
        "--old",
        &old,
        "--new",
        &new,
        "--test",
        &test,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for row in rows {
        let acc = row["accuracy_mean"].as_f64().unwrap();
        assert!((0.6..=1.0).contains(&acc), "{row}");
        assert!(row["accuracy_std"].as_f64().unwrap() >= 0.0);
        assert!(row["seconds_mean"].as_f64().unwrap() >= 0.0);
        assert_eq!(row["repeats"], 2);
    }
    assert_eq!(rows[0]["strategy"], "none");
}
