//! Loading: the two passes that turn policy text into a typed [`Policy`]
//! while collecting every mistake (see the module documentation of
//! [`crate::config`]).

use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostics::LineIndex;
use super::{
    ConfigError, DataConfig, Diagnostic, LogConfig, MetricsConfig, ModelConfig, MonitorConfig,
    Policy, RegistryConfig, ScheduleConfig, ServiceConfig, StateConfig, TrainingConfig,
    UpdateConfig,
};

impl Policy {
    /// Reads, parses and validates a policy file, reporting every problem.
    pub fn load(path: &Path) -> Result<Policy, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Policy::parse(&text).map_err(|diagnostics| ConfigError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })
    }

    /// Parses and validates policy text; relative paths stay relative.
    pub fn parse(text: &str) -> Result<Policy, Vec<Diagnostic>> {
        let lines = LineIndex::new(text);
        let mut diags = Vec::new();
        let (root, syntax_errors) = DeTable::parse_recoverable(text);
        for e in syntax_errors {
            diags.push(lines.diagnostic(e.span(), String::new(), e.message().to_string()));
        }
        let root = root.into_inner();
        let mut clean_root = DeTable::default();
        for (section, value) in root.iter() {
            let name = section.get_ref().to_string();
            if !SECTIONS.contains(&name.as_str()) {
                diags.push(lines.diagnostic(
                    Some(section.span()),
                    name.clone(),
                    format!("unknown section, expected one of: {}", SECTIONS.join(", ")),
                ));
                continue;
            }
            let DeValue::Table(table) = value.get_ref() else {
                diags.push(lines.diagnostic(
                    Some(value.span()),
                    name.clone(),
                    format!(
                        "expected a table [{name}], found {}",
                        value.get_ref().type_str()
                    ),
                ));
                continue;
            };
            let good = match name.as_str() {
                "data" => good_keys::<DataConfig>(&name, table, &lines, &mut diags),
                "model" => good_keys::<ModelConfig>(&name, table, &lines, &mut diags),
                "training" => good_keys::<TrainingConfig>(&name, table, &lines, &mut diags),
                "monitor" => good_keys::<MonitorConfig>(&name, table, &lines, &mut diags),
                "schedule" => good_keys::<ScheduleConfig>(&name, table, &lines, &mut diags),
                "update" => good_keys::<UpdateConfig>(&name, table, &lines, &mut diags),
                "registry" => good_keys::<RegistryConfig>(&name, table, &lines, &mut diags),
                "state" => good_keys::<StateConfig>(&name, table, &lines, &mut diags),
                "log" => good_keys::<LogConfig>(&name, table, &lines, &mut diags),
                "service" => good_keys::<ServiceConfig>(&name, table, &lines, &mut diags),
                "metrics" => good_keys::<MetricsConfig>(&name, table, &lines, &mut diags),
                _ => unreachable!("checked against SECTIONS"),
            };
            clean_root.insert(
                section.clone(),
                Spanned::new(value.span(), DeValue::Table(good)),
            );
        }
        let policy: Policy = match deserialize_table(clean_root.clone(), 0..text.len()) {
            Ok(p) => p,
            Err(e) => {
                // Every key deserialized alone; a failure here is a bug in the
                // per-key pass, but still report it rather than panic.
                diags.push(lines.diagnostic(e.span(), String::new(), e.message().to_string()));
                return Err(diags);
            }
        };
        for (key, message) in policy.semantic_errors() {
            let span = span_of_key(&root, &key);
            diags.push(lines.diagnostic(span, key, message));
        }
        if diags.is_empty() {
            Ok(policy)
        } else {
            diags.sort_by_key(|d| (d.line.unwrap_or(usize::MAX), d.column.unwrap_or(0)));
            Err(diags)
        }
    }
}

const SECTIONS: &[&str] = &[
    "data", "model", "training", "monitor", "schedule", "update", "registry", "state", "log",
    "service", "metrics",
];

/// Deserializes each key of `table` alone into section type `T`, records the
/// keys that fail, and returns the table of the keys that pass.
fn good_keys<'i, T: DeserializeOwned>(
    section: &str,
    table: &DeTable<'i>,
    lines: &LineIndex,
    diags: &mut Vec<Diagnostic>,
) -> DeTable<'i> {
    let mut good = DeTable::default();
    for (key, value) in table.iter() {
        let mut single = DeTable::default();
        single.insert(key.clone(), value.clone());
        let whole = key.span().start..value.span().end;
        match deserialize_table::<T>(single, whole.clone()) {
            Ok(_) => {
                good.insert(key.clone(), value.clone());
            }
            Err(e) => {
                let span = e
                    .span()
                    .filter(|s| s.start >= whole.start && s.end <= whole.end)
                    .unwrap_or(key.span());
                let path = format!("{section}.{}", key.get_ref());
                let message = friendlier(e.message());
                diags.push(lines.diagnostic(Some(span), path, message));
            }
        }
    }
    good
}

fn friendlier(message: &str) -> String {
    // serde says "unknown field `x`, expected one of ..."; keep it but drop
    // the repeated key name since the diagnostic already names it.
    message.trim().to_string()
}

fn deserialize_table<T: DeserializeOwned>(
    table: DeTable<'_>,
    span: Range<usize>,
) -> Result<T, toml::de::Error> {
    let spanned = Spanned::new(span, table);
    T::deserialize(toml::de::Deserializer::from(spanned))
}

/// Span of the value at a dotted key (`a.b.c`), or of the deepest table on
/// the way when the key itself is absent (a default was used).
fn span_of_key(root: &DeTable<'_>, dotted: &str) -> Option<Range<usize>> {
    let mut table = root;
    let mut best = None;
    let parts: Vec<&str> = dotted.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        // `name[3]` steps into the fourth element of an array of tables.
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (*part, None),
        };
        let (key, mut value) = table.iter().find(|(k, _)| k.get_ref() == name)?;
        if let (Some(ix), DeValue::Array(items)) = (index, value.get_ref()) {
            match items.get(ix) {
                Some(item) => value = item,
                None => return Some(key.span()),
            }
        }
        best = Some(if i + 1 == parts.len() {
            value.span()
        } else {
            key.span()
        });
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => return best,
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_error_with_its_line() {
        let text = "\
[data]
features = [\"x\", \"label\"]
colour = \"blue\"
[training]
learning_rate = -0.5
epochs = \"many\"
[model]
hidden = [20, 0]
";
        let diags = Policy::parse(text).unwrap_err();
        let lines: Vec<_> = diags.iter().map(|d| (d.line, d.key.as_str())).collect();
        assert!(lines.contains(&(Some(2), "data.features")), "{diags:?}");
        assert!(lines.contains(&(Some(3), "data.colour")), "{diags:?}");
        assert!(
            lines.contains(&(Some(5), "training.learning_rate")),
            "{diags:?}"
        );
        assert!(lines.contains(&(Some(6), "training.epochs")), "{diags:?}");
        assert!(lines.contains(&(Some(8), "model.hidden")), "{diags:?}");
        assert_eq!(diags.len(), 5, "{diags:?}");
    }

    #[test]
    fn unknown_section_and_syntax_errors_are_reported() {
        let diags = Policy::parse("[nope]\na = 1\n[data]\nfeatures = [\"a\"\n").unwrap_err();
        assert!(diags.iter().any(|d| d.key == "nope"), "{diags:?}");
        assert!(diags.iter().any(|d| d.line == Some(4)), "{diags:?}");
    }

    #[test]
    fn unknown_strategy_is_named() {
        let diags =
            Policy::parse("[data]\nfeatures = [\"a\"]\n[update]\ncandidates = [\"magic\"]\n")
                .unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].line, Some(4));
        assert!(diags[0].message.contains("magic"), "{diags:?}");
    }
}
