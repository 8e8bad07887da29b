//! Parquet output: a stream as `part-NNNNNN.parquet` files (temp name,
//! synced, renamed), one data set per file, and the feature column names.

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::{Column, DataFrame, IntoColumn, NamedFrom, ParquetWriter, Series, TimeUnit};

use super::stream::StreamRows;
use super::{io_err, GenError, StreamSpec};
use crate::model::Dataset;

/// `part-000042.parquet`
fn part_name(index: usize) -> String {
    format!("part-{index:06}.parquet")
}

/// Writes the stream as Parquet files `part-000000.parquet`, ... into `dir`
/// (created if missing; same-named files are replaced, others left alone),
/// each written to a hidden temp name (`.part-000000.parquet.tmp`), synced,
/// then renamed: the convention for producers, so readers never see a
/// partial file. Returns the paths in order.
pub fn write_stream(dir: &Path, spec: &StreamSpec) -> Result<Vec<PathBuf>, GenError> {
    let mut rows = StreamRows::new(spec)?;
    write_files(dir, spec.rows, spec.rows_per_file, |start, n| {
        let (data, _) = rows.chunk(n);
        // None for every row when the spec has no timestamps.
        let ts: Option<Vec<i64>> = (start..start + n).map(|r| spec.timestamp_us(r)).collect();
        (data, ts)
    })
}

/// Writes `rows` rows as files of `rows_per_file` (the producers'
/// temp-then-rename convention); `next(start, n)` draws rows
/// `start..start + n` and their timestamps.
pub(super) fn write_files(
    dir: &Path,
    rows: usize,
    rows_per_file: usize,
    mut next: impl FnMut(usize, usize) -> (Dataset, Option<Vec<i64>>),
) -> Result<Vec<PathBuf>, GenError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut paths = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = rows_per_file.min(rows - start);
        let (data, ts) = next(start, n);
        let name = part_name(paths.len());
        let tmp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(&name);
        let written = write_parquet(&tmp, &data, ts.as_deref())
            .and_then(|()| std::fs::rename(&tmp, &path).map_err(io_err(&path)));
        if let Err(e) = written {
            // Best effort: a stray temp file is harmless (hidden) but untidy.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        paths.push(path);
        start += n;
    }
    // Make the renames themselves durable.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(paths)
}

/// Feature column names `f0..f{n-1}`.
pub fn feature_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("f{i}")).collect()
}

/// Writes one Parquet file with columns `f0..f{width-1}` (Float32) and
/// `label` (Int64), plus `ts` (Datetime(Microseconds), no time zone) when
/// timestamps (unix microseconds, one per row) are given. The file is synced
/// before returning.
pub fn write_parquet(
    path: &Path,
    data: &Dataset,
    timestamps_us: Option<&[i64]>,
) -> Result<(), GenError> {
    let n = data.len();
    if data.features.len() != n * data.width {
        return Err(GenError::DataShape {
            values: data.features.len(),
            rows: n,
            width: data.width,
        });
    }
    if let Some(ts) = timestamps_us {
        if ts.len() != n {
            return Err(GenError::TimestampCount {
                timestamps: ts.len(),
                rows: n,
            });
        }
    }
    let mut columns: Vec<Column> = feature_names(data.width)
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let values: Vec<f32> = (0..n).map(|r| data.features[r * data.width + j]).collect();
            Column::new(name.into(), values)
        })
        .collect();
    columns.push(Column::new("label".into(), data.labels.as_slice()));
    if let Some(ts) = timestamps_us {
        let series = Series::new("ts".into(), ts).into_datetime(TimeUnit::Microseconds, None);
        columns.push(series.into_column());
    }
    let polars_err = |source| GenError::Polars {
        path: path.to_path_buf(),
        source,
    };
    let mut df = DataFrame::new(n, columns).map_err(polars_err)?;
    let mut file = File::create(path).map_err(io_err(path))?;
    ParquetWriter::new(&mut file)
        .finish(&mut df)
        .map_err(polars_err)?;
    file.sync_all().map_err(io_err(path))
}

#[cfg(test)]
#[path = "parquet_tests.rs"]
mod tests;
