//! Unit tests of `make_classification` and drifted concepts.

use std::collections::HashSet;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::super::test_support::{counts, Bayes};
use super::*;

#[test]
fn reference_shape() {
    let d = make_classification(&ClassificationSpec::reference(1));
    assert_eq!(d.len(), 1000);
    assert_eq!(d.width, 20);
    assert_eq!(d.features.len(), 20_000);
    assert!(d.features.iter().all(|x| x.is_finite()));
    assert!(d.labels.iter().all(|&l| l == 0 || l == 1));
}

#[test]
fn deterministic_and_seed_sensitive() {
    let spec = ClassificationSpec::reference(7);
    let a = make_classification(&spec);
    let b = make_classification(&spec);
    assert_eq!(a.features, b.features);
    assert_eq!(a.labels, b.labels);
    let c = make_classification(&ClassificationSpec::reference(8));
    assert_ne!(a.features, c.features);
    assert_eq!(Concept::new(&spec), Concept::new(&spec));
    let d1 = Concept::new(&spec).drifted(0.5, 3);
    assert_eq!(d1, Concept::new(&spec).drifted(0.5, 3));
    assert_ne!(d1, Concept::new(&spec).drifted(0.5, 4));
}

#[test]
fn classes_and_clusters_balanced() {
    let spec = ClassificationSpec {
        flip_y: 0.0,
        ..ClassificationSpec::reference(3)
    };
    assert_eq!(
        counts(&make_classification(&spec).labels, 2),
        vec![500, 500]
    );
    let three = ClassificationSpec {
        n_classes: 3,
        n_samples: 1000,
        ..spec
    };
    assert_eq!(
        counts(&make_classification(&three).labels, 3),
        vec![334, 333, 333]
    );
    assert_eq!(cluster_counts(10, 4), vec![3, 3, 2, 2]);
    assert_eq!(cluster_counts(1000, 4).iter().sum::<usize>(), 1000);
}

#[test]
fn flip_y_changes_only_labels_at_the_expected_rate() {
    let clean = ClassificationSpec {
        n_samples: 4000,
        flip_y: 0.0,
        ..ClassificationSpec::reference(5)
    };
    let noisy = ClassificationSpec {
        flip_y: 0.2,
        ..clean.clone()
    };
    let a = make_classification(&clean);
    let b = make_classification(&noisy);
    assert_eq!(a.features, b.features);
    let changed = a
        .labels
        .iter()
        .zip(&b.labels)
        .filter(|(x, y)| x != y)
        .count();
    // A flipped label lands on its own class half the time: expect 10%.
    let rate = changed as f64 / 4000.0;
    assert!((0.07..0.13).contains(&rate), "changed rate {rate}");
}

#[test]
fn reference_is_learnable_and_full_drift_is_near_chance() {
    let spec = ClassificationSpec::reference(1);
    let concept = Concept::new(&spec);
    let bayes = Bayes::new(&concept);
    let acc = bayes.accuracy(&make_classification(&spec));
    assert!(acc > 0.9, "Bayes accuracy on the reference {acc}");
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut accs = Vec::new();
    for seed in 0..8 {
        let new = concept.drifted(1.0, seed).sample(2000, &mut rng);
        accs.push(bayes.accuracy(&new));
    }
    let mean = accs.iter().sum::<f64>() / accs.len() as f64;
    assert!(
        (0.35..0.65).contains(&mean),
        "old model on new concepts {accs:?}"
    );
}

#[test]
fn drift_magnitude_is_the_fraction_of_clusters_redrawn() {
    let spec = ClassificationSpec {
        n_clusters_per_class: 4,
        ..ClassificationSpec::reference(2)
    };
    let c = Concept::new(&spec);
    for (m, expect) in [(0.01, 1), (0.25, 2), (0.5, 4), (1.0, 8)] {
        let d = c.drifted(m, 11);
        let moved = c
            .clusters
            .iter()
            .zip(&d.clusters)
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(moved, expect, "magnitude {m}");
        let old: HashSet<_> = c.clusters.iter().map(|k| &k.vertex).collect();
        for (a, b) in c.clusters.iter().zip(&d.clusters) {
            if a != b {
                assert!(!old.contains(&b.vertex), "re-drawn onto an old vertex");
            }
        }
        assert_eq!(d.redundant, c.redundant);
        assert_eq!(d.columns, c.columns);
    }
    // A space with no free vertex still drifts (clusters trade places).
    let tiny = ClassificationSpec {
        n_features: 2,
        n_informative: 2,
        n_redundant: 0,
        n_clusters_per_class: 2,
        ..spec
    };
    let c = Concept::new(&tiny);
    assert_ne!(c.drifted(1.0, 1), c);
}

#[test]
fn columns_are_informative_redundant_and_noise() {
    let spec = ClassificationSpec {
        n_features: 6,
        n_informative: 2,
        n_redundant: 1,
        n_samples: 50,
        ..ClassificationSpec::reference(4)
    };
    let c = Concept::new(&spec);
    let mut sorted = c.columns.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..6).collect::<Vec<_>>());
    // The redundant column is the informative ones mixed by the matrix.
    let col = |s: usize| c.columns.iter().position(|&x| x == s).unwrap();
    let data = make_classification(&spec);
    for i in 0..data.len() {
        let r = data.row(i);
        let want = r[col(0)] as f64 * c.redundant[0] + r[col(1)] as f64 * c.redundant[1];
        assert!((r[col(2)] as f64 - want).abs() < 1e-4);
    }
}
