//! `driftd demo` tells the whole story: drift, alert, tournament, version 2,
//! recovery.
#![forbid(unsafe_code)]

mod common;
use common::*;

#[test]
fn demo_alerts_after_the_drift_and_recovers_with_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = driftd(&["demo", "--json", "--dir", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "demo failed: {}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).expect("demo --json prints JSON");
    let drift = s["drift_at_row"].as_u64().unwrap();

    let alerts = s["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty(), "no drift alert");
    // The trace shows the alert came after the drift, not before.
    let trace = s["trace"].as_array().unwrap();
    assert!(trace
        .iter()
        .any(|p| p["rows_total"].as_u64().unwrap() > drift));

    let versions = s["versions"].as_array().unwrap();
    let v2 = versions
        .iter()
        .find(|v| v["version"] == 2)
        .expect("version 2");
    assert_eq!(v2["trigger"], "drift");
    assert_eq!(v2["live"], true);

    let after_drift = s["accuracy_after_drift"].as_f64().unwrap();
    let after_update = s["accuracy_after_update"].as_f64().unwrap();
    let before = s["accuracy_before_drift"].as_f64().unwrap();
    assert!(before > 0.8, "before drift: {before}");
    assert!(
        after_update > after_drift + 0.1,
        "after update {after_update} not clearly above after drift {after_drift}"
    );

    // Every promoted candidate beat the live model on the holdout.
    for u in s["updates"].as_array().unwrap() {
        for c in u["leaderboard"].as_array().unwrap() {
            if c["promoted"] == true {
                assert!(
                    c["scores"]["accuracy"].as_f64().unwrap()
                        > u["live_accuracy"].as_f64().unwrap()
                );
            }
        }
    }

    // The registry holds what the summary says, and `versions` agrees.
    let policy = dir.path().join("policy.toml");
    let o = driftd(&["versions", "--json", "--config", policy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), versions.len());
}

#[test]
fn demo_human_output_names_the_parts() {
    let o = driftd(&["demo"]);
    assert!(o.status.success(), "demo failed: {}", stderr(&o));
    let out = stdout(&o);
    for part in [
        "drift alerts:",
        "leaderboard",
        "versions:",
        "after the update",
        "files and policy: a temporary directory, deleted at exit",
    ] {
        assert!(out.contains(part), "missing {part:?} in:\n{out}");
    }
    let logs = stderr(&o);
    assert!(
        logs.contains("drift_alert"),
        "no drift_alert event in the logs"
    );
    assert!(
        logs.contains("model_promoted"),
        "no model_promoted event in the logs"
    );
}

/// Regression: a second demo in the same directory waited 5 minutes for
/// files the first one's manifest had already taken, then failed.
#[test]
fn demo_in_a_used_directory_refuses_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("policy.toml"), "").unwrap();
    let o = driftd(&["demo", "--dir", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("not empty (a previous demo?)") && err.contains(dir.path().to_str().unwrap()),
        "{err}"
    );
}
