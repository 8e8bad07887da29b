//! The training buffers: the rows since the live version ([`NewRows`]) and a
//! bounded sample of the rows older versions were trained on ([`Reservoir`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::Dataset;

/// A bounded uniform sample (Vitter's Algorithm R) of rows older versions
/// were trained on.
#[derive(Debug, Clone)]
pub struct Reservoir {
    pub(crate) rows: Dataset,
    capacity: usize,
    seen: u64,
    rng: ChaCha8Rng,
}

impl Reservoir {
    pub(crate) fn new(width: usize, capacity: usize, seed: u64) -> Self {
        Reservoir {
            rows: Dataset::new(width),
            capacity,
            seen: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    pub(crate) fn add(&mut self, data: &Dataset) {
        self.add_rows(data, 0..data.len());
    }

    /// Adds rows `range` of `data`, in order.
    pub(crate) fn add_rows(&mut self, data: &Dataset, range: std::ops::Range<usize>) {
        for i in range {
            self.seen += 1;
            if self.rows.len() < self.capacity {
                self.rows.push_row_with(
                    data.row(i),
                    data.labels[i],
                    data.weights[i],
                    data.times_us[i],
                );
            } else {
                let j = self.rng.random_range(0..self.seen) as usize;
                if j < self.capacity {
                    self.rows.set_row_from(j, data, i);
                }
            }
        }
    }
}

/// Rows that arrived since the live version, with global row numbers.
#[derive(Debug, Clone)]
pub struct NewRows {
    pub(crate) rows: Dataset,
    /// Global number of `rows`' first row.
    pub(crate) first: u64,
}

impl NewRows {
    pub(crate) fn end(&self) -> u64 {
        self.first + self.rows.len() as u64
    }

    /// Rows with global number >= `from`.
    pub(crate) fn since(&self, from: u64) -> Dataset {
        let start = from.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        self.rows.slice(start, self.rows.len())
    }

    pub(crate) fn before(&self, until: u64) -> Dataset {
        let end = until.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        self.rows.slice(0, end)
    }

    pub(crate) fn drop_before(&mut self, until: u64) {
        let end = until.saturating_sub(self.first).min(self.rows.len() as u64) as usize;
        let keep = self.rows.len() - end;
        self.rows.keep_last(keep);
        self.first += end as u64;
    }
}
