//! A grid point applied to the policy's TOML document (not to the parsed
//! policy, so that the user's other settings and comments stay as written),
//! then checked as `check-config` checks a file.

use std::path::Path;

use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

use super::grid::{point_place, Point};
use crate::config::Policy;

/// The sections a grid may override. `[data]` describes the history being
/// replayed; the others (registry, state, log, service, metrics) do not
/// change a replay.
pub const TUNABLE_SECTIONS: &[&str] = &["model", "training", "monitor", "schedule", "update"];

/// The policy document with `point`'s overrides, and the policy it parses
/// to (relative directories resolved against `base_dir`, as for the file
/// itself). Every problem names the point (`number`, 1-based) and the key.
pub fn apply(
    doc: &DocumentMut,
    point: &Point,
    number: usize,
    base_dir: &Path,
) -> Result<(DocumentMut, Policy), Vec<String>> {
    let at = point_place(number, point.name.as_deref());
    let mut doc = doc.clone();
    let mut problems = Vec::new();
    for o in &point.overrides {
        let path: Vec<&str> = o.key.split('.').collect();
        if !TUNABLE_SECTIONS.contains(&path[0]) || path.len() < 2 {
            problems.push(format!(
                "{at}: {}: only keys of {} can be tuned",
                o.key,
                TUNABLE_SECTIONS
                    .iter()
                    .map(|s| format!("[{s}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        if let Err(e) = set(doc.as_item_mut(), &path, o.value.clone()) {
            problems.push(format!("{at}: {}: {e}", o.key));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    match Policy::parse(&doc.to_string()) {
        Ok(mut policy) => {
            policy.resolve_paths(base_dir);
            Ok((doc, policy))
        }
        Err(diagnostics) => Err(diagnostics
            .into_iter()
            .map(|d| {
                if d.key.is_empty() {
                    format!("{at}: {}", d.message)
                } else {
                    format!("{at}: {}: {}", d.key, d.message)
                }
            })
            .collect()),
    }
}

/// Sets the value at `path` under `item` (a table or an inline table),
/// creating missing tables on the way; a value replacing another keeps its
/// place and the comment after it.
fn set(item: &mut Item, path: &[&str], value: Value) -> Result<(), String> {
    let (first, rest) = path.split_first().expect("a non-empty path");
    if rest.is_empty() {
        let table = item.as_table_like_mut().ok_or("not in a table")?;
        match table.get_mut(first) {
            Some(Item::Value(old)) => {
                let decor = old.decor().clone();
                *old = value;
                *old.decor_mut() = decor;
            }
            Some(other) => *other = Item::Value(value),
            None => {
                table.insert(first, Item::Value(value));
            }
        }
        return Ok(());
    }
    let inline = matches!(item, Item::Value(_));
    let table = item.as_table_like_mut().ok_or("not in a table")?;
    let child = table.entry(first).or_insert_with(|| {
        if inline {
            Item::Value(Value::InlineTable(InlineTable::new()))
        } else {
            let mut t = Table::new();
            // Shown only if it gets keys of its own.
            t.set_implicit(true);
            Item::Table(t)
        }
    });
    if !child.is_table_like() {
        return Err(format!(
            "{first} holds a value ({}), not a table",
            child.type_name()
        ));
    }
    set(child, rest, value)
}

#[cfg(test)]
mod tests {
    use super::super::grid;
    use super::*;

    const BASE: &str = r#"# my policy
[data]
features = ["a", "b"]   # two features
dir = "incoming"

[update]
# wait this long
min_new_rows = 500 # rows
candidates = ["refit_new"]
fine_tune = { learning_rate = 0.001 }
"#;

    fn point(text: &str) -> Point {
        grid::parse(&format!("point = [{text}]\n"), "g")
            .unwrap()
            .remove(0)
    }

    fn applied(text: &str) -> Result<(String, Policy), Vec<String>> {
        let doc: DocumentMut = BASE.parse().unwrap();
        apply(&doc, &point(text), 1, Path::new("/base")).map(|(d, p)| (d.to_string(), p))
    }

    #[test]
    fn an_override_keeps_the_other_settings_and_the_comments() {
        let (text, policy) = applied("{ update.min_new_rows = 1000 }").unwrap();
        assert_eq!(policy.update.min_new_rows, 1000);
        assert_eq!(text, BASE.replace("500 # rows", "1000 # rows"));
        assert_eq!(policy.data.dir, Path::new("/base/incoming"));
    }

    #[test]
    fn missing_tables_and_inline_tables_are_filled_in() {
        let (text, policy) = applied(
            "{ update.rollback.watch_rows = 300, update.fine_tune.epochs = 7, schedule.enabled = false }",
        )
        .unwrap();
        assert_eq!(policy.update.rollback.watch_rows, 300);
        assert_eq!(policy.update.fine_tune.epochs, 7);
        assert_eq!(policy.update.fine_tune.learning_rate, 0.001);
        assert!(!policy.schedule.enabled);
        assert!(
            text.contains("fine_tune = { learning_rate = 0.001 , epochs = 7 }")
                || text.contains("fine_tune = { learning_rate = 0.001, epochs = 7 }"),
            "{text}"
        );
        assert!(
            text.contains("[update.rollback]\nwatch_rows = 300"),
            "{text}"
        );
        assert!(text.contains("[schedule]\nenabled = false"), "{text}");
        assert!(!text.contains("[update.rollback]\n\n"), "{text}");
    }

    #[test]
    fn a_bad_point_names_itself_and_the_key() {
        let e = applied("{ name = \"typo\", update.min_new_rowz = 5 }").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("point 1 (typo): update.min_new_rowz: unknown field"),
            "{e:?}"
        );
        let e = applied("{ training.learning_rate = -1.0 }").unwrap_err();
        assert!(
            e[0].starts_with("point 1: training.learning_rate: is -1"),
            "{e:?}"
        );
        let e = applied("{ update.min_new_rows.x = 5 }").unwrap_err();
        assert!(
            e[0].contains(
                "update.min_new_rows.x: min_new_rows holds a value (integer), not a table"
            ),
            "{e:?}"
        );
        let e = applied("{ data.initial_rows = 5 }").unwrap_err();
        assert!(
            e[0].contains("data.initial_rows: only keys of [model]"),
            "{e:?}"
        );
        let e = applied("{ update = 5 }").unwrap_err();
        assert!(e[0].contains("update: only keys"), "{e:?}");
    }
}
