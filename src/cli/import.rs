//! `driftd import`: adopts a PyTorch state_dict saved with safetensors as
//! a new version (pickled checkpoints are refused: unpickling can run code).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::support::load_policy;
use crate::config::Policy;
use crate::logging::{self, LogFormat};
use crate::registry::{DataSummary, ImportSource, Registry, VersionMeta};

pub(super) fn run(
    format: LogFormat,
    config: &Path,
    safetensors: &Path,
    reason: &str,
    promote: bool,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    import(&policy, safetensors, reason, promote)?;
    Ok(ExitCode::SUCCESS)
}

/// How to turn a PyTorch checkpoint into what `driftd import` reads.
const CONVERT_HINT: &str = "Save the state_dict with safetensors instead: \
    safetensors.torch.save_file(model.state_dict(), \"model.safetensors\") \
    (for an existing file: save_file(torch.load(\"model.pt\", weights_only=True), \"model.safetensors\"))";

/// What a file written by `torch.save` or `pickle` starts with: a zip
/// archive (torch.save's default since PyTorch 1.6) or a pickle stream
/// (protocol 2 and later open with 0x80).
fn pickle_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") {
        Some("a zip archive (torch.save)")
    } else if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|p| (2..=5).contains(p)) {
        Some("a pickle (torch.save / pickle.dump)")
    } else {
        None
    }
}

/// `driftd import`: checks a PyTorch state_dict against the policy's
/// architecture and writes it as the next version (live only with
/// `--promote`).
fn import(policy: &Policy, file: &Path, reason: &str, promote: bool) -> Result<()> {
    let bytes = read_safetensors(file)?;
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd import")?;
    let live = registry.live_version()?;
    // Feature order: the policy's list, else the live version's.
    let features = match (&policy.data.features, live) {
        (crate::config::FeatureSpec::List(list), _) => list.clone(),
        (crate::config::FeatureSpec::Pattern(_), Some(v)) => registry.read_meta(v)?.features,
        (crate::config::FeatureSpec::Pattern(p), None) => bail!(
            "data.features is a pattern ({p:?}) and the registry has no live version, so the \
             model's input order is unknown: list the features in the policy"
        ),
    };
    let arch = crate::model::Architecture::from_policy(policy, features.len());
    let mlp = crate::model::Mlp::from_pytorch_state_dict(&bytes, &arch).map_err(|e| {
        anyhow::anyhow!(
            "{} does not fit the policy's model (inputs {} = the features {:?}, hidden {:?}, \
             {} classes): {e}",
            file.display(),
            arch.inputs,
            features,
            arch.hidden,
            arch.classes
        )
    })?;
    let scaler = if mlp.scaler == crate::model::Scaler::identity(arch.inputs) {
        "identity"
    } else {
        "checkpoint"
    };
    let version = registry.next_version()?;
    let meta = VersionMeta {
        version,
        parent: live,
        strategy: "import".into(),
        trigger: "import".into(),
        created_at: chrono::Utc::now(),
        architecture: arch.clone(),
        members: Vec::new(),
        features,
        label: policy.data.label.clone(),
        training: None,
        threads: policy.training.threads,
        train_report: None,
        data: DataSummary::default(),
        holdout: None,
        live_holdout: None,
        leaderboard: Vec::new(),
        driftd_version: env!("CARGO_PKG_VERSION").into(),
        import: Some(ImportSource {
            file: file.display().to_string(),
            sha256: crate::registry::hex_sha256(&bytes),
            scaler: scaler.into(),
            reason: reason.to_string(),
        }),
        seeds: None,
        update_settings: None,
        files: None,
        anchor: None,
        // No training rows are known: input drift is not checked for it.
        input_profile: None,
    };
    registry.write_version(meta, &crate::model::Classifier::Single(mlp))?;
    tracing::info!(
        event = "import",
        version,
        file = %file.display(),
        scaler,
        "{} imported as version {version}",
        file.display()
    );
    if promote {
        registry.set_live(version, "import", reason)?;
        if let Err(e) = registry.apply_retention(policy.registry.keep_last) {
            tracing::warn!(error = %e, "retention failed; old versions are kept");
        }
        tracing::warn!(
            event = "promote",
            version,
            previous = ?live,
            reason,
            "version {version} (imported) is live"
        );
        println!(
            "version {version} imported from {} and live",
            file.display()
        );
    } else {
        println!(
            "version {version} imported from {}; make it live with `driftd promote {version}`",
            file.display()
        );
    }
    Ok(())
}

/// The checkpoint's bytes, if it is named and made like a safetensors file.
fn read_safetensors(file: &Path) -> Result<Vec<u8>> {
    if file.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        bail!(
            "{} is not a .safetensors file: driftd import takes only safetensors checkpoints \
             (pickled .pt / .pth files are never read: unpickling can run code). {CONVERT_HINT}",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if let Some(kind) = pickle_kind(&bytes) {
        bail!(
            "{} is named .safetensors but holds {kind}, not safetensors: it is not read \
             (unpickling can run code). {CONVERT_HINT}",
            file.display()
        );
    }
    Ok(bytes)
}
