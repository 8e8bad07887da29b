//! `driftd compare`: the tutorial's experiment on your files (train on
//! OLD, update with NEW by each strategy, score on TEST, over several
//! seeds).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::load_policy;
use crate::logging::{self, LogFormat};
use crate::update::StrategyName;

pub(super) fn run(
    format: LogFormat,
    config: &Path,
    files: crate::compare::Files,
    strategies: &[StrategyName],
    repeats: u64,
    json: bool,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    let listed: Vec<StrategyName> = if strategies.is_empty() {
        StrategyName::ALL_RETRAINING.to_vec()
    } else {
        strategies.to_vec()
    };
    // Per seed: the base model, then every strategy.
    let per_seed: u64 = policy.training.epochs as u64
        + listed
            .iter()
            .map(|&s| crate::progress::candidate_epochs(&policy, s))
            .sum::<u64>();
    let rows = crate::progress::with_epoch_progress("compare", per_seed * repeats.max(1), || {
        crate::compare::run(&policy, &files, strategies, repeats)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", crate::compare::render(&rows, repeats));
    }
    Ok(ExitCode::SUCCESS)
}
