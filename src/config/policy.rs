//! The typed policy as a whole (one field per section of the policy file),
//! and what the rest of the daemon asks of it (paths, feature columns).

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{
    glob_match, DataConfig, FeatureSpec, LogConfig, MetricsConfig, ModelConfig, MonitorConfig,
    RegistryConfig, ScheduleConfig, ServiceConfig, StateConfig, TrainingConfig, UpdateConfig,
};

// ---------------------------------------------------------------------------
// The typed policy. Every section has defaults so that a minimal file works;
// unknown keys are rejected (`deny_unknown_fields`).
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    pub data: DataConfig,
    pub model: ModelConfig,
    pub training: TrainingConfig,
    pub monitor: MonitorConfig,
    pub schedule: ScheduleConfig,
    pub update: UpdateConfig,
    pub registry: RegistryConfig,
    pub state: StateConfig,
    pub log: LogConfig,
    pub service: ServiceConfig,
    pub metrics: MetricsConfig,
}

impl Policy {
    /// Makes relative directories absolute against `base` (the policy file's
    /// directory), so the daemon does not depend on its working directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        for dir in [
            &mut self.data.dir,
            &mut self.registry.dir,
            &mut self.state.dir,
        ] {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }

    /// The feature column names this policy selects from a file's columns.
    pub fn select_features(&self, columns: &[String]) -> Vec<String> {
        match &self.data.features {
            FeatureSpec::List(list) => list.clone(),
            FeatureSpec::Pattern(p) => columns
                .iter()
                .filter(|c| {
                    glob_match(p, c)
                        && **c != self.data.label
                        && Some(*c) != self.data.timestamp.as_ref()
                        && Some(*c) != self.data.weight.as_ref()
                        && Some(*c) != self.data.row_id.as_ref()
                        && Some(*c) != self.data.prediction.as_ref()
                        && !self
                            .data
                            .probability
                            .as_ref()
                            .is_some_and(|p| p.columns().contains(c))
                        && !self.data.exclude.contains(c)
                })
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_pattern_selects_columns() {
        let p = Policy::parse("[data]\nfeatures = \"f*\"\nexclude = [\"f_id\"]\n").unwrap();
        let cols: Vec<String> = ["f0", "f1", "f_id", "label", "g"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(p.select_features(&cols), vec!["f0", "f1"]);
    }
}
