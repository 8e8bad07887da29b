//! The manifest: every file seen (its identity and outcome), the row counts
//! and the first file's column types. Its journal is in `journal.rs`.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::journal::journal_path;
use super::IngestError;
use crate::fsutil;

/// How the daemon remembers a file: more than its path, so a file replaced
/// under the same name is seen as new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub device: u64,
    /// sha256 of the last `FOOTER_HASH_BYTES` of the file (the Parquet
    /// footer: schema, row groups and their statistics).
    #[serde(default)]
    pub footer_sha256: String,
}

impl FileIdentity {
    pub(super) fn of(meta: &fs::Metadata) -> Self {
        FileIdentity {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            inode: meta.ino(),
            device: meta.dev(),
            footer_sha256: String::new(),
        }
    }

    /// Same file as far as `stat` can tell (the hash is not compared).
    pub(super) fn same_stat(&self, other: &FileIdentity) -> bool {
        self.size == other.size
            && self.mtime_ns == other.mtime_ns
            && self.inode == other.inode
            && self.device == other.device
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Ingested {
        rows: usize,
        /// Bad rows dropped (with `data.bad_rows = "drop"`).
        #[serde(default)]
        dropped: usize,
    },
    Quarantined {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub identity: FileIdentity,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Order of ingestion, from 1.
    pub seq: u64,
    pub at: DateTime<Utc>,
}

/// Every file seen, by path relative to the data directory.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: BTreeMap<String, ManifestEntry>,
    pub rows_ingested: u64,
    pub next_seq: u64,
    /// Rows dropped as bad over all files.
    #[serde(default)]
    pub rows_dropped: u64,
    /// The column types of the first file ingested (column → polars type):
    /// later files are checked against them.
    #[serde(default)]
    pub schema_types: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest as the daemon last recorded it: the snapshot at `path`
    /// plus the outcomes appended to its journal since (see
    /// [`journal_path`]). The journal is read first, so a compaction running
    /// meanwhile in another process never hides an entry.
    pub fn load(path: &Path) -> Result<Manifest, IngestError> {
        let journal = journal_path(path);
        let journal_bytes = match fs::read(&journal) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(IngestError::ManifestIo {
                    path: journal,
                    source,
                })
            }
        };
        let mut manifest = Self::load_snapshot(path)?;
        manifest.replay(&journal, &journal_bytes);
        Ok(manifest)
    }

    fn load_snapshot(path: &Path) -> Result<Manifest, IngestError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| IngestError::ManifestCorrupt {
                path: path.to_path_buf(),
                source: e,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(source) => Err(IngestError::ManifestIo {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the whole manifest atomically (the snapshot; the journal is
    /// the caller's: see [`Ingestor::compact`](super::Ingestor::compact)).
    pub fn save(&self, path: &Path) -> Result<(), IngestError> {
        let json = serde_json::to_vec(self).expect("manifest serializes");
        fsutil::write_atomic(path, &json).map_err(|source| IngestError::ManifestIo {
            path: path.to_path_buf(),
            source,
        })
    }

    pub(super) fn record(&mut self, name: String, identity: FileIdentity, outcome: Outcome) {
        self.next_seq += 1;
        if let Outcome::Ingested { rows, dropped } = &outcome {
            self.rows_ingested += *rows as u64;
            self.rows_dropped += *dropped as u64;
        }
        self.files.insert(
            name,
            ManifestEntry {
                identity,
                outcome,
                seq: self.next_seq,
                at: Utc::now(),
            },
        );
    }

    /// How many of the files it lists were ingested and how many
    /// quarantined.
    pub fn file_counts(&self) -> (u64, u64) {
        let ingested = self
            .files
            .values()
            .filter(|e| matches!(e.outcome, Outcome::Ingested { .. }))
            .count() as u64;
        (ingested, self.files.len() as u64 - ingested)
    }

    /// Quarantined files, newest first: (path, reason, when), at most
    /// `limit` of them.
    pub fn quarantined_newest_first(&self, limit: usize) -> Vec<(&str, &str, DateTime<Utc>)> {
        let mut v: Vec<(u64, &str, &str, DateTime<Utc>)> = self
            .files
            .iter()
            .filter_map(|(name, e)| match &e.outcome {
                Outcome::Quarantined { reason } => {
                    Some((e.seq, name.as_str(), reason.as_str(), e.at))
                }
                Outcome::Ingested { .. } => None,
            })
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.0));
        v.into_iter()
            .take(limit)
            .map(|(_, name, reason, at)| (name, reason, at))
            .collect()
    }

    /// Paths of ingested files in ingestion order.
    pub fn ingested_in_order(&self) -> Vec<(String, usize)> {
        let mut v: Vec<(u64, String, usize)> = self
            .files
            .iter()
            .filter_map(|(name, e)| match e.outcome {
                Outcome::Ingested { rows, .. } => Some((e.seq, name.clone(), rows)),
                Outcome::Quarantined { .. } => None,
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, n, r)| (n, r)).collect()
    }
}
