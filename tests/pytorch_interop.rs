//! A checkpoint written by driftd loads in PyTorch (the venv's torch, via
//! safetensors) into the equivalent nn.Sequential and predicts the same.

mod common;
use common::*;

use driftd::ingest::{read_file, Schema};
use driftd::registry::Registry;

fn python() -> String {
    std::env::var("DRIFTD_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        assert!(
            std::path::Path::new(venv).exists(),
            "set DRIFTD_PYTHON to a Python with torch 2.13, safetensors and pyarrow \
             (`make test` does), or run scripts/bootstrap.sh --python"
        );
        venv.to_string()
    })
}

fn check(extra_policy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gen_reference(&root.join("ref"));
    let policy = write_policy(root, extra_policy);
    let o = driftd(&[
        "init",
        "--config",
        policy.to_str().unwrap(),
        "--data",
        root.join("ref/old.parquet").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "init failed: {}", stderr(&o));

    let reg = Registry::open(&root.join("models")).unwrap();
    let (meta, model) = reg.load_model(1).unwrap();
    let test_file = root.join("ref/new_test.parquet");
    let schema = Schema::new(
        meta.features.clone(),
        meta.label.clone(),
        meta.architecture.classes as i64,
    );
    let data = read_file(&test_file, &schema).unwrap();
    let probs = model.predict_proba(&data).unwrap();
    let probs_path = root.join("probs.json");
    std::fs::write(&probs_path, serde_json::to_vec(&probs).unwrap()).unwrap();

    let version_dir = root.join("models/versions/000001");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/check_checkpoint.py"
    );
    let o = std::process::Command::new(python())
        .arg(script)
        .arg(version_dir.join("model.safetensors"))
        .arg(version_dir.join("meta.json"))
        .arg(&test_file)
        .arg(&probs_path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "PyTorch disagrees: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    println!("PyTorch check: {report}");
    assert_eq!(report["rows"], 250);
    assert!(report["max_abs_diff"].as_f64().unwrap() < 1e-5);
}

#[test]
fn binary_relu_checkpoint_matches_pytorch() {
    check("");
}

#[test]
fn gelu_checkpoint_matches_pytorch() {
    check("[model]\nactivation = \"gelu\"\nhidden = [16, 8, 4]\n");
}
