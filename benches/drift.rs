//! Do driftd's update decisions pay off on streams nobody here designed?
//!
//! For each stream of the literature's generators (`driftd gen-data drift`:
//! SEA, Agrawal, rotating hyperplane, random RBF, STAGGER; abrupt, gradual,
//! incremental and recurring drift, label noise) and each seed, the release
//! binary backtests the shipped `config/policy.toml` (only the data
//! directory and the features set), which replays three runs: the policy,
//! periodic only and never update. Beside them an online logistic regression
//! written here gets the same information: it learns version 1's rows first,
//! then each file is predicted before its labels are learned. All four are
//! scored on the same rows (every row after version 1's).
//!
//! One real-world stream joins them, `weather-real`: the NOAA weather data
//! of the drift literature (daily rain at one station over 50 years, files
//! of 30 days; `benches/peer/weather_stream.py` fetches it from PyPI with
//! `DRIFTD_PYTHON`, else `.venv`). With `DRIFTD_RIVER_PYTHON` (a Python with
//! river and polars), learners of the River library get the same label delay
//! (`benches/peer/river_learners.py`; `DRIFTD_RIVER_LEARNERS` picks them) and
//! the best of them is a baseline too.
//!
//! `cargo bench --bench drift` (or `make bench-drift`). Environment:
//! `DRIFTD_DRIFT_SEEDS` (default `1,2,3`; the defaults were chosen on these,
//! run `4,5,6` for held-out seeds), `DRIFTD_DRIFT_ROWS` (rows per stream,
//! default 50000), `DRIFTD_DRIFT_STREAMS` (comma-separated names, default
//! all; `weather-real` is one of them), `DRIFTD_DRIFT_POLICY` (a policy file
//! instead of the shipped one).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use polars::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_driftd");

/// One stream of the suite: `gen-data drift` flags.
struct Stream {
    name: &'static str,
    generator: &'static str,
    drift: &'static str,
    drifts: usize,
    width: usize,
    noise: f64,
    features: usize,
}

const STREAMS: &[Stream] = &[
    Stream {
        name: "sea-abrupt",
        generator: "sea",
        drift: "abrupt",
        drifts: 3,
        width: 0,
        noise: 0.1,
        features: 3,
    },
    Stream {
        name: "agrawal-gradual",
        generator: "agrawal",
        drift: "gradual",
        drifts: 3,
        width: 2500,
        noise: 0.0,
        features: 9,
    },
    Stream {
        name: "agrawal-abrupt",
        generator: "agrawal",
        drift: "abrupt",
        drifts: 3,
        width: 0,
        noise: 0.05,
        features: 9,
    },
    Stream {
        name: "hyperplane-incremental",
        generator: "hyperplane",
        drift: "incremental",
        drifts: 0,
        width: 0,
        noise: 0.05,
        features: 10,
    },
    Stream {
        name: "rbf-incremental",
        generator: "rbf",
        drift: "incremental",
        drifts: 0,
        width: 0,
        noise: 0.0,
        features: 10,
    },
    Stream {
        name: "stagger-recurring",
        generator: "stagger",
        drift: "recurring",
        drifts: 3,
        width: 0,
        noise: 0.05,
        features: 3,
    },
];

const ROWS_PER_FILE: usize = 1000;
/// The real-world stream's name (`DRIFTD_DRIFT_STREAMS`).
const WEATHER: &str = "weather-real";
/// The stream spans eight weeks, so that the weekly schedule fires.
const SPAN_SECONDS: f64 = 8.0 * 7.0 * 86_400.0;

fn env_list(name: &str) -> Option<Vec<String>> {
    std::env::var(name).ok().map(|v| {
        v.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("driftd runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn generate(s: &Stream, rows: usize, seed: u64, dir: &Path) {
    let seconds_per_row = SPAN_SECONDS / rows as f64;
    run(Command::new(BIN).args([
        "gen-data",
        "drift",
        "--out",
        dir.to_str().unwrap(),
        "--generator",
        s.generator,
        "--drift",
        s.drift,
        "--rows",
        &rows.to_string(),
        "--drifts",
        &s.drifts.to_string(),
        "--width",
        &s.width.max(1).to_string(),
        "--noise",
        &s.noise.to_string(),
        "--features",
        &s.features.to_string(),
        "--rows-per-file",
        &ROWS_PER_FILE.to_string(),
        "--seconds-per-row",
        &seconds_per_row.to_string(),
        "--start",
        "1767225600",
        "--seed",
        &seed.to_string(),
    ]));
}

/// The shipped policy (or `DRIFTD_DRIFT_POLICY`) with only the data
/// directory, the features and the timestamp column set.
fn policy_for(root: &Path, data: &Path) -> PathBuf {
    let source = std::env::var("DRIFTD_DRIFT_POLICY")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.toml"));
    let text = std::fs::read_to_string(&source).expect("policy readable");
    let mut doc: toml::Table = text.parse().expect("policy parses");
    let data_table = doc
        .get_mut("data")
        .and_then(|d| d.as_table_mut())
        .expect("policy has [data]");
    data_table.insert("dir".into(), data.display().to_string().into());
    data_table.insert("features".into(), "f*".into());
    data_table.insert("timestamp".into(), "ts".into());
    for (section, dir) in [("registry", "models"), ("state", "state")] {
        let t = doc
            .entry(section)
            .or_insert_with(|| toml::Value::Table(Default::default()));
        if let Some(t) = t.as_table_mut() {
            t.insert("dir".into(), root.join(dir).display().to_string().into());
        }
    }
    let path = root.join("policy.toml");
    std::fs::write(&path, toml::to_string(&doc).unwrap()).unwrap();
    path
}

/// One stream's outcome.
struct Outcome {
    stream: &'static str,
    /// `None` for the real-world stream, which has no seed.
    seed: Option<u64>,
    policy: f64,
    periodic: f64,
    never: f64,
    online: f64,
    /// The best River learner and its accuracy, when River ran.
    river: Option<(String, f64)>,
    updates: u64,
    promoted: u64,
    rollbacks: u64,
    training_seconds: f64,
    backtest_seconds: f64,
}

fn read_files(dir: &Path) -> Vec<(Vec<f32>, Vec<i64>, usize)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let df = ParquetReader::new(std::fs::File::open(p).unwrap())
                .finish()
                .unwrap();
            let features: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .filter(|n| n.starts_with('f'))
                .collect();
            let n = df.height();
            let width = features.len();
            let mut rows = vec![0f32; n * width];
            for (j, name) in features.iter().enumerate() {
                let col = df.column(name).unwrap().cast(&DataType::Float32).unwrap();
                for (i, v) in col.f32().unwrap().into_no_null_iter().enumerate() {
                    rows[i * width + j] = v;
                }
            }
            let labels: Vec<i64> = df
                .column("label")
                .unwrap()
                .cast(&DataType::Int64)
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            (rows, labels, width)
        })
        .collect()
}

/// Logistic regression on standardized features (running mean and
/// variance of the rows learned so far), one SGD pass per file.
struct OnlineLogistic {
    weights: Vec<f64>,
    bias: f64,
    count: f64,
    mean: Vec<f64>,
    m2: Vec<f64>,
    learning_rate: f64,
}

impl OnlineLogistic {
    fn new(width: usize) -> Self {
        OnlineLogistic {
            weights: vec![0.0; width],
            bias: 0.0,
            count: 0.0,
            mean: vec![0.0; width],
            m2: vec![0.0; width],
            learning_rate: 0.05,
        }
    }

    fn standardized(&self, row: &[f32], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            let sd = if self.count > 1.0 {
                (self.m2[j] / (self.count - 1.0)).sqrt()
            } else {
                1.0
            };
            *o = (f64::from(row[j]) - self.mean[j]) / sd.max(1e-9);
        }
    }

    fn score(&self, x: &[f64]) -> f64 {
        self.bias + x.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>()
    }

    fn predict(&self, rows: &[f32], width: usize) -> Vec<i64> {
        let mut x = vec![0.0; width];
        rows.chunks(width)
            .map(|r| {
                self.standardized(r, &mut x);
                i64::from(self.score(&x) > 0.0)
            })
            .collect()
    }

    fn learn(&mut self, rows: &[f32], labels: &[i64], width: usize) {
        for r in rows.chunks(width) {
            self.count += 1.0;
            for (j, &v) in r.iter().enumerate() {
                let v = f64::from(v);
                let delta = v - self.mean[j];
                self.mean[j] += delta / self.count;
                self.m2[j] += delta * (v - self.mean[j]);
            }
        }
        let mut x = vec![0.0; width];
        for (r, &y) in rows.chunks(width).zip(labels) {
            self.standardized(r, &mut x);
            let p = 1.0 / (1.0 + (-self.score(&x)).exp());
            let g = p - y as f64;
            for (w, xi) in self.weights.iter_mut().zip(&x) {
                *w -= self.learning_rate * g * xi;
            }
            self.bias -= self.learning_rate * g;
        }
    }
}

/// Prequential accuracy of the online learner on the rows after the first
/// `bootstrap` rows, which it learns first.
fn online_accuracy(files: &[(Vec<f32>, Vec<i64>, usize)], bootstrap: usize) -> f64 {
    let width = files[0].2;
    let mut model = OnlineLogistic::new(width);
    let (mut seen, mut scored, mut correct) = (0usize, 0usize, 0usize);
    for (rows, labels, _) in files {
        if seen >= bootstrap {
            let predicted = model.predict(rows, width);
            scored += labels.len();
            correct += predicted.iter().zip(labels).filter(|(p, l)| p == l).count();
        }
        model.learn(rows, labels, width);
        seen += labels.len();
    }
    correct as f64 / scored.max(1) as f64
}

/// The real-world stream, fetched into `dir`; why not, when it cannot be.
fn fetch_weather(dir: &Path) -> Result<(), String> {
    let python = python().ok_or("no Python: set DRIFTD_PYTHON (polars) or create .venv")?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peer/weather_stream.py"
    );
    let out = Command::new(&python)
        .arg(script)
        .arg(dir)
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn python() -> Option<String> {
    std::env::var("DRIFTD_PYTHON").ok().or_else(|| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        Path::new(venv).exists().then(|| venv.to_string())
    })
}

/// The best of the River learners on `data` (same label delay), when
/// `DRIFTD_RIVER_PYTHON` is set.
fn best_river_learner(data: &Path, bootstrap: usize) -> Option<(String, f64)> {
    let python = std::env::var("DRIFTD_RIVER_PYTHON").ok()?;
    let learners = std::env::var("DRIFTD_RIVER_LEARNERS")
        .unwrap_or_else(|_| "logistic,hoeffding_adaptive,arf".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peer/river_learners.py"
    );
    let stdout = run(Command::new(python)
        .arg(script)
        .arg(data)
        .arg(bootstrap.to_string())
        .arg(learners));
    stdout
        .lines()
        .filter_map(|l| {
            let (name, accuracy) = l.split_once(' ')?;
            Some((name.to_string(), accuracy.trim().parse::<f64>().ok()?))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn evaluate(stream: &'static str, seed: Option<u64>, root: &Path, data: &Path) -> Outcome {
    let policy = policy_for(root, data);
    let started = Instant::now();
    let json = run(Command::new(BIN).args([
        "backtest",
        "--config",
        policy.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]));
    let backtest_seconds = started.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_str(&json).expect("backtest JSON");
    let run_of = |name: &str| {
        report["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run"] == name)
            .unwrap_or_else(|| panic!("no run {name}"))
            .clone()
    };
    let accuracy = |r: &serde_json::Value| r["prequential_accuracy"].as_f64().unwrap_or(f64::NAN);
    let policy_run = run_of("policy");
    let bootstrap = report["data"]["bootstrap_rows"].as_u64().unwrap() as usize;
    Outcome {
        stream,
        seed,
        policy: accuracy(&policy_run),
        periodic: accuracy(&run_of("periodic_only")),
        never: accuracy(&run_of("never_update")),
        online: online_accuracy(&read_files(data), bootstrap),
        river: best_river_learner(data, bootstrap),
        updates: policy_run["update_count"].as_u64().unwrap_or(0),
        promoted: policy_run["promoted_count"].as_u64().unwrap_or(0),
        rollbacks: policy_run["rollback_count"].as_u64().unwrap_or(0),
        training_seconds: policy_run["training_seconds"].as_f64().unwrap_or(0.0),
        backtest_seconds,
    }
}

impl Outcome {
    fn best_other(&self) -> f64 {
        let river = self.river.as_ref().map_or(f64::NAN, |r| r.1);
        self.periodic.max(self.never).max(self.online).max(river)
    }

    fn print(&self) {
        let seed = self.seed.map_or("-".to_string(), |s| s.to_string());
        let river = self
            .river
            .as_ref()
            .map_or("-".to_string(), |(name, a)| format!("{a:.4} ({name})"));
        println!(
            "| {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {:+.4} | {} ({}, {}) | {:.1} | {:.1} |",
            self.stream,
            seed,
            self.policy,
            self.periodic,
            self.never,
            self.online,
            river,
            self.policy - self.best_other(),
            self.updates,
            self.promoted,
            self.rollbacks,
            self.training_seconds,
            self.backtest_seconds
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the arguments.
    let seeds: Vec<u64> = env_list("DRIFTD_DRIFT_SEEDS")
        .map(|v| v.iter().map(|s| s.parse().expect("seed")).collect())
        .unwrap_or_else(|| vec![1, 2, 3]);
    let rows: usize = std::env::var("DRIFTD_DRIFT_ROWS")
        .ok()
        .map(|v| v.parse().expect("DRIFTD_DRIFT_ROWS"))
        .unwrap_or(50_000);
    let wanted = env_list("DRIFTD_DRIFT_STREAMS");
    let streams: Vec<&'static Stream> = STREAMS
        .iter()
        .filter(|s| {
            wanted
                .as_ref()
                .is_none_or(|w| w.iter().any(|n| n == s.name))
        })
        .collect();
    let weather = wanted
        .as_ref()
        .is_none_or(|w| w.iter().any(|n| n == WEATHER));
    println!(
        "# Drift benchmark: {} generated streams x seeds {seeds:?}, {rows} rows each in files of {ROWS_PER_FILE}, spanning 8 weeks{}\n",
        streams.len(),
        if weather { "; and the real-world weather stream, files of 30 days" } else { "" }
    );
    println!("| stream | seed | shipped policy | periodic only | never update | online logistic | best River learner | policy - best other | updates (promoted, rolled back) | training s | backtest s |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut outcomes = Vec::new();
    for s in &streams {
        for &seed in &seeds {
            let root = tempfile::tempdir().unwrap();
            let data = root.path().join("data");
            generate(s, rows, seed, &data);
            let o = evaluate(s.name, Some(seed), root.path(), &data);
            o.print();
            outcomes.push(o);
        }
    }
    if weather {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        match fetch_weather(&data) {
            Ok(()) => {
                let o = evaluate(WEATHER, None, root.path(), &data);
                o.print();
                outcomes.push(o);
            }
            Err(why) => println!("\n({WEATHER} skipped: {why})"),
        }
    }
    let losses = outcomes
        .iter()
        .filter(|o| o.policy < o.best_other())
        .count();
    println!(
        "\n{} of {} streams and seeds: the shipped policy at or above every baseline",
        outcomes.len() - losses,
        outcomes.len()
    );
}
