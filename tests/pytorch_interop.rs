//! A checkpoint written by driftd loads in PyTorch (the venv's torch, via
//! safetensors) into the equivalent nn.Sequential and predicts the same.
#![forbid(unsafe_code)]

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

/// A policy with an explicit feature list (so `import` knows the input
/// order without a live version) and `model_extra` appended.
fn list_policy(root: &std::path::Path, model_extra: &str) -> std::path::PathBuf {
    let policy = write_policy(root, model_extra);
    let features: Vec<String> = (0..20).map(|i| format!("\"f{i}\"")).collect();
    let text = std::fs::read_to_string(&policy).unwrap().replace(
        "features = \"f*\"",
        &format!("features = [{}]", features.join(", ")),
    );
    std::fs::write(&policy, text).unwrap();
    policy
}

/// PyTorch builds and saves an nn.Sequential; `driftd import` adopts it;
/// driftd's predictions from the registry match PyTorch's.
fn import_check(model_extra: &str, spec: serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    gen_reference(&root.join("ref"));
    let policy = list_policy(root, model_extra);
    let test_file = root.join("ref/new_test.parquet");
    let spec_path = root.join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).unwrap();
    let model_path = root.join("trained_elsewhere.safetensors");
    let probs_path = root.join("torch_probs.json");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/make_sequential.py"
    );
    let o = std::process::Command::new(python())
        .arg(script)
        .args([&model_path, &probs_path, &test_file, &spec_path])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    let o = driftd(&[
        "import",
        "--config",
        policy.to_str().unwrap(),
        "--safetensors",
        model_path.to_str().unwrap(),
        "--reason",
        "trained in the notebook",
        "--promote",
    ]);
    assert!(o.status.success(), "import failed: {}", stderr(&o));
    assert!(stdout(&o).contains("version 1 imported"), "{}", stdout(&o));

    let reg = Registry::open(&root.join("models")).unwrap();
    assert_eq!(reg.live_version().unwrap(), Some(1));
    let (meta, model) = reg.load_model(1).unwrap();
    assert_eq!(meta.strategy, "import");
    let source = meta.import.as_ref().unwrap();
    assert_eq!(source.reason, "trained in the notebook");
    let with_scaler = spec["scaler"].as_bool().unwrap();
    assert_eq!(
        source.scaler,
        if with_scaler {
            "checkpoint"
        } else {
            "identity"
        }
    );
    let schema = Schema::new(
        meta.features.clone(),
        meta.label.clone(),
        meta.architecture.classes as i64,
    );
    let data = read_file(&test_file, &schema).unwrap();
    let ours = model.predict_proba(&data).unwrap();
    let theirs: Vec<f64> = serde_json::from_slice(&std::fs::read(&probs_path).unwrap()).unwrap();
    assert_eq!(ours.len(), theirs.len());
    assert_eq!(ours.len(), 250 * meta.architecture.classes);
    let max_diff = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    println!(
        "imported model: max abs difference {max_diff:e} over {} rows",
        data.len()
    );
    assert!(max_diff < 1e-5, "max abs difference {max_diff}");
    let h = reg.history().unwrap().pop().unwrap();
    assert_eq!((h.event.as_str(), h.version), ("import", 1));
}

#[test]
fn an_imported_pytorch_sequential_predicts_the_same_in_driftd() {
    import_check(
        "",
        serde_json::json!({
            "features": (0..20).map(|i| format!("f{i}")).collect::<Vec<_>>(),
            "hidden": [20, 10], "activation": "relu", "classes": 2, "seed": 7, "scaler": false
        }),
    );
}

#[test]
fn an_imported_multiclass_model_with_its_scaler_predicts_the_same() {
    import_check(
        "[model]\nhidden = [16, 8]\nactivation = \"tanh\"\nclasses = 3\n",
        serde_json::json!({
            "features": (0..20).map(|i| format!("f{i}")).collect::<Vec<_>>(),
            "hidden": [16, 8], "activation": "tanh", "classes": 3, "seed": 11, "scaler": true
        }),
    );
}
