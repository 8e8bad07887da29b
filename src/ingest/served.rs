//! What the deployed model served for each row (`data.prediction` /
//! `data.probability`), as the monitor needs it.

use polars::prelude::*;

use super::columns::{class_values, column, f32_column};
use super::problem::FileProblem;
use super::schema::Schema;
use crate::model;

/// What the deployed model served for the rows of a batch, as the monitor
/// needs it. A row whose served values are missing or invalid (null, a
/// probability outside [0, 1], a class that is not one) is not `valid`: the
/// monitor scores it with the live model instead.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Served {
    pub predicted: Vec<u32>,
    /// Served probability of the row's true label (1 or 0 when only the
    /// class was served).
    pub p_label: Vec<f32>,
    /// Served probability of class 1 (binary models).
    pub p_positive: Vec<f32>,
    pub valid: Vec<bool>,
}

impl Served {
    pub fn invalid_rows(&self) -> usize {
        self.valid.iter().filter(|v| !**v).count()
    }

    pub(super) fn reorder(&self, order: &[usize]) -> Served {
        Served {
            predicted: order.iter().map(|&i| self.predicted[i]).collect(),
            p_label: order.iter().map(|&i| self.p_label[i]).collect(),
            p_positive: order.iter().map(|&i| self.p_positive[i]).collect(),
            valid: order.iter().map(|&i| self.valid[i]).collect(),
        }
    }
}

/// What was served, per row (see [`Served`]); `None` without served
/// columns.
pub(super) fn served_values(
    df: &DataFrame,
    schema: &Schema,
    labels: &[i64],
) -> Result<Option<Served>, FileProblem> {
    if !schema.has_served() {
        return Ok(None);
    }
    let n = df.height();
    let classes = schema.classes as usize;
    let mut valid = vec![true; n];
    let served_class = match &schema.prediction {
        Some(name) => {
            let (values, nulls, outside) = class_values(column(df, name)?, schema)?;
            for r in nulls.into_iter().chain(outside.into_iter().map(|(r, _)| r)) {
                valid[r] = false;
            }
            Some(values)
        }
        None => None,
    };
    let mut probability_columns = Vec::with_capacity(schema.probability.len());
    for name in &schema.probability {
        let ca = f32_column(df, name)?;
        let values: Vec<f32> = ca
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                Some(p) if (0.0..=1.0).contains(&p) => p,
                _ => {
                    valid[row] = false;
                    0.0
                }
            })
            .collect();
        probability_columns.push(values);
    }
    let mut served = Served {
        predicted: Vec::with_capacity(n),
        p_label: Vec::with_capacity(n),
        p_positive: Vec::with_capacity(n),
        valid,
    };
    let mut probs = vec![0.0f32; classes];
    for (row, &label) in labels.iter().enumerate() {
        let has_probs = match probability_columns.as_slice() {
            [] => false,
            [positive] => {
                probs[0] = 1.0 - positive[row];
                probs[1] = positive[row];
                true
            }
            per_class => {
                for (p, column) in probs.iter_mut().zip(per_class) {
                    *p = column[row];
                }
                true
            }
        };
        let predicted = match &served_class {
            Some(values) => values[row] as usize,
            None => model::predicted_class(&probs),
        };
        let hard = |class: usize| if predicted == class { 1.0 } else { 0.0 };
        let (p_label, p_positive) = if has_probs {
            (probs[label as usize], probs.get(1).copied().unwrap_or(0.0))
        } else {
            (hard(label as usize), hard(1))
        };
        served.predicted.push(predicted as u32);
        served.p_label.push(p_label);
        served.p_positive.push(p_positive);
    }
    Ok(Some(served))
}

#[cfg(test)]
#[path = "served_tests.rs"]
mod tests;
