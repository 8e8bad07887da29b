//! The pure probation rules the daemon and the backtest share: a promoted
//! version and the one it replaced both score the version's first rows,
//! and the paired difference on those same rows decides whether it stays.
//!
//! Comparing with the previous version's accuracy *before* the promotion
//! judged the two on different rows: after a drift, the new version met
//! harder rows than the old one had, lost, and the rollback left the old
//! one live at a coin flip (issue 18).

use super::evidence::{z_for, PairedDifference};
use crate::model::Classifier;
use crate::monitor::RowOutcome;
use crate::update::StrategyName;

/// A version the daemon promoted, on probation for its first
/// `update.rollback.watch_rows` rows.
#[derive(Debug, Clone)]
pub struct Probation {
    pub(crate) version: u64,
    pub(crate) previous: u64,
    /// The version it replaced, which scores the same rows.
    pub(crate) previous_model: Classifier,
    pub(crate) strategy: StrategyName,
    pub(crate) rows: u64,
    /// Rows the new version got right.
    pub(crate) correct: u64,
    /// Rows the previous version got right.
    pub(crate) previous_correct: u64,
    /// Rows where exactly one of the two is right.
    pub(crate) disagreements: u64,
}

impl Probation {
    pub fn new(
        version: u64,
        previous: u64,
        previous_model: Classifier,
        strategy: StrategyName,
    ) -> Self {
        Probation {
            version,
            previous,
            previous_model,
            strategy,
            rows: 0,
            correct: 0,
            previous_correct: 0,
            disagreements: 0,
        }
    }

    /// How many of a batch's `batch` rows are still watched.
    pub fn watched(&self, batch: usize, watch: u64) -> usize {
        (watch.saturating_sub(self.rows) as usize).min(batch)
    }

    /// The new version's advantage over the previous one so far, per row.
    pub fn difference(&self) -> PairedDifference {
        PairedDifference::from_sums(
            self.rows as usize,
            self.correct as f64 - self.previous_correct as f64,
            self.disagreements as f64,
        )
    }

    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.rows.max(1) as f64
    }

    pub fn previous_accuracy(&self) -> f64 {
        self.previous_correct as f64 / self.rows.max(1) as f64
    }
}

/// Counts the watched rows of a batch, scored by the new version (`new`)
/// and the previous one (`previous`, the same rows); once `watch` rows are
/// in, returns the new version's paired advantage on them.
pub fn probation_count(
    p: &mut Probation,
    new: &[RowOutcome],
    previous: &[RowOutcome],
    watch: u64,
) -> Option<PairedDifference> {
    let take = p.watched(new.len().min(previous.len()), watch);
    for (n, o) in new[..take].iter().zip(&previous[..take]) {
        p.rows += 1;
        p.correct += u64::from(n.correct());
        p.previous_correct += u64::from(o.correct());
        p.disagreements += u64::from(n.correct() != o.correct());
    }
    (p.rows >= watch).then(|| p.difference())
}

/// A version on probation stays unless the previous version is more
/// accurate on the same rows by more than `margin`, with `confidence`.
pub fn probation_holds(difference: &PairedDifference, margin: f64, confidence: f64) -> bool {
    difference.upper_bound(z_for(confidence, 1)) >= -margin
}

/// Why a version on probation is rolled back, in the daemon's log and the
/// backtest's report alike.
pub fn rollback_reason(p: &Probation, difference: &PairedDifference, margin: f64) -> String {
    format!(
        "version {} scored {:.3} on its first {} rows, version {} {:.3} on the same rows ({:+.4} ± {:.4} paired; margin {margin})",
        p.version,
        p.accuracy(),
        p.rows,
        p.previous,
        p.previous_accuracy(),
        difference.difference,
        difference.standard_error
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::test_fixtures::{live, policy, rows};

    fn probation() -> Probation {
        Probation::new(3, 2, live(&policy(), &rows(100, 1)), StrategyName::RefitAll)
    }

    /// `right` correct outcomes, then `wrong` wrong ones.
    fn outcomes(right: usize, wrong: usize) -> Vec<RowOutcome> {
        let row = |predicted| RowOutcome {
            label: 1,
            predicted,
            p_label: 0.5,
            p_positive: 0.5,
            time_us: 0,
        };
        (0..right)
            .map(|_| row(1))
            .chain((0..wrong).map(|_| row(0)))
            .collect()
    }

    #[test]
    fn probation_waits_for_watch_rows_across_batches() {
        let mut p = probation();
        assert!(probation_count(&mut p, &outcomes(3, 1), &outcomes(1, 3), 10).is_none());
        assert_eq!((p.rows, p.correct, p.previous_correct), (4, 3, 1));
        assert_eq!(p.disagreements, 2);
        assert!(probation_count(&mut p, &[], &[], 10).is_none());
        assert_eq!(p.rows, 4);
        // Only the 6 rows still watched count.
        let d = probation_count(&mut p, &outcomes(2, 4).repeat(2), &outcomes(6, 6), 10).unwrap();
        assert_eq!((p.rows, p.correct, p.previous_correct), (10, 5, 7));
        assert_eq!(d.rows, 10);
        assert!((d.difference + 0.2).abs() < 1e-12);
        assert_eq!((p.accuracy(), p.previous_accuracy()), (0.5, 0.7));
    }

    /// The case: the new version scored 0.608 on rows where the
    /// old one, judged on the same rows, does worse. It stays.
    #[test]
    fn a_version_is_judged_against_the_previous_on_the_same_rows() {
        let mut p = probation();
        // New right on 608 of 1,000; previous right on 500 of the same.
        let d = probation_count(&mut p, &outcomes(608, 392), &outcomes(500, 500), 1000).unwrap();
        assert!(probation_holds(&d, 0.0, 0.95), "{d:?}");
    }

    #[test]
    fn a_version_clearly_worse_on_the_same_rows_is_rolled_back() {
        let mut p = probation();
        let d = probation_count(&mut p, &outcomes(700, 300), &outcomes(900, 100), 1000).unwrap();
        assert!(!probation_holds(&d, 0.05, 0.95), "{d:?}");
        // A margin wider than the loss keeps it.
        assert!(probation_holds(&d, 0.25, 0.95), "{d:?}");
    }

    #[test]
    fn noise_alone_does_not_roll_back() {
        // 1,000 rows: the two disagree on 40, the new version right on 19 of
        // them and the previous on 21. Two rows worse is noise.
        let mut p = probation();
        let both = |right, wrong| outcomes(right, wrong);
        let new = [both(19, 21), both(860, 100)].concat();
        let old = [both(0, 19), both(21, 0), both(860, 100)].concat();
        let d = probation_count(&mut p, &new, &old, 1000).unwrap();
        assert_eq!(p.disagreements, 40);
        assert!(d.difference < 0.0);
        assert!(probation_holds(&d, 0.0, 0.95), "{d:?}");
    }
}
