//! Re-reading training rows from the files a manifest lists (after a
//! restart or a rollback), under the scan's symlink rule.

use std::fs;
use std::path::{Path, PathBuf};

use super::manifest::Manifest;
use super::problem::FileProblem;
use super::reader::read_file;
use super::safe_open::open_problem;
use super::schema::Schema;
use crate::model::Dataset;

/// Which rows [`rows_from_manifest`] keeps: files after manifest sequence
/// `last_seq` are new (at most `max_new` rows), earlier ones old (at most
/// `max_old`); symlinks as `data.follow_symlinks` says.
#[derive(Debug, Clone, Copy)]
pub struct RereadLimits {
    pub last_seq: u64,
    pub max_old: usize,
    pub max_new: usize,
    pub follow_symlinks: bool,
}

/// The path to re-read an ingested file from: the file itself, or a
/// symlink's target under the scan's rule (inside the data directory
/// unless `follow_symlinks`), resolved now, since a link can be re-pointed
/// after its file was ingested.
fn reread_path(dir: &Path, name: &str, follow_symlinks: bool) -> Result<PathBuf, FileProblem> {
    let path = dir.join(name);
    let meta = fs::symlink_metadata(&path).map_err(open_problem)?;
    if !meta.is_symlink() {
        return Ok(path);
    }
    let target = fs::canonicalize(&path).map_err(open_problem)?;
    let real_dir = fs::canonicalize(dir).map_err(open_problem)?;
    if !follow_symlinks && !target.starts_with(&real_dir) {
        return Err(FileProblem::SymlinkOutside {
            target: target.display().to_string(),
        });
    }
    Ok(target)
}

/// Rebuilds training rows from the files a manifest lists: files ingested
/// after manifest sequence `last_seq` are "new" (the newest `max_new` rows
/// kept), earlier ones "old" (read newest first until `max_old` rows, so
/// memory stays bounded however long the history). A file that can no
/// longer be read is skipped with a warning, as is one that has become a
/// symlink out of the data directory since it was ingested (the scan's rule,
/// `data.follow_symlinks`).
pub fn rows_from_manifest(
    dir: &Path,
    manifest: &Manifest,
    schema: &Schema,
    limits: RereadLimits,
) -> (Dataset, Dataset) {
    let RereadLimits {
        last_seq,
        max_old,
        max_new,
        follow_symlinks,
    } = limits;
    let width = schema.features.len();
    let files = manifest.ingested_in_order();
    let seq = |name: &str| manifest.files[name].seq;
    let read = |name: &str| match reread_path(dir, name, follow_symlinks)
        .and_then(|path| read_file(&path, schema))
    {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!(file = %name, error = %e, "cannot re-read an ingested file; its rows are not in the training buffers");
            None
        }
    };
    // Newest first, then put back in arrival order.
    let mut new_parts = Vec::new();
    let mut new_rows = 0;
    let mut old_parts = Vec::new();
    let mut old_rows = 0;
    for (name, _) in files.iter().rev() {
        let is_new = seq(name) > last_seq;
        if is_new && new_rows < max_new {
            if let Some(d) = read(name) {
                new_rows += d.len();
                new_parts.push(d);
            }
        } else if !is_new && old_rows < max_old {
            if let Some(d) = read(name) {
                old_rows += d.len();
                old_parts.push(d);
            }
        }
        if new_rows >= max_new && old_rows >= max_old {
            break;
        }
    }
    let join = |parts: Vec<Dataset>, max: usize| {
        let mut out = Dataset::new(width);
        for d in parts.into_iter().rev() {
            out.extend(&d);
        }
        out.keep_last(max);
        out
    };
    (join(old_parts, max_old), join(new_parts, max_new))
}
