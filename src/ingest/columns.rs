//! Typed column values out of a polars frame: f32 features, class indices,
//! event times, each with the rows that are bad.

use std::collections::HashMap;

use polars::prelude::*;

use super::problem::FileProblem;
use super::schema::Schema;

pub(super) fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column, FileProblem> {
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
pub(super) fn f32_column(df: &DataFrame, name: &str) -> Result<Float32Chunked, FileProblem> {
    let cast = column(df, name)?
        .cast(&DataType::Float32)
        .map_err(|e| FileProblem::NotParquet(e.into()))?;
    let ca = cast.f32().map_err(|e| FileProblem::NotParquet(e.into()))?;
    Ok(ca.rechunk().into_owned())
}

/// The values of a single-chunk f32 column, with the rows that are null,
/// NaN or infinite (their value is 0). Without nulls the values are
/// borrowed and checked in one vectorizable pass.
pub(super) fn finite_values(ca: &Float32Chunked) -> (std::borrow::Cow<'_, [f32]>, Vec<usize>) {
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

/// Labels as class indices; rows with a null label; rows whose label is
/// not a class (with the label as written).
#[allow(clippy::type_complexity)]
pub(super) fn label_values(
    df: &DataFrame,
    schema: &Schema,
) -> Result<(Vec<i64>, Vec<usize>, Vec<(usize, String)>), FileProblem> {
    class_values(column(df, &schema.label)?, schema)
}

/// A column of classes (the label, or the served class) as class indices;
/// rows that are null; rows that are not a class (as written).
#[allow(clippy::type_complexity)]
pub(super) fn class_values(
    col: &Column,
    schema: &Schema,
) -> Result<(Vec<i64>, Vec<usize>, Vec<(usize, String)>), FileProblem> {
    let mut labels = Vec::with_capacity(col.len());
    let mut nulls = Vec::new();
    let mut outside = Vec::new();
    let polars_err = |e: PolarsError| FileProblem::NotParquet(e.into());
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
pub(super) fn timestamp_values(
    df: &DataFrame,
    name: &str,
) -> Result<(Vec<i64>, Vec<usize>), FileProblem> {
    let col = column(df, name)?;
    let polars_err = |e: PolarsError| FileProblem::NotParquet(e.into());
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
