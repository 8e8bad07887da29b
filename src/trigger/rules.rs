//! The pure trigger rules the daemon and the backtest share: merging a
//! trigger into the pending update, and when an automatic one is suppressed.

use std::time::Duration;

use crate::config::Policy;
use crate::status::TriggerKind;

/// An update waiting to start.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub(crate) kind: TriggerKind,
    /// Train on rows from this global row number on (drift: the alert).
    pub(crate) from_row: Option<u64>,
}

/// Merges a trigger into the pending update; returns whether one was
/// already pending (coalesced).
pub fn coalesce(pending: &mut Option<Pending>, p: Pending) -> bool {
    match pending {
        Some(existing) => {
            // A drift trigger is more specific about which rows to use.
            if p.kind == TriggerKind::Drift {
                *existing = p;
            }
            true
        }
        None => {
            *pending = Some(p);
            false
        }
    }
}

/// The continual update due after `rows_total` rows, when `update.every_rows`
/// new rows arrived since `since_row` (where the last update's rows ended):
/// it trains on those rows as its new rows.
pub fn continual_due(policy: &Policy, rows_total: u64, since_row: u64) -> Option<Pending> {
    let every = policy.update.every_rows;
    (every > 0 && rows_total.saturating_sub(since_row) >= every).then_some(Pending {
        kind: TriggerKind::Continual,
        from_row: Some(since_row),
    })
}

/// Whether an update of `kind` waits until the files already in the data
/// directory are read (a backlog after downtime, or files landing at once):
/// a scheduled or continual update is about the rows that have arrived, so
/// it trains on the newest of them rather than on the first of a backlog,
/// and does not take a core from the catch-up. A drift update starts at
/// once: its rows are the ones after the alert.
pub fn waits_for_backlog(kind: TriggerKind) -> bool {
    matches!(kind, TriggerKind::Schedule | TriggerKind::Continual)
}

/// Why an automatic trigger must not start an update: the cooldown after
/// the last update (`since_last_end`) or the daily cap (`starts_last_day`
/// updates started in the last 24 hours).
pub fn suppression(
    policy: &Policy,
    since_last_end: Option<Duration>,
    starts_last_day: usize,
) -> Option<String> {
    let cooldown = Duration::from_secs(policy.update.cooldown_seconds);
    if since_last_end.is_some_and(|d| d < cooldown) {
        return Some(format!(
            "in the cooldown of {}s after the last update",
            cooldown.as_secs()
        ));
    }
    let cap = policy.update.max_updates_per_day;
    if starts_last_day >= cap {
        return Some(format!("{cap} updates already ran in the last 24 hours"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift(from_row: u64) -> Pending {
        Pending {
            kind: TriggerKind::Drift,
            from_row: Some(from_row),
        }
    }

    fn plain(kind: TriggerKind) -> Pending {
        Pending {
            kind,
            from_row: None,
        }
    }

    #[test]
    fn scheduled_and_continual_updates_wait_for_a_backlog_and_the_others_do_not() {
        assert!(waits_for_backlog(TriggerKind::Schedule));
        assert!(waits_for_backlog(TriggerKind::Continual));
        assert!(!waits_for_backlog(TriggerKind::Drift));
        assert!(!waits_for_backlog(TriggerKind::Manual));
    }

    #[test]
    fn a_continual_update_is_due_every_n_rows_from_the_last_one() {
        let mut policy = Policy::default();
        assert!(
            continual_due(&policy, 1_000_000, 0).is_none(),
            "off by default"
        );
        policy.update.every_rows = 2000;
        assert!(continual_due(&policy, 1999, 0).is_none());
        let p = continual_due(&policy, 2000, 0).expect("due");
        assert_eq!((p.kind, p.from_row), (TriggerKind::Continual, Some(0)));
        // Counted from where the last update's rows ended.
        assert!(continual_due(&policy, 5000, 3500).is_none());
        assert_eq!(
            continual_due(&policy, 5500, 3500).unwrap().from_row,
            Some(3500)
        );
    }

    #[test]
    fn a_first_trigger_becomes_the_pending_update() {
        let mut pending = None;
        assert!(!coalesce(&mut pending, plain(TriggerKind::Schedule)));
        let p = pending.expect("pending");
        assert_eq!(p.kind, TriggerKind::Schedule);
        assert_eq!(p.from_row, None);
    }

    #[test]
    fn a_drift_replaces_a_pending_schedule_or_manual_update() {
        for kind in [TriggerKind::Schedule, TriggerKind::Manual] {
            let mut pending = Some(plain(kind));
            assert!(coalesce(&mut pending, drift(700)));
            let p = pending.unwrap();
            assert_eq!(p.kind, TriggerKind::Drift, "over {kind:?}");
            assert_eq!(p.from_row, Some(700));
        }
    }

    #[test]
    fn a_schedule_or_manual_trigger_keeps_a_pending_drift_and_its_rows() {
        for kind in [TriggerKind::Schedule, TriggerKind::Manual] {
            let mut pending = Some(drift(700));
            assert!(coalesce(&mut pending, plain(kind)));
            let p = pending.unwrap();
            assert_eq!(p.kind, TriggerKind::Drift, "{kind:?} joined it");
            assert_eq!(p.from_row, Some(700));
        }
    }

    #[test]
    fn a_later_drift_moves_the_rows_to_its_alert() {
        let mut pending = Some(drift(700));
        assert!(coalesce(&mut pending, drift(900)));
        assert_eq!(pending.unwrap().from_row, Some(900));
    }

    #[test]
    fn non_drift_triggers_keep_the_first_kind() {
        let mut pending = Some(plain(TriggerKind::Manual));
        assert!(coalesce(&mut pending, plain(TriggerKind::Schedule)));
        assert_eq!(pending.unwrap().kind, TriggerKind::Manual);
    }

    fn policy(cooldown_seconds: u64, max_updates_per_day: usize) -> Policy {
        let mut p = Policy::default();
        p.update.cooldown_seconds = cooldown_seconds;
        p.update.max_updates_per_day = max_updates_per_day;
        p
    }

    #[test]
    fn nothing_suppresses_a_first_update() {
        assert_eq!(suppression(&policy(600, 24), None, 0), None);
    }

    #[test]
    fn the_cooldown_suppresses_until_it_has_passed() {
        let p = policy(600, 24);
        let reason = suppression(&p, Some(Duration::from_secs(599)), 1);
        assert_eq!(
            reason.as_deref(),
            Some("in the cooldown of 600s after the last update")
        );
        // The cooldown is over at exactly `cooldown_seconds`.
        assert_eq!(suppression(&p, Some(Duration::from_secs(600)), 1), None);
        // No cooldown at all when it is 0.
        assert_eq!(suppression(&policy(0, 24), Some(Duration::ZERO), 1), None);
    }

    #[test]
    fn the_daily_cap_suppresses_once_reached() {
        let p = policy(600, 3);
        let long_ago = Some(Duration::from_secs(3600));
        assert_eq!(suppression(&p, long_ago, 2), None);
        assert_eq!(
            suppression(&p, long_ago, 3).as_deref(),
            Some("3 updates already ran in the last 24 hours")
        );
        assert!(suppression(&p, long_ago, 4).is_some());
        // No last update yet does not lift the cap.
        assert!(suppression(&p, None, 3).is_some());
    }

    #[test]
    fn the_cooldown_is_named_before_the_cap() {
        let reason = suppression(&policy(600, 1), Some(Duration::from_secs(1)), 5);
        assert_eq!(
            reason.as_deref(),
            Some("in the cooldown of 600s after the last update")
        );
    }
}
