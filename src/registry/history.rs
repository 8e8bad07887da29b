//! `history.jsonl`: which version went live, when and why (append-only),
//! and its two repairs after a crash (torn last line, unrecorded switch).

use std::fs;
use std::io;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{io_err, Registry, RegistryError, HISTORY};
use crate::fsutil;

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `model_promoted`, `rollback`, `promote`, `import`, `fallback` (the
    /// start-up check left a broken live version) or `recovered` (a process
    /// stopped between switching the pointer and writing this line).
    pub event: String,
    pub version: u64,
    pub previous: Option<u64>,
    pub reason: String,
    /// Which process made the change: command, pid and user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// The version that was live before `live` was last moved to going forward
/// (a promotion, `promote`, an import). A rollback's entry names the version
/// it left, which is newer, so rollback entries and any entry whose previous
/// version is newer than `live` are skipped: rollback after rollback walks
/// back through the promotions and never forward. `None`: nothing older.
pub fn rollback_target(history: &[HistoryEntry], live: u64) -> Option<u64> {
    history
        .iter()
        .rev()
        .filter(|h| h.version == live && h.event != "rollback")
        .find_map(|h| h.previous.filter(|&p| p < live))
}

impl Registry {
    pub(super) fn append_history(&self, entry: HistoryEntry) -> Result<(), RegistryError> {
        let history = self.root.join(HISTORY);
        fsutil::append_line(
            &history,
            &serde_json::to_string(&entry).expect("history serializes"),
        )
        .map_err(io_err(&history))
    }

    pub fn history(&self) -> Result<Vec<HistoryEntry>, RegistryError> {
        let path = self.root.join(HISTORY);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::Io { path, source: e }),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(e) => out.push(e),
                // A torn last line after a crash is expected; skip it.
                Err(e) => {
                    tracing::warn!(path = %path.display(), line = i + 1, error = %e, "skipping an unreadable history line")
                }
            }
        }
        Ok(out)
    }

    /// The version that was live before `live` became live, per the history
    /// (retention keeps it; after a promotion it is also the
    /// [`rollback_target`]).
    pub fn previous_live(&self, live: u64) -> Result<Option<u64>, RegistryError> {
        Ok(self
            .history()?
            .iter()
            .rev()
            .find(|h| h.version == live)
            .and_then(|h| h.previous))
    }

    /// A crash mid-append can leave a last line without its newline; the
    /// next append would glue onto it and spoil both. Cut it off.
    pub(super) fn repair_history_tail(&self) -> Result<(), RegistryError> {
        let path = self.root.join(HISTORY);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RegistryError::Io { path, source: e }),
        };
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            return Ok(());
        }
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        tracing::warn!(
            path = %path.display(),
            torn = %String::from_utf8_lossy(&bytes[keep..]),
            "removing a torn last history line left by an interrupted write"
        );
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        f.set_len(keep as u64).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))
    }

    /// After a crash between the pointer switch and the history append the
    /// history's last line names another version: record the switch.
    pub(super) fn reconcile_history(&self, live: u64) -> Result<(), RegistryError> {
        let last = self.history()?.last().map(|h| h.version);
        if last == Some(live) {
            return Ok(());
        }
        tracing::warn!(
            version = live,
            history_last = ?last,
            "live.json names version {live} but the history does not record the switch; recording it"
        );
        self.append_history(HistoryEntry {
            at: Utc::now(),
            event: "recovered".into(),
            version: live,
            previous: last,
            reason: "the live pointer was switched by a process that stopped before recording it"
                .into(),
            by: Some(self.actor.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(event: &str, version: u64, previous: Option<u64>) -> HistoryEntry {
        HistoryEntry {
            at: Utc::now(),
            event: event.into(),
            version,
            previous,
            reason: String::new(),
            by: None,
        }
    }

    #[test]
    fn rollbacks_walk_back_and_never_forward() {
        let mut h = vec![
            entry("model_promoted", 1, None),
            entry("model_promoted", 2, Some(1)),
            entry("model_promoted", 3, Some(2)),
        ];
        assert_eq!(rollback_target(&h, 3), Some(2));
        h.push(entry("rollback", 2, Some(3)));
        assert_eq!(rollback_target(&h, 2), Some(1));
        h.push(entry("rollback", 1, Some(2)));
        assert_eq!(rollback_target(&h, 1), None);
        // Promoting an older version by hand: its rollback does not go
        // forward to the version it replaced.
        h.push(entry("promote", 3, Some(1)));
        h.push(entry("promote", 2, Some(3)));
        assert_eq!(rollback_target(&h, 2), Some(1));
        // A fallback off a broken newer version names that version.
        h.push(entry("fallback", 1, Some(2)));
        assert_eq!(rollback_target(&h, 1), None);
    }
}
