//! The time-ordered split: the rows after version 1's are cut at a fraction
//! of them; a point is chosen on the earlier part and reported on the later
//! one (held out). Every replay covers the whole history; since a replay is
//! online (each row is scored before it is learned from), the later part
//! cannot change the earlier part's score.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Each part must hold at least this many rows.
pub const MIN_PART_ROWS: u64 = 100;

/// Global rows (0 = the first row of the replay): `0..bootstrap_rows` train
/// version 1, `bootstrap_rows..cut_row` is the earlier part,
/// `cut_row..end_row` the later part.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    pub fraction: f64,
    pub bootstrap_rows: u64,
    pub cut_row: u64,
    pub end_row: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    #[error("--split {0}: expected a fraction strictly between 0 and 1")]
    Fraction(f64),
    #[error(
        "the {after} rows after version 1's {bootstrap} split at {fraction} into {earlier} earlier \
         and {later} later rows; each part needs at least {MIN_PART_ROWS} rows (more history, \
         another --split, or a smaller data.initial_rows)"
    )]
    TooFewRows {
        after: u64,
        bootstrap: u64,
        fraction: f64,
        earlier: u64,
        later: u64,
    },
}

/// Checks `--split`: a fraction strictly between 0 and 1.
pub fn check_fraction(fraction: f64) -> Result<(), SplitError> {
    if fraction > 0.0 && fraction < 1.0 {
        Ok(())
    } else {
        Err(SplitError::Fraction(fraction))
    }
}

/// Cuts the `rows - bootstrap` rows after version 1's: the earlier part is
/// the first ⌊fraction · (rows − bootstrap)⌋ of them.
pub fn split(rows: u64, bootstrap: u64, fraction: f64) -> Result<Split, SplitError> {
    check_fraction(fraction)?;
    let after = rows.saturating_sub(bootstrap);
    let earlier = (fraction * after as f64).floor() as u64;
    let later = after - earlier;
    if earlier < MIN_PART_ROWS || later < MIN_PART_ROWS {
        return Err(SplitError::TooFewRows {
            after,
            bootstrap,
            fraction,
            earlier,
            later,
        });
    }
    Ok(Split {
        fraction,
        bootstrap_rows: bootstrap,
        cut_row: bootstrap + earlier,
        end_row: rows,
    })
}

impl Split {
    pub fn earlier(&self) -> Range<u64> {
        self.bootstrap_rows..self.cut_row
    }

    pub fn later(&self) -> Range<u64> {
        self.cut_row..self.end_row
    }
}

/// (scored, correct) over global rows `rows` of a run's per-row outcomes
/// (1 right, 0 wrong, anything else not scored).
pub fn tally(outcomes: &[u8], rows: Range<u64>) -> (u64, u64) {
    crate::backtest::count(outcomes, rows.start, rows.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_after_version_one_are_cut_at_the_fraction() {
        let s = split(4000, 1000, 0.5).unwrap();
        assert_eq!((s.earlier(), s.later()), (1000..2500, 2500..4000));
        let s = split(4000, 1000, 0.25).unwrap();
        assert_eq!((s.earlier(), s.later()), (1000..1750, 1750..4000));
        // ⌊0.5 · 1001⌋ = 500 earlier rows, 501 later.
        let s = split(2001, 1000, 0.5).unwrap();
        assert_eq!((s.earlier(), s.later()), (1000..1500, 1500..2001));
    }

    #[test]
    fn the_fraction_is_strictly_between_zero_and_one() {
        for f in [0.0, 1.0, -0.5, 1.5, f64::NAN, f64::INFINITY] {
            assert!(check_fraction(f).is_err(), "{f}");
            assert!(split(100_000, 1000, f).is_err(), "{f}");
        }
        let e = check_fraction(1.5).unwrap_err().to_string();
        assert!(e.contains("--split 1.5"), "{e}");
    }

    #[test]
    fn each_part_needs_enough_rows() {
        assert!(split(1200, 1000, 0.5).is_ok());
        let e = split(1199, 1000, 0.5).unwrap_err();
        assert_eq!(
            e,
            SplitError::TooFewRows {
                after: 199,
                bootstrap: 1000,
                fraction: 0.5,
                earlier: 99,
                later: 100
            }
        );
        assert!(e.to_string().contains("99 earlier and 100 later"), "{e}");
        assert!(split(2000, 1000, 0.95).is_err());
        assert!(split(500, 1000, 0.5).is_err());
    }

    #[test]
    fn a_part_counts_only_scored_rows() {
        let outcomes = [2, 2, 1, 0, 1, 1];
        assert_eq!(tally(&outcomes, 0..4), (2, 1));
        assert_eq!(tally(&outcomes, 4..6), (2, 2));
        assert_eq!(tally(&outcomes, 5..99), (1, 1));
    }
}
