//! Scores of probabilities against labels: accuracy, log loss, ROC AUC.

use serde::{Deserialize, Serialize};

/// Accuracy, log loss and (binary tasks) ROC AUC of probabilities
/// (`[rows, classes]`) against labels.
pub fn score(probs: &[f32], labels: &[i64], classes: usize) -> Scores {
    let n = labels.len();
    if n == 0 {
        return Scores {
            rows: 0,
            accuracy: f64::NAN,
            log_loss: f64::NAN,
            auc: None,
        };
    }
    let mut correct = 0usize;
    let mut loss = 0f64;
    for (i, &label) in labels.iter().enumerate() {
        let row = &probs[i * classes..(i + 1) * classes];
        if predicted_class(row) == label as usize {
            correct += 1;
        }
        let p = (row[label as usize] as f64).clamp(1e-7, 1.0);
        loss -= p.ln();
    }
    let auc = (classes == 2)
        .then(|| {
            let p1: Vec<f32> = (0..n).map(|i| probs[i * 2 + 1]).collect();
            roc_auc(&p1, labels)
        })
        .flatten();
    Scores {
        rows: n,
        accuracy: correct as f64 / n as f64,
        log_loss: loss / n as f64,
        auc,
    }
}

/// ROC AUC as the Mann-Whitney statistic (ties count one half); `None`
/// when only one class is present.
pub fn roc_auc(scores: &[f32], labels: &[i64]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&l| l == 1).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Average ranks over ties, then sum the ranks of the positives.
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] == 1 {
                rank_sum += avg_rank;
            }
        }
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Argmax with ties going to the lower class (0.5 predicts class 0, as
/// `p > 0.5` does).
pub fn predicted_class(row: &[f32]) -> usize {
    let mut best = 0;
    for (c, &p) in row.iter().enumerate() {
        if p > row[best] {
            best = c;
        }
    }
    best
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub rows: usize,
    pub accuracy: f64,
    pub log_loss: f64,
    /// ROC AUC, binary tasks only.
    #[serde(default)]
    pub auc: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::roc_auc;

    #[test]
    fn auc_matches_a_hand_count() {
        // Pairs (pos, neg): (0.9,0.1) win, (0.9,0.4) win, (0.35,0.1) win,
        // (0.35,0.4) loss -> 3/4.
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.9], &[0, 0, 1, 1]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12);
        // A tie counts one half.
        assert_eq!(roc_auc(&[0.5, 0.5], &[0, 1]), Some(0.5));
        assert_eq!(roc_auc(&[0.5, 0.7], &[1, 1]), None);
    }
}
