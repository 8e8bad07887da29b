//! The start-up check: removes leftovers of interrupted writes, verifies
//! every version and moves the live pointer off a broken one.

use std::fs;
use std::path::{Path, PathBuf};

use super::{actor, io_err, BrokenVersion, HistoryEntry, Registry, RegistryError};
use crate::fsutil;
use crate::registry::lock::{LockError, RegistryLock};

/// What [`Registry::check`] found and did.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Leftovers of interrupted writes that were removed.
    pub removed: Vec<PathBuf>,
    /// Every version that fails verification now.
    pub broken: Vec<BrokenVersion>,
    /// The history entry written when the live pointer was moved off a
    /// broken version.
    pub fallback: Option<HistoryEntry>,
    /// False when another process held the lock: verified, nothing changed.
    pub repaired: bool,
}

/// Whether opening may change the registry (clean up, mark, fall back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMode {
    /// Takes the lock for the check and repairs what it finds (the daemon).
    Repair,
    /// Verifies and reports only, creating nothing (`status`, `versions`,
    /// `report`).
    ReadOnly,
}

impl Registry {
    /// Opens and checks the registry. `who` names this process in the lock
    /// file and the history ("driftd run"). In [`CheckMode::Repair`] the
    /// lock is taken for the check and released; if another process holds
    /// it, the check only verifies (that process is mid-write, so its
    /// temporary files are not leftovers).
    pub fn open_checked(
        root: &Path,
        who: &str,
        mode: CheckMode,
    ) -> Result<(Registry, CheckReport), RegistryError> {
        if mode == CheckMode::ReadOnly {
            // Readers create nothing, not even a missing registry.
            let mut reg = Registry::open_read_only(root);
            reg.actor = actor(who);
            let report = reg.verify()?;
            return Ok((reg, report));
        }
        let mut reg = Registry::open(root)?;
        reg.actor = actor(who);
        match RegistryLock::acquire(root, &format!("{who} (start-up check)")) {
            Ok(lock) => {
                let report = reg.check(&lock)?;
                Ok((reg, report))
            }
            Err(LockError::Held { holder, .. }) => {
                tracing::warn!(
                    registry = %root.display(),
                    holder = %holder,
                    "the registry is locked by {holder}; checking it without repairing"
                );
                let report = reg.verify()?;
                Ok((reg, report))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the registry for a writer: takes the lock (held until the
    /// returned guard drops), then checks and repairs.
    pub fn open_locked(
        root: &Path,
        who: &str,
    ) -> Result<(Registry, RegistryLock, CheckReport), RegistryError> {
        let mut reg = Registry::open(root)?;
        reg.actor = actor(who);
        let lock = RegistryLock::acquire(root, who)?;
        let report = reg.check(&lock)?;
        Ok((reg, lock, report))
    }

    /// The start-up check, under the lock: removes leftovers of interrupted
    /// writes (logged at warn with their paths), truncates a torn last
    /// history line, verifies every version (meta.json parses, every member
    /// file exists, matches its sha256 and loads with its architecture),
    /// records the broken ones in `broken.json` (files left in place), and
    /// when the live version is broken, unreadable or missing, moves the
    /// pointer to the newest good version with a `fallback` history entry,
    /// logged at error level.
    pub fn check(&self, _lock: &RegistryLock) -> Result<CheckReport, RegistryError> {
        let mut report = CheckReport {
            repaired: true,
            ..CheckReport::default()
        };
        self.remove_leftovers(&mut report.removed)?;
        self.repair_history_tail()?;
        report.broken = self.find_broken()?;
        self.record_broken(&report.broken)?;
        let live = self.live_version();
        let problem = match &live {
            Ok(None) => None,
            Ok(Some(v)) => report
                .broken
                .iter()
                .find(|b| b.version == *v)
                .map(|b| format!("live version {v} is broken: {}", b.reason))
                .or_else(|| {
                    (!self.version_dir(*v).exists())
                        .then(|| format!("live version {v} does not exist"))
                }),
            Err(e) => Some(format!("the live pointer is unreadable: {e}")),
        };
        if let Some(why) = problem {
            let bad: Vec<u64> = report.broken.iter().map(|b| b.version).collect();
            let good = self
                .versions()?
                .into_iter()
                .filter(|v| !bad.contains(v))
                .max();
            let Some(target) = good else {
                tracing::error!(
                    event = "fallback",
                    registry = %self.root.display(),
                    "{why}, and no other version is usable: there is no model to serve"
                );
                return Err(RegistryError::NoGoodVersion {
                    path: self.root.clone(),
                    live: live.ok().flatten().unwrap_or(0),
                });
            };
            let previous = live.ok().flatten();
            let reason = format!("{why}; falling back to the newest good version {target}");
            let entry = self.switch_live(target, previous, "fallback", &reason)?;
            tracing::error!(
                event = "fallback",
                version = target,
                previous = ?previous,
                reason = %reason,
                "REGISTRY FALLBACK: {reason}"
            );
            report.fallback = Some(entry);
        } else if let Ok(Some(v)) = live {
            self.reconcile_history(v)?;
        }
        Ok(report)
    }

    /// The read-only check: verifies every version and reports; changes
    /// nothing.
    pub fn verify(&self) -> Result<CheckReport, RegistryError> {
        let broken = self.find_broken()?;
        if let Ok(Some(v)) = self.live_version() {
            if let Some(b) = broken.iter().find(|b| b.version == v) {
                tracing::error!(
                    version = v,
                    reason = %b.reason,
                    "the live version {v} is broken; the next start of the daemon (or any writer) falls back to the newest good version"
                );
            }
        }
        Ok(CheckReport {
            broken,
            ..CheckReport::default()
        })
    }

    /// Hidden entries are temporaries: `versions/.NNNNNN.tmp-PID` (a version
    /// being written), `versions/.NNNNNN.deleting-PID` (a version being
    /// removed by retention) and `.NAME.tmp-PID` beside the pointer files
    /// (an atomic replace in flight). Only called under the lock, so none
    /// belongs to a live writer.
    fn remove_leftovers(&self, removed: &mut Vec<PathBuf>) -> Result<(), RegistryError> {
        let versions = self.root.join("versions");
        for (dir, all_hidden) in [(&versions, true), (&self.root, false)] {
            let mut any = false;
            for entry in fs::read_dir(dir).map_err(io_err(dir))? {
                let entry = entry.map_err(io_err(dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let leftover = name.starts_with('.') && (all_hidden || name.contains(".tmp-"));
                if !leftover {
                    continue;
                }
                let path = entry.path();
                tracing::warn!(path = %path.display(), "removing the leftover of an interrupted registry write");
                let result = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                result.map_err(io_err(&path))?;
                removed.push(path);
                any = true;
            }
            if any {
                fsutil::sync_dir(dir).map_err(io_err(dir))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "check_tests.rs"]
mod tests;
