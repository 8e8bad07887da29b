//! Why a file was not ingested: the quarantine reasons, as the messages the
//! manifest records and the events carry.

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
