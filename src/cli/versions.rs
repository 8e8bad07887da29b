//! `driftd versions`: the versions in the registry, with their lineage,
//! scores, pins and damage.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::{fmt_opt, load_policy};
use crate::config::Policy;
use crate::logging::{self, LogFormat};
use crate::registry::{CheckMode, Registry, VersionMeta};

pub(super) fn run(format: LogFormat, config: &Path, json: bool) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, "warn");
    versions(&policy, json)?;
    Ok(ExitCode::SUCCESS)
}

fn versions(policy: &Policy, json: bool) -> Result<()> {
    let (registry, report) =
        Registry::open_checked(&policy.registry.dir, "driftd versions", CheckMode::ReadOnly)?;
    let live = registry.live_version().ok().flatten();
    let broken = |v: u64| {
        report
            .broken
            .iter()
            .find(|b| b.version == v)
            .map(|b| b.reason.clone())
    };
    let pinned: Vec<u64> = registry.pins()?.iter().map(|p| p.version).collect();
    let ids = registry.versions()?;
    // A broken version may have no readable meta.json: list it anyway.
    let metas: Vec<(u64, Option<VersionMeta>)> = ids
        .iter()
        .map(|&v| (v, registry.read_meta(v).ok()))
        .collect();
    if ids.is_empty() && !json {
        println!(
            "no versions yet ({})",
            if registry.exists() {
                format!("the registry {} is empty", policy.registry.dir.display())
            } else {
                format!(
                    "the registry directory {} does not exist",
                    policy.registry.dir.display()
                )
            }
        );
        return Ok(());
    }
    if json {
        let rows: Vec<_> = metas
            .iter()
            .map(|(v, m)| {
                serde_json::json!({
                    "version": v,
                    "parent": m.as_ref().and_then(|m| m.parent),
                    "strategy": m.as_ref().map(|m| &m.strategy),
                    "trigger": m.as_ref().map(|m| &m.trigger),
                    "created_at": m.as_ref().map(|m| m.created_at),
                    "holdout_accuracy": m.as_ref().and_then(|m| m.holdout).map(|s| s.accuracy),
                    "live": Some(*v) == live,
                    "pinned": pinned.contains(v),
                    "broken": broken(*v),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:>8}  {:>7}  {:>6}  {:<14} {:<10} {:<20} {:>8}",
        "", "version", "parent", "strategy", "trigger", "created (UTC)", "holdout"
    );
    for (v, m) in &metas {
        let marker = match (Some(*v) == live, pinned.contains(v)) {
            (true, true) => "live pin",
            (true, false) => "live",
            (false, true) => "pin",
            (false, false) => "",
        };
        let (parent, strategy, trigger, created, holdout) = match m {
            Some(m) => (
                m.parent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                m.strategy.clone(),
                m.trigger.clone(),
                m.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                fmt_opt(m.holdout.map(|s| s.accuracy)),
            ),
            None => ("?".into(), "?".into(), "?".into(), "?".into(), "-".into()),
        };
        println!(
            "{marker:>8}  {v:>7}  {parent:>6}  {strategy:<14} {trigger:<10} {created:<20} {holdout:>8}"
        );
        if let Some(reason) = broken(*v) {
            println!("{:>19}BROKEN: {reason}", "");
        }
    }
    Ok(())
}
