//! The holdout split: candidates are judged on the newest rows, which none
//! of them trained on.

use crate::model::Dataset;

/// Splits rows into (train, holdout): the holdout is the newest rows, never
/// used for training, so candidates are judged on what comes next.
pub fn split_holdout(data: &Dataset, fraction: f64) -> (Dataset, Dataset) {
    let n = data.len();
    let h = ((n as f64) * fraction).ceil() as usize;
    let h = h.min(n);
    (data.slice(0, n - h), data.slice(n - h, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_is_the_newest_rows() {
        let mut d = Dataset::new(1);
        for i in 0..10 {
            d.push_row(&[i as f32], 0);
        }
        let (train, hold) = split_holdout(&d, 0.2);
        assert_eq!(train.features, (0..8).map(|i| i as f32).collect::<Vec<_>>());
        assert_eq!(hold.features, vec![8.0, 9.0]);
    }
}
