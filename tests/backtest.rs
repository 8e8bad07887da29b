//! `driftd backtest` and `driftd report` end to end: the real binary on a
//! generated stream with two abrupt drifts (fixed seeds and timestamps).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{driftd, run_named, stderr, stdout, BIN};

/// 8,000 rows, abrupt drifts at 3,000 and 5,500, one row a minute from
/// 2026-01-01T00:00:00Z (a Thursday): the weekly schedule (Monday 03:00)
/// fires once, at row 5,940.
const ROWS: usize = 8000;
const DRIFTS: [u64; 2] = [3000, 5500];
const START: &str = "1767225600";

/// A small, fast policy: few epochs, three candidates.
fn write_backtest_policy(root: &Path) -> PathBuf {
    let p = root.join("policy.toml");
    std::fs::write(
        &p,
        r#"[data]
dir = "incoming"
features = "f*"
timestamp = "ts"
initial_rows = 1000
[training]
epochs = 10
[monitor]
window = 300
[update]
min_new_rows = 500
candidates = ["continue_new", "refit_new", "ensemble_new"]
[update.fine_tune]
epochs = 10
[registry]
dir = "models"
[state]
dir = "state"
"#,
    )
    .unwrap();
    p
}

/// `gen-data stream` into `data`: `rows` rows in files of `per_file`, one
/// row every `seconds_per_row` from [`START`], plus `extra` flags.
fn gen_timed_stream(
    data: &Path,
    rows: usize,
    per_file: usize,
    seconds_per_row: u64,
    seed: u64,
    extra: &[&str],
) {
    let (rows, per_file, seconds, seed) = (
        rows.to_string(),
        per_file.to_string(),
        seconds_per_row.to_string(),
        seed.to_string(),
    );
    let mut args = vec![
        "gen-data",
        "stream",
        "--out",
        data.to_str().unwrap(),
        "--rows",
        &rows,
        "--rows-per-file",
        &per_file,
        "--seconds-per-row",
        &seconds,
        "--start",
        START,
        "--seed",
        &seed,
    ];
    args.extend_from_slice(extra);
    let o = driftd(&args);
    assert!(o.status.success(), "gen-data: {}", stderr(&o));
}

/// `driftd backtest` of `data` under `policy`, with `extra` arguments.
fn run_backtest(policy: &Path, data: &Path, extra: &[&std::ffi::OsStr]) -> Output {
    let output = Command::new(BIN)
        .args(["backtest", "--config"])
        .arg(policy)
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("DRIFTD_PROGRESS_SECONDS", "0")
        .output()
        .unwrap();
    assert!(output.status.success(), "backtest: {}", stderr(&output));
    output
}

struct Run {
    _dir: tempfile::TempDir,
    output: Output,
    json: serde_json::Value,
    svg: String,
    png: Vec<u8>,
}

/// One backtest, shared by the tests below (it is the slow part).
fn backtest() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let data = root.join("incoming");
        let drifts = format!("{},{}", DRIFTS[0], DRIFTS[1]);
        gen_timed_stream(&data, ROWS, 250, 60, 3, &["--drift-at", &drifts]);
        let policy = write_backtest_policy(root);
        let (json, svg, png) = (
            root.join("report.json"),
            root.join("plot.svg"),
            root.join("plot.png"),
        );
        let output = run_backtest(
            &policy,
            &data,
            &[
                "--json".as_ref(),
                json.as_ref(),
                "--plot".as_ref(),
                svg.as_ref(),
                "--png".as_ref(),
                png.as_ref(),
            ],
        );
        let json =
            serde_json::from_slice(&std::fs::read(root.join("report.json")).unwrap()).unwrap();
        let svg = std::fs::read_to_string(root.join("plot.svg")).unwrap();
        let png = std::fs::read(root.join("plot.png")).unwrap();
        Run {
            _dir: dir,
            output,
            json,
            svg,
            png,
        }
    })
}

#[test]
fn the_policy_updates_after_each_drift_and_beats_never_updating() {
    let r = backtest();
    let policy = run_named(&r.json, "policy");
    let never = run_named(&r.json, "never_update");
    let drift_promotions: Vec<u64> = policy["updates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["trigger"] == "drift" && !u["promoted_version"].is_null())
        .map(|u| u["row"].as_u64().unwrap())
        .collect();
    for (i, &drift) in DRIFTS.iter().enumerate() {
        let next = DRIFTS.get(i + 1).copied().unwrap_or(ROWS as u64);
        assert!(
            drift_promotions
                .iter()
                .any(|&row| row > drift && row < next),
            "no promotion after the drift at {drift}: {drift_promotions:?}\n{}",
            stdout(&r.output)
        );
    }
    let p = policy["prequential_accuracy"].as_f64().unwrap();
    let n = never["prequential_accuracy"].as_f64().unwrap();
    assert!(p > n + 0.05, "policy {p} vs never update {n}");
    assert!(never["updates"].as_array().unwrap().is_empty());
    // Periodic only: the one schedule fire, no drift-triggered update.
    let periodic = run_named(&r.json, "periodic_only");
    let triggers: Vec<&str> = periodic["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["trigger"].as_str().unwrap())
        .collect();
    assert_eq!(triggers, ["schedule"], "{}", stdout(&r.output));
    // Every row after version 1 is scored in every run.
    for run in r.json["runs"].as_array().unwrap() {
        assert_eq!(
            run["rows_scored"].as_u64().unwrap()
                + r.json["data"]["bootstrap_rows"].as_u64().unwrap(),
            ROWS as u64
        );
    }
    let cmp = &r.json["comparisons"];
    assert_eq!(cmp[1]["baseline"], "never_update");
    assert_eq!(cmp[1]["policy_wins"], true);
    assert!(stdout(&r.output).contains("verdict: the policy beats"));
}

/// Every number of a JSON document, and its strings.
/// Regression: rows slower than the schedule (a row a day, files of 100
/// days, so 14 weekly fires fall between two files) ran one tournament per
/// fire on the same rows, each deciding the same again.
#[test]
fn schedule_fires_between_two_files_run_one_update() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let data = root.join("incoming");
    gen_timed_stream(&data, 1800, 100, 86400, 5, &[]);
    let policy = write_backtest_policy(root);
    let o = run_backtest(&policy, &data, &["--json".as_ref()]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let periodic = run_named(&json, "periodic_only");
    let rows: Vec<u64> = periodic["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["row"].as_u64().unwrap())
        .collect();
    // Version 1 takes the first 1,000 rows; then one update per file.
    assert_eq!(
        rows,
        [1100, 1200, 1300, 1400, 1500, 1600, 1700],
        "{periodic:#}"
    );
    let fires = periodic["triggers"].as_u64().unwrap();
    let skipped = periodic["triggers_suppressed"].as_u64().unwrap();
    assert_eq!(fires - skipped, 7, "{fires} fires, {skipped} skipped");
    assert!(skipped >= 7 * 13, "{fires} fires, {skipped} skipped");
}

fn leaves(v: &serde_json::Value, numbers: &mut Vec<f64>, strings: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(n) => numbers.push(n.as_f64().unwrap()),
        serde_json::Value::String(s) => strings.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| leaves(x, numbers, strings)),
        serde_json::Value::Object(o) => o.values().for_each(|x| leaves(x, numbers, strings)),
        _ => {}
    }
}

#[test]
fn the_json_report_holds_every_number_of_the_text_report() {
    let r = backtest();
    let text = stdout(&r.output);
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    leaves(&r.json, &mut numbers, &mut strings);
    let mut checked = 0;
    // Numbers in scientific notation (KS p-values, `9.5e-7`) are checked
    // whole, then left out of the plain tokens.
    let mut plain = String::new();
    for word in text.split_inclusive(|c: char| c.is_whitespace() || c == ',' || c == ')') {
        let core = word.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == ')');
        if let Some((mantissa, exponent)) = core.split_once("e-") {
            if mantissa.parse::<f64>().is_ok() && exponent.parse::<u32>().is_ok() {
                let found = numbers.iter().any(|n| format!("{n:.1e}") == core);
                assert!(
                    found,
                    "{core} of the text report is not in the JSON report\n{text}"
                );
                checked += 1;
                continue;
            }
        }
        plain.push_str(word);
    }
    for token in plain
        .replace("..", " ")
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|t| t.trim_matches('.'))
        .filter(|t| !t.is_empty())
    {
        let decimals = token.split_once('.').map_or(0, |(_, d)| d.len());
        let found = numbers
            .iter()
            .any(|n| format!("{:.*}", decimals, n.abs()) == token)
            || strings.iter().any(|s| s.contains(token));
        assert!(
            found,
            "{token} of the text report is not in the JSON report\n{text}"
        );
        checked += 1;
    }
    assert!(checked > 100, "only {checked} numbers in the text report");
}

/// The text of every `<text>` element of an SVG, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// Whether the SVG has a text element that is `part`, or, for a part
/// that starts with `~`, one that contains the rest.
fn has_text(texts: &[String], part: &str) -> bool {
    match part.strip_prefix('~') {
        Some(sub) => texts.iter().any(|t| t.contains(sub)),
        None => texts.iter().any(|t| t == part),
    }
}

#[test]
fn the_plot_has_its_parts() {
    let r = backtest();
    let svg = &r.svg;
    let texts = svg_texts(svg);
    for part in [
        "driftd backtest: 8,000 rows of incoming",
        "~prequential accuracy",
        "rows replayed",
        "accuracy over the last 300 rows",
        // legend
        "policy",
        "periodic only",
        "never update",
        "drift alert",
        "update, promoted",
        "live version",
        // version bands' labels and update labels
        "v2",
        "trains v1",
        "~(drift)",
    ] {
        assert!(has_text(&texts, part), "the SVG lacks {part:?}: {texts:?}");
    }
    // The legend's keys count once each.
    let alerts = svg.matches("fill=\"#D62728\"").count() - 1;
    let drift_alerts = run_named(&r.json, "policy")["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["severity"] == "drift")
        .count();
    assert_eq!(alerts, drift_alerts, "alert markers");
    assert!(drift_alerts >= 2);
    let update_lines = svg.matches("stroke=\"#2CA02C\"").count() - 1;
    assert!(update_lines >= 3, "{update_lines} update lines");
    assert!(
        svg.contains("fill=\"#E8F0FA\"") && svg.contains("fill=\"#FAF6E2\""),
        "no version bands"
    );
    assert_eq!(&r.png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(r.png.len() > 20_000, "PNG of {} bytes", r.png.len());
}

#[test]
fn progress_is_plain_lines_off_a_terminal() {
    let r = backtest();
    let err = stderr(&r.output);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: backtest"))
        .collect();
    assert!(lines.len() > 3, "{err}");
    assert!(
        lines
            .last()
            .unwrap()
            .contains(&format!("{0}/{0} rows (100%)", 3 * ROWS)),
        "{err}"
    );
    assert!(lines.iter().any(|l| l.contains("ETA")), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes off a terminal: {err}"
    );
}

#[test]
fn compare_shows_progress_in_epochs() {
    let dir = tempfile::tempdir().unwrap();
    common::gen_reference(dir.path());
    let policy = common::write_policy(dir.path(), "");
    let f = |n: &str| dir.path().join(n);
    let o = Command::new(BIN)
        .args(["compare", "--config"])
        .arg(&policy)
        .arg("--old")
        .arg(f("old.parquet"))
        .arg("--new")
        .arg(f("new_train.parquet"))
        .arg("--test")
        .arg(f("new_test.parquet"))
        .args(["--repeats", "1", "--strategy", "refit_new", "continue_new"])
        .env("DRIFTD_PROGRESS_SECONDS", "0")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // 30 base epochs, 30 for refit_new, 100 for continue_new.
    assert!(
        err.contains("progress: compare 160/160 epochs (100%)"),
        "{err}"
    );
}

#[test]
fn report_draws_a_live_daemon_from_its_registry_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = common::write_policy(root, "");
    common::gen_stream(&root.join("incoming"), 3000, None, 250, 2);
    let mut child = common::spawn_daemon(&policy);
    common::wait_status(root, "12 files ingested", |s| s["files_ingested"] == 12);
    common::signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let svg = root.join("live.svg");
    let png = root.join("live.png");
    let o = Command::new(BIN)
        .args(["report", "--config"])
        .arg(&policy)
        .arg("--plot")
        .arg(&svg)
        .arg("--png")
        .arg(&png)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["live_version"], 1);
    assert_eq!(json["versions"][0]["strategy"], "initial");
    assert_eq!(json["history"][0]["event"], "model_promoted");
    // Version 1 took the first 500 rows; the trace has the other files.
    let trace = json["status"]["trace"].as_array().unwrap();
    assert_eq!(trace.len(), 12);
    assert!(trace.iter().all(|p| p["at"].is_string()));
    let texts = svg_texts(&std::fs::read_to_string(&svg).unwrap());
    for part in [
        "~driftd: live version 1",
        "live model",
        "~rows ingested",
        "v1",
    ] {
        assert!(has_text(&texts, part), "the SVG lacks {part:?}: {texts:?}");
    }
    assert_eq!(&std::fs::read(&png).unwrap()[..4], b"\x89PNG");
    let text = driftd(&["report", "--config", policy.to_str().unwrap()]);
    assert!(text.status.success());
    assert!(
        stdout(&text).contains("live version 1: rolling accuracy"),
        "{}",
        stdout(&text)
    );
}
