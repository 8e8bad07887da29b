//! Log output of the real binary: under journald (stderr is the
//! JOURNAL_STREAM) `<N>` syslog priorities and no timestamps; the policy's
//! log.filter, which RUST_LOG overrides.
#![forbid(unsafe_code)]

mod common;
use common::*;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs the daemon until it has read every file, with stderr going to a
/// file that JOURNAL_STREAM names (as systemd does for a journal stream).
fn run_under_journald(root: &Path, rust_log: Option<&str>) -> String {
    let policy = write_policy(root, "[log]\nfilter = \"warn\"\n");
    let log_path = root.join(format!("stderr-{}.log", rust_log.is_some()));
    let log = std::fs::File::create(&log_path).unwrap();
    let meta = log.metadata().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["run", "--config"])
        .arg(&policy)
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log));
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let mut child = cmd.spawn().unwrap();
    wait_status(root, "every file read", |s| {
        s["pid"] == child.id() && s["files_ingested"] == 4 && s["files_quarantined"] == 1
    });
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(&log_path).unwrap()
}

#[test]
fn journald_lines_carry_priorities_and_no_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gen_stream(&root.join("incoming"), 1000, None, 250, 21);
    std::fs::write(root.join("incoming/part-000050.parquet"), b"not parquet").unwrap();

    // The policy's filter (warn): only the quarantine warning.
    let logs = run_under_journald(root, None);
    let lines: Vec<&str> = logs.lines().collect();
    assert!(!lines.is_empty());
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("<4>") || l.starts_with("<3>")),
        "{logs}"
    );
    let quarantine = lines
        .iter()
        .find(|l| l.contains("file_quarantined"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        quarantine.starts_with("<4> WARN quarantined part-000050.parquet"),
        "{quarantine}"
    );
    // No timestamp: the journal has its own.
    assert!(!quarantine.contains("Z "), "{quarantine}");

    // RUST_LOG wins over the policy: info lines at priority 6. The second
    // run from empty state and registry reads the same files again.
    std::fs::remove_dir_all(root.join("state")).unwrap();
    std::fs::remove_dir_all(root.join("models")).unwrap();
    let logs = run_under_journald(root, Some("info"));
    let started = logs
        .lines()
        .find(|l| l.contains("daemon_started"))
        .unwrap_or_else(|| panic!("{logs}"));
    assert!(
        started.starts_with("<6> INFO driftd is watching"),
        "{started}"
    );
    assert!(logs.lines().any(|l| l.starts_with("<4>")), "{logs}");
}

/// The scheduler's library logs "Uninited" and "Job creator created" at
/// INFO when the weekly schedule starts; a user's journal should not.
#[test]
fn no_dependency_chatter_at_the_default_level() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gen_stream(&root.join("incoming"), 1000, None, 250, 22);
    let policy = write_policy(root, "");
    let text = std::fs::read_to_string(&policy).unwrap().replace(
        "[schedule]\nenabled = false\n",
        "[schedule]\nenabled = true\n",
    );
    std::fs::write(&policy, text).unwrap();
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&policy)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let logs = Logs::collect(&mut child);
    // The schedule is set up before the daemon says it is watching.
    logs.wait_for(&["driftd is watching"], 1);
    wait_status(root, "every file read", |s| s["files_ingested"] == 4);
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let text = logs.text();
    assert!(text.contains("INFO"), "no INFO line at all: {text}");
    for chatter in ["Uninited", "Job creator created"] {
        assert!(!text.contains(chatter), "{chatter:?} in:\n{text}");
    }
}
