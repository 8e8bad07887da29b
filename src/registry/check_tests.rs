//! Unit tests of the start-up check: clean-up, broken versions, fallback, history repairs.

use std::fs;

use super::super::test_support::{flip_last_byte, meta, write_live};
use super::super::*;
use crate::config::Init;
use crate::fsutil;
use crate::model::{Classifier, Mlp};

#[test]
fn corrupt_checkpoint_is_refused_and_leftovers_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    write_live(&reg, 1, 1);
    flip_last_byte(&dir.path().join("versions/000001").join(CHECKPOINT));
    assert!(matches!(
        reg.load_model(1),
        Err(RegistryError::ChecksumMismatch { .. })
    ));

    fs::create_dir(dir.path().join("versions/.000002.tmp-1")).unwrap();
    fs::write(dir.path().join("versions/.000002.tmp-1/meta.json"), b"{").unwrap();
    fs::write(dir.path().join(".live.json.tmp-77"), b"{\"ver").unwrap();
    // Another process mid-write: a read-only open removes nothing.
    let (_, report) = Registry::open_checked(dir.path(), "test", CheckMode::ReadOnly).unwrap();
    assert!(report.removed.is_empty());
    assert!(dir.path().join("versions/.000002.tmp-1").exists());
    // The only version is broken and live: nothing to fall back to.
    let err = Registry::open_checked(dir.path(), "test", CheckMode::Repair)
        .err()
        .unwrap();
    assert!(
        matches!(err, RegistryError::NoGoodVersion { live: 1, .. }),
        "{err}"
    );
    assert!(!dir.path().join("versions/.000002.tmp-1").exists());
    assert!(!dir.path().join(".live.json.tmp-77").exists());
    assert_eq!(reg.versions().unwrap(), vec![1]);
    assert_eq!(reg.recorded_broken()[0].version, 1);
    // The user's files stay where they were.
    assert!(dir.path().join("versions/000001").join(CHECKPOINT).exists());
}

#[test]
fn a_broken_live_version_falls_back_to_the_newest_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    for v in 1..=4 {
        write_live(&reg, v, v);
    }
    // 3 is corrupt, 4 (live) lost a member file.
    flip_last_byte(&dir.path().join("versions/000003").join(CHECKPOINT));
    fs::remove_file(dir.path().join("versions/000004").join(CHECKPOINT)).unwrap();
    let (reg, report) =
        Registry::open_checked(dir.path(), "driftd test", CheckMode::Repair).unwrap();
    let broken: Vec<u64> = report.broken.iter().map(|b| b.version).collect();
    assert_eq!(broken, vec![3, 4]);
    assert!(
        report.broken[0].reason.contains("checksum"),
        "{:?}",
        report.broken
    );
    assert!(
        report.broken[1].reason.contains("model.safetensors"),
        "{:?}",
        report.broken
    );
    assert_eq!(reg.live_version().unwrap(), Some(2));
    let last = reg.history().unwrap().pop().unwrap();
    assert_eq!(last.event, "fallback");
    assert_eq!((last.version, last.previous), (2, Some(4)));
    assert!(
        last.reason.contains("live version 4 is broken"),
        "{}",
        last.reason
    );
    assert!(last.by.unwrap().starts_with("driftd test (pid "));
    assert_eq!(report.fallback.unwrap().version, 2);
    // Recorded durably; a second check changes nothing.
    let recorded = reg.recorded_broken();
    assert_eq!(recorded.len(), 2);
    let (_, again) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
    assert!(again.fallback.is_none());
    assert_eq!(reg.recorded_broken(), recorded);
    // Restoring the file clears the mark.
    write_live(&Registry::open(&dir.path().join("other")).unwrap(), 4, 4);
    fs::copy(
        dir.path().join("other/versions/000004").join(CHECKPOINT),
        dir.path().join("versions/000004").join(CHECKPOINT),
    )
    .unwrap();
    let (_, again) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
    assert_eq!(again.broken.len(), 1);
    assert_eq!(reg.recorded_broken().len(), 1);
}

#[test]
fn an_unreadable_pointer_falls_back_and_torn_history_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    write_live(&reg, 1, 1);
    write_live(&reg, 2, 2);
    fs::write(dir.path().join(LIVE), b"garbage").unwrap();
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join(HISTORY))
        .unwrap();
    std::io::Write::write_all(&mut f, b"{\"at\":\"20").unwrap();
    let (reg, report) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
    assert_eq!(reg.live_version().unwrap(), Some(2));
    assert!(report.fallback.unwrap().reason.contains("unreadable"));
    let text = fs::read_to_string(dir.path().join(HISTORY)).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<HistoryEntry>(l).is_ok()));
}

#[test]
fn a_pointer_switch_missing_from_the_history_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path()).unwrap();
    write_live(&reg, 1, 1);
    let m = meta(2);
    let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, 2));
    reg.write_version(m, &model).unwrap();
    // The pointer moved, then the process died before the history line.
    fsutil::write_atomic(&dir.path().join(LIVE), br#"{"version":2}"#).unwrap();
    Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
    let last = reg.history().unwrap().pop().unwrap();
    assert_eq!(
        (last.event.as_str(), last.version, last.previous),
        ("recovered", 2, Some(1))
    );
}
