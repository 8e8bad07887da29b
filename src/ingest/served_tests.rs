//! Unit tests of served values: classes, probabilities, invalid values, and
//! alignment with dropped and reordered rows.

use polars::prelude::*;

use super::*;
use crate::config::BadRows;
use crate::ingest::test_util::{close, read_one_batch, schema, write};
use crate::ingest::Schema;

#[test]
fn served_class_and_probability_are_read_and_invalid_ones_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32, 2.0, 3.0, 4.0]),
            Column::new("b".into(), [1.0f32, 2.0, 3.0, 4.0]),
            Column::new("y".into(), [0i64, 1, 1, 0]),
            Column::new("served".into(), [Some(1i64), Some(1), Some(0), Some(5)]),
            Column::new("p1".into(), [Some(0.9f64), Some(0.8), Some(0.3), None]),
        ],
    );
    let mut s = schema();
    s.prediction = Some("served".into());
    s.probability = vec!["p1".into()];
    let served = read_one_batch(&p, &s).unwrap().served.unwrap();
    assert_eq!(served.predicted[..3], [1, 1, 0]);
    assert!(close(&served.p_label[..3], &[0.1, 0.8, 0.3]), "{served:?}");
    assert!(close(&served.p_positive[..3], &[0.9, 0.8, 0.3]));
    // Class 5 is not a class and the probability is null.
    assert_eq!(served.valid, vec![true, true, true, false]);
    assert_eq!(served.invalid_rows(), 1);

    // Only the class: the probabilities are the hard prediction's.
    s.probability.clear();
    let served = read_one_batch(&p, &s).unwrap().served.unwrap();
    assert_eq!(served.p_label[..3], [0.0, 1.0, 0.0]);
    assert_eq!(served.p_positive[..3], [1.0, 1.0, 0.0]);

    // Without served columns there is nothing served.
    s.prediction = None;
    assert_eq!(read_one_batch(&p, &s).unwrap().served, None);

    // A served probability must be a float.
    s.probability = vec!["served".into()];
    let e = read_one_batch(&p, &s).unwrap_err();
    assert!(
        matches!(&e, FileProblem::WrongType { column, .. } if column == "served"),
        "{e}"
    );
}

#[test]
fn per_class_probabilities_and_string_classes_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("a".into(), [1.0f32, 2.0, 3.0]),
            Column::new("b".into(), [1.0f32, 2.0, 3.0]),
            Column::new("y".into(), ["cat", "dog", "bird"]),
            Column::new("pc".into(), [0.7f32, 0.1, 0.2]),
            Column::new("pd".into(), [0.2f32, 0.6, 1.5]),
            Column::new("pb".into(), [0.1f32, 0.3, 0.1]),
            Column::new("served".into(), ["cat", "bird", "fish"]),
        ],
    );
    let mut s = Schema::new(vec!["a".into(), "b".into()], "y".into(), 3);
    s.class_names = vec!["cat".into(), "dog".into(), "bird".into()];
    s.probability = vec!["pc".into(), "pd".into(), "pb".into()];
    let served = read_one_batch(&p, &s).unwrap().served.unwrap();
    // The served class is the most probable one.
    assert_eq!(served.predicted[..2], [0, 1]);
    assert!(close(&served.p_label[..2], &[0.7, 0.6]));
    assert!(close(&served.p_positive[..2], &[0.2, 0.6]));
    // 1.5 is not a probability.
    assert_eq!(served.valid, vec![true, true, false]);
    // A served class column wins over the probabilities' argmax; "fish"
    // is not a class.
    s.prediction = Some("served".into());
    let served = read_one_batch(&p, &s).unwrap().served.unwrap();
    assert_eq!(served.predicted[..2], [0, 2]);
    assert_eq!(served.valid, vec![true, true, false]);
}

#[test]
fn dropped_and_reordered_rows_keep_their_served_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.parquet");
    write(
        &p,
        vec![
            Column::new("a".into(), [Some(1.0f32), None, Some(3.0), Some(4.0)]),
            Column::new("b".into(), [1.0f32, 2.0, 3.0, 4.0]),
            Column::new("y".into(), [0i64, 1, 1, 0]),
            Column::new("ts".into(), [40.0f64, 10.0, 30.0, 20.0]),
            Column::new("served".into(), [0i64, 1, 1, 1]),
        ],
    );
    let mut s = schema();
    s.bad_rows = BadRows::Drop;
    s.timestamp = Some("ts".into());
    s.prediction = Some("served".into());
    let b = read_one_batch(&p, &s).unwrap();
    assert_eq!(b.dropped, 1);
    // Rows 0, 2, 3 kept, then ordered by event time: 3, 2, 0.
    assert_eq!(b.data.times_us, vec![20_000_000, 30_000_000, 40_000_000]);
    assert_eq!(b.data.features, vec![4.0, 4.0, 3.0, 3.0, 1.0, 1.0]);
    assert_eq!(b.data.labels, vec![0, 1, 0]);
    assert_eq!(b.served.unwrap().predicted, vec![1, 1, 0]);
}
