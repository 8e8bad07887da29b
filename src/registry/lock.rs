//! One writer at a time on a registry: an advisory `flock` on
//! `<registry>/.lock`, held by the daemon while it promotes and by `update`
//! / `init` for their whole run. The file names the holder so a second
//! writer is told who it is waiting for.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the registry {path} is locked by {holder}; try again when it is done")]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock the registry {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held while alive; dropping it releases the lock.
#[derive(Debug)]
pub struct RegistryLock {
    _file: File,
}

impl RegistryLock {
    /// Takes the lock without waiting. `what` names this holder (e.g.
    /// "driftd update").
    pub fn acquire(registry: &Path, what: &str) -> Result<RegistryLock, LockError> {
        let path = registry.join(".lock");
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(crate::fsutil::PRIVATE_FILE_MODE)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Held {
                    path: registry.to_path_buf(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{what} (pid {})", std::process::id()).map_err(io)?;
        Ok(RegistryLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_writer_is_told_who_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = RegistryLock::acquire(dir.path(), "driftd update").unwrap();
        let err = RegistryLock::acquire(dir.path(), "driftd run").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("driftd update"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        RegistryLock::acquire(dir.path(), "driftd run").unwrap();
    }
}
