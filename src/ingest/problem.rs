//! Why a file was not ingested: the quarantine reasons, as the messages the
//! manifest records and the events carry.

use std::fmt;
use std::io;
use std::sync::Arc;

use polars::prelude::PolarsError;

/// Why a file was not ingested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    /// Opening or reading the file failed (other than its vanishing).
    #[error("cannot read the file: {0}")]
    Io(#[source] SharedError<io::Error>),
    /// The blocking task reading the file failed: it panicked (outside the
    /// Parquet reader's own catch, see [`FileProblem::ReaderPanicked`]) or
    /// was cancelled.
    #[error("cannot read the file: the reader task failed: {0}")]
    ReaderTaskFailed(#[source] SharedError<tokio::task::JoinError>),
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
    /// The file's first or last bytes are not a Parquet file's.
    #[error("not a valid Parquet file: {0}")]
    BadTrailer(#[source] TrailerProblem),
    /// The Parquet reader refused the file.
    #[error("not a valid Parquet file: {0}")]
    NotParquet(#[source] SharedError<PolarsError>),
    /// The Parquet reader panicked on the file (caught); `message` is the
    /// panic's.
    #[error("not a valid Parquet file: the Parquet reader panicked: {message}")]
    ReaderPanicked { message: String },
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

/// What is wrong with the Parquet trailer (`<footer> <u32 footer length>
/// PAR1`) or the magic at the start of a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrailerProblem {
    #[error("{len} bytes is too short for a Parquet file")]
    TooShort { len: u64 },
    #[error("does not start with the magic PAR1")]
    NoStartMagic,
    #[error("does not end with the magic PAR1 (truncated or still being written)")]
    NoEndMagic,
    #[error("footer length {footer_len} does not fit in a file of {len} bytes")]
    FooterLength { footer_len: u64, len: u64 },
}

/// A foreign error as the cause of a [`FileProblem`]: shared, so that a
/// problem stays `Clone`, and compared by its message (what the manifest
/// records).
#[derive(Debug)]
pub struct SharedError<E>(Arc<E>);

impl<E> SharedError<E> {
    pub fn get(&self) -> &E {
        &self.0
    }
}

impl<E> From<E> for SharedError<E> {
    fn from(e: E) -> Self {
        SharedError(Arc::new(e))
    }
}

impl<E> Clone for SharedError<E> {
    fn clone(&self) -> Self {
        SharedError(Arc::clone(&self.0))
    }
}

impl<E: fmt::Display> PartialEq for SharedError<E> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl<E: fmt::Display> Eq for SharedError<E> {}

impl<E: fmt::Display> fmt::Display for SharedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error> std::error::Error for SharedError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}
