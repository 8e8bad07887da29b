//! Synthetic data: a scikit-learn style `make_classification`, drifted
//! concepts, drifting streams written as Parquet files, and the drift
//! generators of the stream-learning literature (`literature`).
//!
//! Everything is driven by `ChaCha8Rng` seeded from the specs, so a spec
//! always yields bit-identical rows (for a given build of `rand`). Separate
//! ChaCha streams are used for the concept's parameters, its rows and the
//! drift seeds so that e.g. changing `flip_y` or `rows` never moves a
//! centroid.

mod concept;
mod error;
mod literature;
mod parquet;
mod spec;
mod stream;

#[cfg(test)]
mod test_support;

pub use concept::{make_classification, Concept};
use error::io_err;
pub use error::{GenError, SpecError};
pub use literature::{
    write_literature_stream, DriftKind, Generator, LiteratureRows, LiteratureSpec,
};
use parquet::write_files;
pub use parquet::{feature_names, write_parquet, write_stream};
pub use spec::ClassificationSpec;
pub use stream::StreamSpec;

/// ChaCha stream ids: one per purpose, so the draws of one never shift another.
const STREAM_CONCEPT: u64 = 0;
const STREAM_ROWS: u64 = 1;
const STREAM_DRIFT: u64 = 2;
const STREAM_DRIFT_SEEDS: u64 = 3;
