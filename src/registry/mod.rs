//! Versions on disk.
//!
//! ```text
//! <registry.dir>/
//!   versions/000001/model.safetensors   the checkpoint
//!   versions/000001/meta.json           how it was made and how it scored
//!   live.json                           {"version": 1}: the live pointer
//!   history.jsonl                       append-only: which version went live, when, why
//!   broken.json                         versions the last check found unusable, and why
//!   pins.json                           versions retention never deletes
//!   .lock                               flock of the one writer
//! ```
//!
//! Invariants: a version folder appears only complete (written under a
//! hidden temporary name, synced, renamed); the live pointer is replaced
//! atomically and only after the version it names is durable; history lines
//! are appended after the pointer switched. [`Registry::check`] runs at the
//! start of every process that uses the registry: it removes leftovers of
//! interrupted writes, verifies every version, records the broken ones (their
//! files are left in place) and moves the live pointer off a broken version.

mod anchor;
mod broken;
mod check;
mod error;
mod history;
mod live;
mod load;
pub mod lock;
mod meta;
mod retention;
mod versions;

#[cfg(test)]
mod test_support;

use std::fs;
use std::path::{Path, PathBuf};

use crate::fsutil;

pub use anchor::{anchor_version, ONLINE_STRATEGY};
pub use broken::BrokenVersion;
pub use check::{CheckMode, CheckReport};
use error::io_err;
pub use error::RegistryError;
pub use history::{rollback_target, HistoryEntry};
pub use meta::{
    hex_sha256, CandidateScore, DataSummary, ImportSource, MemberFile, Seeds, TrainedFile,
    TrainedFiles, VersionMeta,
};
pub use retention::Pin;

pub struct Registry {
    root: PathBuf,
    /// Who writes history lines through this handle ("driftd rollback (pid
    /// 12, user ops)").
    actor: String,
}

pub const CHECKPOINT: &str = "model.safetensors";
pub const META: &str = "meta.json";
pub const LIVE: &str = "live.json";
pub const HISTORY: &str = "history.jsonl";
pub const BROKEN: &str = "broken.json";
pub const PINS: &str = "pins.json";

impl Registry {
    /// Opens (creating if needed) the registry at `root` without checking
    /// it; see [`Registry::open_checked`] and [`Registry::open_locked`].
    pub fn open(root: &Path) -> Result<Registry, RegistryError> {
        let versions = root.join("versions");
        fsutil::create_private_dir(&versions).map_err(io_err(&versions))?;
        Ok(Registry {
            root: root.to_path_buf(),
            actor: actor("driftd"),
        })
    }

    /// A handle for readers that creates nothing: a registry that does not
    /// exist yet reads as empty (no versions, no live pointer).
    pub fn open_read_only(root: &Path) -> Registry {
        Registry {
            root: root.to_path_buf(),
            actor: actor("driftd"),
        }
    }

    /// Whether the registry's folder exists (readers report a missing one
    /// rather than create it).
    pub fn exists(&self) -> bool {
        self.root.join("versions").is_dir()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// "driftd rollback (pid 12, user ops)": who wrote a history line.
fn actor(who: &str) -> String {
    // Services often run without USER / LOGNAME: fall back to the uid.
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let status = fs::read_to_string("/proc/self/status").ok()?;
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(format!("uid {}", line.split_whitespace().nth(1)?))
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{who} (pid {}, user {user})", std::process::id())
}
