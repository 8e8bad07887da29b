//! Retention and pins: which versions are deleted after a promotion, and
//! `pins.json`, the versions it never deletes.

use std::fs;
use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{io_err, Registry, RegistryError, PINS};
use crate::fsutil;

/// A version kept by retention whatever its age (`driftd pin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    pub version: u64,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinsFile {
    pins: Vec<Pin>,
}

impl Registry {
    /// Pinned versions, oldest pin first.
    pub fn pins(&self) -> Result<Vec<Pin>, RegistryError> {
        let path = self.root.join(PINS);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<PinsFile>(&bytes)
                .map(|f| f.pins)
                .map_err(|e| RegistryError::Corrupt { path, source: e }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(RegistryError::Io { path, source: e }),
        }
    }

    /// Pins `version` (callers hold the lock); false if it already was.
    pub fn pin(&self, version: u64, reason: &str) -> Result<bool, RegistryError> {
        if !self.version_dir(version).exists() {
            return Err(RegistryError::NoSuchVersion(version));
        }
        let mut pins = self.pins()?;
        if pins.iter().any(|p| p.version == version) {
            return Ok(false);
        }
        pins.push(Pin {
            version,
            at: Utc::now(),
            reason: reason.to_string(),
        });
        self.write_pins(pins)?;
        Ok(true)
    }

    /// Unpins `version` (callers hold the lock); false if it was not pinned.
    pub fn unpin(&self, version: u64) -> Result<bool, RegistryError> {
        let mut pins = self.pins()?;
        let before = pins.len();
        pins.retain(|p| p.version != version);
        if pins.len() == before {
            return Ok(false);
        }
        self.write_pins(pins)?;
        Ok(true)
    }

    fn write_pins(&self, pins: Vec<Pin>) -> Result<(), RegistryError> {
        let path = self.root.join(PINS);
        let json = serde_json::to_vec_pretty(&PinsFile { pins }).expect("pins serialize");
        fsutil::write_atomic(&path, &json).map_err(io_err(&path))
    }

    /// Retention (callers hold the lock, and call it only after a new live
    /// pointer is durable): keeps the live version, the version live before
    /// it (the default rollback target), the anchor of an online live
    /// version (its rollback target), the newest `keep_last` versions and
    /// every pinned one; deletes the rest. `keep_last = 0` keeps everything.
    /// A deleted folder is first renamed to a hidden name (atomic; a crash
    /// leaves a leftover the next check removes, never a half-deleted
    /// version). Returns the deleted ids.
    pub fn apply_retention(&self, keep_last: usize) -> Result<Vec<u64>, RegistryError> {
        if keep_last == 0 {
            return Ok(Vec::new());
        }
        let Some(live) = self.live_version()? else {
            return Ok(Vec::new());
        };
        let ids = self.versions()?;
        let mut keep: Vec<u64> = ids.iter().rev().take(keep_last).copied().collect();
        keep.push(live);
        keep.extend(self.previous_live(live)?);
        // The online versions' rollback target.
        keep.extend(self.anchor_of(live)?);
        keep.extend(self.pins()?.iter().map(|p| p.version));
        let versions = self.root.join("versions");
        let mut deleted = Vec::new();
        for v in ids.into_iter().filter(|v| !keep.contains(v)) {
            let dir = self.version_dir(v);
            let doomed = versions.join(format!(".{v:06}.deleting-{}", std::process::id()));
            fs::rename(&dir, &doomed).map_err(io_err(&dir))?;
            fsutil::sync_dir(&versions).map_err(io_err(&versions))?;
            fs::remove_dir_all(&doomed).map_err(io_err(&doomed))?;
            tracing::info!(
                event = "version_deleted",
                version = v,
                keep_last,
                "version {v} deleted by retention (keep_last = {keep_last}, not live, not the previous live version, not an anchor, not pinned)"
            );
            deleted.push(v);
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::test_support::write_live;
    use super::super::*;

    #[test]
    fn retention_keeps_live_previous_newest_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        for v in 1..=8 {
            write_live(&reg, v, v);
        }
        // Live goes back to 3: 3 is live, 8 the previous live version.
        reg.set_live(3, "rollback", "test").unwrap();
        assert!(reg.pin(1, "the reference").unwrap());
        assert!(!reg.pin(1, "again").unwrap());
        assert!(matches!(
            reg.pin(9, "x"),
            Err(RegistryError::NoSuchVersion(9))
        ));
        assert_eq!(reg.apply_retention(0).unwrap(), Vec::<u64>::new());
        assert_eq!(reg.apply_retention(2).unwrap(), vec![2, 4, 5, 6]);
        assert_eq!(reg.versions().unwrap(), vec![1, 3, 7, 8]);
        // No leftover of the deletions.
        assert_eq!(
            fs::read_dir(dir.path().join("versions")).unwrap().count(),
            4
        );
        assert!(reg.unpin(1).unwrap());
        assert!(!reg.unpin(1).unwrap());
        assert_eq!(reg.apply_retention(2).unwrap(), vec![1]);
        // A deletion interrupted after its rename is finished by the check.
        fs::rename(
            dir.path().join("versions/000007"),
            dir.path().join("versions/.000007.deleting-1"),
        )
        .unwrap();
        let (reg, report) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
        assert_eq!(report.removed.len(), 1);
        assert_eq!(reg.versions().unwrap(), vec![3, 8]);
    }
}
