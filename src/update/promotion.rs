//! The promotion rule: which candidate, if any, replaces the live model.
//!
//! Every candidate and the live model score the same holdout rows, so a
//! candidate's advantage is measured row by row ([`PairedDifference`]). It
//! is eligible when the lower confidence bound of that advantage exceeds
//! `update.min_improvement`; the confidence (`update.confidence`) is split
//! over the candidates, because the best of k scores on one holdout is
//! flattered by that holdout's noise. Among the eligible, the best score on
//! `update.metric` wins; a near-tie (two candidates within one standard
//! error of their own paired difference) goes to the lower log loss, then
//! the higher AUC, then the earlier candidate in `update.candidates`.

use std::cmp::Ordering;

use crate::config::{Metric, StrategyName};
use crate::model::Scores;

use super::candidate::Candidate;
use super::evidence::{z_for, PairedDifference, RowResults};

/// The value of `metric`, oriented so that larger is better.
pub fn metric_value(s: &Scores, metric: Metric) -> f64 {
    match metric {
        Metric::Accuracy => s.accuracy,
        Metric::LogLoss => -s.log_loss,
        Metric::Auc => s.auc.unwrap_or(f64::NAN),
    }
}

/// What the rule needs from the policy.
#[derive(Debug, Clone, Copy)]
pub(super) struct PromotionRule {
    pub(super) metric: Metric,
    /// `update.min_improvement`.
    pub(super) margin: f64,
    /// `update.confidence`.
    pub(super) confidence: f64,
}

/// The live model on the holdout.
pub(super) struct Champion<'a> {
    pub(super) scores: &'a Scores,
    pub(super) per_row: &'a RowResults,
}

/// A usable candidate: its index, scores, rows and advantage over the live
/// model.
struct Contender<'a> {
    index: usize,
    scores: Scores,
    per_row: &'a RowResults,
    advantage: PairedDifference,
}

/// The winner's index, if any, and why it won or why nothing did.
pub(super) fn pick_winner(
    candidates: &[Candidate],
    live: Champion,
    rule: PromotionRule,
) -> (Option<usize>, String) {
    let metric = rule.metric;
    let contenders: Vec<Contender> = candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| c.strategy != StrategyName::None)
        .filter_map(|(index, c)| {
            let built = c.outcome.as_ref().ok()?;
            let usable = metric_value(&built.scores, metric).is_finite()
                && built.per_row.len() == live.per_row.len();
            usable.then(|| Contender {
                index,
                scores: built.scores,
                per_row: &built.per_row,
                advantage: built.per_row.advantage_over(live.per_row, metric),
            })
        })
        .collect();
    if contenders.is_empty() {
        return (None, "no candidate produced a usable model".to_string());
    }
    let z = z_for(rule.confidence, contenders.len());
    let live_value = metric_value(live.scores, metric);
    let eligible: Vec<&Contender> = contenders
        .iter()
        .filter(|c| is_eligible(c, live_value, z, rule))
        .collect();
    let evidence = Evidence {
        rule,
        z,
        k: contenders.len(),
        live_value,
        rows: live.per_row.len(),
    };
    let Some(best) = best_on_metric(&eligible, metric) else {
        let best = best_on_metric(&contenders.iter().collect::<Vec<_>>(), metric)
            .expect("contenders is not empty");
        return (
            None,
            format!(
                "no candidate beat the live model beyond the noise: the best, {}, {}",
                candidates[best.index].strategy,
                evidence.describe(best)
            ),
        );
    };
    let winner = break_near_tie(best, &eligible, metric);
    let mut decision = format!(
        "{} {}",
        candidates[winner.index].strategy,
        evidence.describe(winner)
    );
    if winner.index != best.index {
        decision.push_str(&format!(
            "; a near-tie with {} on {} broken by {}",
            candidates[best.index].strategy,
            metric.as_str(),
            tie_reason(winner, best)
        ));
    }
    (Some(winner.index), decision)
}

/// Whether a contender's advantage clears the margin beyond the noise. For
/// AUC (no per-row form) the point estimate must clear the margin and the
/// paired log loss must show the candidate better at all.
fn is_eligible(c: &Contender, live_value: f64, z: f64, rule: PromotionRule) -> bool {
    match rule.metric {
        Metric::Auc => {
            metric_value(&c.scores, Metric::Auc) > live_value + rule.margin
                && c.advantage.beats(0.0, z)
        }
        _ => c.advantage.beats(rule.margin, z),
    }
}

/// The contender with the best point estimate on `metric` (the earliest on
/// equal values).
fn best_on_metric<'a, 'b>(
    contenders: &[&'b Contender<'a>],
    metric: Metric,
) -> Option<&'b Contender<'a>> {
    contenders.iter().copied().fold(None, |best, c| match best {
        Some(b) if metric_value(&b.scores, metric) >= metric_value(&c.scores, metric) => Some(b),
        _ => Some(c),
    })
}

/// Among the eligible contenders within one standard error of `best` (paired
/// on the same rows), the lower log loss, then the higher AUC, then the
/// earlier candidate.
fn break_near_tie<'a, 'b>(
    best: &'b Contender<'a>,
    eligible: &[&'b Contender<'a>],
    metric: Metric,
) -> &'b Contender<'a> {
    eligible
        .iter()
        .copied()
        .filter(|c| {
            let d = c.per_row.advantage_over(best.per_row, metric);
            c.index == best.index || d.difference.abs() <= d.standard_error
        })
        .min_by(|a, b| tie_order(a, b))
        .unwrap_or(best)
}

fn tie_order(a: &Contender, b: &Contender) -> Ordering {
    a.scores
        .log_loss
        .total_cmp(&b.scores.log_loss)
        .then_with(|| {
            let auc = |c: &Contender| c.scores.auc.unwrap_or(f64::NEG_INFINITY);
            auc(b).total_cmp(&auc(a))
        })
        .then(a.index.cmp(&b.index))
}

fn tie_reason(winner: &Contender, best: &Contender) -> String {
    if winner.scores.log_loss != best.scores.log_loss {
        format!(
            "log loss ({:.4} against {:.4})",
            winner.scores.log_loss, best.scores.log_loss
        )
    } else {
        "AUC".to_string()
    }
}

/// The numbers behind a decision, for its one-line reason.
struct Evidence {
    rule: PromotionRule,
    z: f64,
    k: usize,
    live_value: f64,
    rows: usize,
}

impl Evidence {
    fn describe(&self, c: &Contender) -> String {
        let metric = self.rule.metric;
        let per_row = match metric {
            Metric::Accuracy => "accuracy",
            Metric::LogLoss | Metric::Auc => "log loss",
        };
        format!(
            "scored {} {:.4} on {} holdout rows against the live model's {:.4}: {:+.4} ± {:.4} in paired {per_row} (lower bound {:+.4} at {}% confidence over {} candidates; margin {})",
            metric.as_str(),
            metric_value(&c.scores, metric).abs(),
            self.rows,
            self.live_value.abs(),
            c.advantage.difference,
            c.advantage.standard_error,
            c.advantage.lower_bound(self.z),
            self.rule.confidence * 100.0,
            self.k,
            self.rule.margin
        )
    }
}

#[cfg(test)]
#[path = "promotion_tests.rs"]
mod tests;
