//! The choice rule: a grid point replaces the policy as given (point 0)
//! only when it beats it on the earlier part beyond the noise; among those
//! that do, the best prequential accuracy wins, a tie going to the point
//! that comes first in the grid. Without such evidence the policy as given
//! stays: a lead of a few rows in a thousand on one stretch of history says
//! nothing about the next.

use std::ops::Range;

use crate::update::evidence::{z_for, PairedDifference};

/// Rows per block of the paired comparison. Two policies' prequential
/// results are correlated from row to row (a version stays live for
/// thousands of rows), so rows are not independent; blocks of rows are
/// nearer to it.
pub const BLOCK_ROWS: u64 = 500;

/// The confidence a point's lead over the policy as given must have, split
/// over the points (as promotion splits it over the candidates).
const CONFIDENCE: f64 = 0.95;

/// Each point's per-row outcomes (1 right, 0 wrong, anything else not
/// scored; point 0 is the policy as given) and the earlier part's rows.
pub struct Earlier<'a> {
    pub outcomes: Vec<&'a [u8]>,
    pub rows: Range<u64>,
}

/// A point's lead in accuracy over the policy as given on the earlier part,
/// paired by blocks of `BLOCK_ROWS` rows that both scored.
pub fn lead_over_base(base: &[u8], point: &[u8], rows: Range<u64>) -> PairedDifference {
    let until = rows.end.min(base.len() as u64).min(point.len() as u64);
    let mut blocks = Vec::new();
    let mut start = rows.start;
    while start < until {
        let end = (start + BLOCK_ROWS).min(until);
        let (mut both, mut sum) = (0u64, 0i64);
        for row in start as usize..end as usize {
            let (b, p) = (base[row], point[row]);
            if b <= 1 && p <= 1 {
                both += 1;
                sum += p as i64 - b as i64;
            }
        }
        if both > 0 {
            blocks.push(sum as f64 / both as f64);
        }
        start = end;
    }
    PairedDifference::of(blocks)
}

/// The index of the chosen point and each point's lead over point 0 (None
/// for point 0 itself).
pub fn choose(earlier: &Earlier) -> (usize, Vec<Option<PairedDifference>>) {
    let points = earlier.outcomes.len();
    let z = z_for(CONFIDENCE, points.saturating_sub(1));
    let base = earlier.outcomes[0];
    let leads: Vec<Option<PairedDifference>> = earlier
        .outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| (i > 0).then(|| lead_over_base(base, o, earlier.rows.clone())))
        .collect();
    let mut best: Option<(usize, f64)> = None;
    for (i, lead) in leads.iter().enumerate() {
        let Some(lead) = lead else { continue };
        // Two blocks at least: one block has no spread to judge the noise by.
        if lead.rows < 2 || !lead.beats(0.0, z) {
            continue;
        }
        if best.is_none_or(|(_, d)| lead.difference > d) {
            best = Some((i, lead.difference));
        }
    }
    (best.map_or(0, |(i, _)| i), leads)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outcomes with `wrong_every` spreading the errors evenly.
    fn outcomes(rows: usize, accuracy: f64) -> Vec<u8> {
        let mut correct = 0.0;
        (0..rows)
            .map(|r| {
                let due = accuracy * (r + 1) as f64;
                if due - correct >= 1.0 - 1e-9 {
                    correct += 1.0;
                    1
                } else {
                    0
                }
            })
            .collect()
    }

    #[test]
    fn a_clear_lead_wins_and_the_best_clear_lead_is_chosen() {
        let base = outcomes(10_000, 0.80);
        let better = outcomes(10_000, 0.85);
        let best = outcomes(10_000, 0.90);
        let e = Earlier {
            outcomes: vec![&base, &better, &best],
            rows: 0..10_000,
        };
        let (chosen, leads) = choose(&e);
        assert_eq!(chosen, 2);
        assert!(leads[0].is_none());
        assert!((leads[2].unwrap().difference - 0.10).abs() < 0.01);
    }

    #[test]
    fn a_lead_within_the_noise_keeps_the_policy_as_given() {
        // The point is right on a few more rows, all in one block.
        let base = outcomes(10_000, 0.80);
        let mut point = base.clone();
        for row in point.iter_mut().take(500) {
            *row = 1;
        }
        let e = Earlier {
            outcomes: vec![&base, &point],
            rows: 0..10_000,
        };
        let (chosen, leads) = choose(&e);
        assert!(leads[1].unwrap().difference > 0.0);
        assert_eq!(chosen, 0, "{:?}", leads[1]);
    }

    #[test]
    fn rows_outside_the_part_or_unscored_do_not_count() {
        let base = vec![0u8; 3000];
        let mut point = vec![2u8; 3000]; // not scored
        point[2000..].fill(1);
        let lead = lead_over_base(&base, &point, 0..2000);
        assert_eq!(lead.rows, 0);
        let lead = lead_over_base(&base, &point, 2000..3000);
        assert_eq!((lead.rows, lead.difference), (2, 1.0));
    }

    #[test]
    fn the_policy_as_given_alone_is_chosen() {
        let base = outcomes(1000, 0.9);
        let e = Earlier {
            outcomes: vec![&base],
            rows: 0..1000,
        };
        assert_eq!(choose(&e).0, 0);
    }
}
