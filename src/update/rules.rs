//! The pure update rules the daemon and the backtest share: which rows an
//! update trains on, the buffers' bookkeeping, the candidates, the monitors
//! of a new version and when input drift raises an alert.

use tracing::{debug, info};

use super::{NewRows, Reservoir};
use crate::config::Policy;
use crate::detect::Severity;
use crate::input_drift::{InputCheck, InputMonitor};
use crate::model::{self, Dataset};
use crate::monitor::{DriftAlert, Monitor, RowOutcome};
use crate::registry::VersionMeta;
use crate::status::TriggerKind;
use crate::trigger::Pending;
use crate::update::StrategyName;

/// Fresh monitors (error and input drift) for a version that goes live.
pub fn monitors_for(policy: &Policy, meta: &VersionMeta, inputs: usize) -> (Monitor, InputMonitor) {
    let monitor = Monitor::new(
        &policy.monitor,
        meta.architecture.classes,
        Some(meta.version),
        meta.holdout.map(|s| s.accuracy),
    );
    let input_monitor = InputMonitor::new(
        policy.monitor.input.clone(),
        meta.input_profile.clone(),
        inputs,
    );
    (monitor, input_monitor)
}

/// Per-row outcomes of a batch from the live model's class probabilities
/// (`classes` per row).
pub fn outcomes_of(data: &Dataset, probs: &[f32], classes: usize) -> Vec<RowOutcome> {
    data.labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let p = &probs[i * classes..(i + 1) * classes];
            RowOutcome {
                label: l as u32,
                predicted: model::predicted_class(p) as u32,
                p_label: p.get(l as usize).copied().unwrap_or(0.0),
                p_positive: p.get(1).copied().unwrap_or(0.0),
                time_us: data.times_us[i],
            }
        })
        .collect()
}

/// The reservoir of old rows, created on first use.
pub fn reservoir_of<'a>(
    reservoir: &'a mut Option<Reservoir>,
    policy: &Policy,
    width: usize,
) -> &'a mut Reservoir {
    let cap = policy.update.reservoir_rows;
    let seed = policy.training.seed;
    reservoir.get_or_insert_with(|| Reservoir::new(width, cap, seed))
}

/// Appends a scored batch (global rows from `first_new` on) to the rows
/// since the live version; beyond `update.max_new_rows` the oldest move to
/// the reservoir. Rows that would leave the buffer at once (a file larger
/// than the buffer) go to the reservoir without being buffered first.
pub fn buffer_new_rows(
    new_rows: &mut Option<NewRows>,
    reservoir: &mut Option<Reservoir>,
    policy: &Policy,
    data: &Dataset,
    first_new: u64,
) {
    let new_rows = new_rows.get_or_insert_with(|| NewRows {
        rows: Dataset::new(data.width),
        first: first_new,
    });
    let buffered = new_rows.rows.len();
    let over = (buffered + data.len()).saturating_sub(policy.update.max_new_rows);
    // The oldest `over` rows leave: buffered ones first, then the batch's.
    let from_buffer = over.min(buffered);
    let from_batch = over - from_buffer;
    if from_buffer > 0 {
        reservoir_of(reservoir, policy, data.width).add_rows(&new_rows.rows, 0..from_buffer);
        new_rows.drop_before(new_rows.first + from_buffer as u64);
    }
    if from_batch > 0 {
        reservoir_of(reservoir, policy, data.width).add_rows(data, 0..from_batch);
        new_rows.first += from_batch as u64;
    }
    new_rows.rows.extend_from_rows(data, from_batch, data.len());
}

/// After a promotion: the rows the new version was trained on (global rows
/// before `end_row`) become old rows.
pub fn consume_trained(
    new_rows: &mut Option<NewRows>,
    reservoir: &mut Option<Reservoir>,
    policy: &Policy,
    end_row: u64,
) {
    if let Some(new_rows) = new_rows {
        let consumed = new_rows.before(end_row);
        new_rows.drop_before(end_row);
        reservoir_of(reservoir, policy, consumed.width).add(&consumed);
    }
}

/// The rows an update would train on, or why it must wait.
pub enum UpdateRows {
    /// Fewer new rows than the trigger needs.
    Short { have: usize, needed: usize },
    /// `new`: rows since the trigger's start (drift: the alert); `old`: the
    /// reservoir plus rows since the version but before the drift;
    /// `end_row`: one past the last global row used.
    Ready {
        new: Dataset,
        old: Dataset,
        end_row: u64,
    },
}

/// What the daemon hands the trainer for `pending`: a drift waits for
/// `update.min_new_rows` rows past the alert, other triggers need enough
/// rows for `update.min_holdout_rows` holdout rows.
pub fn update_rows(
    policy: &Policy,
    new_rows: Option<&NewRows>,
    reservoir: Option<&Reservoir>,
    pending: Pending,
    rows_total: u64,
    width: usize,
) -> UpdateRows {
    let empty = NewRows {
        rows: Dataset::new(width),
        first: rows_total,
    };
    let new_rows = new_rows.unwrap_or(&empty);
    let from = pending.from_row.unwrap_or(new_rows.first);
    let new = new_rows.since(from);
    // Enough rows for the holdout the tournament insists on: a drift update
    // started with fewer failed every time (found by the soak).
    let for_holdout =
        (policy.update.min_holdout_rows as f64 / policy.update.holdout_fraction).ceil() as usize;
    let needed = match pending.kind {
        TriggerKind::Drift => policy.update.min_new_rows.max(for_holdout),
        _ => for_holdout,
    };
    if new.len() < needed {
        return UpdateRows::Short {
            have: new.len(),
            needed,
        };
    }
    let mut old = reservoir
        .map(|r| r.rows.clone())
        .unwrap_or_else(|| Dataset::new(new.width));
    // Rows since the version but before the drift belong to the old
    // concept: they join the old rows for the *_all strategies.
    old.extend(&new_rows.before(from));
    UpdateRows::Ready {
        new,
        old,
        end_row: new_rows.end(),
    }
}

/// The policy's candidates, minus the strategy whose last promotion was
/// rolled back.
pub fn strategies_for(policy: &Policy, excluded: Option<StrategyName>) -> Vec<StrategyName> {
    let mut strategies = policy.update.candidates.clone();
    if let Some(excluded) = excluded {
        strategies.retain(|s| *s != excluded);
        info!(
            strategy = excluded.as_str(),
            "{} is left out of this update: its last promotion was rolled back",
            excluded.as_str()
        );
    }
    strategies
}

/// One input-drift alert per episode: the episode ends at the first check
/// where no feature moved; while it lasts the alert is repeated every
/// `monitor.realert_after_rows` rows (if set). `episode` holds the rows the
/// monitor had seen at the episode's last alert.
pub fn input_alert(
    cfg: &crate::config::MonitorConfig,
    check: &InputCheck,
    episode: &mut Option<u64>,
    monitor: &Monitor,
    live_version: Option<u64>,
) -> Option<DriftAlert> {
    let top: Vec<_> = check
        .features
        .iter()
        .take(cfg.input.report_features.max(1))
        .cloned()
        .collect();
    let rows_seen = monitor.rows_seen();
    if check.moved == 0 {
        if episode.take().is_some() {
            info!(
                event = "drift_recovered",
                detector = "input",
                live_version = ?live_version,
                "no feature has moved over the last {} rows any more; input drift is re-armed",
                check.window
            );
        }
        return None;
    }
    let repeat = match *episode {
        None => 0,
        Some(last) if cfg.realert_after_rows > 0 && rows_seen - last >= cfg.realert_after_rows => 1,
        Some(last) => {
            debug!(
                detector = "input",
                moved = check.moved,
                rows_since_alert = rows_seen - last,
                "input alert suppressed: same drift episode"
            );
            return None;
        }
    };
    *episode = Some(rows_seen);
    let severity = if cfg.input.trigger_update {
        Severity::Drift
    } else {
        Severity::Warning
    };
    Some(DriftAlert {
        kind: "input".into(),
        detector: "input".into(),
        severity,
        metric: "psi".into(),
        baseline: monitor.baseline(),
        current: monitor.rolling_accuracy().unwrap_or(f64::NAN),
        estimated_error: top.first().map_or(0.0, |f| f.psi),
        window: check.window,
        rows_since_live: rows_seen,
        live_version,
        repeat,
        features: top,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffering_keeps_the_newest_rows_and_moves_the_rest_in_order() {
        // Against the plain way: append everything, keep the newest
        // max_new_rows, feed every row that left to the reservoir in order.
        let mut policy = Policy::default();
        policy.update.max_new_rows = 700;
        policy.update.reservoir_rows = 300;
        let (mut new_rows, mut reservoir) = (None, None);
        let mut all = Dataset::new(1);
        let mut expected_reservoir = Reservoir::new(1, 300, policy.training.seed);
        let mut left = 0usize;
        let mut next = 0u64;
        for batch in [100u64, 650, 5, 1200, 0, 699, 701, 3] {
            let data = rows(next, batch);
            buffer_new_rows(&mut new_rows, &mut reservoir, &policy, &data, next);
            next += batch;
            all.extend(&data);
            let keep_from = all.len().saturating_sub(700);
            expected_reservoir.add_rows(&all, left..keep_from.max(left));
            left = keep_from.max(left);
            let buffer = new_rows.as_ref().unwrap();
            assert_eq!(buffer.first, keep_from as u64);
            assert_eq!(buffer.rows, all.slice(keep_from, all.len()));
            match &reservoir {
                Some(r) => assert_eq!(r.rows, expected_reservoir.rows),
                None => assert_eq!(keep_from, 0),
            }
        }
    }

    /// `n` one-feature rows numbered from `first` (label = global row).
    fn rows(first: u64, n: u64) -> Dataset {
        let mut d = Dataset::new(1);
        for r in first..first + n {
            d.push_row(&[r as f32], r as i64);
        }
        d
    }

    fn new_rows(first: u64, n: u64) -> NewRows {
        NewRows {
            rows: rows(first, n),
            first,
        }
    }

    /// Defaults: 50 holdout rows at a 0.2 holdout fraction need 250 rows;
    /// a drift needs `min_new_rows` (500).
    fn policy() -> Policy {
        Policy::default()
    }

    fn pending(kind: TriggerKind, from_row: Option<u64>) -> Pending {
        Pending { kind, from_row }
    }

    fn ready(u: UpdateRows) -> (Dataset, Dataset, u64) {
        match u {
            UpdateRows::Ready { new, old, end_row } => (new, old, end_row),
            UpdateRows::Short { have, needed } => panic!("short: {have} of {needed}"),
        }
    }

    fn short(u: UpdateRows) -> (usize, usize) {
        match u {
            UpdateRows::Short { have, needed } => (have, needed),
            UpdateRows::Ready { new, .. } => panic!("ready with {} rows", new.len()),
        }
    }

    #[test]
    fn a_manual_update_needs_rows_for_the_holdout() {
        let p = policy();
        let manual = pending(TriggerKind::Manual, None);
        let n = new_rows(1000, 249);
        let u = update_rows(&p, Some(&n), None, manual, 1249, 1);
        assert_eq!(short(u), (249, 250));
        let n = new_rows(1000, 250);
        let (new, old, end_row) = ready(update_rows(&p, Some(&n), None, manual, 1250, 1));
        assert_eq!(new.len(), 250);
        assert_eq!(new.labels[0], 1000);
        assert_eq!(old.len(), 0);
        assert_eq!(end_row, 1250);
    }

    #[test]
    fn the_holdout_rule_rounds_up() {
        let mut p = policy();
        p.update.min_holdout_rows = 10;
        p.update.holdout_fraction = 0.3; // 33.3 rows: 34
        let schedule = pending(TriggerKind::Schedule, None);
        let n = new_rows(0, 33);
        assert_eq!(
            short(update_rows(&p, Some(&n), None, schedule, 33, 1)),
            (33, 34)
        );
        let n = new_rows(0, 34);
        ready(update_rows(&p, Some(&n), None, schedule, 34, 1));
    }

    #[test]
    fn without_new_rows_an_update_is_short() {
        let p = policy();
        let manual = pending(TriggerKind::Manual, None);
        assert_eq!(
            short(update_rows(&p, None, None, manual, 5000, 3)),
            (0, 250)
        );
    }

    #[test]
    fn a_drift_counts_only_the_rows_after_its_alert() {
        let p = policy();
        let n = new_rows(1000, 800); // rows 1000..1800
        let at = |row| pending(TriggerKind::Drift, Some(row));
        assert_eq!(
            short(update_rows(&p, Some(&n), None, at(1301), 1800, 1)),
            (499, 500)
        );
        let (new, old, end_row) = ready(update_rows(&p, Some(&n), None, at(1300), 1800, 1));
        assert_eq!(new.len(), 500);
        assert_eq!(new.labels[0], 1300);
        // The rows since the version but before the alert are old rows.
        assert_eq!(old.len(), 300);
        assert_eq!(old.labels[0], 1000);
        assert_eq!(*old.labels.last().unwrap(), 1299);
        assert_eq!(end_row, 1800);
    }

    #[test]
    fn a_drift_needs_the_holdout_rows_too() {
        let mut p = policy();
        p.update.min_new_rows = 10;
        let n = new_rows(0, 249);
        let drift = pending(TriggerKind::Drift, Some(0));
        assert_eq!(
            short(update_rows(&p, Some(&n), None, drift, 249, 1)),
            (249, 250)
        );
    }

    #[test]
    fn a_drift_alert_older_than_the_buffer_takes_every_new_row() {
        let p = policy();
        let n = new_rows(1000, 600);
        let drift = pending(TriggerKind::Drift, Some(10));
        let (new, old, _) = ready(update_rows(&p, Some(&n), None, drift, 1600, 1));
        assert_eq!(new.len(), 600);
        assert_eq!(old.len(), 0);
    }

    #[test]
    fn old_rows_are_the_reservoir_then_the_rows_before_the_drift() {
        let p = policy();
        let mut reservoir = Reservoir::new(1, 100, 7);
        reservoir.add(&rows(0, 40));
        let n = new_rows(1000, 600);
        let drift = pending(TriggerKind::Drift, Some(1100));
        let (new, old, end_row) =
            ready(update_rows(&p, Some(&n), Some(&reservoir), drift, 1600, 1));
        assert_eq!(new.len(), 500);
        assert_eq!(old.len(), 140);
        assert_eq!(old.labels[..40], reservoir.rows.labels[..]);
        assert_eq!(old.labels[40], 1000);
        assert_eq!(end_row, 1600);
    }

    #[test]
    fn rows_beyond_max_new_rows_move_to_the_reservoir() {
        let mut p = policy();
        p.update.max_new_rows = 100;
        let (mut new, mut reservoir) = (None, None);
        buffer_new_rows(&mut new, &mut reservoir, &p, &rows(0, 80), 0);
        assert!(reservoir.is_none());
        buffer_new_rows(&mut new, &mut reservoir, &p, &rows(80, 50), 80);
        let kept = new.as_ref().unwrap();
        assert_eq!((kept.first, kept.rows.len(), kept.end()), (30, 100, 130));
        assert_eq!(
            reservoir.as_ref().unwrap().rows.labels,
            (0..30).collect::<Vec<i64>>()
        );
        // After a promotion the rows trained on (before row 120) are old rows.
        consume_trained(&mut new, &mut reservoir, &p, 120);
        let kept = new.as_ref().unwrap();
        assert_eq!((kept.first, kept.rows.len()), (120, 10));
        assert_eq!(reservoir.unwrap().rows.len(), 120);
    }
}
