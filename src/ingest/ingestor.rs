//! The ingestion stage as the daemon holds it. Scanning is in `scan.rs`,
//! committing and compaction in `journal.rs`.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::journal::{journal_path, Journal};
use super::manifest::Manifest;
use super::reader::FileReader;
use super::scan::Settling;
use super::schema::Schema;
use super::IngestError;
use crate::config::Policy;

/// The ingestion stage: a data directory, its manifest and the schema.
pub struct Ingestor {
    pub(super) dir: PathBuf,
    pub(super) manifest_path: PathBuf,
    pub manifest: Manifest,
    pub(super) journal: Journal,
    pub schema: Option<Schema>,
    pub(super) policy: Policy,
    pub(super) settling: HashMap<String, Settling>,
}

impl Ingestor {
    pub fn open(policy: &Policy) -> Result<Ingestor, IngestError> {
        let manifest_path = policy.state.dir.join("manifest.json");
        let manifest = Manifest::load(&manifest_path)?;
        let journal = Journal {
            path: journal_path(&manifest_path),
            records: 0,
            failed: false,
            snapshot_stale: false,
            reported: false,
            types_durable: !manifest.schema_types.is_empty(),
            compacted_at: Instant::now(),
        };
        let mut ingestor = Ingestor {
            dir: policy.data.dir.clone(),
            manifest_path,
            manifest,
            journal,
            schema: Schema::from_policy(policy),
            policy: policy.clone(),
            settling: HashMap::new(),
        };
        // Fold what the last run appended into the snapshot, and drop a torn
        // tail, before appending anything after it.
        if fs::metadata(&ingestor.journal.path).is_ok_and(|m| m.len() > 0) {
            if let Err(e) = ingestor.compact() {
                // A full or read-only state directory must not keep the
                // daemon from starting: what the journal holds was loaded;
                // its tail may be torn, so nothing is appended after it
                // until a compaction succeeds.
                tracing::error!(error = %e, "cannot write the manifest at start; retrying every second");
                ingestor.journal.failed = true;
                ingestor.journal.reported = true;
            }
        }
        Ok(ingestor)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A reader for one file outside the daemon (`driftd probe-file`): the
    /// manifest's recorded column types are read, nothing is written (no
    /// compaction: a running daemon owns the state directory).
    pub fn read_only_reader(policy: &Policy) -> Result<FileReader, IngestError> {
        let manifest = Manifest::load(&policy.state.dir.join("manifest.json"))?;
        Ok(FileReader {
            schema: Schema::from_policy(policy),
            recorded: manifest.schema_types,
            policy: policy.clone(),
        })
    }

    /// A cheap, thread-movable reader with the current schema.
    pub fn reader(&self) -> FileReader {
        FileReader {
            schema: self.schema.clone(),
            recorded: self.manifest.schema_types.clone(),
            policy: self.policy.clone(),
        }
    }

    /// Records the column types of the first file ingested (persisted with
    /// the next commit).
    pub fn record_types(&mut self, types: &BTreeMap<String, String>) {
        if self.manifest.schema_types.is_empty() {
            self.manifest.schema_types = types.clone();
        }
    }
}
