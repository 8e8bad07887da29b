//! The Parquet reader: [`ParquetFile`] (footer, columns and types checked
//! at open, then read in row-group batches) and [`FileReader`] (fixes the
//! schema from the first file when the policy gives a pattern).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use polars::io::parquet::metadata::FileMetadataRef;
use polars::prelude::*;

use super::convert::{convert, Batch};
use super::problem::FileProblem;
use super::safe_open::{open_no_follow, open_problem};
use super::scan::NewFile;
use super::schema::{check_columns, check_types, Schema};
use crate::config::Policy;
use crate::model::Dataset;

/// Turns a panic inside polars (malformed input can trigger them) into a
/// [`FileProblem`].
fn catching<T>(f: impl FnOnce() -> Result<T, FileProblem>) -> Result<T, FileProblem> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "no message".into());
        Err(FileProblem::ReaderPanicked { message: msg })
    })
}

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
            .map_err(|e| FileProblem::NotParquet(e.into()))?;
        Ok(schema.iter_names().map(|n| n.to_string()).collect())
    })
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
        let not_parquet = |e: PolarsError| FileProblem::NotParquet(e.into());
        let mut reader = ParquetReader::new(file.try_clone().map_err(open_problem)?);
        let metadata = reader.get_metadata().map_err(not_parquet)?.clone();
        let columns = schema.columns();
        let arrow_schema = reader.schema().map_err(not_parquet)?;
        check_columns(&columns, &arrow_schema)?;
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
                .map_err(|e| FileProblem::NotParquet(e.into()))?;
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

/// Opens files with a fixed schema, or fixes the schema from the first
/// file when the policy gives a pattern. Cheap to clone and move to a
/// blocking thread.
#[derive(Debug, Clone)]
pub struct FileReader {
    pub(super) schema: Option<Schema>,
    pub(super) recorded: BTreeMap<String, String>,
    pub(super) policy: Policy,
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

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
