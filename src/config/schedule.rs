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

/// Why a `schedule.cron` expression is not a schedule.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    #[error(
        "{expr:?} has {fields} fields; expected 6 or 7 (seconds first), e.g. \"0 0 3 * * Mon\""
    )]
    FieldCount { expr: String, fields: usize },
    /// croner refused the expression; its message says which field.
    #[error("invalid cron expression {expr:?}: {source}")]
    Invalid {
        expr: String,
        #[source]
        source: croner::errors::CronError,
    },
}

/// Parses a cron expression exactly as tokio-cron-scheduler does, but keeps
/// croner's message (the scheduler only says "parse error").
pub fn parse_cron(expr: &str) -> Result<Cron, CronError> {
    let fields = expr.split_whitespace().count();
    if fields < 6 {
        return Err(CronError::FieldCount {
            expr: expr.to_string(),
            fields,
        });
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|source| CronError::Invalid {
            expr: expr.to_string(),
            source,
        })
}
