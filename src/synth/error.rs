//! The generator's error types.

use std::path::{Path, PathBuf};

use polars::prelude::PolarsError;

use super::Generator;

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Polars { path: PathBuf, source: PolarsError },
    #[error("invalid generator spec: {0}")]
    InvalidSpec(#[from] SpecError),
    /// A data set given to [`write_parquet`](super::write_parquet) whose
    /// values do not make whole rows.
    #[error("data set has {values} values for {rows} rows of width {width}")]
    DataShape {
        values: usize,
        rows: usize,
        width: usize,
    },
    /// Timestamps given to [`write_parquet`](super::write_parquet) that are
    /// not one per row.
    #[error("{timestamps} timestamps for {rows} rows")]
    TimestampCount { timestamps: usize, rows: usize },
}

/// What is wrong with a generator spec ([`ClassificationSpec`](super::ClassificationSpec),
/// [`StreamSpec`](super::StreamSpec) or [`LiteratureSpec`](super::LiteratureSpec)).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    // ClassificationSpec
    #[error("n_features must be at least 1")]
    NoFeatures,
    #[error("n_informative must be at least 1")]
    NoInformative,
    #[error(
        "n_informative ({informative}) + n_redundant ({redundant}) must be at most n_features \
         ({features})"
    )]
    TooManyInformative {
        informative: usize,
        redundant: usize,
        features: usize,
    },
    #[error("n_classes is {classes}; a classifier needs at least 2")]
    TooFewClasses { classes: usize },
    #[error("n_clusters_per_class must be at least 1")]
    NoClusters,
    #[error(
        "n_classes ({classes}) * n_clusters_per_class ({clusters_per_class}) must be at most \
         2^n_informative (n_informative = {informative})"
    )]
    TooManyClusters {
        classes: usize,
        clusters_per_class: usize,
        informative: usize,
    },
    #[error("class_sep is {class_sep}; it must be a finite number >= 0")]
    ClassSep { class_sep: f64 },
    #[error("flip_y is {flip_y}; it must be in [0, 1]")]
    FlipY { flip_y: f64 },

    // StreamSpec
    #[error("rows must be at least 1")]
    NoRows,
    #[error("rows_per_file must be at least 1")]
    NoRowsPerFile,
    #[error("drift_at[{index}] = {at} is not a row of the stream (rows = {rows})")]
    DriftOutside {
        index: usize,
        at: usize,
        rows: usize,
    },
    #[error(
        "drift_at[{index}] = {at} with drift_width {width} overlaps the next drift at {next}; \
         drift points must be increasing and at least drift_width apart"
    )]
    DriftOverlap {
        index: usize,
        at: usize,
        width: usize,
        next: usize,
    },
    #[error("drift_at has {at} twice")]
    DriftTwice { at: usize },
    #[error("drift_magnitude is {magnitude}; it must be in (0, 1]")]
    DriftMagnitude { magnitude: f64 },
    #[error("seconds_per_row is {step}; it must be a finite number > 0")]
    SecondsPerRow { step: f64 },
    #[error("timestamps starting at {start} s with {step} s per row overflow microseconds")]
    TimestampOverflow { start: i64, step: f64 },

    // LiteratureSpec
    #[error("rows and rows_per_file must be at least 1")]
    NoRowsOrRowsPerFile,
    #[error("noise is {noise}; it must be in [0, 0.5]")]
    Noise { noise: f64 },
    #[error("gradual drift needs a width of at least 1 row")]
    NoGradualWidth,
    #[error("{drifts} drifts do not fit in {rows} rows")]
    TooManyDrifts { drifts: usize, rows: usize },
    #[error("features is {features}; the hyperplane and RBF generators take 2 to 1000")]
    FeatureCount { features: usize },
    #[error("{generator:?} has discrete concepts: use abrupt, gradual or recurring drift")]
    DiscreteConcepts { generator: Generator },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GenError + '_ {
    move |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}
