//! The systemd unit: `systemd-analyze verify` is clean and
//! `systemd-analyze security --offline=true` rates its exposure 2.0 or
//! below. Skipped (with a printed reason) where systemd-analyze is absent.
#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/driftd.service");
const INSTALLED_BIN: &str = "/usr/local/bin/driftd";

fn systemd_analyze() -> Option<()> {
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => {
            println!("skipped: systemd-analyze is not installed");
            None
        }
    }
}

/// `verify` checks that every Exec path exists; the unit names the
/// installed path, so verify a copy that points at the test binary.
fn unit_with_test_binary(dir: &Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(UNIT).unwrap();
    assert!(
        text.contains(INSTALLED_BIN),
        "the unit runs {INSTALLED_BIN}"
    );
    let copy = dir.join("driftd.service");
    std::fs::write(&copy, text.replace(INSTALLED_BIN, common::BIN)).unwrap();
    copy
}

#[test]
fn unit_verifies_clean() {
    if systemd_analyze().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let unit = unit_with_test_binary(tmp.path());
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    println!("systemd-analyze verify: {}{}", stdout, stderr);
    assert!(o.status.success(), "verify failed: {stdout}{stderr}");
    // verify reports problems as warnings on stderr and may still exit 0.
    let driftd_lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("driftd.service"))
        .collect();
    assert!(driftd_lines.is_empty(), "verify warnings: {driftd_lines:?}");
}

#[test]
fn unit_exposure_is_at_most_2() {
    if systemd_analyze().is_none() {
        return;
    }
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(UNIT)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line in: {out}{}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    println!("{line}");
    // "→ Overall exposure level for driftd.service: 1.1 OK 🙂"
    let number: f64 = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the exposure in {line:?}"));
    assert!(number <= 2.0, "exposure {number} > 2.0: {out}");
}

#[test]
fn unit_keeps_libtorch_working() {
    // oneDNN's JIT needs writable+executable memory.
    let text = std::fs::read_to_string(UNIT).unwrap();
    let set = text
        .lines()
        .any(|l| l.trim_start().starts_with("MemoryDenyWriteExecute="));
    assert!(!set, "MemoryDenyWriteExecute= breaks libtorch's JIT");
}
