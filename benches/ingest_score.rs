//! Ingest + score + metric update of the reference model (20 → 20 → 10 → 1)
//! on a directory of Parquet files, driftd beside its peer (polars-python +
//! PyTorch, `benches/peer/ingest_score.py`) in the same run.
//!
//! `cargo bench --bench ingest_score` (Python: `DRIFTD_PYTHON`, else the
//! repository's `.venv`; it needs polars, torch and safetensors, which
//! `scripts/bootstrap.sh --python` installs). The data (`DRIFTD_BENCH_ROWS`,
//! default 2,000,000 rows, in `DRIFTD_BENCH_FILES` = 20 files) and the model
//! are written once; then each side runs as a child process, alternating,
//! `DRIFTD_BENCH_RUNS` (5) times, with the same thread count
//! (`DRIFTD_BENCH_THREADS`, default the machine's cores) for libtorch and
//! polars. Each child times its loop over the files (after one warm-up file)
//! and reports its peak RSS (VmHWM). The table gives the medians.
//!
//! The driftd sides: `accuracy` is the peer's pipeline (read with the
//! daemon's `ParquetFile` and bad-row checks, `predict_proba`, count
//! correct); `monitor` adds what the daemon does per row after scoring:
//! `RowOutcome`s fed to `Monitor::observe` (rolling window, per-class tally,
//! the example policy's detectors). Every pipeline runs twice per round:
//! with libgomp's default wait policy and with `OMP_WAIT_POLICY=PASSIVE`
//! (libtorch's idle OpenMP threads sleep instead of spinning).
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use driftd::config::{Policy, EXAMPLE_POLICY};
use driftd::ingest::{ParquetFile, Schema};
use driftd::model::{self, Architecture, Dataset, Mlp};
use driftd::monitor::Monitor;
use driftd::synth::{self, ClassificationSpec};

const CHILD_ENV: &str = "DRIFTD_BENCH_CHILD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

/// The driftd side, in a child process: `DIR MODEL THREADS accuracy|monitor`.
fn child(args: &[String]) {
    let (dir, model_path, threads, mode) = (
        Path::new(&args[0]),
        Path::new(&args[1]),
        args[2].parse::<i32>().expect("threads"),
        args[3].as_str(),
    );
    tch::set_num_threads(threads);
    let policy = Policy::parse(EXAMPLE_POLICY).expect("example policy");
    let arch = Architecture::from_policy(&policy, 20);
    let bytes = std::fs::read(model_path).expect("model");
    let model = Mlp::from_safetensors(&bytes, &arch).expect("checkpoint");
    let schema = Schema::new(synth::feature_names(20), "label".into(), 2);
    let mut monitor = Monitor::new(&policy.monitor, 2, Some(1), Some(0.9));
    let files = parquet_files(dir);
    let mut run = |paths: &[PathBuf]| {
        let (mut rows, mut correct) = (0usize, 0usize);
        for path in paths {
            let file = ParquetFile::open(
                path,
                schema.clone(),
                &BTreeMap::new(),
                policy.data.batch_rows,
            )
            .expect("open");
            for b in 0..file.batches.len() {
                let data: Dataset = file.read_batch(b).expect("read").data;
                let p = model.predict_proba(&data).expect("score");
                if mode == "monitor" {
                    let outcomes = driftd::update::outcomes_of(&data, &p, 2);
                    correct += outcomes.iter().filter(|o| o.correct()).count();
                    monitor.observe(&outcomes);
                } else {
                    for (i, &l) in data.labels.iter().enumerate() {
                        correct +=
                            (model::predicted_class(&p[2 * i..2 * i + 2]) == l as usize) as usize;
                    }
                }
                rows += data.len();
            }
        }
        (rows, correct)
    };
    run(&files[..1]);
    let start = Instant::now();
    let (rows, correct) = run(&files);
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"rows": rows, "correct": correct, "seconds": seconds,
                           "peak_rss_kb": vm_hwm_kb()})
    );
}

#[derive(Default)]
struct Side {
    rows_per_sec: Vec<f64>,
    peak_rss_kb: Vec<f64>,
    correct: Option<u64>,
}

fn run_child(mut cmd: Command, threads: usize, passive: bool, side: &mut Side, name: &str) {
    if passive {
        cmd.env("OMP_WAIT_POLICY", "PASSIVE");
    }
    let out = cmd
        .env("POLARS_MAX_THREADS", threads.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{name} printed {line:?}: {e}"));
    let rows = v["rows"].as_f64().expect("rows");
    side.rows_per_sec
        .push(rows / v["seconds"].as_f64().expect("seconds"));
    side.peak_rss_kb
        .push(v["peak_rss_kb"].as_f64().expect("peak_rss_kb"));
    side.correct = v["correct"].as_u64();
}

fn python() -> Option<String> {
    std::env::var("DRIFTD_PYTHON").ok().or_else(|| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        Path::new(venv).exists().then(|| venv.to_string())
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if std::env::var_os(CHILD_ENV).is_some() {
        return child(&args);
    }
    let rows = env_usize("DRIFTD_BENCH_ROWS", 2_000_000);
    let n_files = env_usize("DRIFTD_BENCH_FILES", 20);
    let runs = env_usize("DRIFTD_BENCH_RUNS", 5);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = env_usize("DRIFTD_BENCH_THREADS", cores);
    let python = python();

    // DRIFTD_BENCH_DIR keeps the files and the model (e.g. to profile one
    // side: `DRIFTD_BENCH_CHILD=1 ingest_score-* DIR/data DIR/model.safetensors 2 accuracy`).
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("DRIFTD_BENCH_DIR")
        .map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    let data_dir = dir.join("data");
    let model_path = dir.join("model.safetensors");
    let mut spec = ClassificationSpec::reference(2);
    spec.n_samples = rows;
    common::write_ingest_fixture(
        &synth::make_classification(&spec),
        n_files,
        &data_dir,
        &model_path,
        &Policy::parse(EXAMPLE_POLICY).expect("example policy"),
    );

    let me = std::env::current_exe().expect("current exe");
    let peer_script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peer/ingest_score.py");
    // Each pipeline with libgomp's default wait policy (idle OpenMP threads
    // spin for a while) and with OMP_WAIT_POLICY=PASSIVE (they sleep): on a
    // busy machine the spinning threads take CPU from polars' readers.
    let mut sides: Vec<(String, bool, Side)> = Vec::new();
    for passive in [false, true] {
        let policy = if passive { "PASSIVE" } else { "default" };
        for name in [
            "driftd: read + score + accuracy",
            "driftd: read + score + Monitor::observe",
        ]
        .into_iter()
        .chain(
            python
                .iter()
                .map(|_| "polars-python + PyTorch: read + score + accuracy"),
        ) {
            sides.push((
                format!("{name} (OMP wait {policy})"),
                passive,
                Side::default(),
            ));
        }
    }
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let child_args = |mode: &str| {
        let mut cmd = Command::new(&me);
        cmd.env(CHILD_ENV, "1")
            .arg(&data_dir)
            .arg(&model_path)
            .arg(threads.to_string())
            .arg(mode);
        cmd
    };
    for _ in 0..runs {
        for (name, passive, side) in &mut sides {
            let cmd = if name.starts_with("polars-python") {
                let mut cmd = Command::new(python.as_ref().expect("peer side"));
                cmd.arg(peer_script)
                    .arg(&data_dir)
                    .arg(&model_path)
                    .arg(threads.to_string());
                cmd
            } else if name.contains("Monitor") {
                child_args("monitor")
            } else {
                child_args("accuracy")
            };
            run_child(cmd, threads, *passive, side, name);
        }
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let correct = |prefix: &str| {
        sides
            .iter()
            .find(|(n, _, _)| n.starts_with(prefix))
            .and_then(|(_, _, s)| s.correct)
    };
    if let (Some(a), Some(b)) = (correct("driftd"), correct("polars-python")) {
        // The same weights on the same rows: predictions may differ only
        // where a probability sits within float rounding of 0.5.
        let diff = a.abs_diff(b) as f64 / rows as f64;
        assert!(diff < 1e-4, "driftd counted {a} correct, the peer {b}");
    }

    let mib = |kb: f64| kb / 1024.0;
    println!(
        "ingest + score + metric update: {rows} rows in {n_files} Parquet files, \
         reference model, {threads} threads (libtorch, polars), median of {runs} alternating runs"
    );
    let load = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!(
        "load average before: {}, after: {} (other processes share the cores)",
        load(&load_before),
        load(&load_after)
    );
    println!();
    println!("| pipeline | rows/s | peak RSS (MiB) |");
    println!("|---|---|---|");
    let row = |name: &str, s: &Side| {
        println!(
            "| {name} | {:.0} | {:.0} |",
            median(s.rows_per_sec.clone()),
            mib(median(s.peak_rss_kb.clone()))
        )
    };
    for (name, _, side) in &sides {
        row(name, side);
    }
    let rate = |prefix: &str, passive: bool| {
        sides
            .iter()
            .find(|(n, p, _)| n.starts_with(prefix) && *p == passive)
            .map(|(_, _, s)| median(s.rows_per_sec.clone()))
    };
    println!();
    for passive in [false, true] {
        if let (Some(d), Some(p)) = (rate("driftd", passive), rate("polars-python", passive)) {
            let policy = if passive { "PASSIVE" } else { "default" };
            println!(
                "driftd / peer (accuracy pipelines, OMP wait {policy}): {:.2}",
                d / p
            );
        }
    }
    if python.is_none() {
        println!("(no peer: set DRIFTD_PYTHON to a Python with polars, torch, safetensors)");
    }
}
