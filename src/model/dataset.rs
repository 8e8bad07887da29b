//! [`Dataset`]: rows for training or scoring, with their labels, instance
//! weights and event times.

use tch::Tensor;

use super::{Architecture, ModelError};

/// Rows for training or scoring: row-major features plus integer labels,
/// and per row an instance weight and an event time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    pub width: usize,
    /// `len() * width` values, row after row.
    pub features: Vec<f32>,
    pub labels: Vec<i64>,
    /// Instance weight from the data's weight column (1 without one).
    pub weights: Vec<f32>,
    /// Event time in Unix microseconds: the timestamp column, or when the
    /// file arrived (0 for generated rows).
    pub times_us: Vec<i64>,
}

impl Dataset {
    pub fn new(width: usize) -> Self {
        Dataset {
            width,
            ..Dataset::default()
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn push_row(&mut self, row: &[f32], label: i64) {
        self.push_row_with(row, label, 1.0, 0);
    }

    pub fn push_row_with(&mut self, row: &[f32], label: i64, weight: f32, time_us: i64) {
        debug_assert_eq!(row.len(), self.width);
        self.features.extend_from_slice(row);
        self.labels.push(label);
        self.weights.push(weight);
        self.times_us.push(time_us);
    }

    /// Overwrites row `i` with row `j` of `other` (same width).
    pub fn set_row_from(&mut self, i: usize, other: &Dataset, j: usize) {
        let w = self.width;
        self.features[i * w..(i + 1) * w].copy_from_slice(other.row(j));
        self.labels[i] = other.labels[j];
        self.weights[i] = other.weights[j];
        self.times_us[i] = other.times_us[j];
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * self.width..(i + 1) * self.width]
    }

    pub fn extend(&mut self, other: &Dataset) {
        debug_assert_eq!(self.width, other.width);
        self.features.extend_from_slice(&other.features);
        self.labels.extend_from_slice(&other.labels);
        self.weights.extend_from_slice(&other.weights);
        self.times_us.extend_from_slice(&other.times_us);
    }

    /// Appends rows `start..end` of `other` (without a copy of them first).
    pub fn extend_from_rows(&mut self, other: &Dataset, start: usize, end: usize) {
        debug_assert_eq!(self.width, other.width);
        let w = self.width;
        self.features
            .extend_from_slice(&other.features[start * w..end * w]);
        self.labels.extend_from_slice(&other.labels[start..end]);
        self.weights.extend_from_slice(&other.weights[start..end]);
        self.times_us.extend_from_slice(&other.times_us[start..end]);
    }

    /// Rows `start..end`.
    pub fn slice(&self, start: usize, end: usize) -> Dataset {
        Dataset {
            width: self.width,
            features: self.features[start * self.width..end * self.width].to_vec(),
            labels: self.labels[start..end].to_vec(),
            weights: self.weights[start..end].to_vec(),
            times_us: self.times_us[start..end].to_vec(),
        }
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        let mut out = Dataset::new(self.width);
        for &i in indices {
            out.push_row_with(
                self.row(i),
                self.labels[i],
                self.weights[i],
                self.times_us[i],
            );
        }
        out
    }

    /// Keeps only the newest `n` rows.
    pub fn keep_last(&mut self, n: usize) {
        if self.len() > n {
            let drop = self.len() - n;
            self.features.drain(..drop * self.width);
            self.labels.drain(..drop);
            self.weights.drain(..drop);
            self.times_us.drain(..drop);
        }
    }

    pub(super) fn check(&self, arch: &Architecture) -> Result<(), ModelError> {
        if self.width != arch.inputs {
            return Err(ModelError::WidthMismatch {
                expected: arch.inputs,
                found: self.width,
            });
        }
        if let Some(&label) = self
            .labels
            .iter()
            .find(|&&l| l < 0 || l >= arch.classes as i64)
        {
            return Err(ModelError::LabelOutOfRange {
                label,
                classes: arch.classes as i64,
            });
        }
        Ok(())
    }

    pub(super) fn features_tensor(&self) -> Tensor {
        Tensor::from_slice(&self.features).view([self.len() as i64, self.width as i64])
    }
}
