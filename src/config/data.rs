//! `[data]`: where the rows come from and which columns mean what.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Feature columns: an explicit list, or one glob pattern (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a list of column names or a glob pattern string"
)]
pub enum FeatureSpec {
    List(Vec<String>),
    Pattern(String),
}

/// The served probability columns: one (binary models: the probability of
/// class 1) or one per class, in class order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    untagged,
    expecting = "a column name (binary models: P(class 1)) or a list of one column per class"
)]
pub enum ServedProbability {
    PositiveClass(String),
    PerClass(Vec<String>),
}

impl ServedProbability {
    /// The columns, in class order (one column: class 1's probability).
    pub fn columns(&self) -> Vec<String> {
        match self {
            ServedProbability::PositiveClass(c) => vec![c.clone()],
            ServedProbability::PerClass(list) => list.clone(),
        }
    }
}

impl Default for FeatureSpec {
    fn default() -> Self {
        FeatureSpec::List(Vec::new())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub dir: PathBuf,
    pub label: String,
    pub features: FeatureSpec,
    /// Columns matched by a `features` pattern that are not features.
    pub exclude: Vec<String>,
    /// Optional event-time column (a datetime, or Unix seconds as a
    /// number): drives time-based recency weights.
    pub timestamp: Option<String>,
    /// Optional per-row instance weight column (non-negative numbers).
    pub weight: Option<String>,
    /// Optional row-id column (integers or strings): checked to exist and
    /// named in bad-row messages.
    pub row_id: Option<String>,
    /// Optional: the class the deployed model served for each row (an
    /// integer class, or one of `classes`). With it (or `probability`) the
    /// monitor judges what was served instead of re-scoring the rows.
    pub prediction: Option<String>,
    /// Optional: the probabilities that were served.
    pub probability: Option<ServedProbability>,
    /// How often the directory is rescanned, in milliseconds.
    pub poll_interval_ms: u64,
    /// When the registry is empty, version 1 is trained on this many rows.
    pub initial_rows: usize,
    /// Also look in subdirectories (hidden and `_`-prefixed ones skipped).
    pub recursive: bool,
    /// Glob (`*`, `?`) a file name must match to be read.
    pub file_pattern: String,
    /// Read a data file that is a symlink to a file outside the data
    /// directory. Off: such a file is quarantined (symlinks within the
    /// directory are always read).
    pub follow_symlinks: bool,
    /// A file is read only once its size and modification time have been
    /// unchanged this long (for producers that write in place); 0 takes a
    /// file as soon as its Parquet footer is valid.
    pub settle_ms: u64,
    /// A file without a valid Parquet footer counts as still being written
    /// until it has been unchanged this long; then it is quarantined.
    pub incomplete_after_ms: u64,
    /// Rows with null, NaN or infinite features (or weights), and labels
    /// outside the classes: quarantine the whole file, or drop the rows.
    pub bad_rows: BadRows,
    /// String labels: the class names in class order (label `classes[i]` is
    /// class i). Empty: labels are integers `0..model.classes`.
    pub classes: Vec<String>,
    /// Large files are read in batches of about this many rows (whole row
    /// groups where they fit), so memory does not grow with the file.
    pub batch_rows: usize,
}

/// What to do with a row that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRows {
    Quarantine,
    Drop,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dir: PathBuf::from("/var/lib/driftd/incoming"),
            label: "label".into(),
            features: FeatureSpec::default(),
            exclude: Vec::new(),
            timestamp: None,
            weight: None,
            row_id: None,
            prediction: None,
            probability: None,
            poll_interval_ms: 1000,
            initial_rows: 1000,
            recursive: false,
            file_pattern: "*.parquet".into(),
            follow_symlinks: false,
            settle_ms: 0,
            incomplete_after_ms: 5000,
            bad_rows: BadRows::Quarantine,
            classes: Vec::new(),
            batch_rows: 1_000_000,
        }
    }
}
