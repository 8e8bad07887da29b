//! `driftd update`: one update tournament now, on the rows the manifest
//! lists since the live version; the leaderboard as a table or JSON.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::support::{fmt_opt, load_policy};
use crate::config::Policy;
use crate::ingest;
use crate::logging::{self, LogFormat};
use crate::registry::{CandidateScore, DataSummary, Registry};
use crate::update::{self, MadeBy, Promotion};
use crate::update::{StrategyName, Tournament, UpdateData};

pub(super) fn run(
    format: LogFormat,
    config: &Path,
    only: &[StrategyName],
    dry_run: bool,
    json: bool,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    update(&policy, only, dry_run, json)?;
    Ok(ExitCode::SUCCESS)
}

/// `driftd update`: one tournament on the rows the manifest lists since the
/// live version (and a bounded sample of older rows), under the registry
/// lock; a running daemon follows the live pointer.
fn update(policy: &Policy, only: &[StrategyName], dry_run: bool, json: bool) -> Result<()> {
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd update")?;
    let Some(live_version) = registry.live_version()? else {
        bail!(
            "the registry {} has no live version yet: run the daemon or `driftd init` first",
            policy.registry.dir.display()
        );
    };
    let (meta, live) = registry.load_model(live_version)?;
    let manifest = ingest::Manifest::load(&policy.state.dir.join("manifest.json"))?;
    let schema = ingest::Schema::of_version(&meta, policy);
    let (old, new) = ingest::rows_from_manifest(
        &policy.data.dir,
        &manifest,
        &schema,
        ingest::RereadLimits {
            last_seq: meta.data.last_seq,
            max_old: policy.update.reservoir_rows,
            max_new: policy.update.max_new_rows,
            follow_symlinks: policy.data.follow_symlinks,
        },
    );
    let list: Vec<StrategyName> = if only.is_empty() {
        policy.update.candidates.clone()
    } else {
        only.to_vec()
    };
    tch::set_num_threads(policy.training.threads as i32);
    let seed = update::tournament_seed(policy, live_version);
    let lineage = update::lineage_for(policy, &registry, &meta);
    let data = UpdateData { old, new, lineage };
    tracing::info!(
        event = "update_started",
        trigger = "manual",
        new_rows = data.new.len(),
        old_rows = data.old.len(),
        "manual update of version {live_version}: {} candidates on {} new and {} old rows",
        list.len(),
        data.new.len(),
        data.old.len()
    );
    let epochs = list
        .iter()
        .map(|&s| crate::progress::candidate_epochs(policy, s))
        .sum();
    let t = crate::progress::with_epoch_progress("update", epochs, || {
        update::run_tournament(policy, &live, &data, &list, seed)
    })?;
    update::log_candidates(&t);
    let board = update::leaderboard_of(&t);
    let mut promoted = None;
    if let (Some(i), false) = (t.winner, dry_run) {
        let built = t.candidates[i]
            .outcome
            .as_ref()
            .expect("the winner trained");
        let meta = update::promote_version(
            &registry,
            policy,
            Some(live_version),
            &built.model,
            Promotion {
                made_by: MadeBy::Strategy(t.candidates[i].strategy),
                trigger: "manual".into(),
                features: meta.features.clone(),
                holdout: built.scores,
                live_holdout: Some(t.live),
                report: built.report.clone(),
                leaderboard: board.clone(),
                data: DataSummary {
                    train_rows: t.promoted_train_rows(),
                    holdout_rows: t.holdout_rows,
                    first_file: None,
                    last_file: manifest.ingested_in_order().last().map(|(n, _)| n.clone()),
                    last_seq: manifest.next_seq,
                },
                input_profile: Some(crate::input_drift::InputProfile::from_dataset(
                    &data.new,
                    &meta.features,
                )),
                files: None,
            },
        )?;
        promoted = Some(meta.version);
    } else if t.winner.is_none() {
        tracing::info!(event = "update_rejected", trigger = "manual", reason = %t.decision, "no candidate promoted: {}", t.decision);
    }
    if json {
        print_json(&t, &board, live_version, dry_run, promoted)?;
        return Ok(());
    }
    print_leaderboard(&t, &board, live_version, dry_run, promoted);
    Ok(())
}

/// The leaderboard and the decision as JSON.
fn print_json(
    t: &Tournament,
    board: &[CandidateScore],
    live_version: u64,
    dry_run: bool,
    promoted: Option<u64>,
) -> Result<()> {
    let v = serde_json::json!({
        "live_version": live_version,
        "holdout_rows": t.holdout_rows,
        "train_rows": t.train_rows,
        "old_rows": t.old_rows,
        "metric": t.metric,
        "live": t.live,
        "leaderboard": board,
        "decision": t.decision,
        "dry_run": dry_run,
        "promoted": promoted,
    });
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// The leaderboard as a table, then the decision and what was promoted.
fn print_leaderboard(
    t: &Tournament,
    board: &[CandidateScore],
    live_version: u64,
    dry_run: bool,
    promoted: Option<u64>,
) {
    println!(
        "leaderboard ({} holdout rows, newest; {} new and {} old training rows):",
        t.holdout_rows, t.train_rows, t.old_rows
    );
    println!(
        "  {:<14} {:>8} {:>8} {:>8} {:>8}",
        "candidate", "accuracy", "log loss", "auc", "seconds"
    );
    println!(
        "  {:<14} {:>8.4} {:>8.4} {:>8} {:>8}",
        format!("live (v{live_version})"),
        t.live.accuracy,
        t.live.log_loss,
        fmt_opt(t.live.auc),
        ""
    );
    for c in board {
        match &c.scores {
            Some(s) => println!(
                "  {:<14} {:>8.4} {:>8.4} {:>8} {:>8.2}{}",
                c.strategy,
                s.accuracy,
                s.log_loss,
                fmt_opt(s.auc),
                c.train_seconds,
                if c.promoted { "  <- winner" } else { "" }
            ),
            None => println!(
                "  {:<14} failed: {}",
                c.strategy,
                c.error.as_deref().unwrap_or("?")
            ),
        }
    }
    println!("decision: {}", t.decision);
    match (promoted, dry_run) {
        (Some(v), _) => println!("promoted: version {v} is live"),
        (None, true) => println!("dry run: nothing promoted"),
        (None, false) => println!("nothing promoted"),
    }
}
