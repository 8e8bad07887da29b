//! Input drift without labels: each feature's recent distribution against
//! the distribution stored with the live version.
//!
//! Boundary: this module sees feature values only, never labels or models.
//! A version's [`InputProfile`] is computed once, when the version is made,
//! from the rows it was trained and judged on, and is kept in its
//! `meta.json`; the daemon's [`InputMonitor`] keeps the last `window` rows
//! and compares them with the profile every `check_every` rows.
//!
//! Two measures per feature:
//! - the population stability index over the training deciles,
//!   PSI = Σ (a − e) ln(a / e) with e, a the training and recent shares of
//!   each bin (Siddiqi, *Credit Risk Scorecards*, 2006; < 0.1 stable,
//!   0.1–0.25 moderate shift, > 0.25 major shift);
//! - the two-sample Kolmogorov–Smirnov statistic D = sup |F_train − F_recent|
//!   with its asymptotic p-value (Kolmogorov 1933, Smirnov 1948; the
//!   effective-n correction of Stephens 1970 as in Numerical Recipes'
//!   `probks`). F_train is the piecewise-linear CDF through the stored
//!   quantiles (0.5 % steps), so D is exact to about 0.005.
//!
//! A feature has moved when its PSI reaches the policy's threshold or its KS
//! p-value falls below the policy's level divided by the number of features
//! (Bonferroni: one test per feature and check).
//!
//! Files: `profile.rs` (the profile and the two measures), `monitor.rs`
//! (the rolling window of recent rows and its checks).

mod monitor;
mod profile;

pub use monitor::{InputCheck, InputMonitor};
pub use profile::{ks_p_value, FeatureDrift, FeatureProfile, InputProfile};

/// A one-feature dataset of `values` (for the tests of both files).
#[cfg(test)]
fn column(values: &[f32]) -> crate::model::Dataset {
    let mut d = crate::model::Dataset::new(1);
    for &v in values {
        d.push_row_with(&[v], 0, 1.0, 0);
    }
    d
}
