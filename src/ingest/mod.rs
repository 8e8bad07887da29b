//! Finding complete Parquet files in the data directory, reading them into
//! [`Dataset`](crate::model::Dataset)s batch by batch, and remembering each
//! file in a manifest so a restart neither loses nor double-counts rows.
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
//!
//! One concern per file: `problem` (why a file is quarantined), `manifest`
//! and its `journal`, the directory `scan` and the `watch`er, the `schema`,
//! `safe_open`ing, the Parquet `reader`, row `convert`ion (over typed
//! `columns`), `served` values, and `reread`ing from the manifest;
//! `ingestor` holds the stage together.

mod columns;
mod convert;
mod ingestor;
mod journal;
mod manifest;
pub mod probe;
mod problem;
mod reader;
mod reread;
mod safe_open;
mod scan;
mod schema;
mod served;
#[cfg(test)]
mod test_util;
mod watch;

use std::io;
use std::path::PathBuf;

pub use convert::Batch;
pub use ingestor::Ingestor;
pub use journal::journal_path;
pub use manifest::{FileIdentity, Manifest, ManifestEntry, Outcome};
pub use problem::{FileProblem, SharedError, TrailerProblem};
pub use reader::{column_names, read_file, FileReader, ParquetFile};
pub use reread::{rows_from_manifest, RereadLimits};
pub use scan::{is_candidate_name, NewFile};
pub use schema::Schema;
pub use served::Served;
pub use watch::{wakes, watch};

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
    #[error("manifest {path} is not valid JSON: {source}")]
    ManifestCorrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
