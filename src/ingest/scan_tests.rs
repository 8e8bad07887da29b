//! Unit tests of the scan: names, replacements, renames, incomplete files
//! and symlinks (with the same rule when re-reading from the manifest).

use std::fs;

use chrono::Utc;
use polars::prelude::*;

use super::*;
use crate::config::Policy;
use crate::ingest::manifest::{Manifest, ManifestEntry, Outcome};
use crate::ingest::read_file;
use crate::ingest::reread::{rows_from_manifest, RereadLimits};
use crate::ingest::safe_open::open_no_follow;
use crate::ingest::test_util::{schema, write};
use crate::ingest::TrailerProblem;

#[test]
fn names_that_are_not_data_are_skipped() {
    assert!(is_candidate_name("part-1.parquet"));
    for n in [
        ".part-1.parquet",
        "part-1.parquet.tmp",
        "x.inprogress",
        "_SUCCESS",
        "_committed_123",
        "a.parquet._COPYING_",
    ] {
        assert!(!is_candidate_name(n), "{n}");
    }
}

#[test]
fn scan_skips_known_files_and_sees_replacements() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("in");
    fs::create_dir_all(data.join("day=1")).unwrap();
    fs::create_dir_all(data.join("_temporary")).unwrap();
    let mut policy = Policy::default();
    policy.data.dir = data.clone();
    policy.state.dir = dir.path().join("state");
    fs::create_dir_all(&policy.state.dir).unwrap();
    let cols = || {
        vec![
            Column::new("a".into(), [1.0f32]),
            Column::new("b".into(), [1.0f32]),
            Column::new("y".into(), [0i64]),
        ]
    };
    let p = data.join("a.parquet");
    write(&p, cols());
    write(&data.join("day=1/b.parquet"), cols());
    write(&data.join("_temporary/c.parquet"), cols());
    write(&data.join(".d.parquet.tmp"), cols());
    fs::write(data.join("notes.txt"), b"x").unwrap();
    let mut ing = Ingestor::open(&policy).unwrap();
    let found = ing.scan().unwrap();
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a.parquet"]);
    policy.data.recursive = true;
    let mut ing = Ingestor::open(&policy).unwrap();
    let found = ing.scan().unwrap();
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a.parquet", "day=1/b.parquet"]);
    assert!(found[0].problem.is_none());
    assert_eq!(found[0].identity.footer_sha256.len(), 64);
    ing.commit(
        &found[0],
        Outcome::Ingested {
            rows: 1,
            dropped: 0,
        },
    )
    .unwrap();
    assert_eq!(ing.scan().unwrap().len(), 1);
    // The same bytes written again (new inode): not read again.
    let bytes = fs::read(&p).unwrap();
    fs::remove_file(&p).unwrap();
    fs::write(&p, &bytes).unwrap();
    assert_eq!(ing.scan().unwrap().len(), 1);
    // Different content under the same name: a new file.
    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32, 2.0]),
            Column::new("b".into(), [1.0f32, 2.0]),
            Column::new("y".into(), [0i64, 1]),
        ],
    );
    let again = ing.scan().unwrap();
    assert!(again[0].replaced);
    // A file moved (same inode, same bytes) is the same file.
    fs::create_dir_all(data.join("day=2")).unwrap();
    fs::rename(data.join("day=1/b.parquet"), data.join("day=2/b.parquet")).unwrap();
    let b = found[1].clone();
    ing.commit(
        &b,
        Outcome::Ingested {
            rows: 1,
            dropped: 0,
        },
    )
    .unwrap();
    let after_move = ing.scan().unwrap();
    assert_eq!(after_move.len(), 1, "{after_move:?}");
    assert_eq!(after_move[0].name, "a.parquet");
    assert!(ing.manifest.files.contains_key("day=2/b.parquet"));
    assert!(!ing.manifest.files.contains_key("day=1/b.parquet"));
    // The manifest on disk survives a restart.
    let reopened = Ingestor::open(&policy).unwrap();
    assert_eq!(reopened.manifest.rows_ingested, 2);
    assert!(reopened.manifest.files.contains_key("day=2/b.parquet"));
}

#[test]
fn incomplete_files_wait_then_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut policy = Policy::default();
    policy.data.dir = dir.path().to_path_buf();
    policy.state.dir = dir.path().join(".state");
    policy.data.incomplete_after_ms = 60_000;
    let p = dir.path().join("a.parquet");
    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32]),
            Column::new("y".into(), [0i64]),
        ],
    );
    let full = fs::read(&p).unwrap();
    fs::write(&p, &full[..full.len() - 3]).unwrap();
    let mut ing = Ingestor::open(&policy).unwrap();
    assert!(ing.scan().unwrap().is_empty(), "still being written");
    policy.data.incomplete_after_ms = 0;
    let mut ing = Ingestor::open(&policy).unwrap();
    let found = ing.scan().unwrap();
    assert!(
        matches!(
            &found[0].problem,
            Some(FileProblem::BadTrailer(TrailerProblem::NoEndMagic))
        ),
        "{:?}",
        found[0].problem
    );
    // A settle interval holds back even a complete file that just changed.
    fs::write(&p, &full).unwrap();
    policy.data.settle_ms = 60_000;
    let mut ing = Ingestor::open(&policy).unwrap();
    assert!(ing.scan().unwrap().is_empty());
}

#[test]
fn symlinks_are_read_inside_the_data_directory_and_refused_out_of_it() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let outside = root.path().join("elsewhere");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    let cols = || {
        vec![
            Column::new("a".into(), [1.0f32, 2.0]),
            Column::new("b".into(), [3.0f32, 4.0]),
            Column::new("y".into(), [0i64, 1]),
        ]
    };
    write(&data.join("sub/real.parquet"), cols());
    write(&outside.join("secret.parquet"), cols());
    std::os::unix::fs::symlink(data.join("sub/real.parquet"), data.join("in.parquet")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.parquet"), data.join("out.parquet")).unwrap();
    let scan = |follow: bool| {
        let mut policy = Policy::default();
        policy.data.dir = data.clone();
        policy.data.follow_symlinks = follow;
        policy.state.dir = root.path().join(format!("state-{follow}"));
        let mut ingestor = Ingestor::open(&policy).unwrap();
        ingestor.scan().unwrap()
    };
    let files = scan(false);
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["in.parquet", "out.parquet"]);
    assert_eq!(files[0].problem, None);
    assert_eq!(
        files[0].path,
        fs::canonicalize(data.join("sub/real.parquet")).unwrap()
    );
    assert_eq!(read_file(&files[0].path, &schema()).unwrap().len(), 2);
    let reason = files[1].problem.as_ref().expect("refused").to_string();
    assert!(
        reason.contains("secret.parquet") && reason.contains("data.follow_symlinks"),
        "{reason}"
    );
    let files = scan(true);
    assert!(files.iter().all(|f| f.problem.is_none()), "{files:?}");
    // A link swapped in after the scan is not followed when opened.
    let err = open_no_follow(&data.join("in.parquet")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ELOOP));

    // Re-reading ingested files after a restart follows the same rule:
    // a link re-pointed out of the directory since it was ingested is
    // skipped (regression: rows_from_manifest followed any link).
    let mut manifest = Manifest::default();
    let meta = fs::metadata(data.join("sub/real.parquet")).unwrap();
    for (seq, name) in [(1, "in.parquet"), (2, "sub/real.parquet")] {
        manifest.files.insert(
            name.into(),
            ManifestEntry {
                identity: FileIdentity::of(&meta),
                outcome: Outcome::Ingested {
                    rows: 2,
                    dropped: 0,
                },
                seq,
                at: Utc::now(),
            },
        );
    }
    let reread = |follow_symlinks: bool| {
        let limits = RereadLimits {
            last_seq: 0,
            max_old: usize::MAX,
            max_new: usize::MAX,
            follow_symlinks,
        };
        rows_from_manifest(&data, &manifest, &schema(), limits)
            .1
            .len()
    };
    assert_eq!(reread(false), 4);
    fs::remove_file(data.join("in.parquet")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.parquet"), data.join("in.parquet")).unwrap();
    assert_eq!(reread(false), 2);
    assert_eq!(reread(true), 4);
}
