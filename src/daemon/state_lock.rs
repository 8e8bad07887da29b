//! One daemon per state directory: an advisory `flock` on
//! `<state.dir>/driftd.lock`, held for the daemon's whole life. Two daemons
//! on one state directory would ingest the same files and overwrite each
//! other's `status.json` and manifest. The kernel drops the lock when the
//! process dies, so a SIGKILLed daemon never blocks its restart.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const STATE_LOCK: &str = "driftd.lock";

#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    #[error("another driftd ({holder}) is running on state directory {} (lock {})", dir.display(), lock.display())]
    Held {
        holder: String,
        dir: PathBuf,
        lock: PathBuf,
    },
    #[error("cannot lock the state directory {} (lock {}): {source}", dir.display(), lock.display())]
    Io {
        dir: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while alive; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateLock {
    /// Creates the state directory if needed (owner-only), then takes the
    /// lock without waiting and writes this pid into the lock file. A held
    /// lock changes nothing: the file is rewritten only once it is ours.
    /// The lock is held on a read-only descriptor: a file open for writing
    /// would keep the state's filesystem from being remounted read-only.
    pub fn acquire(dir: &Path) -> Result<StateLock, StateLockError> {
        let lock = dir.join(STATE_LOCK);
        let io = |source| StateLockError::Io {
            dir: dir.to_path_buf(),
            lock: lock.clone(),
            source,
        };
        crate::fsutil::create_private_dir(dir).map_err(io)?;
        let mut file = match File::open(&lock) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(crate::fsutil::PRIVATE_FILE_MODE)
                    .open(&lock)
                    .map_err(io)?;
                File::open(&lock).map_err(io)?
            }
            Err(e) => return Err(io(e)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StateLockError::Held {
                    holder: if holder.is_empty() {
                        "pid unknown".into()
                    } else {
                        holder.to_string()
                    },
                    dir: dir.to_path_buf(),
                    lock,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // The pid only informs a second daemon: a state directory that
        // cannot be written must not keep this one from starting.
        let written = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&lock)
            .and_then(|mut f| writeln!(f, "pid {}", std::process::id()));
        if let Err(e) = written {
            tracing::warn!(lock = %lock.display(), error = %e, "cannot write this pid into the state lock file");
        }
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_daemon_is_told_the_pid_and_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        let msg = StateLock::acquire(&state).unwrap_err().to_string();
        let expected = format!(
            "another driftd (pid {}) is running on state directory {} (lock {})",
            std::process::id(),
            state.display(),
            state.join(STATE_LOCK).display()
        );
        assert_eq!(msg, expected);
        drop(first);
        StateLock::acquire(&state).unwrap();
    }
}
