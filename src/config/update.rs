//! `[update]`: the candidate strategies, their settings, and the rules a
//! candidate must pass to be promoted (and stay promoted).

use serde::{Deserialize, Serialize};

use super::StrategyName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FineTuneConfig {
    pub learning_rate: f64,
    pub epochs: usize,
    /// When not empty, each rate is tried and the best on the holdout kept
    /// (the tutorial's advice: find a fine-tuning rate that beats a refit).
    pub lr_grid: Vec<f64>,
}

impl Default for FineTuneConfig {
    fn default() -> Self {
        FineTuneConfig {
            learning_rate: 0.001,
            epochs: 100,
            lr_grid: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleMembers {
    /// The live model's members plus the fresh model.
    Grow,
    /// The newest member of each of the last versions in the live model's
    /// lineage (itself, its parent, ...) plus the fresh model.
    LastVersions,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnsembleConfig {
    /// At most this many members; the oldest is dropped beyond it.
    pub max_members: usize,
    pub members: EnsembleMembers,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            max_members: 2,
            members: EnsembleMembers::Grow,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraftData {
    New,
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraftConfig {
    /// Widths of the trainable layers added on top of the frozen hidden
    /// layers (before a new output layer).
    pub hidden: Vec<i64>,
    /// Train the new layers on new rows only or on old + new rows.
    pub data: GraftData,
    /// Defaults to training.learning_rate.
    pub learning_rate: Option<f64>,
    /// Defaults to training.epochs.
    pub epochs: Option<usize>,
}

impl Default for GraftConfig {
    fn default() -> Self {
        GraftConfig {
            hidden: vec![10],
            data: GraftData::New,
            learning_rate: None,
            epochs: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SampleConfig {
    /// Train on this share of the rows (a seeded random subset).
    pub fraction: f64,
    /// And on at most this many rows (0: no cap).
    pub max_rows: usize,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            fraction: 1.0,
            max_rows: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightingKind {
    /// Every row counts the same.
    None,
    /// A row's weight halves every `half_life_rows` rows (or
    /// `half_life_seconds` of event time) back from the newest row.
    Recency,
    /// The data's weight column (`data.weight`).
    Column,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeightingConfig {
    pub kind: WeightingKind,
    pub half_life_rows: f64,
    /// When set, recency is measured in event time (`data.timestamp`)
    /// instead of rows.
    pub half_life_seconds: Option<f64>,
}

impl Default for WeightingConfig {
    fn default() -> Self {
        WeightingConfig {
            kind: WeightingKind::None,
            half_life_rows: 1000.0,
            half_life_seconds: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    LogLoss,
    Auc,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::LogLoss => "log_loss",
            Metric::Auc => "auc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateConfig {
    pub candidates: Vec<StrategyName>,
    /// Settings of the fine-tuning strategies (`continue_*`).
    pub fine_tune: FineTuneConfig,
    pub ensemble: EnsembleConfig,
    pub graft: GraftConfig,
    /// Train every retraining strategy on a sample of its rows.
    pub sample: SampleConfig,
    /// Per-row instance weights in the loss.
    pub weighting: WeightingConfig,
    /// The metric candidates are ranked and promoted on.
    pub metric: Metric,
    /// Share of the newest rows held out for scoring candidates.
    pub holdout_fraction: f64,
    /// No promotion is decided on fewer holdout rows than this.
    pub min_holdout_rows: usize,
    /// A candidate must beat the live model on `metric` by more than this.
    pub min_improvement: f64,
    /// The one-sided confidence that a promoted candidate beats the live
    /// model by more than `min_improvement`, measured paired on the holdout
    /// and split over the candidates; probation rolls back on the same
    /// confidence. 0.5 asks for no evidence beyond the point estimates.
    pub confidence: f64,
    /// The winner is trained again with the holdout rows before it goes
    /// live, so a version learns from the newest rows too.
    pub train_on_holdout: bool,
    /// A continual update every this many new rows (0: none): the tutorial's
    /// "more data" as it arrives, promoted only on the same evidence.
    pub every_rows: u64,
    /// After a drift alert, wait for this many rows past the drift before
    /// training, so the candidates see the new concept.
    pub min_new_rows: usize,
    /// At most this many of the newest rows since the live version are kept.
    pub max_new_rows: usize,
    /// Bounded uniform sample of the rows older models were trained on.
    pub reservoir_rows: usize,
    /// After an update, drift and schedule triggers wait this long.
    pub cooldown_seconds: u64,
    /// At most this many automatic updates start in any 24 hours.
    pub max_updates_per_day: usize,
    /// Automatic rollback of a promotion that scores worse live.
    pub rollback: RollbackConfig,
    /// The online challenger: the live model continued on every file.
    pub online: OnlineConfig,
}

/// `[update.online]`: a copy of the live model that continues training on
/// every batch of rows as it arrives (the tutorial's "continue training
/// with a small learning rate"), scored against the live model on each
/// batch before it learns it. Promoted once it leads beyond the noise;
/// from then on the newest copy is promoted after every batch while the
/// versions it produced are not worse than the version it started from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnlineConfig {
    pub enabled: bool,
    pub learning_rate: f64,
    /// Passes over the training window per batch.
    pub epochs: usize,
    /// Each step trains on the newest this many rows: the batch's (its
    /// newest ones when it is larger) and earlier ones when it is smaller.
    pub window_rows: usize,
    /// Paired rows before the challenger may be promoted, or the versions
    /// it produced rolled back.
    pub min_rows: usize,
    /// While following, a new version at most every this many rows (0:
    /// after every batch).
    pub promote_every_rows: u64,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        OnlineConfig {
            enabled: false,
            learning_rate: 0.01,
            epochs: 3,
            window_rows: 1000,
            min_rows: 200,
            promote_every_rows: 0,
        }
    }
}

/// `[update.rollback]`: after a promotion the new version is on probation
/// for `watch_rows` rows, which the previous version scores too; if the
/// previous version is more accurate on them by more than `margin` (with
/// `update.confidence`, paired on the same rows), the daemon makes it live
/// again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RollbackConfig {
    pub enabled: bool,
    pub watch_rows: u64,
    pub margin: f64,
}

impl Default for RollbackConfig {
    fn default() -> Self {
        RollbackConfig {
            enabled: true,
            watch_rows: 1000,
            margin: 0.05,
        }
    }
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            candidates: StrategyName::ALL_RETRAINING.to_vec(),
            fine_tune: FineTuneConfig::default(),
            ensemble: EnsembleConfig::default(),
            graft: GraftConfig::default(),
            sample: SampleConfig::default(),
            weighting: WeightingConfig::default(),
            metric: Metric::Accuracy,
            holdout_fraction: 0.2,
            min_holdout_rows: 50,
            min_improvement: 0.0,
            confidence: 0.95,
            train_on_holdout: false,
            every_rows: 0,
            min_new_rows: 500,
            max_new_rows: 100_000,
            reservoir_rows: 20_000,
            cooldown_seconds: 600,
            max_updates_per_day: 24,
            rollback: RollbackConfig::default(),
            online: OnlineConfig::default(),
        }
    }
}
