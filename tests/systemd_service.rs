//! The installed unit under a real systemd: `scripts/systemd-test.sh` boots
//! a throwaway systemd as PID 1 of new namespaces, on an overlay of the
//! host's root whose writable layer is a tmpfs, and drives it with
//! `systemctl`: `make install` of this test's binary, start (READY=1 and the
//! STATUS= line), a good and a bad `systemctl reload`, SIGUSR1, the watchdog
//! restarting a stopped daemon, stop, `make uninstall` keeping the registry,
//! and no dependency chatter at INFO in the journal (docs/testing.md).
//!
//! Skipped, with the reason printed, where it cannot run (not root, no
//! systemd, no overlay or namespaces); `DRIFTD_SYSTEMD_TEST_REQUIRED=1` makes
//! a skip a failure. The script bounds itself (`timeout`, 300 s) and tears
//! the sandbox down on every exit.
#![forbid(unsafe_code)]

use std::process::Command;
use std::time::Instant;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_driftd");
/// The script's exit status for "cannot run here".
const SKIPPED: i32 = 77;

#[test]
fn the_installed_unit_under_a_real_systemd() {
    let started = Instant::now();
    let o = Command::new("bash")
        .arg(format!("{ROOT}/scripts/systemd-test.sh"))
        .arg(BIN)
        .arg(ROOT)
        .output()
        .expect("bash runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let seconds = started.elapsed().as_secs_f64();
    match o.status.code() {
        Some(0) => println!("{out}the unit under a real systemd: passed in {seconds:.0} s"),
        Some(SKIPPED) => {
            let reason = out
                .lines()
                .find_map(|l| l.strip_prefix("skip: "))
                .unwrap_or("(the script gave no reason)");
            let required = std::env::var("DRIFTD_SYSTEMD_TEST_REQUIRED").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "DRIFTD_SYSTEMD_TEST_REQUIRED=1 but the test cannot run: {reason}\n{out}"
            );
            println!("skipped: {reason}");
        }
        _ => panic!(
            "scripts/systemd-test.sh failed ({}) after {seconds:.0} s:\n{out}",
            o.status
        ),
    }
}
