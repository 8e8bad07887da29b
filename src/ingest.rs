//! Finding complete Parquet files in the data directory, reading them into
//! [`Dataset`]s, and remembering each file in a manifest so a restart
//! neither loses nor double-counts rows.
//!
//! Boundary: everything that leaves this module is a checked batch (the
//! policy's feature columns as f32, in the policy's order, finite; labels in
//! `0..classes`) or a quarantine record. A bad file never becomes an error of
//! the caller.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Policy;
use crate::fsutil;
use crate::model::Dataset;

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
    #[error("not a valid Parquet file: {0}")]
    NotParquet(String),
    #[error("the file has no rows")]
    Empty,
    #[error("feature column {column:?} is missing (the file has: {available})")]
    MissingColumn { column: String, available: String },
    #[error("column {column:?} has type {found}, expected {expected}")]
    WrongType {
        column: String,
        found: String,
        expected: String,
    },
    #[error(
        "column {column:?} has {count} null, NaN or infinite values (first at row {first_row})"
    )]
    BadValues {
        column: String,
        count: usize,
        first_row: usize,
    },
    #[error("label {label} at row {row} is outside the classes 0..{classes}")]
    LabelOutOfRange {
        label: i64,
        row: usize,
        classes: i64,
    },
}

/// How the daemon remembers a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    pub size: u64,
    pub mtime_ns: i128,
    pub inode: u64,
    pub device: u64,
}

impl FileIdentity {
    fn of(meta: &fs::Metadata) -> Self {
        FileIdentity {
            size: meta.len(),
            mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
            inode: meta.ino(),
            device: meta.dev(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Ingested { rows: usize },
    Quarantined { reason: String },
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
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, IngestError> {
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

    pub fn save(&self, path: &Path) -> Result<(), IngestError> {
        let json = serde_json::to_vec(self).expect("manifest serializes");
        fsutil::write_atomic(path, &json).map_err(|source| IngestError::ManifestIo {
            path: path.to_path_buf(),
            source,
        })
    }

    fn record(&mut self, name: String, identity: FileIdentity, outcome: Outcome) {
        self.next_seq += 1;
        if let Outcome::Ingested { rows } = &outcome {
            self.rows_ingested += *rows as u64;
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
                Outcome::Ingested { rows } => Some((e.seq, name.clone(), rows)),
                Outcome::Quarantined { .. } => None,
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, n, r)| (n, r)).collect()
    }
}

/// Names the producer convention says are not (yet) data: hidden files,
/// temporaries, and markers.
pub fn is_candidate_name(name: &str) -> bool {
    !(name.starts_with('.')
        || name.starts_with('_')
        || name.ends_with(".tmp")
        || name.ends_with(".inprogress")
        || name.ends_with("._COPYING_"))
        && name.ends_with(".parquet")
}

/// A file found by a scan that the manifest does not know (or knows with a
/// different identity: replaced content).
#[derive(Debug, Clone)]
pub struct NewFile {
    pub name: String,
    pub path: PathBuf,
    pub identity: FileIdentity,
    pub replaced: bool,
}

/// Lists new complete files, sorted by name (producers name files in
/// arrival order; the timestamp ordering comes with the ingestion issue).
pub fn scan(dir: &Path, manifest: &Manifest) -> Result<Vec<NewFile>, IngestError> {
    let entries = fs::read_dir(dir).map_err(|source| IngestError::DataDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_candidate_name(&name) {
            continue;
        }
        // symlink_metadata: a symlink is not followed out of the directory.
        let Ok(meta) = entry.path().symlink_metadata() else {
            continue; // vanished between listing and stat
        };
        if !meta.is_file() {
            continue;
        }
        let identity = FileIdentity::of(&meta);
        let replaced = match manifest.files.get(&name) {
            Some(e) if e.identity == identity => continue,
            Some(_) => true,
            None => false,
        };
        found.push(NewFile {
            name,
            path: entry.path(),
            identity,
            replaced,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// The columns to take from each file.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub features: Vec<String>,
    pub label: String,
    pub classes: i64,
    /// Optional event-time column.
    pub timestamp: Option<String>,
    /// Optional instance-weight column.
    pub weight: Option<String>,
}

impl Schema {
    /// For a list of features the schema is known up front; for a pattern it
    /// is fixed by the first file read (see [`Schema::resolve`]).
    pub fn from_policy(policy: &Policy) -> Option<Schema> {
        match &policy.data.features {
            crate::config::FeatureSpec::List(list) => Some(Schema {
                features: list.clone(),
                label: policy.data.label.clone(),
                classes: policy.model.classes,
                timestamp: policy.data.timestamp.clone(),
                weight: policy.data.weight.clone(),
            }),
            crate::config::FeatureSpec::Pattern(_) => None,
        }
    }

    pub fn resolve(policy: &Policy, columns: &[String]) -> Schema {
        Schema {
            features: policy.select_features(columns),
            label: policy.data.label.clone(),
            classes: policy.model.classes,
            timestamp: policy.data.timestamp.clone(),
            weight: policy.data.weight.clone(),
        }
    }

    /// The schema a version was trained with, with the policy's optional
    /// columns.
    pub fn of_version(meta: &crate::registry::VersionMeta, policy: &Policy) -> Schema {
        Schema {
            features: meta.features.clone(),
            label: meta.label.clone(),
            classes: meta.architecture.classes as i64,
            timestamp: policy.data.timestamp.clone(),
            weight: policy.data.weight.clone(),
        }
    }
}

/// Reads one file into a checked dataset. Panics inside the Parquet reader
/// (malformed input can trigger them) become a [`FileProblem`].
pub fn read_file(path: &Path, schema: &Schema) -> Result<Dataset, FileProblem> {
    let path = path.to_path_buf();
    let schema = schema.clone();
    std::panic::catch_unwind(move || read_file_inner(&path, &schema)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the reader panicked".into());
        Err(FileProblem::NotParquet(msg))
    })
}

/// Column names of a Parquet file, without reading its data.
pub fn column_names(path: &Path) -> Result<Vec<String>, FileProblem> {
    let file = fs::File::open(path).map_err(|e| FileProblem::Unreadable(e.to_string()))?;
    let mut reader = ParquetReader::new(file);
    let schema = reader
        .schema()
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    Ok(schema.iter_names().map(|n| n.to_string()).collect())
}

fn read_file_inner(path: &Path, schema: &Schema) -> Result<Dataset, FileProblem> {
    let file = fs::File::open(path).map_err(|e| FileProblem::Unreadable(e.to_string()))?;
    // Rows without an event-time column get the file's mtime: when it
    // arrived, and the same after a restart.
    let arrival_us = fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as i64);
    let mut columns = schema.features.clone();
    columns.push(schema.label.clone());
    columns.extend(schema.timestamp.iter().cloned());
    columns.extend(schema.weight.iter().cloned());
    let mut reader = ParquetReader::new(file);
    let available: Vec<String> = reader
        .schema()
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?
        .iter_names()
        .map(|n| n.to_string())
        .collect();
    for c in &columns {
        if !available.contains(c) {
            return Err(FileProblem::MissingColumn {
                column: c.clone(),
                available: available.join(", "),
            });
        }
    }
    let df = reader
        .with_columns(Some(columns))
        .finish()
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let n = df.height();
    if n == 0 {
        return Err(FileProblem::Empty);
    }
    let width = schema.features.len();
    let mut data = Dataset {
        width,
        features: vec![0.0; n * width],
        labels: Vec::with_capacity(n),
        weights: vec![1.0; n],
        times_us: vec![arrival_us; n],
    };
    for (j, name) in schema.features.iter().enumerate() {
        let values = feature_values(&df, name)?;
        for (i, v) in values.into_iter().enumerate() {
            data.features[i * width + j] = v;
        }
    }
    data.labels = label_values(&df, &schema.label, schema.classes)?;
    if let Some(ts) = &schema.timestamp {
        data.times_us = timestamp_values(&df, ts)?;
    }
    if let Some(w) = &schema.weight {
        let values = feature_values(&df, w)?;
        if let Some(row) = values.iter().position(|v| *v < 0.0) {
            return Err(FileProblem::BadValues {
                column: w.clone(),
                count: values.iter().filter(|v| **v < 0.0).count(),
                first_row: row,
            });
        }
        data.weights = values;
    }
    Ok(data)
}

/// Event times in Unix microseconds: datetimes of any unit, or numbers of
/// Unix seconds.
fn timestamp_values(df: &DataFrame, name: &str) -> Result<Vec<i64>, FileProblem> {
    let col = column(df, name)?;
    let dtype = col.dtype().clone();
    let (cast_to, scale): (DataType, f64) = match &dtype {
        DataType::Datetime(unit, _) => (
            DataType::Int64,
            match unit {
                TimeUnit::Nanoseconds => 1e-3,
                TimeUnit::Microseconds => 1.0,
                TimeUnit::Milliseconds => 1e3,
            },
        ),
        d if d.is_primitive_numeric() => (DataType::Float64, 1e6),
        other => {
            return Err(FileProblem::WrongType {
                column: name.to_string(),
                found: other.to_string(),
                expected: "a datetime or Unix seconds".into(),
            })
        }
    };
    let cast = col
        .cast(&cast_to)
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let values: Vec<Option<f64>> = match cast_to {
        DataType::Int64 => cast
            .i64()
            .map_err(|e| FileProblem::NotParquet(e.to_string()))?
            .iter()
            .map(|v| v.map(|x| x as f64))
            .collect(),
        _ => cast
            .f64()
            .map_err(|e| FileProblem::NotParquet(e.to_string()))?
            .iter()
            .collect(),
    };
    let bad: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_some_and(f64::is_finite))
        .map(|(i, _)| i)
        .collect();
    if let Some(&first_row) = bad.first() {
        return Err(FileProblem::BadValues {
            column: name.to_string(),
            count: bad.len(),
            first_row,
        });
    }
    Ok(values
        .into_iter()
        .map(|v| (v.expect("checked") * scale) as i64)
        .collect())
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

fn feature_values(df: &DataFrame, name: &str) -> Result<Vec<f32>, FileProblem> {
    let col = column(df, name)?;
    let dtype = col.dtype();
    if !(dtype.is_primitive_numeric() || dtype.is_bool()) {
        return Err(FileProblem::WrongType {
            column: name.to_string(),
            found: dtype.to_string(),
            expected: "a number or boolean".into(),
        });
    }
    let cast = col
        .cast(&DataType::Float32)
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let ca = cast
        .f32()
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let mut out = Vec::with_capacity(ca.len());
    let mut bad = 0;
    let mut first_bad = None;
    for (i, v) in ca.iter().enumerate() {
        match v {
            Some(x) if x.is_finite() => out.push(x),
            _ => {
                bad += 1;
                first_bad.get_or_insert(i);
                out.push(0.0);
            }
        }
    }
    if let Some(first_row) = first_bad {
        return Err(FileProblem::BadValues {
            column: name.to_string(),
            count: bad,
            first_row,
        });
    }
    Ok(out)
}

fn label_values(df: &DataFrame, name: &str, classes: i64) -> Result<Vec<i64>, FileProblem> {
    let col = column(df, name)?;
    let dtype = col.dtype();
    if !(dtype.is_integer() || dtype.is_bool()) {
        return Err(FileProblem::WrongType {
            column: name.to_string(),
            found: dtype.to_string(),
            expected: "an integer class label".into(),
        });
    }
    let cast = col
        .cast(&DataType::Int64)
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let ca = cast
        .i64()
        .map_err(|e| FileProblem::NotParquet(e.to_string()))?;
    let mut out = Vec::with_capacity(ca.len());
    let mut nulls = 0;
    let mut first_null = None;
    for (row, v) in ca.iter().enumerate() {
        match v {
            Some(label) if (0..classes).contains(&label) => out.push(label),
            Some(label) => {
                return Err(FileProblem::LabelOutOfRange {
                    label,
                    row,
                    classes,
                })
            }
            None => {
                nulls += 1;
                first_null.get_or_insert(row);
            }
        }
    }
    if let Some(first_row) = first_null {
        return Err(FileProblem::BadValues {
            column: name.to_string(),
            count: nulls,
            first_row,
        });
    }
    Ok(out)
}

/// The ingestion stage: a data directory, its manifest and the schema.
pub struct Ingestor {
    dir: PathBuf,
    manifest_path: PathBuf,
    pub manifest: Manifest,
    pub schema: Option<Schema>,
    policy: Policy,
}

/// Rebuilds training rows from the files a manifest lists: files ingested
/// after manifest sequence `last_seq` are "new" (the newest `max_new` rows
/// kept), earlier ones "old" (read newest first until `max_old` rows, so
/// memory stays bounded however long the history). A file that can no
/// longer be read is skipped with a warning.
pub fn rows_from_manifest(
    dir: &Path,
    manifest: &Manifest,
    schema: &Schema,
    last_seq: u64,
    max_old: usize,
    max_new: usize,
) -> (Dataset, Dataset) {
    let width = schema.features.len();
    let files = manifest.ingested_in_order();
    let seq = |name: &str| manifest.files[name].seq;
    let read = |name: &str| match read_file(&dir.join(name), schema) {
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

/// Reads files with a fixed schema, or fixes the schema from the first
/// file when the policy gives a pattern.
#[derive(Debug, Clone)]
pub struct FileReader {
    schema: Option<Schema>,
    policy: Policy,
}

impl FileReader {
    /// Reads one file (without recording it), with the schema used.
    pub fn read(&self, file: &NewFile) -> Result<(Schema, Dataset), FileProblem> {
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
        let data = read_file(&file.path, &schema)?;
        Ok((schema, data))
    }
}

/// What happened to one file.
#[derive(Debug)]
pub enum FileEvent {
    Ingested { name: String, data: Dataset },
    Quarantined { name: String, problem: FileProblem },
}

impl Ingestor {
    pub fn open(policy: &Policy) -> Result<Ingestor, IngestError> {
        let manifest_path = policy.state.dir.join("manifest.json");
        let manifest = Manifest::load(&manifest_path)?;
        Ok(Ingestor {
            dir: policy.data.dir.clone(),
            manifest_path,
            manifest,
            schema: Schema::from_policy(policy),
            policy: policy.clone(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// New files, oldest name first.
    pub fn scan(&self) -> Result<Vec<NewFile>, IngestError> {
        scan(&self.dir, &self.manifest)
    }

    /// A cheap, thread-movable reader with the current schema.
    pub fn reader(&self) -> FileReader {
        FileReader {
            schema: self.schema.clone(),
            policy: self.policy.clone(),
        }
    }

    /// Records a file's outcome durably. Called only after the file's rows
    /// are accounted for by the caller.
    pub fn commit(&mut self, file: &NewFile, outcome: Outcome) -> Result<(), IngestError> {
        self.manifest
            .record(file.name.clone(), file.identity.clone(), outcome);
        self.manifest.save(&self.manifest_path)
    }
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
            "notes.txt",
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
        Schema {
            features: vec!["a".into(), "b".into()],
            label: "y".into(),
            classes: 2,
            timestamp: None,
            weight: None,
        }
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
                first_row: 1
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
            FileProblem::LabelOutOfRange { label: 3, .. }
        ));

        fs::write(&p, b"PAR1 not really").unwrap();
        assert!(matches!(
            read_file(&p, &schema()).unwrap_err(),
            FileProblem::NotParquet(_)
        ));
    }

    #[test]
    fn scan_skips_known_files_and_sees_replacements() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.parquet");
        fs::write(&p, b"x").unwrap();
        fs::write(dir.path().join(".b.parquet.tmp"), b"x").unwrap();
        let mut m = Manifest::default();
        let found = scan(dir.path(), &m).unwrap();
        assert_eq!(found.len(), 1);
        m.record(
            found[0].name.clone(),
            found[0].identity.clone(),
            Outcome::Ingested { rows: 1 },
        );
        assert!(scan(dir.path(), &m).unwrap().is_empty());
        fs::write(&p, b"longer").unwrap();
        let again = scan(dir.path(), &m).unwrap();
        assert!(again[0].replaced);
    }
}
