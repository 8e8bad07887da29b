//! Unit tests of the Parquet reader: type conversion, problems named,
//! batching, and panics caught.

use super::*;
use crate::ingest::test_util::{schema, write};

#[test]
fn reads_columns_in_any_order_and_converts_types() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("y".into(), [1i32, 0, 1]),
            Column::new("b".into(), [true, false, true]),
            Column::new("a".into(), [1.5f64, 2.5, 3.5]),
        ],
    );
    let d = read_file(&p, &schema()).unwrap();
    assert_eq!(d.features, vec![1.5, 1.0, 2.5, 0.0, 3.5, 1.0]);
    assert_eq!(d.labels, vec![1, 0, 1]);
}

#[test]
fn bad_files_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32, f32::NAN]),
            Column::new("b".into(), [1.0f32, 2.0]),
            Column::new("y".into(), [0i64, 1]),
        ],
    );
    let e = read_file(&p, &schema()).unwrap_err();
    assert_eq!(
        e,
        FileProblem::BadValues {
            column: "a".into(),
            count: 1,
            first_row: 1,
            first_row_id: None,
        }
    );

    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32]),
            Column::new("y".into(), [0i64]),
        ],
    );
    assert!(matches!(
        read_file(&p, &schema()).unwrap_err(),
        FileProblem::MissingColumn { column, .. } if column == "b"
    ));

    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32]),
            Column::new("b".into(), ["x"]),
            Column::new("y".into(), [0i64]),
        ],
    );
    assert!(matches!(
        read_file(&p, &schema()).unwrap_err(),
        FileProblem::WrongType { column, .. } if column == "b"
    ));

    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32]),
            Column::new("b".into(), [1.0f32]),
            Column::new("y".into(), [3i64]),
        ],
    );
    assert!(matches!(
        read_file(&p, &schema()).unwrap_err(),
        FileProblem::LabelOutOfRange { label, .. } if label == "3"
    ));

    fs::write(&p, b"PAR1 not really").unwrap();
    assert!(matches!(
        read_file(&p, &schema()).unwrap_err(),
        FileProblem::NotParquet(_)
    ));
}

#[test]
fn batches_follow_row_groups_and_split_big_ones() {
    assert_eq!(plan_batches([3, 3, 3].into_iter(), 6), vec![(0, 6), (6, 3)]);
    assert_eq!(
        plan_batches([10].into_iter(), 4),
        vec![(0, 4), (4, 4), (8, 2)]
    );
    assert_eq!(
        plan_batches([2, 10].into_iter(), 4),
        vec![(0, 2), (2, 4), (6, 4), (10, 2)]
    );
    assert_eq!(plan_batches(std::iter::empty(), 4), vec![]);
}

#[test]
fn batched_reading_gives_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    let n = 1000usize;
    let mut df = DataFrame::new_infer_height(vec![
        Column::new("a".into(), (0..n).map(|i| i as f32).collect::<Vec<_>>()),
        Column::new("b".into(), (0..n).map(|i| -(i as f64)).collect::<Vec<_>>()),
        Column::new(
            "y".into(),
            (0..n).map(|i| (i % 2) as i64).collect::<Vec<_>>(),
        ),
    ])
    .unwrap();
    ParquetWriter::new(fs::File::create(&p).unwrap())
        .with_row_group_size(Some(128))
        .finish(&mut df)
        .unwrap();
    let whole = read_file(&p, &schema()).unwrap();
    let file = ParquetFile::open(&p, schema(), &BTreeMap::new(), 300).unwrap();
    assert!(file.batches.len() >= 4, "{:?}", file.batches);
    let mut joined = Dataset::new(2);
    for i in 0..file.batches.len() {
        let b = file.read_batch(i).unwrap();
        assert!(b.data.len() <= 300);
        joined.extend(&b.data);
    }
    assert_eq!(joined.len(), n);
    assert_eq!(joined.features, whole.features);
    assert_eq!(joined.labels, whole.labels);
}

#[test]
fn a_panic_in_the_reader_becomes_a_quarantine_reason() {
    let problem = catching::<()>(|| panic!("index out of bounds: the len is 3")).unwrap_err();
    assert_eq!(
        problem.to_string(),
        "not a valid Parquet file: the Parquet reader panicked: index out of bounds: the len is 3"
    );
    let problem = catching::<()>(|| std::panic::panic_any(7u8)).unwrap_err();
    assert!(
        problem.to_string().contains("panicked: no message"),
        "{problem}"
    );
}
