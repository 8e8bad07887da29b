//! Helpers shared by the unit tests of this module.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use polars::prelude::*;

use super::{Batch, FileProblem, ParquetFile, Schema};

pub(super) fn write(path: &Path, cols: Vec<Column>) {
    let mut df = DataFrame::new_infer_height(cols).unwrap();
    let f = fs::File::create(path).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
}

pub(super) fn schema() -> Schema {
    Schema::new(vec!["a".into(), "b".into()], "y".into(), 2)
}

pub(super) fn read_one_batch(p: &Path, s: &Schema) -> Result<Batch, FileProblem> {
    ParquetFile::open(p, s.clone(), &BTreeMap::new(), usize::MAX)?.read_batch(0)
}

pub(super) fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
}
