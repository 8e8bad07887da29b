//! `driftd pin` and `driftd unpin`: keep a version whatever the retention
//! policy, or let retention delete it again.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::load_policy;
use crate::logging::{self, LogFormat};
use crate::registry::Registry;

pub(super) fn pin(
    format: LogFormat,
    config: &Path,
    version: u64,
    reason: &str,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd pin")?;
    if registry.pin(version, reason)? {
        tracing::info!(event = "pin", version, reason, "version {version} pinned");
        println!("version {version} is pinned: retention keeps it");
    } else {
        println!("version {version} was already pinned");
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn unpin(format: LogFormat, config: &Path, version: u64) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd unpin")?;
    if registry.unpin(version)? {
        tracing::info!(event = "unpin", version, "version {version} unpinned");
        println!("version {version} is no longer pinned");
    } else {
        println!("version {version} was not pinned");
    }
    Ok(ExitCode::SUCCESS)
}
