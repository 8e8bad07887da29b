//! `driftd tune` end to end: the real binary on a generated stream with
//! one abrupt drift (fixed seed and timestamps), the built-in grid, and
//! `check-config` on the policy it writes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{driftd, stderr, stdout, BIN};

/// 4,000 rows, an abrupt drift at 2,000, one row a minute.
const ROWS: u64 = 4000;

/// A small, fast policy (few epochs, three candidates), with a comment and
/// relative directories.
const POLICY: &str = r#"# my tuned-up policy
[data]
dir = "incoming"
features = "f*"
timestamp = "ts"
initial_rows = 1000
[training]
epochs = 10
[monitor]
window = 300
[update]
min_new_rows = 500 # rows past the alert
candidates = ["continue_new", "refit_new", "ensemble_new"]
[update.fine_tune]
epochs = 10
[registry]
dir = "models"
[state]
dir = "state"
"#;

fn setup(root: &Path) -> (PathBuf, PathBuf) {
    let data = root.join("incoming");
    let o = driftd(&[
        "gen-data",
        "stream",
        "--out",
        data.to_str().unwrap(),
        "--rows",
        &ROWS.to_string(),
        "--drift-at",
        "2000",
        "--rows-per-file",
        "250",
        "--seconds-per-row",
        "60",
        "--start",
        "1767225600",
        "--seed",
        "5",
    ]);
    assert!(o.status.success(), "gen-data: {}", stderr(&o));
    let policy = root.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    (policy, data)
}

fn tune(policy: &Path, data: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["tune", "--config"])
        .arg(policy)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("DRIFTD_PROGRESS_SECONDS", "0")
        .output()
        .unwrap()
}

struct Run {
    dir: tempfile::TempDir,
    output: Output,
    json: serde_json::Value,
    out: PathBuf,
}

/// One tune over the built-in grid, shared by the tests below.
fn tuned() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (policy, data) = setup(dir.path());
        // Another directory than the policy's: relative paths are resolved.
        std::fs::create_dir(dir.path().join("tuned")).unwrap();
        let out = dir.path().join("tuned/policy.toml");
        let json = dir.path().join("tune.json");
        let output = tune(&policy, &data, &out, &["--json", json.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "tune: {}\n{}",
            stderr(&output),
            stdout(&output)
        );
        let json = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
        Run {
            dir,
            output,
            json,
            out,
        }
    })
}

#[test]
fn the_table_has_every_point_the_chosen_one_and_a_verdict() {
    let r = tuned();
    let text = stdout(&r.output);
    let points = r.json["points"].as_array().unwrap();
    assert!(points.len() >= 5, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| l.contains("# earlier   later  updates  promoted  rollbacks  train s  point"))
        .unwrap_or_else(|| panic!("no table header:\n{text}"));
    for (i, p) in points.iter().enumerate() {
        let line = lines[header + 1 + i];
        assert_eq!(p["point"].as_u64().unwrap() as usize, i);
        let earlier = format!("{:.4}", p["earlier"]["accuracy"].as_f64().unwrap());
        let later = format!("{:.4}", p["later"]["accuracy"].as_f64().unwrap());
        assert!(line.contains(&earlier) && line.contains(&later), "{line}");
        assert_eq!(line.starts_with('*'), p["chosen"] == true, "{line}");
        if i == 0 {
            assert!(line.ends_with("the policy as given"), "{line}");
        } else {
            assert!(line.contains(p["name"].as_str().unwrap()), "{line}");
        }
    }
    assert!(lines[header + 1 + points.len()].contains("never update (for reference)"));
    assert!(
        lines.last().unwrap().contains("on the held-out later part")
            || lines
                .last()
                .unwrap()
                .starts_with("the policy as given was chosen"),
        "{text}"
    );
    assert_eq!(r.json["verdict"], *lines.last().unwrap());
    assert_eq!(points.iter().filter(|p| p["chosen"] == true).count(), 1);
    println!("{text}");
}

#[test]
fn the_choice_is_better_on_the_earlier_part_and_the_split_is_in_rows() {
    let r = tuned();
    let s = &r.json["split"];
    let (boot, cut, end) = (
        s["bootstrap_rows"].as_u64().unwrap(),
        s["cut_row"].as_u64().unwrap(),
        s["end_row"].as_u64().unwrap(),
    );
    assert_eq!(end, ROWS);
    assert_eq!(cut, boot + (ROWS - boot) / 2);
    let points = r.json["points"].as_array().unwrap();
    let chosen = r.json["chosen"].as_u64().unwrap() as usize;
    let earlier = |p: &serde_json::Value| p["earlier"]["correct"].as_u64().unwrap();
    for p in points {
        assert_eq!(p["earlier"]["rows_scored"].as_u64().unwrap(), cut - boot);
        assert_eq!(p["later"]["rows_scored"].as_u64().unwrap(), end - cut);
    }
    // A point replaces the policy as given only when it is better on the
    // earlier part (and beyond the noise: src/tune/choose.rs tests that).
    if chosen > 0 {
        assert!(earlier(&points[chosen]) > earlier(&points[0]));
    }
    let base = points[0]["later"]["accuracy"].as_f64().unwrap();
    let pick = points[chosen]["later"]["accuracy"].as_f64().unwrap();
    let d = r.json["later_difference"].as_f64().unwrap();
    assert!((d - (pick - base)).abs() < 1e-12);
    assert_eq!(r.json["beats_base"], d > 0.0);
    // The policy updates after the drift; never update does not.
    assert!(points[0]["updates"].as_u64().unwrap() > 0);
    assert_eq!(r.json["never_update"]["updates"], 0);
}

#[test]
fn check_config_accepts_the_chosen_policy_which_keeps_the_users_text() {
    let r = tuned();
    let o = driftd(&["check-config", "--config", r.out.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = std::fs::read_to_string(&r.out).unwrap();
    assert!(text.starts_with("# Chosen by `driftd tune`"), "{text}");
    assert!(text.contains("# my tuned-up policy\n[data]\n"), "{text}");
    assert!(text.contains("candidates = [") && text.contains("[update.fine_tune]"));
    // Written elsewhere: the relative directories now name the same places.
    let root = r.dir.path().canonicalize().unwrap();
    let incoming = format!("dir = \"{}\"", root.join("incoming").display());
    assert!(text.contains(&incoming), "{text}");
    let chosen = r.json["chosen"].as_u64().unwrap() as usize;
    for o in r.json["points"][chosen]["overrides"].as_array().unwrap() {
        let key = o["key"].as_str().unwrap().rsplit('.').next().unwrap();
        assert!(
            text.contains(&format!("{key} = {}", o["value"].as_str().unwrap())),
            "{key}: {text}"
        );
    }
    if chosen == 0 {
        assert!(text.contains("min_new_rows = 500 # rows past the alert"));
    }
}

#[test]
fn progress_goes_to_stderr() {
    let r = tuned();
    let err = stderr(&r.output);
    let replays = r.json["points"].as_array().unwrap().len() as u64 + 1;
    let last = err
        .lines()
        .rfind(|l| l.starts_with("progress: tune"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        last.contains(&format!("{0}/{0} rows (100%)", replays * ROWS)),
        "{err}"
    );
}

#[test]
fn mistakes_are_named_before_anything_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let (policy, data) = setup(dir.path());
    let out = dir.path().join("out.toml");
    let fails = |extra: &[&str]| {
        let o = tune(&policy, &data, &out, extra);
        assert!(!o.status.success());
        assert!(!out.exists());
        stderr(&o)
    };
    let e = fails(&["--split", "1.5"]);
    assert!(
        e.contains("--split 1.5: expected a fraction strictly between 0 and 1"),
        "{e}"
    );
    let grid = dir.path().join("grid.toml");
    std::fs::write(
        &grid,
        "[[point]]\nname = \"typo\"\nupdate.min_new_rowz = 5\n\n[[point]]\ndata.initial_rows = 5\n",
    )
    .unwrap();
    let e = fails(&["--grid", grid.to_str().unwrap()]);
    assert!(
        e.contains(&format!("grid {} has 2 problems", grid.display())),
        "{e}"
    );
    assert!(
        e.contains("point 1 (typo): update.min_new_rowz: unknown field"),
        "{e}"
    );
    assert!(
        e.contains("point 2: data.initial_rows: only keys of"),
        "{e}"
    );
    std::fs::write(&grid, "[[point]\n").unwrap();
    let e = fails(&["--grid", grid.to_str().unwrap()]);
    assert!(e.contains("line 1"), "{e}");
    // 3,000 rows after version 1's, cut at 0.99: 30 later rows.
    let e = fails(&["--split", "0.99"]);
    assert!(e.contains("2970 earlier and 30 later rows"), "{e}");
    assert!(e.contains(&data.display().to_string()), "{e}");
    let o = tune(&policy, &data, &policy, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is the policy given with --config"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), POLICY);
}
