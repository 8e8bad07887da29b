//! What several commands share: loading the policy, the async runtime,
//! writing a chart, printing an optional number.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::Policy;

/// The policy with its relative directories resolved (see [`load_resolved`]).
pub(super) fn load_policy(path: &Path) -> Result<Policy> {
    Ok(load_resolved(path)?)
}

/// The policy with relative directories resolved against its file's
/// directory (typed errors, for the daemon's reload).
pub(super) fn load_resolved(path: &Path) -> Result<Policy, crate::config::ConfigError> {
    let mut policy = Policy::load(path)?;
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    policy.resolve_paths(&base);
    Ok(policy)
}

/// The async runtime for `run` and `demo`.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Writes the chart as SVG and / or PNG.
pub(super) fn write_plots(
    chart: &crate::plot::Chart,
    svg: Option<&Path>,
    png: Option<&Path>,
) -> Result<()> {
    if let Some(path) = svg {
        std::fs::write(path, crate::plot::svg(chart)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = png {
        std::fs::write(path, crate::plot::png(chart)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub(super) use crate::status::fmt_opt;
