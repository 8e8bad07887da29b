//! Row conversion: one batch's frame to checked f32 rows (features
//! interleaved a cache-sized block at a time), with the bad-row rule.

use polars::prelude::*;

use super::columns::{column, f32_column, finite_values, label_values, timestamp_values};
use super::problem::FileProblem;
use super::schema::Schema;
use super::served::{served_values, Served};
use crate::config::BadRows;
use crate::model::Dataset;

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
pub(super) fn convert(
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
    let features = feature_rows(df, schema, &mut filter, &bad_values)?;
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
    let served = served_values(df, schema, &labels)?;
    let data = Dataset {
        width,
        features,
        labels,
        weights,
        times_us,
    };
    let dropped = filter.keep.iter().filter(|k| !**k).count();
    let (data, served) = keep_and_order(data, served, &filter.keep, dropped, schema);
    Ok(Batch {
        data,
        dropped,
        first_dropped: filter.first_problem,
        served,
    })
}

/// The feature columns as row-major rows. Rows with a null, NaN or
/// infinite feature go to `filter` (their value is 0), column by column.
fn feature_rows(
    df: &DataFrame,
    schema: &Schema,
    filter: &mut RowFilter,
    bad_values: &impl Fn(&str, &[usize]) -> FileProblem,
) -> Result<Vec<f32>, FileProblem> {
    let n = df.height();
    let width = schema.features.len();
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
    Ok(features)
}

/// Drops the rows `keep` rejects and, with an event-time column, puts the
/// rest in event order; the served values follow their rows.
fn keep_and_order(
    mut data: Dataset,
    mut served: Option<Served>,
    keep: &[bool],
    dropped: usize,
    schema: &Schema,
) -> (Dataset, Option<Served>) {
    if dropped > 0 {
        let kept: Vec<usize> = (0..keep.len()).filter(|&i| keep[i]).collect();
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
    (data, served)
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

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
