//! The live pointer `live.json`: reading it, and switching it (pointer
//! first, then the history line).

use std::fs;
use std::io;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{io_err, HistoryEntry, Registry, RegistryError, LIVE, META};
use crate::fsutil;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LivePointer {
    version: u64,
}

impl Registry {
    pub fn live_version(&self) -> Result<Option<u64>, RegistryError> {
        let path = self.root.join(LIVE);
        match fs::read(&path) {
            Ok(bytes) => {
                let p: LivePointer =
                    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                        path: path.clone(),
                        source: e,
                    })?;
                Ok(Some(p.version))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::Io { path, source: e }),
        }
    }

    /// Switches the live pointer and records why in the history.
    pub fn set_live(&self, version: u64, event: &str, reason: &str) -> Result<(), RegistryError> {
        if !self.version_dir(version).join(META).exists() {
            return Err(RegistryError::NoSuchVersion(version));
        }
        let previous = self.live_version()?;
        self.switch_live(version, previous, event, reason)?;
        Ok(())
    }

    /// Pointer first (temp → fsync → rename → fsync the folder), then the
    /// history line: a crash between the two is repaired by the next check.
    pub(super) fn switch_live(
        &self,
        version: u64,
        previous: Option<u64>,
        event: &str,
        reason: &str,
    ) -> Result<HistoryEntry, RegistryError> {
        let path = self.root.join(LIVE);
        let json = serde_json::to_vec(&LivePointer { version }).expect("pointer serializes");
        fsutil::write_atomic(&path, &json).map_err(io_err(&path))?;
        let entry = HistoryEntry {
            at: Utc::now(),
            event: event.to_string(),
            version,
            previous,
            reason: reason.to_string(),
            by: Some(self.actor.clone()),
        };
        self.append_history(entry.clone())?;
        Ok(entry)
    }
}
