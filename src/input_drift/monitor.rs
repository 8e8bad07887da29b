//! [`InputMonitor`]: the last `window` rows' features, compared with the
//! live version's profile every `check_every` rows.

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

/// Keeps the last `window` rows' features and compares them with the live
/// version's profile every `check_every` rows.
#[derive(Debug)]
pub struct InputMonitor {
    config: InputDriftConfig,
    profile: Option<InputProfile>,
    recent: Dataset,
    since_check: usize,
}

impl InputMonitor {
    pub fn new(config: InputDriftConfig, profile: Option<InputProfile>, width: usize) -> Self {
        InputMonitor {
            recent: Dataset::new(width),
            config,
            profile,
            since_check: 0,
        }
    }

    pub fn has_profile(&self) -> bool {
        self.profile.is_some()
    }

    /// Feeds rows in order; returns the checks that fell due (at most one
    /// per `check_every` rows, and only once the window is full).
    pub fn observe(&mut self, rows: &Dataset) -> Vec<InputCheck> {
        let mut checks = Vec::new();
        if !self.config.enabled || self.profile.is_none() || rows.width != self.recent.width {
            return checks;
        }
        let window = self.config.window;
        let every = self.config.check_every.max(1);
        let mut start = 0;
        while start < rows.len() {
            // Feed up to the next check point, then check.
            // Before the window is first full, a check waits for it.
            let due = if self.since_check >= every {
                window.saturating_sub(self.recent.len()).max(1)
            } else {
                every - self.since_check
            };
            let take = due.min(rows.len() - start);
            self.recent.extend(&rows.slice(start, start + take));
            if self.recent.len() > window {
                self.recent.keep_last(window);
            }
            self.since_check += take;
            start += take;
            if self.since_check >= every && self.recent.len() >= window {
                self.since_check = 0;
                checks.push(self.check());
            }
        }
        checks
    }

    fn check(&self) -> InputCheck {
        let profile = self.profile.as_ref().expect("checked by observe");
        let mut features = profile.compare(&self.recent);
        let p_level = self.config.ks_p_value / features.len().max(1) as f64;
        let moved = features
            .iter()
            .filter(|f| f.psi >= self.config.psi_threshold || f.ks_p_value <= p_level)
            .count();
        features.sort_by(|a, b| {
            b.psi
                .total_cmp(&a.psi)
                .then(b.ks_statistic.total_cmp(&a.ks_statistic))
        });
        InputCheck {
            features,
            moved,
            window: self.recent.len(),
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
    fn checks_wait_for_a_full_window() {
        let train = normal(1000, 0.0, 1);
        let mut m = monitor(1000, 100, &train);
        assert!(m.observe(&column(&normal(999, 0.0, 2))).is_empty());
        assert_eq!(m.observe(&column(&normal(1, 0.0, 3))).len(), 1);
    }
}
