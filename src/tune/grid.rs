//! The grid: points, each a set of overrides of policy keys by dotted path,
//! read from the built-in grid (`config/tune-grid.toml`) or the user's file.
//!
//! A grid file holds `point`, an array of tables (`[[point]]`, or inline
//! tables one a line). In a point, `name` (optional) labels it; every other
//! key is an override, written as TOML writes nested keys
//! (`update.min_new_rows = 1000`, `[point.update]` sub-tables, or a quoted
//! `"update.min_new_rows"`): the point is flattened to its leaves, and an
//! array (`monitor.detectors = [...]`) is one leaf.

use toml_edit::{DocumentMut, Item, TableLike, Value};

use super::TuneError;

/// The built-in grid (one point a line: a new point is one line).
pub const DEFAULT_GRID: &str = include_str!("../../config/tune-grid.toml");

/// One point of the grid.
#[derive(Debug, Clone)]
pub struct Point {
    pub name: Option<String>,
    pub overrides: Vec<Override>,
}

/// One override: a policy key by dotted path and its new value.
#[derive(Debug, Clone)]
pub struct Override {
    pub key: String,
    /// Without its surrounding whitespace and comments.
    pub value: Value,
}

impl Override {
    /// `key = value`, as TOML.
    pub fn text(&self) -> String {
        format!("{} = {}", self.key, self.value_text())
    }

    /// The value as TOML.
    pub fn value_text(&self) -> String {
        self.value.to_string().trim().to_string()
    }
}

impl Point {
    /// Its name and overrides on one line.
    pub fn label(&self) -> String {
        let overrides: Vec<String> = self.overrides.iter().map(Override::text).collect();
        match &self.name {
            Some(name) => format!("{name}: {}", overrides.join(", ")),
            None => overrides.join(", "),
        }
    }
}

/// Parses a grid file's text; `grid` names it in errors.
pub fn parse(text: &str, grid: &str) -> Result<Vec<Point>, TuneError> {
    let fail = |problems: Vec<String>| TuneError::Grid {
        grid: grid.to_string(),
        problems,
    };
    let doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| fail(vec![e.to_string().trim_end().to_string()]))?;
    let mut problems = Vec::new();
    for (key, _) in doc.iter() {
        if key != "point" {
            problems.push(format!(
                "unknown key `{key}`; a grid holds only `point` (an array of tables)"
            ));
        }
    }
    let tables: Vec<&dyn TableLike> = match doc.get("point") {
        None => Vec::new(),
        Some(Item::ArrayOfTables(a)) => a.iter().map(|t| t as &dyn TableLike).collect(),
        Some(Item::Value(Value::Array(a))) => {
            let mut tables = Vec::new();
            for (i, v) in a.iter().enumerate() {
                match v.as_inline_table() {
                    Some(t) => tables.push(t as &dyn TableLike),
                    None => problems.push(format!(
                        "point {}: expected a table of overrides, found {}",
                        i + 1,
                        v.type_name()
                    )),
                }
            }
            tables
        }
        Some(other) => {
            problems.push(format!(
                "`point` must be an array of tables ([[point]]), found {}",
                other.type_name()
            ));
            Vec::new()
        }
    };
    if tables.is_empty() && problems.is_empty() {
        problems.push(
            "no points; add [[point]] tables of overrides (the policy as given is always tried)"
                .into(),
        );
    }
    let mut points = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let mut point = Point {
            name: None,
            overrides: Vec::new(),
        };
        let mut here = Vec::new();
        for (key, item) in table.iter() {
            if key == "name" {
                match item.as_str() {
                    Some(s) => point.name = Some(s.to_string()),
                    None => here.push(format!(
                        "name: expected a string, found {}",
                        item.type_name()
                    )),
                }
                continue;
            }
            flatten(key, item, &mut point.overrides, &mut here);
        }
        if point.overrides.is_empty() && here.is_empty() {
            here.push("no overrides (the policy as given is always tried)".into());
        }
        let at = point_place(i + 1, point.name.as_deref());
        problems.extend(here.into_iter().map(|p| format!("{at}: {p}")));
        points.push(point);
    }
    if problems.is_empty() {
        Ok(points)
    } else {
        Err(fail(problems))
    }
}

/// "point 3" or "point 3 (its name)".
pub fn point_place(number: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("point {number} ({n})"),
        None => format!("point {number}"),
    }
}

/// The leaves under `key` (a dotted path; quoted keys with dots count as
/// paths too).
fn flatten(key: &str, item: &Item, out: &mut Vec<Override>, problems: &mut Vec<String>) {
    match item {
        Item::Table(t) => {
            for (k, v) in t.iter() {
                flatten(&format!("{key}.{k}"), v, out, problems);
            }
        }
        Item::Value(Value::InlineTable(t)) => {
            for (k, v) in t.iter() {
                flatten(
                    &format!("{key}.{k}"),
                    &Item::Value(v.clone()),
                    out,
                    problems,
                );
            }
        }
        Item::Value(v) => out.push(leaf(key, v.clone())),
        Item::ArrayOfTables(a) => out.push(leaf(key, Value::Array(a.clone().into_array()))),
        Item::None => problems.push(format!("{key}: no value")),
    }
}

fn leaf(key: &str, mut value: Value) -> Override {
    value.decor_mut().clear();
    let key = key.split('.').map(str::trim).collect::<Vec<_>>().join(".");
    Override { key, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(p: &Point) -> Vec<String> {
        p.overrides.iter().map(Override::text).collect()
    }

    #[test]
    fn the_built_in_grid_parses_one_point_a_line() {
        let points = parse(DEFAULT_GRID, "built-in").unwrap();
        assert!(points.len() >= 4, "{points:?}");
        let lines = DEFAULT_GRID
            .lines()
            .filter(|l| l.trim_start().starts_with("{ name"))
            .count();
        assert_eq!(lines, points.len());
        assert!(points.iter().all(|p| p.name.is_some()));
    }

    #[test]
    fn every_way_of_writing_a_key_is_one_dotted_override() {
        let text = r#"
[[point]]
name = "a"
update.min_new_rows = 1000
"update.min_improvement" = 0.01

[[point]]
[point.update.rollback]
enabled = false
[[point.monitor.detectors]]
kind = "adwin"
"#;
        let points = parse(text, "g.toml").unwrap();
        assert_eq!(points[0].name.as_deref(), Some("a"));
        assert_eq!(
            keys(&points[0]),
            [
                "update.min_new_rows = 1000",
                "update.min_improvement = 0.01"
            ]
        );
        assert_eq!(points[1].name, None);
        assert_eq!(keys(&points[1])[0], "update.rollback.enabled = false");
        assert_eq!(points[1].overrides[1].key, "monitor.detectors");
        assert!(points[1].overrides[1].value.is_array());
        let inline = parse(
            "point = [{ monitor.detectors = [{ kind = \"ddm\" }] }]\n",
            "g",
        )
        .unwrap();
        assert_eq!(
            keys(&inline[0]),
            [r#"monitor.detectors = [{ kind = "ddm" }]"#]
        );
        assert_eq!(
            inline[0].label(),
            r#"monitor.detectors = [{ kind = "ddm" }]"#
        );
        assert_eq!(
            points[0].label(),
            "a: update.min_new_rows = 1000, update.min_improvement = 0.01"
        );
    }

    #[test]
    fn a_bad_grid_says_what_and_where() {
        let err = |t: &str| parse(t, "g.toml").unwrap_err().to_string();
        let e = err("point = [\n  { update.min_new_rows = },\n]\n");
        assert!(e.contains("g.toml") && e.contains("line 2"), "{e}");
        let e = err("points = []\n");
        assert!(e.contains("unknown key `points`"), "{e}");
        let e = err("# nothing\n");
        assert!(e.contains("no points"), "{e}");
        let e = err("point = [{ name = \"x\" }]\n");
        assert!(e.contains("point 1 (x): no overrides"), "{e}");
        let e = err("point = [{ name = 3, update.min_new_rows = 5 }, 7]\n");
        assert!(e.contains("point 1: name: expected a string"), "{e}");
        assert!(e.contains("point 2: expected a table"), "{e}");
    }
}
