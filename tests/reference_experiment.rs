//! `driftd compare` reproduces the tutorial's experiment: on its data
//! (tests/data/reference, the shared seed files), every strategy's mean
//! accuracy over 5 seeds is within 0.02 of what PyTorch got.
#![forbid(unsafe_code)]

mod common;
use common::*;

/// PyTorch (Python) on the same data, model, initialisation and settings,
/// mean accuracy on new_test over 5 seeds (from the strategies issue).
const PYTORCH: [(&str, f64); 7] = [
    ("none", 0.916),
    ("continue_new", 0.934),
    ("continue_all", 0.929),
    ("refit_new", 0.914),
    ("refit_all", 0.934),
    ("ensemble_new", 0.938),
    ("ensemble_all", 0.932),
];

#[test]
fn compare_matches_the_pytorch_reference_within_two_points() {
    let root = env!("CARGO_MANIFEST_DIR");
    let data = |f: &str| format!("{root}/tests/data/reference/{f}");
    let o = driftd(&[
        "compare",
        "--json",
        "--repeats",
        "5",
        "--config",
        &format!("{root}/config/reference.toml"),
        "--old",
        &data("old.parquet"),
        "--new",
        &data("new_train.parquet"),
        "--test",
        &data("new_test.parquet"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (strategy, want) in PYTORCH {
        let row = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["strategy"] == strategy)
            .unwrap_or_else(|| panic!("{strategy} missing"));
        let got = row["accuracy_mean"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 0.02,
            "{strategy}: driftd {got:.3}, PyTorch {want:.3}"
        );
    }
}
