//! Unit tests of drifting streams: where the concept changes, and balance.

use super::super::test_support::{counts, stream_spec, Bayes};
use super::*;

#[test]
fn abrupt_drift_switches_concept_at_the_row() {
    let spec = stream_spec(3);
    let mut rows = StreamRows::new(&spec).unwrap();
    let (data, origin) = rows.chunk(spec.rows);
    assert!(origin[..1000].iter().all(|&c| c == 0));
    assert!(origin[1000..].iter().all(|&c| c == 1));
    // The rows really are the concepts': the old concept's Bayes
    // classifier is good before the drift and near chance after it.
    let old = Bayes::new(&rows.concepts[0]);
    let new = Bayes::new(&rows.concepts[1]);
    let before = data.slice(0, 1000);
    let after = data.slice(1000, 2500);
    assert!(old.accuracy(&before) > 0.9);
    assert!(new.accuracy(&after) > 0.9);
    let stale = old.accuracy(&after);
    assert!(stale < 0.75, "old concept after drift {stale}");
}

#[test]
fn stream_is_balanced_locally() {
    let spec = StreamSpec {
        rows: 1002,
        concept: ClassificationSpec {
            flip_y: 0.0,
            ..ClassificationSpec::reference(6)
        },
        drift_width: 300,
        drift_at: vec![500],
        ..stream_spec(6)
    };
    let (data, _) = StreamRows::new(&spec).unwrap().chunk(spec.rows);
    // Every block of 4 rows (one per cluster) has both classes twice,
    // whichever concept each row came from.
    for block in data.labels.chunks_exact(4) {
        assert_eq!(counts(block, 2), vec![2, 2]);
    }
}

#[test]
fn gradual_drift_mixes_linearly() {
    let spec = StreamSpec {
        rows: 6000,
        drift_at: vec![1000, 4000],
        drift_width: 2000,
        ..stream_spec(4)
    };
    let mut rows = StreamRows::new(&spec).unwrap();
    assert_eq!(rows.concepts.len(), 3);
    let (_, origin) = rows.chunk(spec.rows);
    let share_new = |from: usize, to: usize, concept: usize| {
        origin[from..to].iter().filter(|&&c| c == concept).count() as f64 / (to - from) as f64
    };
    assert!(origin[..1000].iter().all(|&c| c == 0));
    // Linear ramp: ~1/4 new in the first half of the window, ~3/4 in the second.
    let first = share_new(1000, 2000, 1);
    let second = share_new(2000, 3000, 1);
    assert!((0.18..0.32).contains(&first), "{first}");
    assert!((0.68..0.82).contains(&second), "{second}");
    assert!(origin[1000..3000].iter().all(|&c| c <= 1));
    assert!(origin[3000..4000].iter().all(|&c| c == 1));
    assert!(origin[4000..].iter().all(|&c| c >= 1));
    assert!(share_new(5000, 6000, 2) > 0.68);
}

#[test]
fn chunks_do_not_depend_on_file_size() {
    let spec = stream_spec(5);
    let (whole, _) = StreamRows::new(&spec).unwrap().chunk(spec.rows);
    let mut rows = StreamRows::new(&spec).unwrap();
    let mut parts = Dataset::new(20);
    for n in [7, 993, 1500] {
        let (d, _) = rows.chunk(n);
        parts.extend(&d);
    }
    assert_eq!(whole.features, parts.features);
    assert_eq!(whole.labels, parts.labels);
}
