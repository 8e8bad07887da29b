//! The columns taken from each file (from the policy or a version) and the
//! checks of a file's columns and types against them.

use std::collections::BTreeMap;

use polars::prelude::*;

use super::columns::column;
use super::problem::FileProblem;
use crate::config::{BadRows, Policy};

/// The columns to take from each file, and how to treat bad rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub features: Vec<String>,
    pub label: String,
    pub classes: i64,
    /// Optional event-time column.
    pub timestamp: Option<String>,
    /// Optional instance-weight column.
    pub weight: Option<String>,
    /// Optional row-id column: named in bad-row messages.
    pub row_id: Option<String>,
    /// String label values in class order (empty: integer labels).
    pub class_names: Vec<String>,
    /// Optional column of the class that was served.
    pub prediction: Option<String>,
    /// Served probability columns: none, class 1's (binary), or one per
    /// class.
    pub probability: Vec<String>,
    pub bad_rows: BadRows,
}

impl Schema {
    /// A schema for the given columns with integer labels, quarantining
    /// bad rows.
    pub fn new(features: Vec<String>, label: String, classes: i64) -> Schema {
        Schema {
            features,
            label,
            classes,
            timestamp: None,
            weight: None,
            row_id: None,
            class_names: Vec::new(),
            prediction: None,
            probability: Vec::new(),
            bad_rows: BadRows::Quarantine,
        }
    }

    fn with_policy(features: Vec<String>, label: String, classes: i64, policy: &Policy) -> Schema {
        Schema {
            timestamp: policy.data.timestamp.clone(),
            weight: policy.data.weight.clone(),
            row_id: policy.data.row_id.clone(),
            class_names: policy.data.classes.clone(),
            prediction: policy.data.prediction.clone(),
            probability: policy
                .data
                .probability
                .as_ref()
                .map(crate::config::ServedProbability::columns)
                .unwrap_or_default(),
            bad_rows: policy.data.bad_rows,
            ..Schema::new(features, label, classes)
        }
    }

    /// For a list of features the schema is known up front; for a pattern it
    /// is fixed by the first file read (see [`Schema::resolve`]).
    pub fn from_policy(policy: &Policy) -> Option<Schema> {
        match &policy.data.features {
            crate::config::FeatureSpec::List(list) => Some(Schema::with_policy(
                list.clone(),
                policy.data.label.clone(),
                policy.model.classes,
                policy,
            )),
            crate::config::FeatureSpec::Pattern(_) => None,
        }
    }

    pub fn resolve(policy: &Policy, columns: &[String]) -> Schema {
        Schema::with_policy(
            policy.select_features(columns),
            policy.data.label.clone(),
            policy.model.classes,
            policy,
        )
    }

    /// The schema a version was trained with, with the policy's optional
    /// columns.
    pub fn of_version(meta: &crate::registry::VersionMeta, policy: &Policy) -> Schema {
        Schema::with_policy(
            meta.features.clone(),
            meta.label.clone(),
            meta.architecture.classes as i64,
            policy,
        )
    }

    /// Every column read, features first.
    pub(super) fn columns(&self) -> Vec<String> {
        let mut columns = self.features.clone();
        columns.push(self.label.clone());
        columns.extend(self.timestamp.iter().cloned());
        columns.extend(self.weight.iter().cloned());
        columns.extend(self.row_id.iter().cloned());
        columns.extend(self.prediction.iter().cloned());
        columns.extend(self.probability.iter().cloned());
        columns
    }

    /// Whether files carry what the deployed model served.
    pub fn has_served(&self) -> bool {
        self.prediction.is_some() || !self.probability.is_empty()
    }
}

/// Arrow types (by their Debug name prefix) that the polars build, with
/// only the dtype features driftd enables, cannot load.
const UNLOADABLE_TYPES: &[&str] = &["Float16", "Time32", "Time64", "Duration", "Interval"];

/// Checks that every column read (`columns`) is in the file's schema,
/// with a type this build can load.
pub(super) fn check_columns(
    columns: &[String],
    arrow_schema: &ArrowSchema,
) -> Result<(), FileProblem> {
    let available: Vec<String> = arrow_schema.iter_names().map(|n| n.to_string()).collect();
    for c in columns {
        let Some(field) = arrow_schema.get(c.as_str()) else {
            return Err(FileProblem::MissingColumn {
                column: c.clone(),
                available: available.join(", "),
            });
        };
        // Types polars is built without (its dtype-* features): say
        // so instead of its "cannot create series" error.
        let arrow_type = format!("{:?}", field.dtype);
        if UNLOADABLE_TYPES.iter().any(|t| arrow_type.starts_with(t)) {
            return Err(FileProblem::WrongType {
                column: c.clone(),
                found: format!("{arrow_type} (not loadable by this build)"),
                expected: "an integer, float, double, decimal, boolean, string, date or timestamp"
                    .into(),
            });
        }
    }
    Ok(())
}

fn is_number(dtype: &DataType) -> bool {
    dtype.is_primitive_numeric() || dtype.is_bool() || dtype.is_decimal()
}

/// Checks each column's type; returns the types (to record from the first
/// file).
pub(super) fn check_types(
    df: &DataFrame,
    schema: &Schema,
    recorded: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, FileProblem> {
    let mut types = BTreeMap::new();
    let expected = |name: &str, what: &str| match recorded.get(name) {
        Some(t) => format!("{what} (the recorded schema has {t})"),
        None => what.to_string(),
    };
    let wrong = |name: &str, dtype: &DataType, what: &str| FileProblem::WrongType {
        column: name.to_string(),
        found: dtype.to_string(),
        expected: expected(name, what),
    };
    let features = schema.features.iter().chain(schema.weight.iter());
    for name in features {
        let dtype = column(df, name)?.dtype();
        if !is_number(dtype) {
            return Err(wrong(name, dtype, "a number or boolean"));
        }
        types.insert(name.clone(), dtype.to_string());
    }
    let dtype = column(df, &schema.label)?.dtype();
    let label_ok = dtype.is_integer()
        || dtype.is_bool()
        || (!schema.class_names.is_empty() && dtype.is_string());
    if !label_ok {
        let what = if schema.class_names.is_empty() {
            "an integer class label (set data.classes for string labels)"
        } else {
            "an integer class label or one of data.classes"
        };
        return Err(wrong(&schema.label, dtype, what));
    }
    types.insert(schema.label.clone(), dtype.to_string());
    if let Some(id) = &schema.row_id {
        let dtype = column(df, id)?.dtype();
        if !(dtype.is_integer() || dtype.is_string()) {
            return Err(wrong(id, dtype, "integers or strings (a row id)"));
        }
        types.insert(id.clone(), dtype.to_string());
    }
    if let Some(p) = &schema.prediction {
        let dtype = column(df, p)?.dtype();
        let ok = dtype.is_integer()
            || dtype.is_bool()
            || (!schema.class_names.is_empty() && dtype.is_string());
        if !ok {
            return Err(wrong(
                p,
                dtype,
                "an integer class or one of data.classes (the served class)",
            ));
        }
        types.insert(p.clone(), dtype.to_string());
    }
    for p in &schema.probability {
        let dtype = column(df, p)?.dtype();
        if !dtype.is_float() {
            return Err(wrong(
                p,
                dtype,
                "a float probability (the served probability)",
            ));
        }
        types.insert(p.clone(), dtype.to_string());
    }
    if let Some(ts) = &schema.timestamp {
        let dtype = column(df, ts)?.dtype();
        if !(matches!(dtype, DataType::Datetime(..) | DataType::Date)
            || dtype.is_primitive_numeric())
        {
            return Err(wrong(ts, dtype, "a datetime, a date or Unix seconds"));
        }
        types.insert(ts.clone(), dtype.to_string());
    }
    Ok(types)
}
