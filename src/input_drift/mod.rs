//! Input drift without labels: each feature's recent distribution against
//! the distribution stored with the live version.
//!
//! Boundary: this module sees feature values only, never labels or models.
//! A version's [`InputProfile`] is computed once, when the version is made,
//! from the rows it was trained and judged on, and is kept in its
//! `meta.json`: per feature, the quantiles at 0 %, 0.5 %, …, 100 %, the
//! training share at or below each, and the decile bins. The daemon's
//! [`InputMonitor`] counts the last `window` rows in the bins between
//! consecutive stored quantiles (constant work per row and feature) and
//! compares the counts with the profile every `check_every` rows.
//!
//! Two measures per feature, both on what the profile stores:
//! - the population stability index over the training deciles,
//!   PSI = Σ (a − e) ln(a / e) with e, a the training and recent shares of
//!   each bin (Siddiqi, *Credit Risk Scorecards*, 2006; < 0.1 stable,
//!   0.1–0.25 moderate shift, > 0.25 major shift);
//! - the two-sample Kolmogorov–Smirnov statistic D = max |F_train − F_recent|
//!   over the stored quantiles, where both CDFs are known exactly, with the
//!   asymptotic p-value of the two-sample test (Kolmogorov 1933, Smirnov
//!   1948; the effective-n correction of Stephens 1970 as in Numerical
//!   Recipes' `probks`). D over the quantiles is at most D over all values,
//!   so the p-value is conservative (at most 0.005 of D is lost).
//!
//! A feature has moved when its PSI reaches the policy's threshold or its KS
//! p-value falls below the policy's level divided by the number of features
//! (Bonferroni: one test per feature and check).
//!
//! Files: `profile.rs` (the stored profile, the KS p-value), `binned.rs`
//! (one feature's bins and the two measures from counts), `monitor.rs`
//! (the rolling window of counts and its checks).

mod binned;
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
