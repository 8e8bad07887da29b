//! Triggers: schedule fires (caught up after downtime, ignored after the
//! clock went back), manual requests, and the pending update they request.

use std::time::Duration;

use chrono::Utc;
use tracing::{debug, info, warn};

use super::schedule;
use super::state::Daemon;
use super::{Pending, Trigger, TriggerKind};
use crate::trigger::{coalesce, continual_due, suppression};

impl Daemon {
    fn record_fire(&self, at: chrono::DateTime<Utc>) {
        let state = schedule::ScheduleState { last_fire: at };
        if let Err(e) = state.save(&self.policy.state.dir) {
            warn!(error = %e, "cannot persist the schedule state; a fire missed while down may run again");
        }
    }

    /// A fire missed while the daemon was down runs once now. On a first
    /// start there is nothing to catch up: the schedule starts from now.
    pub(super) fn catch_up_schedule(&mut self) {
        let now = self.clock.now();
        let Some(state) = schedule::ScheduleState::load(&self.policy.state.dir) else {
            self.record_fire(now);
            return;
        };
        if let Some(missed) = schedule::missed_fire(&self.policy.schedule, state.last_fire, now) {
            info!(
                event = "schedule_fired",
                scheduled = %missed,
                actual = %now,
                "the update scheduled for {missed} was missed while driftd was down; running it now"
            );
            self.record_fire(now);
            self.request(Pending {
                kind: TriggerKind::Schedule,
                from_row: None,
            });
        }
    }

    pub(super) fn on_trigger(&mut self, trigger: Trigger) {
        let kind = match trigger {
            Trigger::Schedule => {
                let now = self.clock.now();
                let scheduled = schedule::latest_fire(&self.policy.schedule, now).unwrap_or(now);
                // After the wall clock went back, the scheduler meets
                // occurrences that already ran: they do not run again. A
                // last fire more than a day ahead of the clock is not
                // trusted (a clock that was wrong, then fixed): the
                // schedule must not stay silent until then.
                let taken = schedule::ScheduleState::load(&self.policy.state.dir)
                    .filter(|s| s.last_fire - now <= chrono::Duration::days(1))
                    .and_then(|s| {
                        schedule::latest_fire(&self.policy.schedule, s.last_fire)
                            .zip(Some(s.last_fire))
                    });
                if let Some((taken, last_fire)) = taken.filter(|(t, _)| scheduled <= *t) {
                    warn!(
                        scheduled = %scheduled,
                        actual = %now,
                        last_fire = %last_fire,
                        "schedule fire ignored: the occurrence at {scheduled} already ran (the last fire, for {taken}, was taken at {last_fire}); the clock went back"
                    );
                    return;
                }
                info!(event = "schedule_fired", scheduled = %scheduled, actual = %now, "the update scheduled for {scheduled} fired");
                self.record_fire(now);
                TriggerKind::Schedule
            }
            Trigger::Manual => TriggerKind::Manual,
        };
        self.request(Pending {
            kind,
            from_row: None,
        });
    }

    /// Asks for a continual update once `update.every_rows` new rows are in
    /// since the last update (nothing while one is pending or running: it
    /// will take those rows).
    pub(super) fn request_continual(&mut self) {
        if self.pending.is_some() || self.running.is_some() || self.live.is_none() {
            return;
        }
        let since = self
            .continual_from
            .or(self.new_rows.as_ref().map(|n| n.first))
            .unwrap_or(self.rows_total);
        if let Some(p) = continual_due(&self.policy, self.rows_total, since) {
            self.request(p);
        }
    }

    /// Coalesces triggers: at most one update waits behind a running one.
    pub(super) fn request(&mut self, p: Pending) {
        self.status.triggers += 1;
        if let Some(reason) = self.suppressed(p.kind) {
            self.status.triggers_suppressed += 1;
            debug!(trigger = p.kind.as_str(), reason = %reason, "update trigger suppressed: {reason}");
            return;
        }
        if coalesce(&mut self.pending, p) {
            self.status.triggers_coalesced += 1;
            debug!(
                trigger = p.kind.as_str(),
                "an update is already pending; coalescing"
            );
        }
        self.status.update_pending = true;
    }

    /// Why an automatic trigger must not start an update now (a manual
    /// request is an operator's decision and is never suppressed).
    fn suppressed(&mut self, kind: TriggerKind) -> Option<String> {
        if kind == TriggerKind::Manual {
            return None;
        }
        let now = tokio::time::Instant::now();
        let day = Duration::from_secs(24 * 3600);
        self.update_starts.retain(|t| now.duration_since(*t) < day);
        let since_last_end = self.last_update_end.map(|last| now.duration_since(last));
        suppression(&self.policy, since_last_end, self.update_starts.len())
    }
}
