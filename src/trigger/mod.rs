//! Triggers: when an update is asked for. The weekly schedule (cron, with
//! the clock the daemon reads wall time through) and the rules that decide
//! whether a request runs now, waits, or is coalesced into a pending one,
//! and when a continual update (every `update.every_rows` rows) is due.
//! The daemon and the backtest both apply them.

pub mod rules;
pub mod schedule;

pub use rules::{coalesce, continual_due, suppression, waits_for_backlog, Pending};
pub use schedule::Clock;
