//! Finding complete Parquet files in the data directory, reading them into
//! [`Dataset`]s batch by batch, and remembering each file in a manifest so a
//! restart neither loses nor double-counts rows.
//!
//! Boundary: everything that leaves this module is a checked batch (the
//! policy's feature columns as f32, in the policy's order, finite; labels in
//! `0..classes`) or a quarantine record. A bad file never becomes an error of
//! the caller.
//!
//! Finding files: inotify (the `notify` crate) only wakes the daemon early;
//! the periodic rescan is the truth, since events can be lost, overflow, or
//! never come (network filesystems). A file is taken when its name passes
//! the producer convention, its size and mtime have settled, and its Parquet
//! footer is valid.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use chrono::{DateTime, Utc};
use polars::io::parquet::metadata::FileMetadataRef;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{glob_match, BadRows, Policy};
use crate::fsutil;
use crate::model::{self, Dataset};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("manifest {path}: {source}")]
    ManifestIo {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("manifest {path} is not valid JSON: {message}")]
    ManifestCorrupt { path: PathBuf, message: String },
}

/// Why a file was not ingested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    #[error("cannot read the file: {0}")]
    Unreadable(String),
    #[error("the file vanished while it was being read")]
    Vanished,
    #[error(
        "a symlink to {target}, outside the data directory (data.follow_symlinks = true reads it)"
    )]
    SymlinkOutside { target: String },
    #[error(
        "reading this file killed driftd (signal {signal} inside the Parquet reader, e.g. an \
         allocation failure on a corrupt page); quarantined so it cannot stop the daemon again"
    )]
    ReaderCrashed { signal: i32 },
    #[error("not a valid Parquet file: {0}")]
    NotParquet(String),
    #[error("the file has no rows")]
    Empty,
    #[error("every row was dropped as bad ({dropped} rows)")]
    NoUsableRows { dropped: usize },
    #[error("feature column {column:?} is missing (the file has: {available})")]
    MissingColumn { column: String, available: String },
    #[error("column {column:?} has type {found}, expected {expected}")]
    WrongType {
        column: String,
        found: String,
        expected: String,
    },
    #[error(
        "column {column:?} has {count} null, NaN or infinite values (first at row {first_row}{})",
        row_id_note(.first_row_id)
    )]
    BadValues {
        column: String,
        count: usize,
        first_row: usize,
        /// The first bad row's `data.row_id` value, when the policy names one.
        first_row_id: Option<String>,
    },
    #[error(
        "label {label} at row {row}{} is outside the classes {classes} ({count} such rows)",
        row_id_note(.row_id)
    )]
    LabelOutOfRange {
        label: String,
        row: usize,
        row_id: Option<String>,
        count: usize,
        classes: String,
    },
}

fn row_id_note(row_id: &Option<String>) -> String {
    row_id
        .as_ref()
        .map_or_else(String::new, |id| format!(", row id {id}"))
}

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

const FOOTER_HASH_BYTES: u64 = 64 * 1024;

impl FileIdentity {
    fn of(meta: &fs::Metadata) -> Self {
        FileIdentity {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            inode: meta.ino(),
            device: meta.dev(),
            footer_sha256: String::new(),
        }
    }

    /// Same file as far as `stat` can tell (the hash is not compared).
    fn same_stat(&self, other: &FileIdentity) -> bool {
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
                message: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(source) => Err(IngestError::ManifestIo {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Applies the journal's records newer than the snapshot (a record whose
    /// `seq` the snapshot already holds was compacted into it). A line that
    /// does not parse (the torn tail of an append cut by a crash or a full
    /// disk) is skipped: that outcome was never durable, so its file is read
    /// again, which is what exactly-once needs. Returns the records applied.
    fn replay(&mut self, journal: &Path, bytes: &[u8]) -> usize {
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

    /// Writes the whole manifest atomically (the snapshot; the journal is
    /// the caller's: see [`Ingestor::compact`]).
    pub fn save(&self, path: &Path) -> Result<(), IngestError> {
        let json = serde_json::to_vec(self).expect("manifest serializes");
        fsutil::write_atomic(path, &json).map_err(|source| IngestError::ManifestIo {
            path: path.to_path_buf(),
            source,
        })
    }

    fn record(&mut self, name: String, identity: FileIdentity, outcome: Outcome) {
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
                // Read through the link only to a regular file, inside the
                // data directory unless the policy allows any target.
                let Ok(target) = fs::canonicalize(entry.path()) else {
                    continue; // dangling: nothing to read (yet)
                };
                let Ok(target_meta) = fs::metadata(&target) else {
                    continue;
                };
                if !target_meta.is_file() {
                    continue;
                }
                let refused = (!follow_symlinks && !target.starts_with(&real_dir)).then(|| {
                    FileProblem::SymlinkOutside {
                        target: target.display().to_string(),
                    }
                });
                found.push(Listed {
                    name,
                    identity: if refused.is_some() {
                        FileIdentity::of(&meta)
                    } else {
                        FileIdentity::of(&target_meta)
                    },
                    path: if refused.is_some() {
                        entry.path()
                    } else {
                        target
                    },
                    refused,
                });
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

/// What the last bytes of a file say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Footer {
    /// Ends in `PAR1` with a plausible footer length; the hash of the tail.
    Valid { sha256: String },
    /// Too short or no trailer yet: maybe still being written.
    Incomplete(String),
    /// Wrong magic at the start, or a footer length that cannot be: no
    /// amount of waiting helps.
    Invalid(String),
}

/// Checks the Parquet trailer (`<footer> <u32 footer length> PAR1`, and
/// `PAR1` at the start) and hashes the file's tail.
fn read_footer(path: &Path) -> io::Result<Footer> {
    let mut f = open_no_follow(path)?;
    let len = f.metadata()?.len();
    if len < 12 {
        return Ok(Footer::Incomplete(format!(
            "{len} bytes is too short for a Parquet file"
        )));
    }
    let mut head = [0u8; 4];
    f.read_exact(&mut head)?;
    let tail_len = len.min(FOOTER_HASH_BYTES);
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    if &head != b"PAR1" {
        return Ok(Footer::Invalid("does not start with the magic PAR1".into()));
    }
    if &tail[tail.len() - 4..] != b"PAR1" {
        return Ok(Footer::Incomplete(
            "does not end with the magic PAR1 (truncated or still being written)".into(),
        ));
    }
    let n = tail.len();
    let footer_len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as u64;
    if footer_len == 0 || footer_len + 12 > len {
        return Ok(Footer::Invalid(format!(
            "footer length {footer_len} does not fit in a file of {len} bytes"
        )));
    }
    let sha = Sha256::digest(&tail);
    Ok(Footer::Valid {
        sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Whether a watch event means the directory may have changed. notify's
/// inotify backend also reports opens, reads and closes without a write:
/// the scan itself opens the directory and reads files, so waking on those
/// made every scan trigger the next one, and an idle daemon rescanned
/// hundreds of times a second (regression test in `tests`). A close after
/// a write (a producer writing in place) still wakes.
pub fn wakes(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Starts watching `dir` for changes; every event that [`wakes`] calls
/// `wake`. The watcher stops when the returned value is dropped.
pub fn watch(
    dir: &Path,
    recursive: bool,
    wake: impl Fn() + Send + 'static,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::Watcher;
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Errors (queue overflow) also wake: the rescan finds what was missed.
        if event.as_ref().is_ok_and(|e| !wakes(&e.kind)) {
            return;
        }
        wake()
    })?;
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    watcher.watch(dir, mode)?;
    Ok(watcher)
}

/// The columns to take from each file, and how to treat bad rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub features: Vec<String>,
    pub label: String,
    pub classes: i64,
    /// Optional event-time column.
    pub timestamp: Option<String>,
    /// Optional instance-weight column.
    pub weight: Option<String>,
    /// Optional row-id column: named in bad-row messages.
    pub row_id: Option<String>,
    /// String label values in class order (empty: integer labels).
    pub class_names: Vec<String>,
    /// Optional column of the class that was served.
    pub prediction: Option<String>,
    /// Served probability columns: none, class 1's (binary), or one per
    /// class.
    pub probability: Vec<String>,
    pub bad_rows: BadRows,
}

impl Schema {
    /// A schema for the given columns with integer labels, quarantining
    /// bad rows.
    pub fn new(features: Vec<String>, label: String, classes: i64) -> Schema {
        Schema {
            features,
            label,
            classes,
            timestamp: None,
            weight: None,
            row_id: None,
            class_names: Vec::new(),
            prediction: None,
            probability: Vec::new(),
            bad_rows: BadRows::Quarantine,
        }
    }

    fn with_policy(features: Vec<String>, label: String, classes: i64, policy: &Policy) -> Schema {
        Schema {
            timestamp: policy.data.timestamp.clone(),
            weight: policy.data.weight.clone(),
            row_id: policy.data.row_id.clone(),
            class_names: policy.data.classes.clone(),
            prediction: policy.data.prediction.clone(),
            probability: policy
                .data
                .probability
                .as_ref()
                .map(crate::config::ServedProbability::columns)
                .unwrap_or_default(),
            bad_rows: policy.data.bad_rows,
            ..Schema::new(features, label, classes)
        }
    }

    /// For a list of features the schema is known up front; for a pattern it
    /// is fixed by the first file read (see [`Schema::resolve`]).
    pub fn from_policy(policy: &Policy) -> Option<Schema> {
        match &policy.data.features {
            crate::config::FeatureSpec::List(list) => Some(Schema::with_policy(
                list.clone(),
                policy.data.label.clone(),
                policy.model.classes,
                policy,
            )),
            crate::config::FeatureSpec::Pattern(_) => None,
        }
    }

    pub fn resolve(policy: &Policy, columns: &[String]) -> Schema {
        Schema::with_policy(
            policy.select_features(columns),
            policy.data.label.clone(),
            policy.model.classes,
            policy,
        )
    }

    /// The schema a version was trained with, with the policy's optional
    /// columns.
    pub fn of_version(meta: &crate::registry::VersionMeta, policy: &Policy) -> Schema {
        Schema::with_policy(
            meta.features.clone(),
            meta.label.clone(),
            meta.architecture.classes as i64,
            policy,
        )
    }

    /// Every column read, features first.
    fn columns(&self) -> Vec<String> {
        let mut columns = self.features.clone();
        columns.push(self.label.clone());
        columns.extend(self.timestamp.iter().cloned());
        columns.extend(self.weight.iter().cloned());
        columns.extend(self.row_id.iter().cloned());
        columns.extend(self.prediction.iter().cloned());
        columns.extend(self.probability.iter().cloned());
        columns
    }

    /// Whether files carry what the deployed model served.
    pub fn has_served(&self) -> bool {
        self.prediction.is_some() || !self.probability.is_empty()
    }
}

/// Turns a panic inside polars (malformed input can trigger them) into a
/// [`FileProblem`].
fn catching<T>(f: impl FnOnce() -> Result<T, FileProblem>) -> Result<T, FileProblem> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "no message".into());
        Err(FileProblem::NotParquet(format!(
            "the Parquet reader panicked: {msg}"
        )))
    })
}

/// Opens a data file for reading without following a symlink in its last
/// component (`O_NOFOLLOW`): the scan resolved links already, so a link
/// here was put in place after the scan checked where it points.
fn open_no_follow(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn open_problem(e: io::Error) -> FileProblem {
    match e.kind() {
        io::ErrorKind::NotFound => FileProblem::Vanished,
        _ => FileProblem::Unreadable(e.to_string()),
    }
}

/// Arrow types (by their Debug name prefix) that the polars build, with
/// only the dtype features driftd enables, cannot load.
const UNLOADABLE_TYPES: &[&str] = &["Float16", "Time32", "Time64", "Duration", "Interval"];

/// Reads one whole file into a checked dataset (batch by batch; bad rows
/// per the schema's rule).
pub fn read_file(path: &Path, schema: &Schema) -> Result<Dataset, FileProblem> {
    let file = ParquetFile::open(path, schema.clone(), &BTreeMap::new(), usize::MAX)?;
    let mut data = Dataset::new(schema.features.len());
    for i in 0..file.batches.len() {
        data.extend(&file.read_batch(i)?.data);
    }
    Ok(data)
}

/// Column names of a Parquet file, without reading its data.
pub fn column_names(path: &Path) -> Result<Vec<String>, FileProblem> {
    catching(|| {
        let file = fs::File::open(path).map_err(open_problem)?;
        let mut reader = ParquetReader::new(file);
        let schema = reader
            .schema()
            .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
        Ok(schema.iter_names().map(|n| n.to_string()).collect())
    })
}

/// Rows of one batch, checked, and how many bad rows were dropped.
#[derive(Debug, Clone)]
pub struct Batch {
    pub data: Dataset,
    pub dropped: usize,
    /// Why the first rows were dropped (for the `file_ingested` event).
    pub first_dropped: Option<FileProblem>,
    /// What the deployed model served for each kept row, when the schema
    /// names served columns.
    pub served: Option<Served>,
}

/// What the deployed model served for the rows of a batch, as the monitor
/// needs it. A row whose served values are missing or invalid (null, a
/// probability outside [0, 1], a class that is not one) is not `valid`: the
/// monitor scores it with the live model instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    pub predicted: Vec<u32>,
    /// Served probability of the row's true label (1 or 0 when only the
    /// class was served).
    pub p_label: Vec<f32>,
    /// Served probability of class 1 (binary models).
    pub p_positive: Vec<f32>,
    pub valid: Vec<bool>,
}

impl Served {
    pub fn invalid_rows(&self) -> usize {
        self.valid.iter().filter(|v| !**v).count()
    }

    fn reorder(&self, order: &[usize]) -> Served {
        Served {
            predicted: order.iter().map(|&i| self.predicted[i]).collect(),
            p_label: order.iter().map(|&i| self.p_label[i]).collect(),
            p_positive: order.iter().map(|&i| self.p_positive[i]).collect(),
            valid: order.iter().map(|&i| self.valid[i]).collect(),
        }
    }
}

/// An open Parquet file whose footer, columns and types have been checked,
/// read batch by batch: a batch is whole row groups up to `batch_rows` rows
/// (a bigger row group is split), so memory is bounded by the batch, not the
/// file. The open handle keeps the data readable if the file is unlinked.
pub struct ParquetFile {
    file: fs::File,
    metadata: FileMetadataRef,
    pub schema: Schema,
    /// `(first row, rows)` of each batch.
    pub batches: Vec<(usize, usize)>,
    /// The polars type of each column read.
    pub types: BTreeMap<String, String>,
    /// Rows without an event-time column get the file's mtime: when it
    /// arrived, and the same after a restart.
    arrival_us: i64,
}

impl ParquetFile {
    /// Opens `path` and checks its columns against `schema` and the types
    /// recorded from the first file (`recorded`, may be empty).
    pub fn open(
        path: &Path,
        schema: Schema,
        recorded: &BTreeMap<String, String>,
        batch_rows: usize,
    ) -> Result<ParquetFile, FileProblem> {
        let file = fs::File::open(path).map_err(open_problem)?;
        catching(|| Self::open_inner(file, schema, recorded, batch_rows))
    }

    /// [`ParquetFile::open`] for a file of the data directory: a symlink
    /// at `path` is refused (see [`open_no_follow`]).
    fn open_data_file(
        path: &Path,
        schema: Schema,
        recorded: &BTreeMap<String, String>,
        batch_rows: usize,
    ) -> Result<ParquetFile, FileProblem> {
        let file = open_no_follow(path).map_err(open_problem)?;
        catching(|| Self::open_inner(file, schema, recorded, batch_rows))
    }

    fn open_inner(
        file: fs::File,
        schema: Schema,
        recorded: &BTreeMap<String, String>,
        batch_rows: usize,
    ) -> Result<ParquetFile, FileProblem> {
        let arrival_us = file
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_micros() as i64);
        let not_parquet = |e: PolarsError| FileProblem::NotParquet(e.to_string());
        let mut reader = ParquetReader::new(file.try_clone().map_err(open_problem)?);
        let metadata = reader.get_metadata().map_err(not_parquet)?.clone();
        let available: Vec<String> = reader
            .schema()
            .map_err(not_parquet)?
            .iter_names()
            .map(|n| n.to_string())
            .collect();
        let columns = schema.columns();
        let arrow_schema = reader.schema().map_err(not_parquet)?;
        for c in &columns {
            let Some(field) = arrow_schema.get(c.as_str()) else {
                return Err(FileProblem::MissingColumn {
                    column: c.clone(),
                    available: available.join(", "),
                });
            };
            // Types polars is built without (its dtype-* features): say
            // so instead of its "cannot create series" error.
            let arrow_type = format!("{:?}", field.dtype);
            if UNLOADABLE_TYPES.iter().any(|t| arrow_type.starts_with(t)) {
                return Err(FileProblem::WrongType {
                    column: c.clone(),
                    found: format!("{arrow_type} (not loadable by this build)"),
                    expected:
                        "an integer, float, double, decimal, boolean, string, date or timestamp"
                            .into(),
                });
            }
        }
        // An empty slice gives the column types without reading data.
        let empty = reader
            .with_columns(Some(columns))
            .with_slice(Some((0, 0)))
            .finish()
            .map_err(not_parquet)?;
        let types = check_types(&empty, &schema, recorded)?;
        if metadata.num_rows == 0 {
            return Err(FileProblem::Empty);
        }
        let batches = plan_batches(
            metadata.row_groups.iter().map(|rg| rg.num_rows()),
            batch_rows,
        );
        Ok(ParquetFile {
            file,
            metadata,
            schema,
            batches,
            types,
            arrival_us,
        })
    }

    pub fn rows(&self) -> usize {
        self.metadata.num_rows
    }

    /// Reads and checks batch `i`. Row numbers in problems count from the
    /// start of the file.
    pub fn read_batch(&self, i: usize) -> Result<Batch, FileProblem> {
        catching(|| {
            let (first, rows) = self.batches[i];
            let file = self.file.try_clone().map_err(open_problem)?;
            let mut reader = ParquetReader::new(file);
            reader.set_metadata(self.metadata.clone());
            let whole_file = first == 0 && rows == self.metadata.num_rows;
            let df = reader
                .with_columns(Some(self.schema.columns()))
                .with_slice((!whole_file).then_some((first, rows)))
                .finish()
                .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
            convert(&df, &self.schema, first, self.arrival_us)
        })
    }
}

/// Groups row groups into batches of about `batch_rows` rows.
fn plan_batches(row_groups: impl Iterator<Item = usize>, batch_rows: usize) -> Vec<(usize, usize)> {
    let mut batches = Vec::new();
    let (mut start, mut len) = (0usize, 0usize);
    for rows in row_groups {
        if len > 0 && len + rows > batch_rows {
            batches.push((start, len));
            start += len;
            len = 0;
        }
        len += rows;
        while len > batch_rows {
            batches.push((start, batch_rows));
            start += batch_rows;
            len -= batch_rows;
        }
    }
    if len > 0 {
        batches.push((start, len));
    }
    batches
}

fn is_number(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || dtype.is_bool() || dtype.is_decimal()
}

/// Checks each column's type; returns the types (to record from the first
/// file).
fn check_types(
    df: &DataFrame,
    schema: &Schema,
    recorded: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FileProblem> {
    let mut types = BTreeMap::new();
    let expected = |name: &str, what: &str| match recorded.get(name) {
        Some(t) => format!("{what} (the recorded schema has {t})"),
        None => what.to_string(),
    };
    let wrong = |name: &str, dtype: &DataType, what: &str| FileProblem::WrongType {
        column: name.to_string(),
        found: dtype.to_string(),
        expected: expected(name, what),
    };
    let features = schema.features.iter().chain(schema.weight.iter());
    for name in features {
        let dtype = column(df, name)?.dtype();
        if !is_number(dtype) {
            return Err(wrong(name, dtype, "a number or boolean"));
        }
        types.insert(name.clone(), dtype.to_string());
    }
    let dtype = column(df, &schema.label)?.dtype();
    let label_ok = dtype.is_integer()
        || dtype.is_bool()
        || (!schema.class_names.is_empty() && dtype.is_string());
    if !label_ok {
        let what = if schema.class_names.is_empty() {
            "an integer class label (set data.classes for string labels)"
        } else {
            "an integer class label or one of data.classes"
        };
        return Err(wrong(&schema.label, dtype, what));
    }
    types.insert(schema.label.clone(), dtype.to_string());
    if let Some(id) = &schema.row_id {
        let dtype = column(df, id)?.dtype();
        if !(dtype.is_integer() || dtype.is_string()) {
            return Err(wrong(id, dtype, "integers or strings (a row id)"));
        }
        types.insert(id.clone(), dtype.to_string());
    }
    if let Some(p) = &schema.prediction {
        let dtype = column(df, p)?.dtype();
        let ok = dtype.is_integer()
            || dtype.is_bool()
            || (!schema.class_names.is_empty() && dtype.is_string());
        if !ok {
            return Err(wrong(
                p,
                dtype,
                "an integer class or one of data.classes (the served class)",
            ));
        }
        types.insert(p.clone(), dtype.to_string());
    }
    for p in &schema.probability {
        let dtype = column(df, p)?.dtype();
        if !dtype.is_float() {
            return Err(wrong(
                p,
                dtype,
                "a float probability (the served probability)",
            ));
        }
        types.insert(p.clone(), dtype.to_string());
    }
    if let Some(ts) = &schema.timestamp {
        let dtype = column(df, ts)?.dtype();
        if !(matches!(dtype, DataType::Datetime(..) | DataType::Date)
            || dtype.is_primitive_numeric())
        {
            return Err(wrong(ts, dtype, "a datetime, a date or Unix seconds"));
        }
        types.insert(ts.clone(), dtype.to_string());
    }
    Ok(types)
}

/// Which rows of a batch are bad, and the rule for them.
struct RowFilter {
    keep: Vec<bool>,
    rule: BadRows,
    /// The first reason rows were dropped (with `BadRows::Drop`).
    first_problem: Option<FileProblem>,
}

impl RowFilter {
    /// Records bad `rows` found because of `problem`: an error when bad rows
    /// quarantine the file, else the rows are marked for dropping.
    fn bad(&mut self, rows: &[usize], problem: FileProblem) -> Result<(), FileProblem> {
        if rows.is_empty() {
            return Ok(());
        }
        match self.rule {
            BadRows::Quarantine => Err(problem),
            BadRows::Drop => {
                for &r in rows {
                    self.keep[r] = false;
                }
                self.first_problem.get_or_insert(problem);
                Ok(())
            }
        }
    }
}

/// Converts one batch's frame into a checked dataset.
fn convert(
    df: &DataFrame,
    schema: &Schema,
    first_row: usize,
    arrival_us: i64,
) -> Result<Batch, FileProblem> {
    let n = df.height();
    let width = schema.features.len();
    let mut filter = RowFilter {
        keep: vec![true; n],
        rule: schema.bad_rows,
        first_problem: None,
    };
    let row_id = |row: usize| -> Option<String> {
        let col = df.column(schema.row_id.as_deref()?).ok()?;
        Some(match col.get(row).ok()? {
            AnyValue::String(s) => s.to_string(),
            AnyValue::StringOwned(s) => s.to_string(),
            v => v.to_string(),
        })
    };
    let bad_values = |column: &str, bad: &[usize]| {
        let first = bad.first().copied().unwrap_or(0);
        FileProblem::BadValues {
            column: column.to_string(),
            count: bad.len(),
            first_row: first_row + first,
            first_row_id: if bad.is_empty() { None } else { row_id(first) },
        }
    };
    let mut cast = Vec::with_capacity(width);
    for name in &schema.features {
        cast.push(f32_column(df, name)?);
    }
    // A column without nulls is borrowed as it is and checked for NaN and
    // infinities while it is interleaved (one pass over it instead of two);
    // one with nulls is checked first.
    let mut columns = Vec::with_capacity(width);
    let mut checked_bad = Vec::with_capacity(width);
    for ca in &cast {
        match ca.cont_slice() {
            Ok(values) => {
                columns.push(std::borrow::Cow::Borrowed(values));
                checked_bad.push(None);
            }
            Err(_) => {
                let (values, bad) = finite_values(ca);
                columns.push(values);
                checked_bad.push(Some(bad));
            }
        }
    }
    let (mut features, finite) = interleave(&columns, n);
    for (j, name) in schema.features.iter().enumerate() {
        let bad = match checked_bad[j].take() {
            Some(bad) => bad,
            None if finite[j] => Vec::new(),
            None => {
                let bad: Vec<usize> = (0..n).filter(|&i| !columns[j][i].is_finite()).collect();
                for &i in &bad {
                    features[i * width + j] = 0.0;
                }
                bad
            }
        };
        filter.bad(&bad, bad_values(name, &bad))?;
    }
    let (labels, bad_labels, out_of_range) = label_values(df, schema)?;
    filter.bad(&bad_labels, bad_values(&schema.label, &bad_labels))?;
    if let Some((row, label)) = out_of_range.first() {
        let classes = if !column(df, &schema.label)?.dtype().is_string() {
            format!("0..{}", schema.classes)
        } else {
            format!("{:?}", schema.class_names)
        };
        let rows: Vec<usize> = out_of_range.iter().map(|(r, _)| *r).collect();
        filter.bad(
            &rows,
            FileProblem::LabelOutOfRange {
                label: label.clone(),
                row: first_row + row,
                row_id: row_id(*row),
                count: rows.len(),
                classes,
            },
        )?;
    }
    let mut times_us = vec![arrival_us; n];
    if let Some(ts) = &schema.timestamp {
        let (values, bad) = timestamp_values(df, ts)?;
        filter.bad(&bad, bad_values(ts, &bad))?;
        times_us = values;
    }
    let mut weights = vec![1.0f32; n];
    if let Some(w) = &schema.weight {
        let ca = f32_column(df, w)?;
        let (values, mut bad) = finite_values(&ca);
        bad.extend(
            values
                .iter()
                .enumerate()
                .filter(|(_, v)| **v < 0.0)
                .map(|(i, _)| i),
        );
        bad.sort_unstable();
        filter.bad(&bad, bad_values(w, &bad))?;
        weights = values.into_owned();
    }
    let mut served = served_values(df, schema, &labels)?;
    let mut data = Dataset {
        width,
        features,
        labels,
        weights,
        times_us,
    };
    let dropped = filter.keep.iter().filter(|k| !**k).count();
    if dropped > 0 {
        let kept: Vec<usize> = (0..filter.keep.len()).filter(|&i| filter.keep[i]).collect();
        data = reorder_rows(&data, &kept);
        served = served.map(|s| s.reorder(&kept));
    }
    if schema.timestamp.is_some() && !data.times_us.is_sorted() {
        // The monitor's time window and the detectors see rows in event
        // order (within a batch; files are taken in name order).
        let mut order: Vec<usize> = (0..data.len()).collect();
        order.sort_by_key(|&i| data.times_us[i]);
        data = reorder_rows(&data, &order);
        served = served.map(|s| s.reorder(&order));
    }
    Ok(Batch {
        data,
        dropped,
        first_dropped: filter.first_problem,
        served,
    })
}

/// What was served, per row (see [`Served`]); `None` without served
/// columns.
fn served_values(
    df: &DataFrame,
    schema: &Schema,
    labels: &[i64],
) -> Result<Option<Served>, FileProblem> {
    if !schema.has_served() {
        return Ok(None);
    }
    let n = df.height();
    let classes = schema.classes as usize;
    let mut valid = vec![true; n];
    let served_class = match &schema.prediction {
        Some(name) => {
            let (values, nulls, outside) = class_values(column(df, name)?, schema)?;
            for r in nulls.into_iter().chain(outside.into_iter().map(|(r, _)| r)) {
                valid[r] = false;
            }
            Some(values)
        }
        None => None,
    };
    let mut probability_columns = Vec::with_capacity(schema.probability.len());
    for name in &schema.probability {
        let ca = f32_column(df, name)?;
        let values: Vec<f32> = ca
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                Some(p) if (0.0..=1.0).contains(&p) => p,
                _ => {
                    valid[row] = false;
                    0.0
                }
            })
            .collect();
        probability_columns.push(values);
    }
    let mut served = Served {
        predicted: Vec::with_capacity(n),
        p_label: Vec::with_capacity(n),
        p_positive: Vec::with_capacity(n),
        valid,
    };
    let mut probs = vec![0.0f32; classes];
    for (row, &label) in labels.iter().enumerate() {
        let has_probs = match probability_columns.as_slice() {
            [] => false,
            [positive] => {
                probs[0] = 1.0 - positive[row];
                probs[1] = positive[row];
                true
            }
            per_class => {
                for (p, column) in probs.iter_mut().zip(per_class) {
                    *p = column[row];
                }
                true
            }
        };
        let predicted = match &served_class {
            Some(values) => values[row] as usize,
            None => model::predicted_class(&probs),
        };
        let hard = |class: usize| if predicted == class { 1.0 } else { 0.0 };
        let (p_label, p_positive) = if has_probs {
            (probs[label as usize], probs.get(1).copied().unwrap_or(0.0))
        } else {
            (hard(label as usize), hard(1))
        };
        served.predicted.push(predicted as u32);
        served.p_label.push(p_label);
        served.p_positive.push(p_positive);
    }
    Ok(Some(served))
}

/// The rows of `data` at `order`'s indices, in that order.
fn reorder_rows(data: &Dataset, order: &[usize]) -> Dataset {
    let mut out = Dataset::new(data.width);
    for &i in order {
        out.features
            .extend_from_slice(&data.features[i * data.width..(i + 1) * data.width]);
        out.labels.push(data.labels[i]);
        out.weights.push(data.weights[i]);
        out.times_us.push(data.times_us[i]);
    }
    out
}

fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column, FileProblem> {
    df.column(name).map_err(|_| FileProblem::MissingColumn {
        column: name.to_string(),
        available: df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// A numeric or boolean column as one f32 chunk (a no-op for a
/// single-chunk float column).
fn f32_column(df: &DataFrame, name: &str) -> Result<Float32Chunked, FileProblem> {
    let cast = column(df, name)?
        .cast(&DataType::Float32)
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let ca = cast
        .f32()
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    Ok(ca.rechunk().into_owned())
}

/// The values of a single-chunk f32 column, with the rows that are null,
/// NaN or infinite (their value is 0). Without nulls the values are
/// borrowed and checked in one vectorizable pass.
fn finite_values(ca: &Float32Chunked) -> (std::borrow::Cow<'_, [f32]>, Vec<usize>) {
    if let Ok(values) = ca.cont_slice() {
        if values.iter().all(|x| x.is_finite()) {
            return (std::borrow::Cow::Borrowed(values), Vec::new());
        }
    }
    let mut out = Vec::with_capacity(ca.len());
    let mut bad = Vec::new();
    for (i, v) in ca.iter().enumerate() {
        match v {
            Some(x) if x.is_finite() => out.push(x),
            _ => {
                bad.push(i);
                out.push(0.0);
            }
        }
    }
    (std::borrow::Cow::Owned(out), bad)
}

/// Column-major values to row-major rows. A block of rows is assembled in
/// a scratch buffer that stays in L1 and then appended, so the output is
/// written once, in order (not zeroed first, nor revisited once per
/// column). Also says, per column, whether every value is finite.
fn interleave(columns: &[impl AsRef<[f32]>], rows: usize) -> (Vec<f32>, Vec<bool>) {
    const BLOCK: usize = 64;
    let width = columns.len();
    let mut out = Vec::with_capacity(rows * width);
    let mut scratch = vec![0.0f32; BLOCK * width];
    let mut finite = vec![true; width];
    for start in (0..rows).step_by(BLOCK) {
        let end = (start + BLOCK).min(rows);
        let block = &mut scratch[..(end - start) * width];
        for (j, column) in columns.iter().enumerate() {
            let values = &column.as_ref()[start..end];
            // A fold without early exit, so the check vectorizes.
            finite[j] &= values.iter().fold(true, |ok, v| ok & v.is_finite());
            for (row, &v) in block.chunks_exact_mut(width).zip(values) {
                row[j] = v;
            }
        }
        out.extend_from_slice(block);
    }
    (out, finite)
}

/// Labels as class indices; rows with a null label; rows whose label is
/// not a class (with the label as written).
#[allow(clippy::type_complexity)]
fn label_values(
    df: &DataFrame,
    schema: &Schema,
) -> Result<(Vec<i64>, Vec<usize>, Vec<(usize, String)>), FileProblem> {
    class_values(column(df, &schema.label)?, schema)
}

/// A column of classes (the label, or the served class) as class indices;
/// rows that are null; rows that are not a class (as written).
#[allow(clippy::type_complexity)]
fn class_values(
    col: &Column,
    schema: &Schema,
) -> Result<(Vec<i64>, Vec<usize>, Vec<(usize, String)>), FileProblem> {
    let mut labels = Vec::with_capacity(col.len());
    let mut nulls = Vec::new();
    let mut outside = Vec::new();
    let polars_err = |e: PolarsError| FileProblem::NotParquet(e.to_string());
    if col.dtype().is_string() {
        let index: HashMap<&str, i64> = schema
            .class_names
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i as i64))
            .collect();
        for (row, v) in col.str().map_err(polars_err)?.iter().enumerate() {
            match v.map(|s| index.get(s).ok_or(s)) {
                Some(Ok(&class)) => labels.push(class),
                Some(Err(s)) => {
                    outside.push((row, format!("{s:?}")));
                    labels.push(0);
                }
                None => {
                    nulls.push(row);
                    labels.push(0);
                }
            }
        }
        return Ok((labels, nulls, outside));
    }
    let cast = col.cast(&DataType::Int64).map_err(polars_err)?;
    let ca = cast.i64().map_err(polars_err)?.rechunk();
    if let Ok(values) = ca.cont_slice() {
        // No nulls: one pass over the values.
        if values.iter().all(|l| (0..schema.classes).contains(l)) {
            return Ok((values.to_vec(), nulls, outside));
        }
    }
    for (row, v) in ca.iter().enumerate() {
        match v {
            Some(label) if (0..schema.classes).contains(&label) => labels.push(label),
            Some(label) => {
                outside.push((row, label.to_string()));
                labels.push(0);
            }
            None => {
                nulls.push(row);
                labels.push(0);
            }
        }
    }
    Ok((labels, nulls, outside))
}

/// Event times in Unix microseconds (datetimes of any unit, or numbers of
/// Unix seconds), with the rows that are null or not finite.
fn timestamp_values(df: &DataFrame, name: &str) -> Result<(Vec<i64>, Vec<usize>), FileProblem> {
    let col = column(df, name)?;
    let polars_err = |e: PolarsError| FileProblem::NotParquet(e.to_string());
    let values: Vec<Option<f64>> = match col.dtype() {
        DataType::Datetime(unit, _) => {
            let scale = match unit {
                TimeUnit::Nanoseconds => 1e-3,
                TimeUnit::Microseconds => 1.0,
                TimeUnit::Milliseconds => 1e3,
            };
            let cast = col.cast(&DataType::Int64).map_err(polars_err)?;
            let ca = cast.i64().map_err(polars_err)?;
            ca.iter().map(|v| v.map(|x| x as f64 * scale)).collect()
        }
        DataType::Date => {
            // Days since the epoch, at midnight UTC.
            let cast = col.cast(&DataType::Int32).map_err(polars_err)?;
            let ca = cast.i32().map_err(polars_err)?;
            ca.iter()
                .map(|v| v.map(|days| days as f64 * 86_400e6))
                .collect()
        }
        _ => {
            let cast = col.cast(&DataType::Float64).map_err(polars_err)?;
            let ca = cast.f64().map_err(polars_err)?;
            ca.iter().map(|v| v.map(|x| x * 1e6)).collect()
        }
    };
    let mut bad = Vec::new();
    let out = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(x) if x.is_finite() => x as i64,
            _ => {
                bad.push(i);
                0
            }
        })
        .collect();
    Ok((out, bad))
}

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

/// Opens files with a fixed schema, or fixes the schema from the first
/// file when the policy gives a pattern. Cheap to clone and move to a
/// blocking thread.
#[derive(Debug, Clone)]
pub struct FileReader {
    schema: Option<Schema>,
    recorded: BTreeMap<String, String>,
    policy: Policy,
}

impl FileReader {
    /// Opens one file and checks its schema (without reading rows).
    pub fn open(&self, file: &NewFile) -> Result<ParquetFile, FileProblem> {
        let schema = match &self.schema {
            Some(s) => s.clone(),
            None => {
                let cols = column_names(&file.path)?;
                let schema = Schema::resolve(&self.policy, &cols);
                if schema.features.is_empty() {
                    return Err(FileProblem::MissingColumn {
                        column: format!("{:?}", self.policy.data.features),
                        available: cols.join(", "),
                    });
                }
                schema
            }
        };
        ParquetFile::open_data_file(
            &file.path,
            schema,
            &self.recorded,
            self.policy.data.batch_rows,
        )
    }
}

/// A file seen but not yet taken: since when its size and mtime have been
/// what they are.
#[derive(Debug, Clone)]
struct Settling {
    identity: FileIdentity,
    since: Instant,
}

/// The ingestion stage: a data directory, its manifest and the schema.
pub struct Ingestor {
    dir: PathBuf,
    manifest_path: PathBuf,
    pub manifest: Manifest,
    journal: Journal,
    pub schema: Option<Schema>,
    policy: Policy,
    settling: HashMap<String, Settling>,
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
                Err(e) => Some(FileProblem::Unreadable(e.to_string())),
                Ok(Footer::Incomplete(why)) if stable_for < incomplete_after => {
                    tracing::debug!(file = %file.name, why, "waiting for the file to be complete");
                    continue;
                }
                Ok(Footer::Incomplete(why) | Footer::Invalid(why)) => {
                    Some(FileProblem::NotParquet(why))
                }
                Ok(Footer::Valid { sha256 }) => {
                    identity.footer_sha256 = sha256;
                    None
                }
            };
            still_settling.remove(&file.name);
            let replaced = match self.manifest.files.get_mut(&file.name) {
                Some(entry)
                    if problem.is_none()
                        && entry.identity.size == identity.size
                        && entry.identity.footer_sha256 == identity.footer_sha256 =>
                {
                    tracing::debug!(file = %file.name, "file was rewritten with the same content; not read again");
                    entry.identity = identity;
                    refreshed = true;
                    continue;
                }
                Some(_) => true,
                None if problem.is_none() => {
                    if let Some(from) = self.renamed_from(&identity) {
                        tracing::info!(file = %file.name, from = %from, "file was renamed; not read again");
                        let entry = self.manifest.files.remove(&from).expect("found");
                        self.manifest.files.insert(file.name.clone(), entry);
                        refreshed = true;
                        continue;
                    }
                    false
                }
                None => false,
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
struct Journal {
    path: PathBuf,
    /// Records appended since the last compaction.
    records: usize,
    /// An append or the journal's removal failed (its tail may be torn):
    /// compact before appending again.
    failed: bool,
    /// The snapshot could not be written (the journal is intact): retry.
    snapshot_stale: bool,
    /// A failure was logged; the recovery will be too.
    reported: bool,
    /// The first file's column types are on disk (snapshot or journal).
    types_durable: bool,
    compacted_at: Instant,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_data_are_skipped() {
        assert!(is_candidate_name("part-1.parquet"));
        for n in [
            ".part-1.parquet",
            "part-1.parquet.tmp",
            "x.inprogress",
            "_SUCCESS",
            "_committed_123",
            "a.parquet._COPYING_",
        ] {
            assert!(!is_candidate_name(n), "{n}");
        }
    }

    fn write(path: &Path, cols: Vec<Column>) {
        let mut df = DataFrame::new_infer_height(cols).unwrap();
        let f = fs::File::create(path).unwrap();
        ParquetWriter::new(f).finish(&mut df).unwrap();
    }

    fn schema() -> Schema {
        Schema::new(vec!["a".into(), "b".into()], "y".into(), 2)
    }

    #[test]
    fn interleave_makes_rows_across_block_boundaries() {
        let rows = 2 * 1024 + 3;
        let a: Vec<f32> = (0..rows).map(|i| i as f32).collect();
        let b: Vec<f32> = (0..rows).map(|i| -(i as f32)).collect();
        let mut c: Vec<f32> = (0..rows).map(|i| (i % 7) as f32).collect();
        let (out, finite) = interleave(&[&a[..], &b[..], &c[..]], rows);
        assert_eq!(out.len(), 3 * rows);
        for i in 0..rows {
            assert_eq!(out[3 * i..3 * i + 3], [a[i], b[i], c[i]], "row {i}");
        }
        assert_eq!(finite, [true, true, true]);
        // A NaN in the last block and an infinity in the first are seen.
        c[rows - 1] = f32::NAN;
        let mut b = b;
        b[5] = f32::NEG_INFINITY;
        let (_, finite) = interleave(&[&a[..], &b[..], &c[..]], rows);
        assert_eq!(finite, [true, false, false]);
    }

    #[test]
    fn finite_values_zeroes_and_reports_null_nan_and_infinite_rows() {
        let clean = Float32Chunked::from_slice("x".into(), &[1.0, 2.0]);
        let (values, bad) = finite_values(&clean);
        assert!(matches!(values, std::borrow::Cow::Borrowed(_)));
        assert_eq!((&values[..], bad), (&[1.0f32, 2.0][..], vec![]));
        let dirty = Float32Chunked::from_iter_options(
            "x".into(),
            [
                Some(1.0),
                None,
                Some(f32::NAN),
                Some(f32::INFINITY),
                Some(5.0),
            ]
            .into_iter(),
        );
        let (values, bad) = finite_values(&dirty);
        assert_eq!(&values[..], &[1.0, 0.0, 0.0, 0.0, 5.0]);
        assert_eq!(bad, vec![1, 2, 3]);
    }

    #[test]
    fn reads_columns_in_any_order_and_converts_types() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("y".into(), [1i32, 0, 1]),
                Column::new("b".into(), [true, false, true]),
                Column::new("a".into(), [1.5f64, 2.5, 3.5]),
            ],
        );
        let d = read_file(&p, &schema()).unwrap();
        assert_eq!(d.features, vec![1.5, 1.0, 2.5, 0.0, 3.5, 1.0]);
        assert_eq!(d.labels, vec![1, 0, 1]);
    }

    #[test]
    fn timestamp_and_weight_columns_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        let ts = Column::new("ts".into(), [1_000i64, 2_000])
            .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
            .unwrap();
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32, 2.0]),
                Column::new("b".into(), [3.0f32, 4.0]),
                Column::new("y".into(), [0i64, 1]),
                ts,
                Column::new("w".into(), [0.5f64, 2.0]),
            ],
        );
        let mut s = schema();
        s.timestamp = Some("ts".into());
        s.weight = Some("w".into());
        let d = read_file(&p, &s).unwrap();
        assert_eq!(d.times_us, vec![1_000_000, 2_000_000]);
        assert_eq!(d.weights, vec![0.5, 2.0]);
        // Unix seconds as numbers work too; a negative weight does not.
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [3.0f32]),
                Column::new("y".into(), [0i64]),
                Column::new("ts".into(), [1.5f64]),
                Column::new("w".into(), [-1.0f64]),
            ],
        );
        let e = read_file(&p, &s).unwrap_err();
        assert!(
            matches!(e, FileProblem::BadValues { ref column, .. } if column == "w"),
            "{e}"
        );
        s.weight = None;
        assert_eq!(read_file(&p, &s).unwrap().times_us, vec![1_500_000]);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32, f32::NAN]),
                Column::new("b".into(), [1.0f32, 2.0]),
                Column::new("y".into(), [0i64, 1]),
            ],
        );
        let e = read_file(&p, &schema()).unwrap_err();
        assert_eq!(
            e,
            FileProblem::BadValues {
                column: "a".into(),
                count: 1,
                first_row: 1,
                first_row_id: None,
            }
        );

        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("y".into(), [0i64]),
            ],
        );
        assert!(matches!(
            read_file(&p, &schema()).unwrap_err(),
            FileProblem::MissingColumn { column, .. } if column == "b"
        ));

        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), ["x"]),
                Column::new("y".into(), [0i64]),
            ],
        );
        assert!(matches!(
            read_file(&p, &schema()).unwrap_err(),
            FileProblem::WrongType { column, .. } if column == "b"
        ));

        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [1.0f32]),
                Column::new("y".into(), [3i64]),
            ],
        );
        assert!(matches!(
            read_file(&p, &schema()).unwrap_err(),
            FileProblem::LabelOutOfRange { label, .. } if label == "3"
        ));

        fs::write(&p, b"PAR1 not really").unwrap();
        assert!(matches!(
            read_file(&p, &schema()).unwrap_err(),
            FileProblem::NotParquet(_)
        ));
    }

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

    #[test]
    fn scan_skips_known_files_and_sees_replacements() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("in");
        fs::create_dir_all(data.join("day=1")).unwrap();
        fs::create_dir_all(data.join("_temporary")).unwrap();
        let mut policy = Policy::default();
        policy.data.dir = data.clone();
        policy.state.dir = dir.path().join("state");
        fs::create_dir_all(&policy.state.dir).unwrap();
        let cols = || {
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [1.0f32]),
                Column::new("y".into(), [0i64]),
            ]
        };
        let p = data.join("a.parquet");
        write(&p, cols());
        write(&data.join("day=1/b.parquet"), cols());
        write(&data.join("_temporary/c.parquet"), cols());
        write(&data.join(".d.parquet.tmp"), cols());
        fs::write(data.join("notes.txt"), b"x").unwrap();
        let mut ing = Ingestor::open(&policy).unwrap();
        let found = ing.scan().unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.parquet"]);
        policy.data.recursive = true;
        let mut ing = Ingestor::open(&policy).unwrap();
        let found = ing.scan().unwrap();
        let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.parquet", "day=1/b.parquet"]);
        assert!(found[0].problem.is_none());
        assert_eq!(found[0].identity.footer_sha256.len(), 64);
        ing.commit(
            &found[0],
            Outcome::Ingested {
                rows: 1,
                dropped: 0,
            },
        )
        .unwrap();
        assert_eq!(ing.scan().unwrap().len(), 1);
        // The same bytes written again (new inode): not read again.
        let bytes = fs::read(&p).unwrap();
        fs::remove_file(&p).unwrap();
        fs::write(&p, &bytes).unwrap();
        assert_eq!(ing.scan().unwrap().len(), 1);
        // Different content under the same name: a new file.
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32, 2.0]),
                Column::new("b".into(), [1.0f32, 2.0]),
                Column::new("y".into(), [0i64, 1]),
            ],
        );
        let again = ing.scan().unwrap();
        assert!(again[0].replaced);
        // A file moved (same inode, same bytes) is the same file.
        fs::create_dir_all(data.join("day=2")).unwrap();
        fs::rename(data.join("day=1/b.parquet"), data.join("day=2/b.parquet")).unwrap();
        let b = found[1].clone();
        ing.commit(
            &b,
            Outcome::Ingested {
                rows: 1,
                dropped: 0,
            },
        )
        .unwrap();
        let after_move = ing.scan().unwrap();
        assert_eq!(after_move.len(), 1, "{after_move:?}");
        assert_eq!(after_move[0].name, "a.parquet");
        assert!(ing.manifest.files.contains_key("day=2/b.parquet"));
        assert!(!ing.manifest.files.contains_key("day=1/b.parquet"));
        // The manifest on disk survives a restart.
        let reopened = Ingestor::open(&policy).unwrap();
        assert_eq!(reopened.manifest.rows_ingested, 2);
        assert!(reopened.manifest.files.contains_key("day=2/b.parquet"));
    }

    #[test]
    fn incomplete_files_wait_then_are_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let mut policy = Policy::default();
        policy.data.dir = dir.path().to_path_buf();
        policy.state.dir = dir.path().join(".state");
        policy.data.incomplete_after_ms = 60_000;
        let p = dir.path().join("a.parquet");
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("y".into(), [0i64]),
            ],
        );
        let full = fs::read(&p).unwrap();
        fs::write(&p, &full[..full.len() - 3]).unwrap();
        let mut ing = Ingestor::open(&policy).unwrap();
        assert!(ing.scan().unwrap().is_empty(), "still being written");
        policy.data.incomplete_after_ms = 0;
        let mut ing = Ingestor::open(&policy).unwrap();
        let found = ing.scan().unwrap();
        assert!(
            matches!(&found[0].problem, Some(FileProblem::NotParquet(m)) if m.contains("PAR1")),
            "{:?}",
            found[0].problem
        );
        // A settle interval holds back even a complete file that just changed.
        fs::write(&p, &full).unwrap();
        policy.data.settle_ms = 60_000;
        let mut ing = Ingestor::open(&policy).unwrap();
        assert!(ing.scan().unwrap().is_empty());
    }

    #[test]
    fn footer_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        fs::write(&p, b"").unwrap();
        assert!(matches!(read_footer(&p).unwrap(), Footer::Incomplete(_)));
        fs::write(&p, b"PAR1\xff\xff\xff\x00PAR1PAR1").unwrap();
        assert!(
            matches!(read_footer(&p).unwrap(), Footer::Invalid(m) if m.contains("footer length"))
        );
        fs::write(&p, b"XXXXaaaa\x01\x00\x00\x00PAR1").unwrap();
        assert!(matches!(read_footer(&p).unwrap(), Footer::Invalid(m) if m.contains("start")));
    }

    #[test]
    fn batches_follow_row_groups_and_split_big_ones() {
        assert_eq!(plan_batches([3, 3, 3].into_iter(), 6), vec![(0, 6), (6, 3)]);
        assert_eq!(
            plan_batches([10].into_iter(), 4),
            vec![(0, 4), (4, 4), (8, 2)]
        );
        assert_eq!(
            plan_batches([2, 10].into_iter(), 4),
            vec![(0, 2), (2, 4), (6, 4), (10, 2)]
        );
        assert_eq!(plan_batches(std::iter::empty(), 4), vec![]);
    }

    #[test]
    fn batched_reading_gives_the_same_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        let n = 1000usize;
        let mut df = DataFrame::new_infer_height(vec![
            Column::new("a".into(), (0..n).map(|i| i as f32).collect::<Vec<_>>()),
            Column::new("b".into(), (0..n).map(|i| -(i as f64)).collect::<Vec<_>>()),
            Column::new(
                "y".into(),
                (0..n).map(|i| (i % 2) as i64).collect::<Vec<_>>(),
            ),
        ])
        .unwrap();
        ParquetWriter::new(fs::File::create(&p).unwrap())
            .with_row_group_size(Some(128))
            .finish(&mut df)
            .unwrap();
        let whole = read_file(&p, &schema()).unwrap();
        let file = ParquetFile::open(&p, schema(), &BTreeMap::new(), 300).unwrap();
        assert!(file.batches.len() >= 4, "{:?}", file.batches);
        let mut joined = Dataset::new(2);
        for i in 0..file.batches.len() {
            let b = file.read_batch(i).unwrap();
            assert!(b.data.len() <= 300);
            joined.extend(&b.data);
        }
        assert_eq!(joined.len(), n);
        assert_eq!(joined.features, whole.features);
        assert_eq!(joined.labels, whole.labels);
    }

    #[test]
    fn bad_rows_can_be_dropped_and_string_labels_map_to_classes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("a".into(), [Some(1.0f32), None, Some(3.0), Some(4.0)]),
                Column::new("b".into(), [1.0f32, 2.0, f32::INFINITY, 4.0]),
                Column::new("y".into(), ["dog", "cat", "cat", "bird"]),
            ],
        );
        let mut s = schema();
        s.class_names = vec!["cat".into(), "dog".into()];
        let e = read_file(&p, &s).unwrap_err();
        assert_eq!(
            e,
            FileProblem::BadValues {
                column: "a".into(),
                count: 1,
                first_row: 1,
                first_row_id: None,
            }
        );
        s.bad_rows = BadRows::Drop;
        let file = ParquetFile::open(&p, s.clone(), &BTreeMap::new(), 10).unwrap();
        let b = file.read_batch(0).unwrap();
        assert_eq!(b.dropped, 3);
        assert_eq!(b.data.labels, vec![1]);
        assert_eq!(b.data.features, vec![1.0, 1.0]);
        // Without class names a string label is the wrong type, and a
        // recorded schema is named in the message.
        s.class_names.clear();
        let recorded = BTreeMap::from([("y".to_string(), "i64".to_string())]);
        let e = ParquetFile::open(&p, s, &recorded, 10).err().unwrap();
        assert!(
            matches!(&e, FileProblem::WrongType { column, found, expected } if column == "y" && found == "str" && expected.contains("i64")),
            "{e}"
        );
    }

    fn read_one_batch(p: &Path, s: &Schema) -> Result<Batch, FileProblem> {
        ParquetFile::open(p, s.clone(), &BTreeMap::new(), usize::MAX)?.read_batch(0)
    }

    fn close(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn served_class_and_probability_are_read_and_invalid_ones_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32, 2.0, 3.0, 4.0]),
                Column::new("b".into(), [1.0f32, 2.0, 3.0, 4.0]),
                Column::new("y".into(), [0i64, 1, 1, 0]),
                Column::new("served".into(), [Some(1i64), Some(1), Some(0), Some(5)]),
                Column::new("p1".into(), [Some(0.9f64), Some(0.8), Some(0.3), None]),
            ],
        );
        let mut s = schema();
        s.prediction = Some("served".into());
        s.probability = vec!["p1".into()];
        let served = read_one_batch(&p, &s).unwrap().served.unwrap();
        assert_eq!(served.predicted[..3], [1, 1, 0]);
        assert!(close(&served.p_label[..3], &[0.1, 0.8, 0.3]), "{served:?}");
        assert!(close(&served.p_positive[..3], &[0.9, 0.8, 0.3]));
        // Class 5 is not a class and the probability is null.
        assert_eq!(served.valid, vec![true, true, true, false]);
        assert_eq!(served.invalid_rows(), 1);

        // Only the class: the probabilities are the hard prediction's.
        s.probability.clear();
        let served = read_one_batch(&p, &s).unwrap().served.unwrap();
        assert_eq!(served.p_label[..3], [0.0, 1.0, 0.0]);
        assert_eq!(served.p_positive[..3], [1.0, 1.0, 0.0]);

        // Without served columns there is nothing served.
        s.prediction = None;
        assert_eq!(read_one_batch(&p, &s).unwrap().served, None);

        // A served probability must be a float.
        s.probability = vec!["served".into()];
        let e = read_one_batch(&p, &s).unwrap_err();
        assert!(
            matches!(&e, FileProblem::WrongType { column, .. } if column == "served"),
            "{e}"
        );
    }

    #[test]
    fn per_class_probabilities_and_string_classes_are_served() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32, 2.0, 3.0]),
                Column::new("b".into(), [1.0f32, 2.0, 3.0]),
                Column::new("y".into(), ["cat", "dog", "bird"]),
                Column::new("pc".into(), [0.7f32, 0.1, 0.2]),
                Column::new("pd".into(), [0.2f32, 0.6, 1.5]),
                Column::new("pb".into(), [0.1f32, 0.3, 0.1]),
                Column::new("served".into(), ["cat", "bird", "fish"]),
            ],
        );
        let mut s = Schema::new(vec!["a".into(), "b".into()], "y".into(), 3);
        s.class_names = vec!["cat".into(), "dog".into(), "bird".into()];
        s.probability = vec!["pc".into(), "pd".into(), "pb".into()];
        let served = read_one_batch(&p, &s).unwrap().served.unwrap();
        // The served class is the most probable one.
        assert_eq!(served.predicted[..2], [0, 1]);
        assert!(close(&served.p_label[..2], &[0.7, 0.6]));
        assert!(close(&served.p_positive[..2], &[0.2, 0.6]));
        // 1.5 is not a probability.
        assert_eq!(served.valid, vec![true, true, false]);
        // A served class column wins over the probabilities' argmax; "fish"
        // is not a class.
        s.prediction = Some("served".into());
        let served = read_one_batch(&p, &s).unwrap().served.unwrap();
        assert_eq!(served.predicted[..2], [0, 2]);
        assert_eq!(served.valid, vec![true, true, false]);
    }

    #[test]
    fn dropped_and_reordered_rows_keep_their_served_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("a".into(), [Some(1.0f32), None, Some(3.0), Some(4.0)]),
                Column::new("b".into(), [1.0f32, 2.0, 3.0, 4.0]),
                Column::new("y".into(), [0i64, 1, 1, 0]),
                Column::new("ts".into(), [40.0f64, 10.0, 30.0, 20.0]),
                Column::new("served".into(), [0i64, 1, 1, 1]),
            ],
        );
        let mut s = schema();
        s.bad_rows = BadRows::Drop;
        s.timestamp = Some("ts".into());
        s.prediction = Some("served".into());
        let b = read_one_batch(&p, &s).unwrap();
        assert_eq!(b.dropped, 1);
        // Rows 0, 2, 3 kept, then ordered by event time: 3, 2, 0.
        assert_eq!(b.data.times_us, vec![20_000_000, 30_000_000, 40_000_000]);
        assert_eq!(b.data.features, vec![4.0, 4.0, 3.0, 3.0, 1.0, 1.0]);
        assert_eq!(b.data.labels, vec![0, 1, 0]);
        assert_eq!(b.served.unwrap().predicted, vec![1, 1, 0]);
    }

    #[test]
    fn narrow_integers_decimals_and_dates_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        let cast = |c: Column, t: DataType| c.cast(&t).unwrap();
        write(
            &p,
            vec![
                Column::new("a".into(), [-3i8, 7]),
                Column::new("b".into(), [300i16, -2]),
                Column::new("c".into(), [200u8, 1]),
                Column::new("d".into(), [60000u16, 2]),
                cast(
                    Column::new("e".into(), [1.25f64, -2.5]),
                    DataType::Decimal(10, 2),
                ),
                Column::new("y".into(), [0i8, 1]),
                cast(Column::new("day".into(), [1i32, 2]), DataType::Date),
            ],
        );
        let mut s = Schema::new(
            ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
            "y".into(),
            2,
        );
        s.timestamp = Some("day".into());
        let d = read_file(&p, &s).unwrap();
        assert_eq!(
            d.features,
            vec![-3.0, 300.0, 200.0, 60000.0, 1.25, 7.0, -2.0, 1.0, 2.0, -2.5]
        );
        assert_eq!(d.labels, vec![0, 1]);
        assert_eq!(d.times_us, vec![86_400_000_000, 172_800_000_000]);
    }

    #[test]
    fn row_ids_name_bad_rows_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.parquet");
        write(
            &p,
            vec![
                Column::new("id".into(), ["r-10", "r-11", "r-12"]),
                Column::new("a".into(), [1.0f32, 2.0, f32::NAN]),
                Column::new("b".into(), [1.0f32, 2.0, 3.0]),
                Column::new("y".into(), [0i64, 7, 1]),
            ],
        );
        let mut s = schema();
        s.row_id = Some("id".into());
        let e = read_file(&p, &s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "column \"a\" has 1 null, NaN or infinite values (first at row 2, row id r-12)"
        );
        // Dropping keeps the first reason, with its row id, for the event.
        s.bad_rows = BadRows::Drop;
        let file = ParquetFile::open(&p, s.clone(), &BTreeMap::new(), 10).unwrap();
        let b = file.read_batch(0).unwrap();
        assert_eq!((b.dropped, b.data.labels.clone()), (2, vec![0]));
        let first = b.first_dropped.unwrap().to_string();
        assert!(first.contains("row id r-12"), "{first}");
        // Integer ids; a label outside the classes is named by its id.
        write(
            &p,
            vec![
                Column::new("id".into(), [100i64, 101]),
                Column::new("a".into(), [1.0f32, 2.0]),
                Column::new("b".into(), [1.0f32, 2.0]),
                Column::new("y".into(), [0i64, 7]),
            ],
        );
        s.bad_rows = BadRows::Quarantine;
        let e = read_file(&p, &s).unwrap_err().to_string();
        assert_eq!(
            e,
            "label 7 at row 1, row id 101 is outside the classes 0..2 (1 such rows)"
        );
        // A file without the id column, or with ids of another type, is
        // quarantined naming the column.
        write(
            &p,
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [1.0f32]),
                Column::new("y".into(), [0i64]),
            ],
        );
        let e = read_file(&p, &s).unwrap_err();
        assert!(
            matches!(&e, FileProblem::MissingColumn { column, .. } if column == "id"),
            "{e}"
        );
        write(
            &p,
            vec![
                Column::new("id".into(), [1.5f64]),
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [1.0f32]),
                Column::new("y".into(), [0i64]),
            ],
        );
        let e = read_file(&p, &s).unwrap_err();
        assert!(
            matches!(&e, FileProblem::WrongType { column, .. } if column == "id"),
            "{e}"
        );
    }

    #[test]
    fn a_panic_in_the_reader_becomes_a_quarantine_reason() {
        let problem = catching::<()>(|| panic!("index out of bounds: the len is 3")).unwrap_err();
        assert_eq!(
            problem.to_string(),
            "not a valid Parquet file: the Parquet reader panicked: index out of bounds: the len is 3"
        );
        let problem = catching::<()>(|| std::panic::panic_any(7u8)).unwrap_err();
        assert!(
            problem.to_string().contains("panicked: no message"),
            "{problem}"
        );
    }

    #[test]
    fn the_scans_own_reads_do_not_wake_the_loop() {
        use notify::Watcher;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        fs::create_dir_all(&dir).unwrap();
        write(
            &dir.join("a.parquet"),
            vec![
                Column::new("a".into(), [1.0f32]),
                Column::new("b".into(), [2.0f32]),
                Column::new("y".into(), [0i64]),
            ],
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |e: notify::Result<notify::Event>| {
            let _ = tx.send(e.unwrap());
        })
        .unwrap();
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .unwrap();
        // What a scan does: list the directory, read a file's footer and
        // rows.
        for _ in 0..3 {
            let _ = fs::read_dir(&dir).unwrap().count();
            assert_eq!(
                read_file(&dir.join("a.parquet"), &schema()).unwrap().len(),
                1
            );
        }
        // Then a file arrives the recommended way (renamed in).
        fs::write(root.path().join("b.tmp"), b"x").unwrap();
        fs::rename(root.path().join("b.tmp"), dir.join("b.parquet")).unwrap();
        let mut before = Vec::new();
        loop {
            let e = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the rename is reported");
            if e.paths.iter().any(|p| p.ends_with("b.parquet")) {
                assert!(wakes(&e.kind), "{e:?}");
                break;
            }
            before.push(e);
        }
        // inotify reports in order: everything before the rename was the
        // reads, and none of it wakes the loop.
        assert!(!before.is_empty(), "notify reports opens");
        assert!(before.iter().all(|e| !wakes(&e.kind)), "{before:?}");
        use notify::event::{AccessKind, AccessMode, CreateKind, EventKind};
        assert!(wakes(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(wakes(&EventKind::Create(CreateKind::File)));
    }

    #[test]
    fn symlinks_are_read_inside_the_data_directory_and_refused_out_of_it() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let outside = root.path().join("elsewhere");
        fs::create_dir_all(data.join("sub")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let cols = || {
            vec![
                Column::new("a".into(), [1.0f32, 2.0]),
                Column::new("b".into(), [3.0f32, 4.0]),
                Column::new("y".into(), [0i64, 1]),
            ]
        };
        write(&data.join("sub/real.parquet"), cols());
        write(&outside.join("secret.parquet"), cols());
        std::os::unix::fs::symlink(data.join("sub/real.parquet"), data.join("in.parquet")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.parquet"), data.join("out.parquet"))
            .unwrap();
        let scan = |follow: bool| {
            let mut policy = Policy::default();
            policy.data.dir = data.clone();
            policy.data.follow_symlinks = follow;
            policy.state.dir = root.path().join(format!("state-{follow}"));
            let mut ingestor = Ingestor::open(&policy).unwrap();
            ingestor.scan().unwrap()
        };
        let files = scan(false);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["in.parquet", "out.parquet"]);
        assert_eq!(files[0].problem, None);
        assert_eq!(
            files[0].path,
            fs::canonicalize(data.join("sub/real.parquet")).unwrap()
        );
        assert_eq!(read_file(&files[0].path, &schema()).unwrap().len(), 2);
        let reason = files[1].problem.as_ref().expect("refused").to_string();
        assert!(
            reason.contains("secret.parquet") && reason.contains("data.follow_symlinks"),
            "{reason}"
        );
        let files = scan(true);
        assert!(files.iter().all(|f| f.problem.is_none()), "{files:?}");
        // A link swapped in after the scan is not followed when opened.
        let err = open_no_follow(&data.join("in.parquet")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));

        // Re-reading ingested files after a restart follows the same rule:
        // a link re-pointed out of the directory since it was ingested is
        // skipped (regression: rows_from_manifest followed any link).
        let mut manifest = Manifest::default();
        let meta = fs::metadata(data.join("sub/real.parquet")).unwrap();
        for (seq, name) in [(1, "in.parquet"), (2, "sub/real.parquet")] {
            manifest.files.insert(
                name.into(),
                ManifestEntry {
                    identity: FileIdentity::of(&meta),
                    outcome: Outcome::Ingested {
                        rows: 2,
                        dropped: 0,
                    },
                    seq,
                    at: Utc::now(),
                },
            );
        }
        let reread = |follow_symlinks: bool| {
            let limits = RereadLimits {
                last_seq: 0,
                max_old: usize::MAX,
                max_new: usize::MAX,
                follow_symlinks,
            };
            rows_from_manifest(&data, &manifest, &schema(), limits)
                .1
                .len()
        };
        assert_eq!(reread(false), 4);
        fs::remove_file(data.join("in.parquet")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret.parquet"), data.join("in.parquet"))
            .unwrap();
        assert_eq!(reread(false), 2);
        assert_eq!(reread(true), 4);
    }
}
