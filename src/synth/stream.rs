//! Drifting streams: `StreamSpec` (drift points, abrupt or gradual, file
//! size, timestamps) and the rows it yields, chunk by chunk.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::concept::RowBuf;
use super::{ClassificationSpec, Concept, GenError, SpecError, STREAM_DRIFT_SEEDS, STREAM_ROWS};
use crate::model::Dataset;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSpec {
    pub rows: usize,
    /// `n_samples` is ignored.
    pub concept: ClassificationSpec,
    /// Row positions where the concept changes (strictly increasing).
    pub drift_at: Vec<usize>,
    /// 0 = abrupt; otherwise gradual: over `drift_width` rows starting at
    /// the drift point, each row comes from the new concept with probability
    /// rising linearly 0 -> 1.
    pub drift_width: usize,
    /// Passed to [`Concept::drifted`].
    pub drift_magnitude: f64,
    pub rows_per_file: usize,
    /// When `Some((start_unix_seconds, seconds_per_row))`, a `ts` column
    /// (Datetime(Microseconds, no time zone)) is written: row `r` is at
    /// `start + r * seconds_per_row`, so each file covers one interval of
    /// `rows_per_file * seconds_per_row` seconds.
    pub timestamps: Option<(i64, f64)>,
    /// Decides the rows, the transitions and the drifted concepts; the first
    /// concept comes from `concept.seed`.
    pub seed: u64,
}

impl StreamSpec {
    pub fn validate(&self) -> Result<(), GenError> {
        self.concept.validate()?;
        if self.rows == 0 {
            return Err(SpecError::NoRows.into());
        }
        if self.rows_per_file == 0 {
            return Err(SpecError::NoRowsPerFile.into());
        }
        for (i, &d) in self.drift_at.iter().enumerate() {
            if d >= self.rows {
                return Err(SpecError::DriftOutside {
                    index: i,
                    at: d,
                    rows: self.rows,
                }
                .into());
            }
            if let Some(&next) = self.drift_at.get(i + 1) {
                if d.saturating_add(self.drift_width) > next {
                    return Err(SpecError::DriftOverlap {
                        index: i,
                        at: d,
                        width: self.drift_width,
                        next,
                    }
                    .into());
                }
                if d == next {
                    return Err(SpecError::DriftTwice { at: d }.into());
                }
            }
        }
        // Written so that NaN is rejected too.
        let magnitude_ok = self.drift_magnitude > 0.0 && self.drift_magnitude <= 1.0;
        if !self.drift_at.is_empty() && !magnitude_ok {
            return Err(SpecError::DriftMagnitude {
                magnitude: self.drift_magnitude,
            }
            .into());
        }
        if let Some((start, step)) = self.timestamps {
            if !step.is_finite() || step <= 0.0 {
                return Err(SpecError::SecondsPerRow { step }.into());
            }
            let end = start as f64 + self.rows as f64 * step;
            // i64 microseconds cover about +-292,000 years.
            if end.abs().max((start as f64).abs()) * 1e6 >= 9.2e18 {
                return Err(SpecError::TimestampOverflow { start, step }.into());
            }
        }
        Ok(())
    }

    pub(super) fn timestamp_us(&self, row: usize) -> Option<i64> {
        self.timestamps
            .map(|(start, step)| start * 1_000_000 + (row as f64 * step * 1e6).round() as i64)
    }
}

/// Draws a stream's rows chunk by chunk so that long streams never sit in
/// memory whole; also reports which concept produced each row (for tests).
pub(super) struct StreamRows<'a> {
    spec: &'a StreamSpec,
    concepts: Vec<Concept>,
    rng: ChaCha8Rng,
    /// A shuffled block of all cluster ids: drawing clusters block by block
    /// keeps classes balanced everywhere in the stream, not just overall.
    block: Vec<usize>,
    next: usize,
    buf: RowBuf,
}

impl<'a> StreamRows<'a> {
    pub(super) fn new(spec: &'a StreamSpec) -> Result<Self, GenError> {
        spec.validate()?;
        let mut concepts = vec![Concept::try_new(&spec.concept)?];
        let mut seeds = ChaCha8Rng::seed_from_u64(spec.seed);
        seeds.set_stream(STREAM_DRIFT_SEEDS);
        for _ in &spec.drift_at {
            let prev = concepts.last().expect("starts with one concept");
            let next = prev.drifted(spec.drift_magnitude, seeds.random());
            concepts.push(next);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        rng.set_stream(STREAM_ROWS);
        Ok(StreamRows {
            spec,
            concepts,
            rng,
            block: Vec::new(),
            next: 0,
            buf: RowBuf::new(&spec.concept),
        })
    }

    /// Which concept produces row `r` (draws from the RNG inside a gradual
    /// transition).
    fn concept_for(&mut self, r: usize) -> usize {
        let passed = self.spec.drift_at.iter().take_while(|&&d| d <= r).count();
        if passed == 0 {
            return 0;
        }
        let start = self.spec.drift_at[passed - 1];
        let width = self.spec.drift_width;
        if r - start < width {
            let p = (r - start) as f64 / width as f64;
            if self.rng.random::<f64>() < p {
                passed
            } else {
                passed - 1
            }
        } else {
            passed
        }
    }

    /// The next `n` rows and the concept index of each.
    pub(super) fn chunk(&mut self, n: usize) -> (Dataset, Vec<usize>) {
        let width = self.spec.concept.n_features;
        let mut data = Dataset::new(width);
        data.features.reserve(n * width);
        data.labels.reserve(n);
        let mut origin = Vec::with_capacity(n);
        for r in self.next..self.next + n {
            if self.block.is_empty() {
                self.block = (0..self.concepts[0].clusters.len()).collect();
                self.block.shuffle(&mut self.rng);
            }
            let k = self.block.pop().expect("refilled above");
            let c = self.concept_for(r);
            let label = self.concepts[c].draw_row(k, &mut self.rng, &mut self.buf);
            data.push_row(&self.buf.out, label);
            origin.push(c);
        }
        self.next += n;
        (data, origin)
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
