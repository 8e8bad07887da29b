//! Unit tests of row conversion: interleaving, optional columns, the
//! bad-row rule, string labels, narrow types and row ids.

use std::collections::BTreeMap;

use super::*;
use crate::ingest::test_util::{schema, write};
use crate::ingest::{read_file, ParquetFile};

#[test]
fn interleave_makes_rows_across_block_boundaries() {
    let rows = 2 * 1024 + 3;
    let a: Vec<f32> = (0..rows).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..rows).map(|i| -(i as f32)).collect();
    let mut c: Vec<f32> = (0..rows).map(|i| (i % 7) as f32).collect();
    let (out, finite) = interleave(&[&a[..], &b[..], &c[..]], rows);
    assert_eq!(out.len(), 3 * rows);
    for i in 0..rows {
        assert_eq!(out[3 * i..3 * i + 3], [a[i], b[i], c[i]], "row {i}");
    }
    assert_eq!(finite, [true, true, true]);
    // A NaN in the last block and an infinity in the first are seen.
    c[rows - 1] = f32::NAN;
    let mut b = b;
    b[5] = f32::NEG_INFINITY;
    let (_, finite) = interleave(&[&a[..], &b[..], &c[..]], rows);
    assert_eq!(finite, [true, false, false]);
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
fn bad_rows_can_be_dropped_and_string_labels_map_to_classes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("a".into(), [Some(1.0f32), None, Some(3.0), Some(4.0)]),
            Column::new("b".into(), [1.0f32, 2.0, f32::INFINITY, 4.0]),
            Column::new("y".into(), ["dog", "cat", "cat", "bird"]),
        ],
    );
    let mut s = schema();
    s.class_names = vec!["cat".into(), "dog".into()];
    let e = read_file(&p, &s).unwrap_err();
    assert_eq!(
        e,
        FileProblem::BadValues {
            column: "a".into(),
            count: 1,
            first_row: 1,
            first_row_id: None,
        }
    );
    s.bad_rows = BadRows::Drop;
    let file = ParquetFile::open(&p, s.clone(), &BTreeMap::new(), 10).unwrap();
    let b = file.read_batch(0).unwrap();
    assert_eq!(b.dropped, 3);
    assert_eq!(b.data.labels, vec![1]);
    assert_eq!(b.data.features, vec![1.0, 1.0]);
    // Without class names a string label is the wrong type, and a
    // recorded schema is named in the message.
    s.class_names.clear();
    let recorded = BTreeMap::from([("y".to_string(), "i64".to_string())]);
    let e = ParquetFile::open(&p, s, &recorded, 10).err().unwrap();
    assert!(
        matches!(&e, FileProblem::WrongType { column, found, expected } if column == "y" && found == "str" && expected.contains("i64")),
        "{e}"
    );
}

#[test]
fn narrow_integers_decimals_and_dates_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    let cast = |c: Column, t: DataType| c.cast(&t).unwrap();
    write(
        &p,
        vec![
            Column::new("a".into(), [-3i8, 7]),
            Column::new("b".into(), [300i16, -2]),
            Column::new("c".into(), [200u8, 1]),
            Column::new("d".into(), [60000u16, 2]),
            cast(
                Column::new("e".into(), [1.25f64, -2.5]),
                DataType::Decimal(10, 2),
            ),
            Column::new("y".into(), [0i8, 1]),
            cast(Column::new("day".into(), [1i32, 2]), DataType::Date),
        ],
    );
    let mut s = Schema::new(
        ["a", "b", "c", "d", "e"].map(String::from).to_vec(),
        "y".into(),
        2,
    );
    s.timestamp = Some("day".into());
    let d = read_file(&p, &s).unwrap();
    assert_eq!(
        d.features,
        vec![-3.0, 300.0, 200.0, 60000.0, 1.25, 7.0, -2.0, 1.0, 2.0, -2.5]
    );
    assert_eq!(d.labels, vec![0, 1]);
    assert_eq!(d.times_us, vec![86_400_000_000, 172_800_000_000]);
}

#[test]
fn row_ids_name_bad_rows_and_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("id".into(), ["r-10", "r-11", "r-12"]),
            Column::new("a".into(), [1.0f32, 2.0, f32::NAN]),
            Column::new("b".into(), [1.0f32, 2.0, 3.0]),
            Column::new("y".into(), [0i64, 7, 1]),
        ],
    );
    let mut s = schema();
    s.row_id = Some("id".into());
    let e = read_file(&p, &s).unwrap_err();
    assert_eq!(
        e.to_string(),
        "column \"a\" has 1 null, NaN or infinite values (first at row 2, row id r-12)"
    );
    // Dropping keeps the first reason, with its row id, for the event.
    s.bad_rows = BadRows::Drop;
    let file = ParquetFile::open(&p, s.clone(), &BTreeMap::new(), 10).unwrap();
    let b = file.read_batch(0).unwrap();
    assert_eq!((b.dropped, b.data.labels.clone()), (2, vec![0]));
    let first = b.first_dropped.unwrap().to_string();
    assert!(first.contains("row id r-12"), "{first}");
    // Integer ids; a label outside the classes is named by its id.
    write(
        &p,
        vec![
            Column::new("id".into(), [100i64, 101]),
            Column::new("a".into(), [1.0f32, 2.0]),
            Column::new("b".into(), [1.0f32, 2.0]),
            Column::new("y".into(), [0i64, 7]),
        ],
    );
    s.bad_rows = BadRows::Quarantine;
    let e = read_file(&p, &s).unwrap_err().to_string();
    assert_eq!(
        e,
        "label 7 at row 1, row id 101 is outside the classes 0..2 (1 such rows)"
    );
    // A file without the id column, or with ids of another type, is
    // quarantined naming the column.
    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32]),
            Column::new("b".into(), [1.0f32]),
            Column::new("y".into(), [0i64]),
        ],
    );
    let e = read_file(&p, &s).unwrap_err();
    assert!(
        matches!(&e, FileProblem::MissingColumn { column, .. } if column == "id"),
        "{e}"
    );
    write(
        &p,
        vec![
            Column::new("id".into(), [1.5f64]),
            Column::new("a".into(), [1.0f32]),
            Column::new("b".into(), [1.0f32]),
            Column::new("y".into(), [0i64]),
        ],
    );
    let e = read_file(&p, &s).unwrap_err();
    assert!(
        matches!(&e, FileProblem::WrongType { column, .. } if column == "id"),
        "{e}"
    );
}
