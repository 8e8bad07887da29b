//! The names of the update strategies, as the policy (`update.candidates`)
//! and the CLI spell them. Here rather than in `crate::update` so that the
//! policy does not depend on the code that runs the strategies.

use serde::{Deserialize, Serialize};

/// The update strategies of the tutorial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum StrategyName {
    /// Keep the live model (the baseline every candidate must beat).
    None,
    /// Continue training the live model on new rows at the fine-tuning rate.
    ContinueNew,
    /// Continue training the live model on old + new rows at the fine-tuning rate.
    ContinueAll,
    /// Fit a fresh model on new rows only.
    RefitNew,
    /// Fit a fresh model on old + new rows.
    RefitAll,
    /// Average the live model with a fresh model fit on new rows.
    EnsembleNew,
    /// Average the live model with a fresh model fit on old + new rows.
    EnsembleAll,
    /// Freeze the live model's hidden layers, train new layers on top.
    Graft,
}

impl StrategyName {
    pub const ALL_RETRAINING: [StrategyName; 7] = [
        StrategyName::ContinueNew,
        StrategyName::ContinueAll,
        StrategyName::RefitNew,
        StrategyName::RefitAll,
        StrategyName::EnsembleNew,
        StrategyName::EnsembleAll,
        StrategyName::Graft,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyName::None => "none",
            StrategyName::ContinueNew => "continue_new",
            StrategyName::ContinueAll => "continue_all",
            StrategyName::RefitNew => "refit_new",
            StrategyName::RefitAll => "refit_all",
            StrategyName::EnsembleNew => "ensemble_new",
            StrategyName::EnsembleAll => "ensemble_all",
            StrategyName::Graft => "graft",
        }
    }
}

impl std::fmt::Display for StrategyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_match_the_policy_spelling() {
        let json = serde_json::to_string(&StrategyName::ContinueAll).unwrap();
        assert_eq!(json, "\"continue_all\"");
        assert_eq!(StrategyName::EnsembleNew.to_string(), "ensemble_new");
    }
}
