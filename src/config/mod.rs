//! The policy file: parsed once, validated completely, then handed around as
//! typed values.
//!
//! Parsing is done in two passes so that *every* mistake is reported at once
//! (Vector-style) with the file, line and column (ripgrep-style):
//!
//! 1. the TOML is parsed into a span-carrying tree (`toml::de::DeTable`);
//! 2. each key of each section is deserialized on its own, so one wrong type
//!    or unknown key does not hide the next; keys that fail are dropped and
//!    the section is deserialized from the keys that remain;
//! 3. the typed policy is checked for impossible values, and every finding is
//!    mapped back to the span of the key that caused it.
//!
//! Files: `policy` (the whole policy) and one file per section (`data`,
//! `model`, `training`, `monitor`, `schedule`, `update`, `service`);
//! `parse` (passes 1 and 2), `validate` (pass 3), `diagnostics` (where each
//! problem is); `notes` (what check-config adds about a valid policy:
//! defaulted directories, a missing data directory); `strategy_name`, `glob`
//! and `example` (the example policy).

mod data;
mod diagnostics;
mod example;
mod glob;
mod model;
mod monitor;
mod notes;
mod parse;
mod policy;
mod schedule;
mod service;
mod strategy_name;
mod training;
mod update;
mod validate;

pub use data::{BadRows, DataConfig, FeatureSpec, ServedProbability};
pub use diagnostics::{ConfigError, Diagnostic};
pub use example::EXAMPLE_POLICY;
pub use glob::glob_match;
pub use model::{Activation, Init, ModelConfig};
pub use monitor::{InputDriftConfig, MonitorConfig};
pub use notes::{notes, Notes};
pub use policy::Policy;
pub use schedule::{parse_cron, CronError, ScheduleConfig};
pub use service::{LogConfig, MetricsConfig, RegistryConfig, ServiceConfig, StateConfig};
pub use strategy_name::StrategyName;
pub use training::{EarlyStopping, OptimizerKind, TrainingConfig};
pub use update::{
    EnsembleConfig, EnsembleMembers, FineTuneConfig, GraftConfig, GraftData, Metric, OnlineConfig,
    RollbackConfig, SampleConfig, UpdateConfig, WeightingConfig, WeightingKind,
};
