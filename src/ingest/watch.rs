//! The inotify watcher: only a hint that wakes the daemon early (the scan
//! is the truth), so it must not wake on the scan's own reads.

use std::path::Path;

/// Whether a watch event means the directory may have changed. notify's
/// inotify backend also reports opens, reads and closes without a write:
/// the scan itself opens the directory and reads files, so waking on those
/// made every scan trigger the next one, and an idle daemon rescanned
/// hundreds of times a second (regression test in `tests`). A close after
/// a write (a producer writing in place) still wakes.
pub fn wakes(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Starts watching `dir` for changes; every event that [`wakes`] calls
/// `wake`. The watcher stops when the returned value is dropped.
pub fn watch(
    dir: &Path,
    recursive: bool,
    wake: impl Fn() + Send + 'static,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::Watcher;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Errors (queue overflow) also wake: the rescan finds what was missed.
        if event.as_ref().is_ok_and(|e| !wakes(&e.kind)) {
            return;
        }
        wake()
    })?;
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    watcher.watch(dir, mode)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use polars::prelude::*;

    use super::*;
    use crate::ingest::read_file;
    use crate::ingest::test_util::{schema, write};

    #[test]
    fn the_scans_own_reads_do_not_wake_the_loop() {
        use notify::Watcher;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir_all(&dir).unwrap();
        write(
            &dir.join("a.parquet"),
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [2.0f32]),
                Column::new("y".into(), [0i64]),
            ],
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            let _ = tx.send(e.unwrap());
        })
        .unwrap();
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .unwrap();
        // What a scan does: list the directory, read a file's footer and
        // rows.
        for _ in 0..3 {
            let _ = fs::read_dir(&dir).unwrap().count();
            assert_eq!(
                read_file(&dir.join("a.parquet"), &schema()).unwrap().len(),
                1
            );
        }
        // Then a file arrives the recommended way (renamed in).
        fs::write(root.path().join("b.tmp"), b"x").unwrap();
        fs::rename(root.path().join("b.tmp"), dir.join("b.parquet")).unwrap();
        let mut before = Vec::new();
        loop {
            let e = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the rename is reported");
            if e.paths.iter().any(|p| p.ends_with("b.parquet")) {
                assert!(wakes(&e.kind), "{e:?}");
                break;
            }
            before.push(e);
        }
        // inotify reports in order: everything before the rename was the
        // reads, and none of it wakes the loop.
        assert!(!before.is_empty(), "notify reports opens");
        assert!(before.iter().all(|e| !wakes(&e.kind)), "{before:?}");
        use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};
        assert!(wakes(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(wakes(&EventKind::Create(CreateKind::File)));
    }
}
