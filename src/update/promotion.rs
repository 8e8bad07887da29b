//! The promotion rule: which candidate, if any, replaces the live model.

use crate::config::{Metric, StrategyName};
use crate::model::Scores;

use super::candidate::Candidate;

/// The value of `metric`, oriented so that larger is better.
pub fn metric_value(s: &Scores, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => s.accuracy,
        Metric::LogLoss => -s.log_loss,
        Metric::Auc => s.auc.unwrap_or(f64::NAN),
    }
}

/// The best candidate on `metric` (never `none`, never a non-finite score)
/// wins when it beats the live model by more than `margin`. Returns its
/// index and why it won, or why nothing did.
pub(super) fn pick_winner(
    candidates: &[Candidate],
    live_scores: &Scores,
    metric: Metric,
    margin: f64,
    holdout_rows: usize,
) -> (Option<usize>, String) {
    let best = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.strategy != StrategyName::None)
        .filter_map(|(i, c)| c.scores().map(|s| (i, s)))
        .filter(|(_, s)| metric_value(s, metric).is_finite())
        .max_by(|(_, a), (_, b)| metric_value(a, metric).total_cmp(&metric_value(b, metric)));
    let live_value = metric_value(live_scores, metric);
    match best {
        Some((i, s)) if metric_value(&s, metric) > live_value + margin => (
            Some(i),
            format!(
                "{} scored {} {:.4} on {} holdout rows, beating the live model's {:.4} by more than {}",
                candidates[i].strategy,
                metric.as_str(),
                metric_value(&s, metric).abs(),
                holdout_rows,
                live_value.abs(),
                margin
            ),
        ),
        Some((i, s)) => (
            None,
            format!(
                "the best candidate, {}, scored {} {:.4} on {} holdout rows, not more than {} better than the live model's {:.4}",
                candidates[i].strategy,
                metric.as_str(),
                metric_value(&s, metric).abs(),
                holdout_rows,
                margin,
                live_value.abs()
            ),
        ),
        None => (None, "no candidate produced a usable model".to_string()),
    }
}
