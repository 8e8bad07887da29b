//! Crash-safe file writes: temp name → write → fsync → rename → fsync the
//! directory. A crash at any instant leaves either the old file or the new
//! one, never a torn mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What driftd creates in the registry and the state directory is
/// readable by its owner only (the model, its data summary, the manifest).
pub const PRIVATE_DIR_MODE: u32 = 0o700;
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Replaces `path` atomically with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    injected_fault(path)?;
    let dir = parent_dir(path);
    let tmp = temp_name(path);
    let result = (|| {
        let mut f = create_private_file(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Appends one line and syncs it, for append-only logs such as the history.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    injected_fault(path)?;
    let existed = path.exists();
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    if !existed {
        sync_dir(&parent_dir(path))?;
    }
    Ok(())
}

/// The environment variable naming the fault-injection file (tests only).
pub const FAULT_ENV: &str = "DRIFTD_FAULT_FILE";

/// Test hook for the fault-injection tests (`tests/faults.rs`) on machines
/// where they cannot mount a small tmpfs: when `DRIFTD_FAULT_FILE` names a
/// file that exists, each of its lines `enospc PREFIX` or `erofs PREFIX`
/// makes every durable write (atomic replace, synced append, a version's
/// files) to a path under PREFIX fail as a full disk or a read-only
/// filesystem would, before anything is written. Unset (production), it
/// costs one environment lookup per process.
pub fn injected_fault(path: &Path) -> io::Result<()> {
    static FAULT_FILE: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let Some(file) = FAULT_FILE.get_or_init(|| std::env::var_os(FAULT_ENV).map(PathBuf::from))
    else {
        return Ok(());
    };
    let Ok(spec) = fs::read_to_string(file) else {
        return Ok(());
    };
    for line in spec.lines() {
        let Some((kind, prefix)) = line.trim().split_once(' ') else {
            continue;
        };
        if path.starts_with(prefix.trim()) {
            let errno = match kind {
                "enospc" => 28,
                "erofs" => 30,
                _ => continue,
            };
            return Err(io::Error::from_raw_os_error(errno));
        }
    }
    Ok(())
}

/// fsyncs a directory so a rename or create inside it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (and parents) with owner-only permissions when new.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(dir)
}

/// Creates one directory (its parent must exist; an existing one is an
/// error) with owner-only permissions.
pub fn create_private_dir_new(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(dir)
}

/// Creates (or truncates) a file for writing; a new file is owner-only.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// The hidden temporary sibling used while `path` is being written.
pub fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn append_adds_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("h.jsonl");
        append_line(&p, "a").unwrap();
        append_line(&p, "b").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "a\nb\n");
    }
}
