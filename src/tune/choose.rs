//! The choice rule: the point with the best prequential accuracy on the
//! earlier part; a tie goes to the policy as given (point 0), then to the
//! point that comes first in the grid.

/// The index of the chosen point, from each point's (scored, correct) rows
/// on the earlier part (point 0 is the policy as given). Accuracies are
/// compared exactly (as fractions), so equal scores tie.
pub fn choose(earlier: &[(u64, u64)]) -> usize {
    let mut best = 0;
    for (i, &(scored, correct)) in earlier.iter().enumerate().skip(1) {
        let (best_scored, best_correct) = earlier[best];
        // correct / scored > best_correct / best_scored, without division.
        if (correct as u128) * (best_scored as u128) > (best_correct as u128) * (scored as u128) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_on_the_earlier_part_wins() {
        assert_eq!(choose(&[(100, 80), (100, 85), (100, 90), (100, 70)]), 2);
    }

    #[test]
    fn ties_go_to_the_base_policy_then_to_grid_order() {
        assert_eq!(choose(&[(100, 90), (100, 90), (100, 89)]), 0);
        assert_eq!(choose(&[(100, 80), (100, 90), (100, 90)]), 1);
        // 45/50 = 90/100: a tie, compared exactly.
        assert_eq!(choose(&[(100, 80), (50, 45), (100, 90)]), 1);
        assert_eq!(choose(&[(100, 80)]), 0);
    }
}
