//! Update strategies and the candidate tournament.
//!
//! Boundary: takes the live classifier and a snapshot of the rows (old = the
//! bounded sample the previous versions learned from, new = rows since the
//! live version, oldest first) and returns a leaderboard plus, at most, one
//! winner. The tournament never writes anything; `promote` writes the winner as a
//! version (the daemon's, the backtest's and `driftd update`'s one way).
//!
//! Files: `strategies` (how each strategy builds its candidate), `sampling`
//! (the sample and instance weights it trains on), `candidate` (building and
//! scoring one, with the fine-tuning rate grid), `holdout` (the split),
//! `jobs` (running every candidate), `tournament`, `promotion` (the rule
//! that picks the winner) and `evidence` (the paired comparison it and
//! probation use); and the rules the daemon and the backtest share:
//! `buffers` (new rows and the reservoir of old ones), `rules` (which rows
//! an update trains on, which strategies run, the monitors of a version),
//! `probation` (keep or roll back a promotion), `promote`, and `online`
//! (the challenger continued on every batch, `[update.online]`).

pub mod buffers;
mod candidate;
pub mod evidence;
mod holdout;
mod jobs;
mod lineage;
pub mod online;
pub mod probation;
mod promote;
mod promotion;
pub mod rules;
mod sampling;
mod strategies;
#[cfg(test)]
mod test_fixtures;
mod tournament;

/// Defined with the policy (`update.candidates`), which must not depend on
/// this module; re-exported so `crate::update::StrategyName` keeps working.
pub use crate::config::StrategyName;

pub use candidate::{run_candidate, score_on, Built, Candidate, CandidateError};
pub use evidence::{PairedDifference, RowResults};
pub use holdout::split_holdout;
pub use jobs::{concurrent_trainings, run_candidates};
pub use promotion::metric_value;
pub use strategies::{build_candidate, fit_fresh, fit_fresh_for, FreshRows, FRESH_SEED_OFFSET};
pub use tournament::{run_tournament, FinalFit, Tournament, UpdateData, UpdateError};

pub use buffers::{NewRows, Reservoir};
pub use lineage::{lineage_for, tournament_seed};
pub use online::{
    anchor_for, anchor_version, Anchor, OnlineLearner, OnlinePromotion, Verdict, ONLINE_STRATEGY,
};
pub use probation::{probation_count, probation_holds, rollback_reason, Probation};
pub use promote::{
    ingested_files, leaderboard_of, log_candidates, promote_version, train_first_version, MadeBy,
    Promotion,
};
pub use rules::{
    buffer_new_rows, consume_trained, input_alert, monitors_for, outcomes_of, reservoir_of,
    strategies_for, update_rows, UpdateRows,
};
