//! Regression tests of issue 18's decision failures, on the real binary and
//! the shipped `config/policy.toml` (only paths and columns set):
//!
//! - stuck after a rollback: on Agrawal's gradual drift, an update taken
//!   mid-transition was rolled back on rows the two versions never shared,
//!   and version 1 then stayed live at a coin flip for the rest of the
//!   stream;
//! - blind to a model that is already bad: a daemon started (or restarted)
//!   on a degraded live version learned the degraded error rate as normal
//!   and raised nothing.
#![forbid(unsafe_code)]

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The shipped policy with the data directory, columns and state paths of
/// a test.
fn shipped_policy(root: &Path, data: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.toml");
    let text = std::fs::read_to_string(source).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let data_table = doc["data"].as_table_mut().unwrap();
    data_table.insert("dir".into(), data.display().to_string().into());
    data_table.insert("features".into(), "f*".into());
    data_table.insert("timestamp".into(), "ts".into());
    data_table.insert("poll_interval_ms".into(), 20.into());
    for (section, dir) in [("registry", "models"), ("state", "state")] {
        let t = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(Default::default()));
        t.as_table_mut()
            .unwrap()
            .insert("dir".into(), root.join(dir).display().to_string().into());
    }
    let path = root.join("policy.toml");
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// `gen-data drift` into `dir`: files of 1,000 rows, a row a minute.
fn generate(dir: &Path, generator: &str, drift: &str, rows: usize, drifts: usize, seed: u64) {
    let o = driftd(&[
        "gen-data",
        "drift",
        "--out",
        dir.to_str().unwrap(),
        "--generator",
        generator,
        "--drift",
        drift,
        "--rows",
        &rows.to_string(),
        "--drifts",
        &drifts.to_string(),
        "--width",
        "2500",
        "--rows-per-file",
        "1000",
        "--seconds-per-row",
        "60",
        "--start",
        "1767225600",
        "--seed",
        &seed.to_string(),
    ]);
    assert!(o.status.success(), "gen-data drift: {}", stderr(&o));
}

/// Accuracy of a run over its windows from global row `from` on.
fn accuracy_from(run: &serde_json::Value, from: u64) -> f64 {
    let (scored, correct) = run["windows"]
        .as_array()
        .expect("windows in the JSON")
        .iter()
        .filter(|w| w["first_row"].as_u64().unwrap() >= from)
        .fold((0.0, 0.0), |(s, c), w| {
            let rows = w["rows_scored"].as_f64().unwrap();
            (s + rows, c + rows * w["accuracy"].as_f64().unwrap_or(0.0))
        });
    assert!(scored > 0.0, "no window from row {from}");
    correct / scored
}

/// The stream: Agrawal's functions with gradual drift (width
/// 2,500). After the drift the model must learn the new concept and stay
/// there, whatever the probation decided on the way.
#[test]
fn a_gradual_drift_with_updates_mid_transition_is_learnt_not_stuck() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("history");
    // Seed 2 switches to a function version 1 scores at a coin flip (0.50
    // from row 20,000 on without updates).
    generate(&data, "agrawal", "gradual", 30_000, 1, 2);
    let policy = shipped_policy(root, &data);
    let json = root.join("report.json");
    let o = Command::new(BIN)
        .args(["backtest", "--config"])
        .arg(&policy)
        .arg("--data")
        .arg(&data)
        .arg("--json")
        .arg(&json)
        .args(["--window-rows", "1000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "backtest: {}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let policy_run = run_named(&report, "policy");
    let never = run_named(&report, "never_update");
    // The drift is centred on row 15,000; its last third is the new concept.
    let (ours, theirs) = (
        accuracy_from(policy_run, 20_000),
        accuracy_from(never, 20_000),
    );
    let text = stdout(&o);
    assert!(
        ours > 0.85 && ours > theirs + 0.15,
        "after the drift the policy scored {ours:.3}, never updating {theirs:.3}:\n{text}"
    );
    // Whatever was rolled back, the version live at the end is not version 1.
    let versions = policy_run["versions"].as_array().unwrap();
    let last = versions.last().unwrap();
    assert_ne!(last["version"], 1, "{text}");
}

/// Agrawal's functions, concept A up to row 4,000 and concept B after
/// (abrupt), as 8 files of 1,000 rows generated under `root`, oldest
/// first; and the empty data directory to move them into.
fn abrupt_files(root: &Path) -> (Vec<PathBuf>, PathBuf) {
    let all = root.join("generated");
    generate(&all, "agrawal", "abrupt", 8_000, 1, 3);
    let incoming = root.join("incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&all)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 8);
    (files, incoming)
}

/// A daemon restarted on a live version that is already bad notices it:
/// the shipped detectors compare with the version's own baseline, so the
/// degraded rows raise a drift alert and an update, though an adaptive
/// detector started on them alone sees no change.
#[test]
fn a_restart_on_a_degraded_model_raises_an_alert_and_updates() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (files, incoming) = abrupt_files(root);
    let policy = shipped_policy(root, &incoming);
    let link = |f: &PathBuf| std::fs::rename(f, incoming.join(f.file_name().unwrap())).unwrap();

    // First life: version 1 learns concept A from the first file.
    link(&files[0]);
    let mut first = spawn_daemon(&policy);
    let logs = Logs::collect(&mut first);
    logs.wait_for(&["\"event\":\"file_ingested\""], 1);
    wait_status(root, "version 1 live", |s| s["live_version"] == 1);
    signal(&first, "TERM");
    assert!(first.wait().unwrap().success(), "{}", logs.text());

    // Second life: only concept B arrives. The detectors start empty.
    for f in &files[4..] {
        link(f);
    }
    let mut second = spawn_daemon(&policy);
    let logs = Logs::collect(&mut second);
    let alerts = logs.wait_for(
        &["\"event\":\"drift_alert\"", "\"detector\":\"threshold\""],
        1,
    );
    let updates = logs.wait_for(
        &["\"event\":\"update_started\"", "\"trigger\":\"drift\""],
        1,
    );
    signal(&second, "TERM");
    let _ = second.wait();
    assert!(alerts[0].contains("\"live_version\":1"), "{}", alerts[0]);
    assert!(
        updates[0].contains("\"trigger\":\"drift\""),
        "{}",
        updates[0]
    );
}

/// The shipped policy with `[update.online]` switched `on` or off.
fn with_online(policy: &Path, on: bool, out: &Path) {
    let mut doc: toml::Table = std::fs::read_to_string(policy).unwrap().parse().unwrap();
    let update = doc["update"].as_table_mut().unwrap();
    let online = update
        .entry("online")
        .or_insert_with(|| toml::Value::Table(Default::default()));
    online
        .as_table_mut()
        .unwrap()
        .insert("enabled".into(), on.into());
    std::fs::write(out, toml::to_string(&doc).unwrap()).unwrap();
}

fn backtest_json(policy: &Path, data: &Path, json: &Path) -> serde_json::Value {
    let o = Command::new(BIN)
        .args(["backtest", "--config"])
        .arg(policy)
        .arg("--data")
        .arg(data)
        .arg("--json")
        .arg(json)
        .args(["--window-rows", "1000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "backtest: {}", stderr(&o));
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

/// Issue 18's "learning only after an alarm": on the rotating hyperplane
/// (incremental drift) the daemon updated only after drift alerts. With the
/// shipped online challenger it learns from every file: its versions go
/// live one per file, and the policy scores above the same policy without
/// it.
#[test]
fn on_incremental_drift_the_online_challenger_learns_from_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("history");
    generate(&data, "hyperplane", "incremental", 20_000, 1, 1);
    let shipped = shipped_policy(root, &data);
    let (on, off) = (root.join("on.toml"), root.join("off.toml"));
    with_online(&shipped, true, &on);
    with_online(&shipped, false, &off);
    let with = backtest_json(&on, &data, &root.join("on.json"));
    let without = backtest_json(&off, &data, &root.join("off.json"));
    let (with, without) = (run_named(&with, "policy"), run_named(&without, "policy"));
    let promotions = with["online_promotions"].as_u64().unwrap();
    assert!(promotions >= 5, "{promotions} online versions");
    assert_eq!(without["online_promotions"], 0);
    let accuracy = |r: &serde_json::Value| r["prequential_accuracy"].as_f64().unwrap();
    assert!(
        accuracy(with) > accuracy(without),
        "online {:.4}, without {:.4}",
        accuracy(with),
        accuracy(without)
    );
    let strategies: Vec<&str> = with["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["strategy"].as_str().unwrap())
        .collect();
    assert!(strategies.contains(&"online"), "{strategies:?}");
}

/// The daemon: after a concept change the online challenger beats version
/// 1 on the same rows and is promoted, its later versions follow one per
/// file, `status` says so, and a restart follows on from the same anchor.
#[test]
fn the_daemon_promotes_the_online_challenger_and_a_restart_follows_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (files, incoming) = abrupt_files(root);
    let policy = shipped_policy(root, &incoming);
    // No tournament (drift alerts and continual updates are capped at
    // zero a day): it would hold the challenger while it runs, and its
    // winner would become the anchor.
    let mut doc: toml::Table = std::fs::read_to_string(&policy).unwrap().parse().unwrap();
    doc["update"]
        .as_table_mut()
        .unwrap()
        .insert("max_updates_per_day".into(), 0.into());
    std::fs::write(&policy, toml::to_string(&doc).unwrap()).unwrap();
    let link = |f: &PathBuf| std::fs::rename(f, incoming.join(f.file_name().unwrap())).unwrap();

    link(&files[0]);
    let mut daemon = spawn_daemon(&policy);
    let logs = Logs::collect(&mut daemon);
    wait_status(root, "version 1 live", |s| s["live_version"] == 1);
    // Concept B: the challenger learns it file by file.
    for f in &files[4..7] {
        link(f);
    }
    let first = logs.wait_for(&["\"event\":\"online_challenger_promoted\""], 1);
    assert!(first[0].contains("\"anchor\":1"), "{}", first[0]);
    let online = logs.wait_for(
        &["\"event\":\"model_promoted\"", "\"strategy\":\"online\""],
        2,
    );
    assert_ne!(online[0], online[1]);
    let s = wait_status(root, "the status shows the follower", |s| {
        s["online"]["anchor"] == 1 && s["online"]["promotions"].as_u64() >= Some(2)
    });
    let live = s["live_version"].as_u64().unwrap();
    assert!(live > 1, "{s}");
    let o = driftd(&["status", "--config", policy.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("online challenger: following"),
        "{}",
        stdout(&o)
    );
    signal(&daemon, "TERM");
    assert!(daemon.wait().unwrap().success(), "{}", logs.text());

    // A restart: the live online version is followed from the same anchor.
    let mut again = spawn_daemon(&policy);
    let logs = Logs::collect(&mut again);
    wait_status(root, "following after the restart", |s| {
        s["online"]["anchor"] == 1 && s["live_version"].as_u64() == Some(live)
    });
    link(&files[7]);
    let next = logs.wait_for(
        &["\"event\":\"model_promoted\"", "\"strategy\":\"online\""],
        1,
    );
    assert!(
        next[0].contains(&format!("\"parent\":\"Some({live})\"")),
        "{}",
        next[0]
    );
    // A reload that turns it off drops the challenger.
    with_online(&policy, false, &policy);
    signal(&again, "HUP");
    logs.wait_for(
        &["\"event\":\"config_reloaded\"", "update.online.enabled"],
        1,
    );
    wait_status(root, "no online challenger after the reload", |s| {
        s["online"].is_null()
    });
    signal(&again, "TERM");
    assert!(again.wait().unwrap().success(), "{}", logs.text());
}
