//! Entry points that feed untrusted bytes through driftd's own parsing
//! paths: the fuzz targets (`fuzz/fuzz_targets/`) and
//! `tests/fuzz_regressions.rs` call these, so a crash the fuzzer finds is
//! replayed by a plain `cargo test` through the very same code.
//!
//! Every function returns `Ok` or the library's typed error for any input;
//! a panic that escapes one, an abort or an unbounded allocation is a bug.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::{Activation, Diagnostic, Policy};
use crate::ingest::{FileIdentity, FileProblem, Ingestor, Manifest, ManifestEntry, Outcome};
use crate::model::{Architecture, Classifier, Dataset, Mlp, ModelError};
use crate::registry::{CheckMode, Registry, RegistryError, VersionMeta};

/// The policy parser behind `driftd check-config` (and every command that
/// reads the policy) on arbitrary text. Bytes that are not UTF-8 are what
/// `Policy::load` refuses before parsing; they yield `Ok(None)`.
pub fn policy_text(bytes: &[u8]) -> Result<Option<Policy>, Vec<Diagnostic>> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    let mut policy = Policy::parse(text)?;
    policy.resolve_paths(Path::new("/etc/driftd"));
    Ok(Some(policy))
}

/// A data directory and a state directory for [`parquet_file`], made once
/// per process (the fuzzer calls it millions of times).
struct IngestBench {
    _root: tempfile::TempDir,
    policy: Policy,
    file: PathBuf,
    manifest: PathBuf,
}

impl IngestBench {
    fn new() -> IngestBench {
        let root = tempfile::tempdir().expect("a temporary directory");
        let data = root.path().join("incoming");
        let state = root.path().join("state");
        std::fs::create_dir_all(&data).expect("the data directory");
        // Features by pattern: the schema comes from the file itself, as
        // for a policy that does not list them, so the column listing is
        // exercised too.
        let text = format!(
            "[data]\ndir = {data:?}\nfeatures = \"f*\"\nlabel = \"label\"\n\
             bad_rows = \"drop\"\nbatch_rows = 64\nincomplete_after_ms = 0\n\
             [registry]\ndir = {:?}\n[state]\ndir = {state:?}\n",
            root.path().join("models")
        );
        let policy = Policy::parse(&text).expect("the harness policy is valid");
        IngestBench {
            file: data.join("fuzz.parquet"),
            manifest: state.join("manifest.json"),
            _root: root,
            policy,
        }
    }
}

thread_local! {
    // One per thread: tests run in parallel threads.
    static INGEST_BENCH: IngestBench = IngestBench::new();
}

/// Arbitrary bytes saved as a `.parquet` file in the data directory and
/// taken in as the daemon takes a file: the scan (settle, trailer check,
/// footer hash), [`crate::ingest::FileReader::open`] (footer, columns,
/// types) and every batch read and converted. Returns the rows kept, or
/// the quarantine reason.
pub fn parquet_file(bytes: &[u8]) -> Result<usize, FileProblem> {
    INGEST_BENCH.with(|bench| {
        std::fs::write(&bench.file, bytes).expect("writes the input file");
        let _ = std::fs::remove_file(&bench.manifest);
        let mut ingestor = Ingestor::open(&bench.policy).expect("an empty state directory");
        let files = ingestor.scan().expect("the data directory lists");
        let Some(file) = files.into_iter().next() else {
            return Ok(0);
        };
        if let Some(problem) = file.problem {
            return Err(problem);
        }
        let opened = ingestor.reader().open(&file)?;
        let mut rows = 0;
        for i in 0..opened.batches.len() {
            rows += opened.read_batch(i)?.data.len();
        }
        Ok(rows)
    })
}

/// Which registry or state file a [`registry_file`] input replaces: its
/// first byte modulo the number of these.
pub const REGISTRY_FILES: &[&str] = &[
    "versions/000001/meta.json",
    "versions/000002/meta.json",
    "live.json",
    "history.jsonl",
    "broken.json",
    "pins.json",
    "manifest.json",
];

/// The architecture of the harness's checkpoints (and of
/// [`checkpoint`]'s inputs).
pub fn harness_architecture() -> Architecture {
    Architecture {
        inputs: 3,
        hidden: vec![4],
        activation: Activation::Relu,
        classes: 2,
    }
}

fn harness_meta(version: u64) -> VersionMeta {
    VersionMeta {
        version,
        parent: version.checked_sub(1).filter(|&p| p > 0),
        strategy: "initial".into(),
        trigger: "initial".into(),
        created_at: chrono::DateTime::UNIX_EPOCH,
        architecture: harness_architecture(),
        members: vec![],
        features: vec!["f0".into(), "f1".into(), "f2".into()],
        label: "label".into(),
        training: None,
        threads: 1,
        train_report: None,
        data: crate::registry::DataSummary::default(),
        holdout: None,
        live_holdout: None,
        leaderboard: vec![],
        driftd_version: "harness".into(),
        input_profile: None,
        import: None,
        seeds: None,
        update_settings: None,
        files: None,
        anchor: None,
    }
}

/// A registry with two versions (2 live, 1 before it), a pin and a
/// manifest, written once per process by the registry's own code.
fn registry_template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let reg = Registry::open(dir.path()).expect("a new registry");
            for v in 1..=2 {
                let model = Classifier::Single(Mlp::new(
                    harness_architecture(),
                    crate::config::Init::HeNormal,
                    v,
                ));
                reg.write_version(harness_meta(v), &model)
                    .expect("writes a version");
                reg.set_live(v, "model_promoted", "harness")
                    .expect("sets the live version");
            }
            reg.pin(1, "harness").expect("pins a version");
            let mut manifest = Manifest {
                rows_ingested: 10,
                next_seq: 2,
                ..Manifest::default()
            };
            manifest.files.insert(
                "a.parquet".into(),
                ManifestEntry {
                    identity: FileIdentity {
                        size: 3,
                        mtime_ns: 4,
                        inode: 2,
                        device: 1,
                        footer_sha256: "00".into(),
                    },
                    outcome: Outcome::Ingested {
                        rows: 10,
                        dropped: 0,
                    },
                    seq: 1,
                    at: chrono::DateTime::UNIX_EPOCH,
                },
            );
            manifest
                .save(&dir.path().join("manifest.json"))
                .expect("writes the manifest");
            dir
        })
        .path()
}

/// Copies the template registry, replaces one of [`REGISTRY_FILES`]
/// (`bytes[0]` picks it) with the rest of the input, then opens it as the
/// daemon does (the repairing start-up check), reads the live version, the
/// history and the pins, and loads the live model; the manifest is loaded
/// as the ingestor loads it.
pub fn registry_file(bytes: &[u8]) -> Result<(), RegistryError> {
    let Some((&pick, content)) = bytes.split_first() else {
        return Ok(());
    };
    let template = registry_template();
    let root = tempfile::tempdir().expect("a temporary directory");
    copy_tree(template, root.path()).expect("copies the template registry");
    let target = REGISTRY_FILES[pick as usize % REGISTRY_FILES.len()];
    std::fs::write(root.path().join(target), content).expect("writes the input file");
    if target == "manifest.json" {
        // A corrupt manifest is a typed error the daemon reports at start.
        if let Ok(m) = Manifest::load(&root.path().join(target)) {
            let _ = m.ingested_in_order();
        }
        return Ok(());
    }
    let (reg, _report) = Registry::open_checked(root.path(), "driftd fuzz", CheckMode::Repair)?;
    reg.history()?;
    reg.pins()?;
    if let Some(v) = reg.live_version()? {
        reg.load_model(v)?;
        if let Ok(meta) = reg.read_meta(v) {
            let _ = reg.lineage(&meta, 4);
        }
    }
    Ok(())
}

/// Seed inputs for [`registry_file`]: each file of the template registry
/// as it is, behind the byte that picks it (named after the file).
pub fn registry_seeds() -> Vec<(String, Vec<u8>)> {
    let template = registry_template();
    REGISTRY_FILES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut bytes = vec![i as u8];
            // No version is broken in the template: its broken.json is
            // what the check writes when one is.
            let content = std::fs::read(template.join(name)).unwrap_or_else(|_| {
                br#"{"versions":[{"version":1,"reason":"checksum mismatch","detected_at":"2026-11-27T00:00:00Z"}]}"#.to_vec()
            });
            bytes.extend(content);
            (name.replace('/', "_"), bytes)
        })
        .collect()
}

/// A real checkpoint of [`harness_architecture`], as the registry writes it.
pub fn checkpoint_seed() -> Vec<u8> {
    std::fs::read(registry_template().join("versions/000001/model.safetensors"))
        .expect("the template checkpoint")
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&dest)?;
            copy_tree(&entry.path(), &dest)?;
        } else if entry.file_name() != ".lock" {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// Checkpoint bytes loaded as the registry loads a version's member
/// ([`Mlp::from_safetensors`], after the libtorch-free verification) and as
/// `driftd import` loads a PyTorch state_dict; a model that loads predicts
/// one row.
pub fn checkpoint(bytes: &[u8]) -> Result<(), ModelError> {
    let arch = harness_architecture();
    let verified = crate::model::verify_checkpoint(bytes, &arch);
    let loaded = Mlp::from_safetensors(bytes, &arch);
    // The verification and the loader read the same checks.
    assert_eq!(verified.is_ok(), loaded.is_ok(), "verify and load disagree");
    let imported = Mlp::from_pytorch_state_dict(bytes, &arch);
    let mut row = Dataset::new(arch.inputs);
    row.push_row(&[0.5, -1.0, 2.0], 0);
    let mut accepted = verified;
    for model in [loaded, imported].into_iter().flatten() {
        let p = model.predict_proba(&row)?;
        assert_eq!(p.len(), arch.classes, "one probability per class");
        accepted = Ok(());
    }
    accepted
}
