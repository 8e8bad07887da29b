//! What a new version inherits: the older versions an ensemble may keep as
//! members, and the seed of its tournament. One rule for the daemon, the
//! backtest and `driftd update`.

use crate::config::{EnsembleMembers, Policy};
use crate::model::Mlp;
use crate::registry::{Registry, VersionMeta};

/// The live version's ancestors an `ensemble_*` candidate may keep
/// (`update.ensemble.members = "last_versions"`: up to `max_members - 2`,
/// the live model and the new one taking the other two places).
pub fn lineage_for(policy: &Policy, registry: &Registry, live: &VersionMeta) -> Vec<Mlp> {
    match policy.update.ensemble.members {
        EnsembleMembers::LastVersions => {
            registry.lineage(live, policy.update.ensemble.max_members.saturating_sub(2))
        }
        EnsembleMembers::Grow => Vec::new(),
    }
}

/// The seed of the tournament that may replace `live_version`: the policy's
/// training seed moved on by the version, so that every update draws anew
/// and a replay draws the same.
pub fn tournament_seed(policy: &Policy, live_version: u64) -> u64 {
    policy.training.seed.wrapping_add(live_version)
}
