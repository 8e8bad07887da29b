//! `ClassificationSpec`: the `make_classification` parameters driftd uses,
//! and their validation.

use serde::{Deserialize, Serialize};

use super::{GenError, SpecError};

/// The parameters of scikit-learn's `make_classification` that driftd uses
/// (always `hypercube=True`, `shift=0`, `scale=1`, equal class weights).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationSpec {
    pub n_samples: usize,
    pub n_features: usize,
    pub n_informative: usize,
    pub n_redundant: usize,
    pub n_classes: usize,
    pub n_clusters_per_class: usize,
    pub class_sep: f64,
    /// Fraction of labels assigned at random (label noise).
    pub flip_y: f64,
    pub seed: u64,
}

impl ClassificationSpec {
    /// The tutorial's reference data set (scikit-learn's defaults for the
    /// parameters it does not name).
    pub fn reference(seed: u64) -> Self {
        ClassificationSpec {
            n_samples: 1000,
            n_features: 20,
            n_informative: 15,
            n_redundant: 5,
            n_classes: 2,
            n_clusters_per_class: 2,
            class_sep: 1.0,
            flip_y: 0.01,
            seed,
        }
    }

    /// `n_samples` is not checked: streams ignore it and zero rows is a
    /// valid (empty) data set.
    pub fn validate(&self) -> Result<(), GenError> {
        if self.n_features == 0 {
            return Err(SpecError::NoFeatures.into());
        }
        if self.n_informative == 0 {
            return Err(SpecError::NoInformative.into());
        }
        if self.n_informative.saturating_add(self.n_redundant) > self.n_features {
            return Err(SpecError::TooManyInformative {
                informative: self.n_informative,
                redundant: self.n_redundant,
                features: self.n_features,
            }
            .into());
        }
        if self.n_classes < 2 {
            return Err(SpecError::TooFewClasses {
                classes: self.n_classes,
            }
            .into());
        }
        if self.n_clusters_per_class == 0 {
            return Err(SpecError::NoClusters.into());
        }
        // Every cluster sits on its own hypercube vertex.
        let clusters = self.n_classes.checked_mul(self.n_clusters_per_class);
        let fits = match clusters {
            None => false,
            Some(c) => self.n_informative >= 64 || (c as u64) <= 1u64 << self.n_informative,
        };
        if !fits {
            return Err(SpecError::TooManyClusters {
                classes: self.n_classes,
                clusters_per_class: self.n_clusters_per_class,
                informative: self.n_informative,
            }
            .into());
        }
        if !self.class_sep.is_finite() || self.class_sep < 0.0 {
            return Err(SpecError::ClassSep {
                class_sep: self.class_sep,
            }
            .into());
        }
        if !(0.0..=1.0).contains(&self.flip_y) {
            return Err(SpecError::FlipY {
                flip_y: self.flip_y,
            }
            .into());
        }
        Ok(())
    }

    pub(super) fn n_clusters(&self) -> usize {
        self.n_classes * self.n_clusters_per_class
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::stream_spec;
    use super::super::*;
    use crate::model::Dataset;

    fn assert_invalid(spec: &ClassificationSpec, needle: &str) {
        match spec.validate() {
            Err(GenError::InvalidSpec(e)) => {
                let m = e.to_string();
                assert!(m.contains(needle), "{m:?} lacks {needle:?}");
            }
            other => panic!("expected InvalidSpec about {needle}, got {other:?}"),
        }
    }

    #[test]
    fn validation_errors() {
        let ok = ClassificationSpec::reference(1);
        ok.validate().unwrap();
        let bad = |f: fn(&mut ClassificationSpec)| {
            let mut s = ok.clone();
            f(&mut s);
            s
        };
        assert_invalid(
            &bad(|s| s.n_redundant = 6),
            "n_informative (15) + n_redundant (6)",
        );
        assert_invalid(&bad(|s| s.n_informative = 0), "n_informative");
        assert_invalid(&bad(|s| s.n_features = 0), "n_features");
        assert_invalid(&bad(|s| s.n_classes = 1), "n_classes");
        assert_invalid(&bad(|s| s.n_clusters_per_class = 0), "n_clusters_per_class");
        assert_invalid(
            &bad(|s| {
                s.n_informative = 2;
                s.n_classes = 3;
            }),
            "2^n_informative",
        );
        assert_invalid(
            &bad(|s| s.n_clusters_per_class = usize::MAX),
            "2^n_informative",
        );
        assert_invalid(&bad(|s| s.flip_y = 1.5), "flip_y");
        assert_invalid(&bad(|s| s.flip_y = f64::NAN), "flip_y");
        assert_invalid(&bad(|s| s.class_sep = f64::INFINITY), "class_sep");
        assert!(Concept::try_new(&bad(|s| s.n_classes = 1)).is_err());

        let dir = tempfile::tempdir().unwrap();
        let stream_err = |f: fn(&mut StreamSpec)| {
            let mut s = stream_spec(1);
            f(&mut s);
            match write_stream(dir.path(), &s) {
                Err(GenError::InvalidSpec(e)) => e.to_string(),
                other => panic!("expected InvalidSpec, got {other:?}"),
            }
        };
        assert!(stream_err(|s| s.rows = 0).contains("rows"));
        assert!(stream_err(|s| s.rows_per_file = 0).contains("rows_per_file"));
        assert!(stream_err(|s| s.drift_at = vec![2500]).contains("drift_at[0]"));
        assert!(stream_err(|s| s.drift_at = vec![900, 800]).contains("increasing"));
        assert!(stream_err(|s| {
            s.drift_at = vec![100, 200];
            s.drift_width = 150;
        })
        .contains("overlaps"));
        assert!(stream_err(|s| s.drift_magnitude = 0.0).contains("drift_magnitude"));
        assert!(stream_err(|s| s.timestamps = Some((0, 0.0))).contains("seconds_per_row"));
        assert!(stream_err(|s| s.timestamps = Some((i64::MAX / 2, 1.0))).contains("overflow"));
        assert!(stream_err(|s| s.concept.flip_y = -0.1).contains("flip_y"));
        // Nothing was written for an invalid spec.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

        let d = Dataset::new(3);
        let err = write_parquet(&dir.path().join("x.parquet"), &d, Some(&[1])).unwrap_err();
        assert!(
            matches!(
                err,
                GenError::TimestampCount {
                    timestamps: 1,
                    rows: 0
                }
            ),
            "{err}"
        );
    }
}
