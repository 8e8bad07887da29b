//! `[schedule]`: the cron trigger of scheduled updates.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub enabled: bool,
    /// Six-field cron (seconds first).
    pub cron: String,
    pub timezone: String,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            enabled: true,
            cron: "0 0 3 * * Mon".into(),
            timezone: "UTC".into(),
        }
    }
}
