//! Update strategies and the candidate tournament.
//!
//! Boundary: takes the live classifier and a snapshot of the rows (old = the
//! bounded sample the previous versions learned from, new = rows since the
//! live version, oldest first) and returns a leaderboard plus, at most, one
//! winner. It never writes anything: promotion is the daemon's job.
//!
//! Files: `strategies` (how each strategy builds its candidate), `sampling`
//! (the sample and instance weights it trains on), `candidate` (building and
//! scoring one, with the fine-tuning rate grid), `holdout` (the split),
//! `jobs` (running every candidate), `tournament` and `promotion` (the rule
//! that picks the winner).

mod candidate;
mod holdout;
mod jobs;
mod promotion;
mod sampling;
mod strategies;
#[cfg(test)]
mod test_fixtures;
mod tournament;

/// Defined with the policy (`update.candidates`), which must not depend on
/// this module; re-exported so `crate::update::StrategyName` keeps working.
pub use crate::config::StrategyName;

pub use candidate::{run_candidate, score_on, Built, Candidate};
pub use holdout::split_holdout;
pub use jobs::{concurrent_trainings, run_candidates};
pub use promotion::metric_value;
pub use strategies::{build_candidate, fit_fresh, fit_fresh_for, FreshRows, FRESH_SEED_OFFSET};
pub use tournament::{run_tournament, Tournament, UpdateData, UpdateError};
