//! [`InputMonitor`]: the last `window` rows' features, counted in the live
//! version's profile bins and compared with it every `check_every` rows.
//!
//! Per row and feature the work is constant: one bin lookup, one count in,
//! one count out of a ring of bin indices (a byte per value). A check reads
//! the counts, not the rows, so a 100,000-row file costs the same whatever
//! the window and the checks it crosses.

use super::binned::{FeatureBins, NOT_COUNTED};
use super::{FeatureDrift, InputProfile};
use crate::config::InputDriftConfig;
use crate::model::Dataset;

/// What one check of the input monitor found.
#[derive(Debug, Clone, PartialEq)]
pub struct InputCheck {
    /// Every feature, most moved first (by PSI, then KS statistic).
    pub features: Vec<FeatureDrift>,
    /// How many of them crossed a threshold.
    pub moved: usize,
    pub window: usize,
}

/// Keeps the last `window` rows' features as bin counts and compares them
/// with the live version's profile every `check_every` rows.
#[derive(Debug)]
pub struct InputMonitor {
    config: InputDriftConfig,
    width: usize,
    counted: Option<Counted>,
    since_check: usize,
}

/// The window's rows, counted per feature in its profile's bins.
#[derive(Debug)]
struct Counted {
    names: Vec<String>,
    train_rows: f64,
    bins: Vec<FeatureBins>,
    /// Per feature, the window's rows in each bin.
    counts: Vec<Vec<u32>>,
    /// Per feature, `window` bin indices in arrival order, feature after
    /// feature (feature `j`'s slot `s` at `j * window + s`).
    ring: Vec<u8>,
    /// The slot the next row goes to.
    next: usize,
    /// Rows in the window (up to `window`).
    filled: usize,
}

impl InputMonitor {
    pub fn new(config: InputDriftConfig, profile: Option<InputProfile>, width: usize) -> Self {
        let window = config.window.max(1);
        let counted = profile.map(|profile| {
            let bins: Vec<FeatureBins> = profile
                .features
                .iter()
                .take(width)
                .map(FeatureBins::new)
                .collect();
            Counted {
                names: profile.features.iter().map(|f| f.name.clone()).collect(),
                train_rows: profile.rows as f64,
                counts: bins.iter().map(|b| vec![0; b.bins()]).collect(),
                ring: vec![NOT_COUNTED; bins.len() * window],
                bins,
                next: 0,
                filled: 0,
            }
        });
        InputMonitor {
            config,
            width,
            counted,
            since_check: 0,
        }
    }

    pub fn has_profile(&self) -> bool {
        self.counted.is_some()
    }

    /// Feeds rows in order; returns the checks that fell due (at most one
    /// per `check_every` rows, and only once the window is full).
    pub fn observe(&mut self, rows: &Dataset) -> Vec<InputCheck> {
        let mut checks = Vec::new();
        if !self.config.enabled || rows.width != self.width {
            return checks;
        }
        let Some(counted) = self.counted.as_mut() else {
            return checks;
        };
        let window = self.config.window.max(1);
        let every = self.config.check_every.max(1);
        let mut start = 0;
        while start < rows.len() {
            // Feed up to the next row where a check can fall due.
            let due = every
                .saturating_sub(self.since_check)
                .max(window - counted.filled)
                .max(1);
            let take = due.min(rows.len() - start);
            counted.push(rows, start..start + take, window);
            self.since_check += take;
            start += take;
            if self.since_check >= every && counted.filled >= window {
                self.since_check = 0;
                checks.push(counted.check(&self.config));
            }
        }
        checks
    }
}

impl Counted {
    /// Counts `rows[range]` in, pushing the oldest rows out of a full window.
    fn push(&mut self, rows: &Dataset, range: std::ops::Range<usize>, window: usize) {
        // A block of rows at a time, feature by feature within it: the
        // block's values stay in cache while each feature's bins, counts
        // and ring are at hand.
        const BLOCK: usize = 256;
        let mut start = range.start;
        while start < range.end {
            let end = (start + BLOCK).min(range.end);
            self.push_block(rows, start..end, window);
            start = end;
        }
    }

    fn push_block(&mut self, rows: &Dataset, range: std::ops::Range<usize>, window: usize) {
        let width = rows.width;
        let block = &rows.features[range.start * width..range.end * width];
        for (j, (bins, counts)) in self.bins.iter().zip(&mut self.counts).enumerate() {
            let ring = &mut self.ring[j * window..(j + 1) * window];
            let (mut slot, mut filled) = (self.next, self.filled);
            for row in block.chunks_exact(width) {
                if filled == window {
                    let old = ring[slot];
                    if old != NOT_COUNTED {
                        counts[old as usize] -= 1;
                    }
                } else {
                    filled += 1;
                }
                let bin = bins.bin_of(row[j]);
                if bin != NOT_COUNTED {
                    counts[bin as usize] += 1;
                }
                ring[slot] = bin;
                slot += 1;
                if slot == window {
                    slot = 0;
                }
            }
        }
        let n = range.len();
        self.next = (self.next + n) % window;
        self.filled = (self.filled + n).min(window);
    }

    fn check(&self, config: &InputDriftConfig) -> InputCheck {
        let mut features: Vec<FeatureDrift> = self
            .bins
            .iter()
            .zip(&self.counts)
            .zip(&self.names)
            .map(|((bins, counts), name)| {
                let m = bins.measure(counts, self.train_rows);
                FeatureDrift {
                    feature: name.clone(),
                    psi: m.psi,
                    ks_statistic: m.ks_statistic,
                    ks_p_value: m.ks_p_value,
                }
            })
            .collect();
        let p_level = config.ks_p_value / features.len().max(1) as f64;
        let moved = features
            .iter()
            .filter(|f| f.psi >= config.psi_threshold || f.ks_p_value <= p_level)
            .count();
        features.sort_by(|a, b| {
            b.psi
                .total_cmp(&a.psi)
                .then(b.ks_statistic.total_cmp(&a.ks_statistic))
        });
        InputCheck {
            features,
            moved,
            window: self.filled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input_drift::column;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn normal(n: usize, mean: f32, seed: u64) -> Vec<f32> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let dist = Normal::new(mean, 1.0).unwrap();
        (0..n).map(|_| dist.sample(&mut rng)).collect()
    }

    fn monitor(window: usize, check_every: usize, train: &[f32]) -> InputMonitor {
        let profile = InputProfile::from_dataset(&column(train), &["x".into()]);
        let config = InputDriftConfig {
            enabled: true,
            window,
            check_every,
            ..InputDriftConfig::default()
        };
        InputMonitor::new(config, Some(profile), 1)
    }

    #[test]
    fn a_shifted_feature_is_flagged_and_a_stable_one_is_not() {
        let train = normal(20000, 0.0, 1);
        let mut m = monitor(1000, 500, &train);
        // Stable: 20 checks, no feature moved.
        let checks = m.observe(&column(&normal(10500, 0.0, 2)));
        assert_eq!(checks.len(), 20);
        assert!(checks.iter().all(|c| c.moved == 0), "{checks:?}");
        // Shifted by half a standard deviation.
        let checks = m.observe(&column(&normal(1000, 0.5, 3)));
        let last = checks.last().expect("a check");
        assert_eq!(last.moved, 1, "{last:?}");
        assert!(last.features[0].ks_p_value < 1e-10);
    }

    #[test]
    fn the_window_forgets_rows_that_left_it() {
        let train = normal(20000, 0.0, 1);
        let mut m = monitor(1000, 500, &train);
        let checks = m.observe(&column(&normal(1000, 2.0, 2)));
        assert_eq!(checks.last().expect("a check").moved, 1);
        // A full window of stable rows later, nothing has moved: the
        // shifted rows were counted out as they left.
        let checks = m.observe(&column(&normal(1000, 0.0, 3)));
        let last = checks.last().expect("a check");
        assert_eq!(last.moved, 0, "{last:?}");
        assert_eq!(last.window, 1000);
    }

    #[test]
    fn batches_of_any_size_give_the_same_checks() {
        let train = normal(5000, 0.0, 1);
        let rows = normal(7000, 0.3, 2);
        let mut whole = monitor(1000, 300, &train);
        let at_once = whole.observe(&column(&rows));
        let mut pieces = monitor(1000, 300, &train);
        let piecewise: Vec<InputCheck> = rows
            .chunks(137)
            .flat_map(|chunk| pieces.observe(&column(chunk)))
            .collect();
        assert_eq!(at_once, piecewise);
        assert_eq!(at_once.len(), 21);
    }

    #[test]
    fn non_finite_values_are_left_out() {
        let train = normal(5000, 0.0, 1);
        let mut m = monitor(100, 100, &train);
        let mut rows = normal(100, 0.0, 2);
        rows[..50].iter_mut().for_each(|v| *v = f32::NAN);
        let check = m.observe(&column(&rows)).pop().expect("a check");
        assert_eq!(check.window, 100);
        assert!(check.features[0].ks_p_value > 0.001, "{check:?}");
    }

    #[test]
    fn checks_wait_for_a_full_window() {
        let train = normal(1000, 0.0, 1);
        let mut m = monitor(1000, 100, &train);
        assert!(m.observe(&column(&normal(999, 0.0, 2))).is_empty());
        assert_eq!(m.observe(&column(&normal(1, 0.0, 3))).len(), 1);
    }
}
