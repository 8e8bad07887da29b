//! The chosen policy as a file: the policy's own text with the chosen
//! point's overrides (comments and other settings as written), a header
//! saying where it came from, and relative directories made absolute when
//! the file is written to another directory than the policy's (relative
//! paths are relative to the policy file's directory).

use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

use super::grid::Point;
use super::report::PointReport;
use super::split::Split;

/// The keys holding directories ([`Policy::resolve_paths`](crate::config::Policy::resolve_paths)).
const PATH_KEYS: &[(&str, &str)] = &[("data", "dir"), ("registry", "dir"), ("state", "dir")];

/// The text of the chosen policy: `header` (each line becomes a comment),
/// then `doc`, whose relative directories are made absolute against
/// `policy_dir` unless `out_dir` is that directory.
pub fn chosen_text(doc: &DocumentMut, header: &str, policy_dir: &Path, out_dir: &Path) -> String {
    let mut doc = doc.clone();
    if policy_dir != out_dir {
        for (section, key) in PATH_KEYS {
            let Some(Item::Value(v)) = doc
                .get_mut(section)
                .and_then(Item::as_table_like_mut)
                .and_then(|t| t.get_mut(key))
            else {
                continue;
            };
            let Some(path) = v.as_str().map(Path::new) else {
                continue;
            };
            if path.is_relative() {
                let decor = v.decor().clone();
                *v = Value::from(policy_dir.join(path).display().to_string());
                *v.decor_mut() = decor;
            }
        }
    }
    let mut text: String = header.lines().map(|l| format!("# {l}\n")).collect();
    text = text.replace("# \n", "#\n");
    text.push('\n');
    text.push_str(&doc.to_string());
    text
}

/// Where the chosen policy came from: the command's inputs, the chosen
/// point (`None`: the policy as given) and its scores beside the policy as
/// given's (`points[0]`).
pub fn header(
    config: &Path,
    data_dir: &Path,
    grid: &str,
    points: &[PointReport],
    chosen: Option<&Point>,
    split: &Split,
) -> String {
    let acc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.4}"));
    let mut header = format!(
        "Chosen by `driftd tune` from {}, replayed over {} (grid: {grid}):\n",
        config.display(),
        data_dir.display(),
    );
    let c = points.iter().find(|p| p.chosen).unwrap_or(&points[0]);
    match chosen {
        None => {
            header.push_str("the policy as given (no grid point beat it on the earlier part).\n")
        }
        Some(point) => {
            let name = point.name.as_deref().map(|n| format!(" ({n})"));
            header.push_str(&format!(
                "point {}{}, which sets\n",
                c.point,
                name.unwrap_or_default()
            ));
            for o in &point.overrides {
                header.push_str(&format!("  {}\n", o.text()));
            }
        }
    }
    header.push_str(&format!(
        "Prequential accuracy: {} on the earlier part (rows {}..{}), {} on the held-out\n\
         later part (rows {}..{}); the policy as given: {} and {}.",
        acc(c.scores.earlier.accuracy),
        split.bootstrap_rows,
        split.cut_row,
        acc(c.scores.later.accuracy),
        split.cut_row,
        split.end_row,
        acc(points[0].scores.earlier.accuracy),
        acc(points[0].scores.later.accuracy),
    ));
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = "# mine\n[data]\ndir = \"incoming\" # here\nfeatures = [\"a\"]\n[registry]\ndir = \"/abs/models\"\n";

    #[test]
    fn the_header_comes_first_and_the_rest_stays_as_written() {
        let doc: DocumentMut = POLICY.parse().unwrap();
        let text = chosen_text(&doc, "chosen\n\nby tune", Path::new("/p"), Path::new("/p"));
        assert_eq!(text, format!("# chosen\n#\n# by tune\n\n{POLICY}"));
    }

    #[test]
    fn relative_directories_are_made_absolute_elsewhere() {
        let doc: DocumentMut = POLICY.parse().unwrap();
        let text = chosen_text(&doc, "h", Path::new("/p"), Path::new("/elsewhere"));
        assert!(text.contains("dir = \"/p/incoming\" # here\n"), "{text}");
        assert!(text.contains("dir = \"/abs/models\""), "{text}");
        let policy = crate::config::Policy::parse(&text).unwrap();
        assert_eq!(policy.data.dir, Path::new("/p/incoming"));
    }
}
