//! The manifest journal: one line appended (and fsynced) per committed
//! file, replayed at load, and compacted into the snapshot.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::manifest::{Manifest, ManifestEntry, Outcome};
use super::scan::NewFile;
use super::{IngestError, Ingestor};
use crate::fsutil;

/// One line of the manifest journal: a file's outcome, appended (and
/// fsynced) when the file is committed, so a commit costs one small write
/// however many files the manifest holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JournalRecord {
    name: String,
    entry: ManifestEntry,
    /// The first ingested file's column types, on the record that set them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    schema_types: BTreeMap<String, String>,
}

/// The journal beside a manifest snapshot: `manifest.json` →
/// `manifest.journal`.
pub fn journal_path(manifest: &Path) -> PathBuf {
    manifest.with_extension("journal")
}

/// The journal is folded into the snapshot once it holds this many records
/// and at least as many as the snapshot (so the rewrites cost O(1) per file
/// amortized), or when it is older than [`COMPACT_AFTER`].
const COMPACT_MIN_RECORDS: usize = 256;
/// How stale `manifest.json` alone may get while files arrive.
const COMPACT_AFTER: Duration = Duration::from_secs(2);
/// How often an idle daemon retries a manifest write that failed.
const COMPACT_RETRY: Duration = Duration::from_secs(1);

impl Manifest {
    /// Applies the journal's records newer than the snapshot (a record whose
    /// `seq` the snapshot already holds was compacted into it). A line that
    /// does not parse (the torn tail of an append cut by a crash or a full
    /// disk) is skipped: that outcome was never durable, so its file is read
    /// again, which is what exactly-once needs. Returns the records applied.
    pub(super) fn replay(&mut self, journal: &Path, bytes: &[u8]) -> usize {
        let mut applied = 0;
        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let record: JournalRecord = match serde_json::from_slice(line) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(journal = %journal.display(), line = i + 1, error = %e, "skipping a torn manifest journal line (an append cut short); its file is read again");
                    continue;
                }
            };
            if record.entry.seq <= self.next_seq {
                continue;
            }
            if let Outcome::Ingested { rows, dropped } = &record.entry.outcome {
                self.rows_ingested += *rows as u64;
                self.rows_dropped += *dropped as u64;
            }
            if self.schema_types.is_empty() && !record.schema_types.is_empty() {
                self.schema_types = record.schema_types;
            }
            self.next_seq = record.entry.seq;
            self.files.insert(record.name, record.entry);
            applied += 1;
        }
        applied
    }
}

impl Ingestor {
    /// Records a file's outcome durably: one line appended to the journal
    /// and fsynced. Called only after the file's rows are accounted for by
    /// the caller. After a failed append (a full disk) the next commit
    /// rewrites the whole manifest instead, so a torn line never has a good
    /// one appended after it and every outcome held in memory reaches the
    /// disk as soon as it can.
    pub fn commit(&mut self, file: &NewFile, outcome: Outcome) -> Result<(), IngestError> {
        self.manifest
            .record(file.name.clone(), file.identity.clone(), outcome);
        if self.journal.failed {
            return self.compact();
        }
        let entry = self.manifest.files[&file.name].clone();
        let record = JournalRecord {
            name: file.name.clone(),
            entry,
            // Carried until a record or the snapshot holds them durably.
            schema_types: if self.journal.types_durable {
                BTreeMap::new()
            } else {
                self.manifest.schema_types.clone()
            },
        };
        let line = serde_json::to_string(&record).expect("journal record serializes");
        if let Err(source) = fsutil::append_line(&self.journal.path, &line) {
            self.journal.failed = true;
            return Err(IngestError::ManifestIo {
                path: self.journal.path.clone(),
                source,
            });
        }
        self.journal.records += 1;
        self.journal.types_durable = !self.manifest.schema_types.is_empty();
        self.compact_if_due()
    }

    /// Compacts when the journal is long (as long as the snapshot) or
    /// older than [`COMPACT_AFTER`]; every scan calls it, so an idle
    /// daemon compacts too.
    pub fn compact_if_due(&mut self) -> Result<(), IngestError> {
        let long = self.journal.records >= COMPACT_MIN_RECORDS.max(self.manifest.files.len());
        let since = self.journal.compacted_at.elapsed();
        let due = long || (self.journal.records > 0 && since >= COMPACT_AFTER);
        // While writes fail, retry at a bounded rate (each try is O(files)).
        let failing = self.journal.failed || self.journal.snapshot_stale;
        if (due && !failing) || (failing && since >= COMPACT_RETRY) {
            self.compact()
        } else {
            Ok(())
        }
    }

    /// Writes the whole manifest atomically, then empties the journal. A
    /// crash between the two leaves journal records the snapshot already
    /// holds; loading skips them by their sequence number.
    pub fn compact(&mut self) -> Result<(), IngestError> {
        self.journal.compacted_at = Instant::now();
        if let Err(e) = self.manifest.save(&self.manifest_path) {
            // The journal is untouched and still takes appends (a full
            // disk often has room in its last page); retry the snapshot.
            self.journal.snapshot_stale = true;
            return Err(e);
        }
        let emptied = match fs::remove_file(&self.journal.path) {
            Ok(()) => fsutil::sync_dir(self.journal.path.parent().unwrap_or(Path::new("."))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(source) = emptied {
            // The snapshot holds everything; a journal left behind is
            // skipped at load (its records are not newer than it). Keep
            // compacting until it is gone: never append after a torn line.
            self.journal.failed = true;
            return Err(IngestError::ManifestIo {
                path: self.journal.path.clone(),
                source,
            });
        }
        self.journal.records = 0;
        self.journal.failed = false;
        self.journal.snapshot_stale = false;
        if std::mem::take(&mut self.journal.reported) {
            tracing::info!(manifest = %self.manifest_path.display(), "the manifest is written again");
        }
        self.journal.types_durable = !self.manifest.schema_types.is_empty();
        Ok(())
    }
}

/// The manifest journal's bookkeeping in the running process.
#[derive(Debug)]
pub(super) struct Journal {
    pub(super) path: PathBuf,
    /// Records appended since the last compaction.
    pub(super) records: usize,
    /// An append or the journal's removal failed (its tail may be torn):
    /// compact before appending again.
    pub(super) failed: bool,
    /// The snapshot could not be written (the journal is intact): retry.
    pub(super) snapshot_stale: bool,
    /// A failure was logged; the recovery will be too.
    pub(super) reported: bool,
    /// The first file's column types are on disk (snapshot or journal).
    pub(super) types_durable: bool,
    pub(super) compacted_at: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;
    use crate::ingest::manifest::FileIdentity;

    /// The manifest journal: commits append, a load replays, compaction
    /// folds it in; a crash between the snapshot and the journal's removal
    /// and a torn last line count nothing twice and lose nothing durable.
    #[test]
    fn manifest_journal_replays_compacts_and_survives_torn_tails() {
        use std::fs::OpenOptions;
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut policy = Policy::default();
        policy.data.dir = dir.path().join("in");
        policy.state.dir = dir.path().join("state");
        fs::create_dir_all(&policy.data.dir).unwrap();
        fs::create_dir_all(&policy.state.dir).unwrap();
        let snapshot = policy.state.dir.join("manifest.json");
        let journal = journal_path(&snapshot);
        let file = |i: u64| NewFile {
            name: format!("f{i}.parquet"),
            path: policy.data.dir.join(format!("f{i}.parquet")),
            identity: FileIdentity {
                size: i,
                mtime_ns: 0,
                inode: i,
                device: 1,
                footer_sha256: String::new(),
            },
            replaced: false,
            problem: None,
        };
        let ingested = |rows| Outcome::Ingested { rows, dropped: 0 };
        let mut ing = Ingestor::open(&policy).unwrap();
        ing.record_types(&BTreeMap::from([("a".to_string(), "f32".to_string())]));
        for i in 1..=3 {
            ing.commit(&file(i), ingested(10)).unwrap();
        }
        assert!(!snapshot.exists(), "three commits stay in the journal");
        assert_eq!(fs::read_to_string(&journal).unwrap().lines().count(), 3);
        let loaded = Manifest::load(&snapshot).unwrap();
        assert_eq!(loaded, ing.manifest);
        assert_eq!(
            loaded.schema_types.len(),
            1,
            "the types travel in the journal"
        );

        // Crash after the snapshot was written but before the journal went:
        // its records are already in the snapshot and are skipped.
        ing.manifest.save(&snapshot).unwrap();
        ing.commit(&file(4), ingested(5)).unwrap();
        let loaded = Manifest::load(&snapshot).unwrap();
        assert_eq!(loaded.rows_ingested, 35);
        assert_eq!(loaded.next_seq, 4);
        assert_eq!(loaded.files.len(), 4);

        // A torn tail (an append cut short) is skipped: that file is read
        // again, never counted twice. Reopening folds the journal in.
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(b"{\"name\":\"f5.parquet\",\"entry\":{\"ident")
            .unwrap();
        drop(f);
        let mut ing = Ingestor::open(&policy).unwrap();
        assert_eq!(ing.manifest.rows_ingested, 35);
        assert!(!journal.exists(), "opening compacts");
        assert_eq!(Manifest::load(&snapshot).unwrap(), ing.manifest);

        // A failed append (the journal's place is taken by a directory):
        // the error names the journal; once it is writable again the next
        // commit rewrites everything, the failed outcome included.
        fs::create_dir(&journal).unwrap();
        let e = ing.commit(&file(5), ingested(7)).unwrap_err();
        assert!(e.to_string().contains("manifest.journal"), "{e}");
        fs::remove_dir(&journal).unwrap();
        ing.commit(&file(6), ingested(1)).unwrap();
        let loaded = Manifest::load(&snapshot).unwrap();
        assert_eq!(loaded.rows_ingested, 43);
        assert_eq!(loaded.next_seq, 6);
        assert!(!journal.exists());

        // Many commits: the journal never grows past the snapshot's size
        // (amortized O(1) per file), and load always matches memory.
        for i in 7..=700 {
            ing.commit(&file(i), ingested(1)).unwrap();
            let lines = fs::read_to_string(&journal).map_or(0, |t| t.lines().count());
            assert!(lines < COMPACT_MIN_RECORDS.max(ing.manifest.files.len()));
        }
        assert_eq!(Manifest::load(&snapshot).unwrap(), ing.manifest);
    }
}
