//! The pure probation rules the daemon and the backtest share: counting a
//! promoted version's first rows, and whether it stays or is rolled back.

use crate::monitor::RowOutcome;
use crate::update::StrategyName;

/// A version the daemon promoted, on probation for its first
/// `update.rollback.watch_rows` rows.
#[derive(Debug, Clone)]
pub struct Probation {
    pub(crate) version: u64,
    pub(crate) previous: u64,
    /// The previous version's rolling accuracy just before the promotion.
    pub(crate) previous_accuracy: f64,
    pub(crate) strategy: StrategyName,
    pub(crate) rows: u64,
    pub(crate) correct: u64,
}

/// Counts a promoted version's first rows on probation; once `watch` rows
/// are in, returns its accuracy on them.
pub fn probation_count(p: &mut Probation, outcomes: &[RowOutcome], watch: u64) -> Option<f64> {
    let take = ((watch - p.rows) as usize).min(outcomes.len());
    p.rows += take as u64;
    p.correct += outcomes[..take].iter().filter(|o| o.correct()).count() as u64;
    (p.rows >= watch).then(|| p.correct as f64 / p.rows as f64)
}

/// A version on probation stays when its accuracy is within `margin` of
/// the previous version's before the promotion.
pub fn probation_holds(p: &Probation, accuracy: f64, margin: f64) -> bool {
    accuracy >= p.previous_accuracy - margin
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probation(previous_accuracy: f64) -> Probation {
        Probation {
            version: 3,
            previous: 2,
            previous_accuracy,
            strategy: StrategyName::RefitAll,
            rows: 0,
            correct: 0,
        }
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
        let mut p = probation(0.9);
        assert_eq!(probation_count(&mut p, &outcomes(3, 1), 10), None);
        assert_eq!((p.rows, p.correct), (4, 3));
        assert_eq!(probation_count(&mut p, &[], 10), None);
        assert_eq!((p.rows, p.correct), (4, 3));
        // Only the 6 rows still watched count; the rest of the batch is after
        // the probation.
        let accuracy = probation_count(&mut p, &outcomes(2, 4).repeat(2), 10);
        assert_eq!((p.rows, p.correct), (10, 5));
        assert_eq!(accuracy, Some(0.5));
    }

    #[test]
    fn probation_ends_in_the_batch_that_reaches_watch_rows() {
        let mut p = probation(0.9);
        assert_eq!(probation_count(&mut p, &outcomes(4, 0), 4), Some(1.0));
        assert_eq!(p.rows, 4);
        let mut p = probation(0.9);
        // Rows past `watch` (here wrong ones) do not count.
        assert_eq!(probation_count(&mut p, &outcomes(4, 100), 4), Some(1.0));
        assert_eq!((p.rows, p.correct), (4, 4));
    }

    #[test]
    fn a_version_within_the_margin_stays() {
        let p = probation(0.75);
        assert!(probation_holds(&p, 0.9, 0.25));
        assert!(probation_holds(&p, 0.75, 0.0), "as good as before");
        assert!(probation_holds(&p, 0.5, 0.25), "exactly at the margin");
        assert!(!probation_holds(&p, 0.49, 0.25));
        assert!(
            !probation_holds(&p, 0.74, 0.0),
            "no margin: any loss rolls back"
        );
    }
}
