//! `driftd rollback` and `driftd promote`: both move the live pointer, to
//! an earlier version or to any good one.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

use super::support::load_policy;
use crate::config::Policy;
use crate::logging::{self, LogFormat};
use crate::registry::Registry;

pub(super) fn rollback(
    format: LogFormat,
    config: &Path,
    to: Option<u64>,
    reason: &str,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    switch_live(&policy, to, true, reason)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn promote(
    format: LogFormat,
    config: &Path,
    version: u64,
    reason: &str,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    switch_live(&policy, Some(version), false, reason)?;
    Ok(ExitCode::SUCCESS)
}

/// `rollback` and `promote`: move the live pointer to a version that loads
/// (checksums verified), under the registry lock, with a history entry. A
/// running daemon follows the pointer.
fn switch_live(policy: &Policy, to: Option<u64>, rollback: bool, reason: &str) -> Result<()> {
    let what = if rollback {
        "driftd rollback"
    } else {
        "driftd promote"
    };
    let (registry, _lock, report) = Registry::open_locked(&policy.registry.dir, what)?;
    let live = registry.live_version()?;
    let target = match to {
        Some(v) => v,
        None => {
            // The version live before the current one, walking back.
            let live = live.with_context(|| {
                format!(
                    "the registry {} has no live version to roll back from",
                    policy.registry.dir.display()
                )
            })?;
            crate::registry::rollback_target(&registry.history()?, live).with_context(|| {
                format!(
                    "nothing to roll back to: no version older than the live version {live} was live before it (history of {}); version {live} stays live (use --to VERSION to choose one)",
                    policy.registry.dir.display()
                )
            })?
        }
    };
    if Some(target) == live {
        bail!("version {target} is already live");
    }
    if let Some(b) = report.broken.iter().find(|b| b.version == target) {
        bail!(
            "version {target} is broken and cannot be made live: {}{}",
            b.reason,
            if to.is_none() {
                "; choose another with --to VERSION (see `driftd versions`)"
            } else {
                ""
            }
        );
    }
    registry
        .load_model(target)
        .with_context(|| format!("version {target} cannot be made live"))?;
    let event = if rollback { "rollback" } else { "promote" };
    registry.set_live(target, event, reason)?;
    tracing::warn!(
        event,
        version = target,
        previous = ?live,
        reason,
        "version {target} is live ({event} from {}): {reason}",
        live.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
    );
    println!("version {target} is live");
    Ok(())
}
