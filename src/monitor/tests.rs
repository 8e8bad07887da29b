//! Test helpers shared by the monitor's tests, and the tests of its rolling
//! windows and baseline.

use super::*;
use crate::detect::{DetectorSpec, ThresholdParams, ThresholdRule};

pub(super) fn threshold(window: usize, limit: f64) -> DetectorSpec {
    DetectorSpec::Threshold(ThresholdParams {
        window,
        rule: ThresholdRule::AbsoluteDrop,
        limit,
        warning_fraction: 0.5,
    })
}

pub(super) fn config(window: usize, detectors: Vec<DetectorSpec>) -> MonitorConfig {
    MonitorConfig {
        window,
        detectors,
        realert_after_rows: 0,
        min_rows_before_alert: 0,
        ..MonitorConfig::default()
    }
}

/// Binary outcomes: right or wrong on label 1.
pub(super) fn rows(correct: &[bool]) -> Vec<RowOutcome> {
    correct
        .iter()
        .map(|&c| RowOutcome {
            label: 1,
            predicted: if c { 1 } else { 0 },
            p_label: if c { 0.9 } else { 0.1 },
            p_positive: if c { 0.9 } else { 0.1 },
            time_us: 0,
        })
        .collect()
}

pub(super) fn drifts(alerts: &[DriftAlert]) -> usize {
    alerts
        .iter()
        .filter(|a| a.severity == Severity::Drift)
        .count()
}

#[test]
fn first_full_window_is_the_baseline_when_none_is_given() {
    let mut m = Monitor::new(&config(4, vec![]), 2, None, None);
    m.observe(&rows(&[true, true, true, false]));
    assert_eq!(m.baseline(), Some(0.75));
    assert_eq!(m.rolling_accuracy(), Some(0.75));
}

#[test]
fn sliding_tallies_match_a_fresh_count_and_auc_matches_the_exact_one() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let all: Vec<RowOutcome> = (0..5000)
        .map(|_| {
            let label = rng.random_range(0..2u32);
            // Informative but noisy scores.
            let p1: f32 = (0.3 * label as f32 + 0.7 * rng.random::<f32>()).clamp(0.0, 1.0);
            let predicted = (p1 >= 0.5) as u32;
            RowOutcome {
                label,
                predicted,
                p_label: if label == 1 { p1 } else { 1.0 - p1 },
                p_positive: p1,
                time_us: 0,
            }
        })
        .collect();
    let mut m = Monitor::new(&config(700, vec![]), 2, None, None);
    m.observe(&all);
    let sliding = m.window_metrics().unwrap();
    let fresh = WindowMetrics::of(all[all.len() - 700..].iter(), 2);
    assert_eq!(sliding.rows, 700);
    assert_eq!(sliding.accuracy, fresh.accuracy);
    assert_eq!(sliding.classes, fresh.classes);
    assert!((sliding.log_loss - fresh.log_loss).abs() < 1e-9);
    let window = &all[all.len() - 700..];
    let exact = crate::model::roc_auc(
        &window.iter().map(|r| r.p_positive).collect::<Vec<_>>(),
        &window.iter().map(|r| r.label as i64).collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(
        (sliding.auc.unwrap() - exact).abs() < 1e-3,
        "{sliding:?} vs {exact}"
    );
}

#[test]
fn the_time_window_keeps_only_recent_rows() {
    let mut cfg = config(100, vec![]);
    cfg.time_window_seconds = 10;
    let mut m = Monitor::new(&cfg, 2, None, None);
    let mut batch = rows(&[true, true, false, false]);
    for (i, r) in batch.iter_mut().enumerate() {
        r.time_us = i as i64 * 6_000_000; // 0, 6, 12, 18 s
    }
    m.observe(&batch);
    // The newest row is at 18 s: rows before 8 s are out.
    let t = m.time_window_metrics().unwrap();
    assert_eq!(t.rows, 2);
    assert_eq!(t.accuracy, 0.0);
    assert_eq!(m.window_metrics().unwrap().rows, 4);
    assert_eq!(m.window_metrics().unwrap().auc, None, "one label only");
}

/// Regression: a threshold detector of 500 rows beside a monitor window of
/// 250 reported "accuracy over the last 250 rows".
#[test]
fn a_threshold_alert_reports_its_own_window_and_accuracy() {
    let mut m = Monitor::new(&config(4, vec![threshold(10, 0.2)]), 2, None, Some(0.9));
    let mut outcomes = vec![true; 10];
    outcomes.extend([false; 4]);
    let alerts = m.observe(&rows(&outcomes));
    let drift = alerts
        .iter()
        .find(|a| a.severity == Severity::Drift)
        .expect("the threshold fires");
    assert_eq!(drift.window, 10);
    // It fires at 4 wrong of the last 10: 0.6 is below 0.9 - 0.2.
    assert!((drift.current - 0.6).abs() < 1e-9, "{drift:?}");
    assert_eq!(m.rolling_accuracy(), Some(0.0), "the monitor's window of 4");
}
