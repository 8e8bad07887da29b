//! `[schedule]`: the cron trigger of scheduled updates.

use croner::parser::{CronParser, Seconds};
use croner::Cron;
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

/// Parses a cron expression exactly as tokio-cron-scheduler does, but keeps
/// croner's message (the scheduler only says "parse error").
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    if expr.split_whitespace().count() < 6 {
        return Err(format!(
            "{expr:?} has {} fields; expected 6 or 7 (seconds first), e.g. \"0 0 3 * * Mon\"",
            expr.split_whitespace().count()
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression {expr:?}: {e}"))
}
