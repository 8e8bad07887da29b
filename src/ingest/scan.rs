//! The directory scan, the truth about which files are ready: the producer
//! naming convention, symlink rules, the settle interval, the trailer check,
//! and files replaced, rewritten or renamed.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use super::manifest::FileIdentity;
use super::problem::FileProblem;
use super::safe_open::{read_footer, Footer};
use super::{IngestError, Ingestor};
use crate::config::glob_match;

/// Names the producer convention says are not (yet) data: hidden files,
/// temporaries, and markers (`_SUCCESS`, `_committed_*`, ...).
pub fn is_candidate_name(name: &str) -> bool {
    !(name.starts_with('.')
        || name.starts_with('_')
        || name.ends_with(".tmp")
        || name.ends_with(".inprogress")
        || name.ends_with("._COPYING_"))
}

/// Directories a recursive scan does not enter: hidden ones and markers
/// such as Spark's `_temporary`.
fn is_candidate_dir(name: &str) -> bool {
    !(name.starts_with('.') || name.starts_with('_'))
}

/// A file found by a scan that the manifest does not know (or knows with a
/// different identity: replaced content).
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Path relative to the data directory (`/`-separated).
    pub name: String,
    pub path: PathBuf,
    pub identity: FileIdentity,
    pub replaced: bool,
    /// Set when the scan already knows the file is bad (a footer that never
    /// became valid, permissions).
    pub problem: Option<FileProblem>,
}

/// A file as listed, before the settle and footer checks.
#[derive(Debug, Clone)]
struct Listed {
    name: String,
    /// The file to read: for a symlink, its resolved target.
    path: PathBuf,
    identity: FileIdentity,
    /// A symlink out of the data directory that the policy does not follow.
    refused: Option<FileProblem>,
}

/// Regular files under `dir` whose names pass the convention and
/// `pattern`, sorted by name (producers name files in arrival order).
fn list_files(
    dir: &Path,
    recursive: bool,
    pattern: &str,
    follow_symlinks: bool,
) -> Result<Vec<Listed>, IngestError> {
    let mut found = Vec::new();
    let real_dir = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut dirs = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = dirs.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(source) if prefix.is_empty() => {
                return Err(IngestError::DataDir {
                    path: dir.to_path_buf(),
                    source,
                })
            }
            Err(e) => {
                tracing::warn!(dir = %d.display(), error = %e, "cannot list a subdirectory of the data directory");
                continue;
            }
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            // symlink_metadata: a symlink is not followed out of the directory.
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue; // vanished between listing and stat
            };
            let name = format!("{prefix}{file_name}");
            if meta.is_dir() {
                if recursive && is_candidate_dir(&file_name) {
                    dirs.push((entry.path(), format!("{name}/")));
                }
                continue;
            }
            if !(meta.is_file() || meta.is_symlink())
                || !is_candidate_name(&file_name)
                || !glob_match(pattern, &file_name)
            {
                continue;
            }
            if meta.is_symlink() {
                found.extend(listed_link(
                    name,
                    &entry.path(),
                    &meta,
                    &real_dir,
                    follow_symlinks,
                ));
                continue;
            }
            found.push(Listed {
                name,
                path: entry.path(),
                identity: FileIdentity::of(&meta),
                refused: None,
            });
        }
    }
    // A link to a file the scan lists under its own name is that file.
    let listed_directly: HashSet<PathBuf> = found
        .iter()
        .filter(|f| f.path == dir.join(&f.name))
        .map(|f| real_dir.join(&f.name))
        .collect();
    found.retain(|f| f.path == dir.join(&f.name) || !listed_directly.contains(&f.path));
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// A symlink found by [`list_files`] (`real_dir` is the data directory,
/// resolved), or `None` when it leads to nothing to read.
fn listed_link(
    name: String,
    link: &Path,
    meta: &fs::Metadata,
    real_dir: &Path,
    follow_symlinks: bool,
) -> Option<Listed> {
    // Read through the link only to a regular file, inside the
    // data directory unless the policy allows any target.
    let Ok(target) = fs::canonicalize(link) else {
        return None; // dangling: nothing to read (yet)
    };
    let Ok(target_meta) = fs::metadata(&target) else {
        return None;
    };
    if !target_meta.is_file() {
        return None;
    }
    let refused =
        (!follow_symlinks && !target.starts_with(real_dir)).then(|| FileProblem::SymlinkOutside {
            target: target.display().to_string(),
        });
    Some(Listed {
        name,
        identity: if refused.is_some() {
            FileIdentity::of(meta)
        } else {
            FileIdentity::of(&target_meta)
        },
        path: if refused.is_some() {
            link.to_path_buf()
        } else {
            target
        },
        refused,
    })
}

/// A file seen but not yet taken: since when its size and mtime have been
/// what they are.
#[derive(Debug, Clone)]
pub(super) struct Settling {
    identity: FileIdentity,
    since: Instant,
}

impl Ingestor {
    /// Files ready to read, oldest name first: new or replaced, settled
    /// (size and mtime unchanged for `data.settle_ms`) and with a valid
    /// footer. A file whose footer stays invalid for
    /// `data.incomplete_after_ms` comes back with its problem set. A file
    /// rewritten with the same bytes (same size and footer hash, new inode
    /// or mtime) only has its identity refreshed.
    pub fn scan(&mut self) -> Result<Vec<NewFile>, IngestError> {
        let listed = list_files(
            &self.dir,
            self.policy.data.recursive,
            &self.policy.data.file_pattern,
            self.policy.data.follow_symlinks,
        )?;
        let settle = Duration::from_millis(self.policy.data.settle_ms);
        let incomplete_after = Duration::from_millis(self.policy.data.incomplete_after_ms);
        let mut ready = Vec::new();
        let mut refreshed = false;
        let mut still_settling = HashMap::new();
        for file in listed {
            let known = self.manifest.files.get(&file.name);
            if known.is_some_and(|e| e.identity.same_stat(&file.identity)) {
                continue;
            }
            if let Some(problem) = file.refused {
                ready.push(NewFile {
                    replaced: known.is_some(),
                    name: file.name,
                    path: file.path,
                    identity: file.identity,
                    problem: Some(problem),
                });
                continue;
            }
            let since = match self.settling.get(&file.name) {
                Some(s) if s.identity.same_stat(&file.identity) => s.since,
                _ => Instant::now(),
            };
            still_settling.insert(
                file.name.clone(),
                Settling {
                    identity: file.identity.clone(),
                    since,
                },
            );
            // Unchanged since we first saw it, or since its mtime, whichever
            // is longer (files present at start are settled already).
            let mtime = std::time::UNIX_EPOCH
                .checked_add(Duration::from_nanos(file.identity.mtime_ns.max(0) as u64));
            let mtime_age = mtime
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            let stable_for = since.elapsed().max(mtime_age);
            if stable_for < settle {
                continue;
            }
            let mut identity = file.identity.clone();
            let problem = match read_footer(&file.path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    still_settling.remove(&file.name);
                    continue; // deleted since the listing
                }
                Err(e) => Some(FileProblem::Io(e.into())),
                Ok(Footer::Incomplete(why)) if stable_for < incomplete_after => {
                    tracing::debug!(file = %file.name, why = why.to_string(), "waiting for the file to be complete");
                    continue;
                }
                Ok(Footer::Incomplete(why) | Footer::Invalid(why)) => {
                    Some(FileProblem::BadTrailer(why))
                }
                Ok(Footer::Valid { sha256 }) => {
                    identity.footer_sha256 = sha256;
                    None
                }
            };
            still_settling.remove(&file.name);
            let Some(replaced) = self.replaces(&file.name, &identity, problem.is_none()) else {
                refreshed = true;
                continue;
            };
            ready.push(NewFile {
                name: file.name,
                path: file.path,
                identity,
                replaced,
                problem,
            });
        }
        self.settling = still_settling;
        // A manifest that cannot be written (full or read-only state
        // directory) must not stop the files from being read: say so, and
        // the next commit or scan tries again.
        let compacted = if refreshed {
            self.compact()
        } else {
            self.compact_if_due()
        };
        if let Err(e) = compacted {
            // Once per outage; the retries are quiet, the recovery is not.
            if !std::mem::replace(&mut self.journal.reported, true) {
                tracing::error!(error = %e, "cannot write the manifest; retrying every second (outcomes still go to its journal when they can)");
            }
        }
        Ok(ready)
    }

    /// Whether a settled file replaces one the manifest knows (`Some`), or
    /// is one it holds already (`None`: rewritten with the same content, its
    /// identity is refreshed; or renamed, its entry moves). Only a file with
    /// a valid footer (`readable`) can be one it holds.
    fn replaces(&mut self, name: &str, identity: &FileIdentity, readable: bool) -> Option<bool> {
        match self.manifest.files.get_mut(name) {
            Some(entry)
                if readable
                    && entry.identity.size == identity.size
                    && entry.identity.footer_sha256 == identity.footer_sha256 =>
            {
                tracing::debug!(file = %name, "file was rewritten with the same content; not read again");
                entry.identity = identity.clone();
                None
            }
            Some(_) => Some(true),
            None if readable => {
                if let Some(from) = self.renamed_from(identity) {
                    tracing::info!(file = %name, from = %from, "file was renamed; not read again");
                    let entry = self.manifest.files.remove(&from).expect("found");
                    self.manifest.files.insert(name.to_string(), entry);
                    return None;
                }
                Some(false)
            }
            None => Some(false),
        }
    }

    /// The manifest name of a file with exactly this identity (device,
    /// inode, size, mtime, footer hash) whose path no longer exists: the
    /// same file, moved.
    fn renamed_from(&self, identity: &FileIdentity) -> Option<String> {
        self.manifest
            .files
            .iter()
            .find(|(name, e)| e.identity == *identity && !self.dir.join(name).exists())
            .map(|(name, _)| name.clone())
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
