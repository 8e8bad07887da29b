//! Replays every fuzz input kept in the repository through the same
//! functions the fuzz targets call (`driftd::harness`): the seed corpora
//! (`fuzz/corpus/TARGET/`) and every crash the fuzzer found
//! (`tests/data/fuzz-regressions/TARGET/`, named after what they broke).
//! Stable CI thus exercises them without cargo-fuzz. A replay that
//! panics, aborts or hangs fails the test.
//!
//! `cargo test --test fuzz_regressions -- --ignored` rewrites the registry
//! and checkpoint seeds from the harness's template registry.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [
        root.join("fuzz/corpus").join(target),
        root.join("tests/data/fuzz-regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_file() && path.file_name().is_some_and(|n| n != "README.md") {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

/// Runs every input of `target`; returns how many came back `Ok`.
fn replay<T, E: std::fmt::Debug>(target: &str, f: impl Fn(&[u8]) -> Result<T, E>) -> usize {
    let inputs = inputs(target);
    assert!(!inputs.is_empty(), "no seed corpus for {target}");
    let mut ok = 0;
    for (path, bytes) in &inputs {
        match f(bytes) {
            Ok(_) => ok += 1,
            Err(e) => eprintln!("{}: {e:?}", path.display()),
        }
    }
    ok
}

#[test]
fn policy_inputs_replay() {
    let ok = replay("policy", driftd::harness::policy_text);
    assert!(ok >= 3, "the real policies of the seed corpus parse ({ok})");
}

#[test]
fn parquet_inputs_replay() {
    let ok = replay("parquet", driftd::harness::parquet_file);
    assert!(ok >= 2, "the gen-data seed files are ingested ({ok})");
}

#[test]
fn registry_inputs_replay() {
    let ok = replay("registry", driftd::harness::registry_file);
    assert!(
        ok >= driftd::harness::REGISTRY_FILES.len(),
        "the unmodified template files open ({ok})"
    );
}

#[test]
fn checkpoint_inputs_replay() {
    let ok = replay("checkpoint", driftd::harness::checkpoint);
    assert!(ok >= 2, "the real checkpoints load ({ok})");
}

/// Writes the registry and checkpoint seeds (see the module docs).
#[test]
#[ignore]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let registry = root.join("registry");
    std::fs::create_dir_all(&registry).unwrap();
    for (name, bytes) in driftd::harness::registry_seeds() {
        std::fs::write(registry.join(name), bytes).unwrap();
    }
    let checkpoint = root.join("checkpoint");
    std::fs::create_dir_all(&checkpoint).unwrap();
    std::fs::write(
        checkpoint.join("driftd-model.safetensors"),
        driftd::harness::checkpoint_seed(),
    )
    .unwrap();
}
