//! The benchmark suite: driftd beside a Python + PyTorch peer
//! (`benches/peer/suite_peer.py`) on the same data, the same
//! hyperparameters and the same thread count (`training.threads` of
//! `config/reference.toml`). Every measurement runs each side in its own
//! child process, the two sides alternating (driftd first on even runs, the
//! peer first on odd ones); each figure is the median over the runs, and
//! each child reports its own peak resident set (VmHWM).
//!
//! The table's first rows are the product: the release daemon (`driftd
//! run`, the shipped policy) catching up files that land at once
//! (`suite/product.rs`); then the components, each in a harness; then the
//! binary's cold start. Below the table, what only driftd has: the daemon's
//! readiness and file-landed-to-alert latency, quiet and behind a backlog
//! (`suite/daemon.rs`).
//!
//! Run with `make bench` (or `cargo bench --bench suite` with LIBTORCH and
//! DRIFTD_PYTHON set). DRIFTD_BENCH_RUNS sets the number of runs (default 5).
//! DRIFTD_BENCH_ONLY (a comma-separated list of `product`, `components`,
//! `latency`) runs only those parts. The table goes to stdout.
//!
//! The binary is also its own driftd-side worker: `suite --worker MODE ...`
//! runs one measurement and prints `{"value": .., "peak_rss_kb": ..}`.
#![forbid(unsafe_code)]

mod common;
#[path = "suite/daemon.rs"]
mod daemon;
#[path = "suite/product.rs"]
mod product;

/// The driftd binary's allocator (see `src/main.rs`), so the worker
/// measures what the daemon runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use driftd::compare::{self, Files};
use driftd::config::Policy;
use driftd::ingest::{read_file, ParquetFile, Schema};
use driftd::model::{self, Architecture, Dataset, Mlp, TrainSettings};
use driftd::monitor::Monitor;
use driftd::synth::{self, ClassificationSpec};

use daemon::{LATENCY_FILES, LATENCY_ROWS};

const DRIFTD: &str = env!("CARGO_BIN_EXE_driftd");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const SCORING_ROWS: usize = 1_000_000;
/// The ingest + score measurement reads the scoring rows in this many files.
const INGEST_FILES: usize = 10;

fn reference_policy() -> Policy {
    let path = Path::new(ROOT).join("config/reference.toml");
    Policy::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn reference_data() -> PathBuf {
    Path::new(ROOT).join("tests/data/reference")
}

fn schema() -> Schema {
    Schema::new(synth::feature_names(20), "label".into(), 2)
}

fn read(path: &Path) -> Dataset {
    read_file(path, &schema()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// This process's peak resident set in KiB (VmHWM of /proc/self/status).
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

// ---- the driftd side: one measurement per process ---------------------------

/// Optimizer steps per second of one training run of the reference model on
/// old.parquet with the reference policy's settings (150 epochs, batch 32,
/// SGD momentum, reshuffled every epoch).
fn worker_train(policy: &Policy) -> f64 {
    let data = read(&reference_data().join("old.parquet"));
    let arch = Architecture::from_policy(policy, data.width);
    let settings = TrainSettings::from_policy(policy);
    // Warm-up, untimed (as on the peer's side): libtorch's first calls.
    let mut warm = Mlp::new(arch.clone(), policy.model.init, 0);
    let one_epoch = TrainSettings {
        epochs: 1,
        ..settings.clone()
    };
    warm.train(&data, &one_epoch, None)
        .expect("warm-up training");
    let mut model = Mlp::new(arch, policy.model.init, 1);
    let t = Instant::now();
    let report = model.train(&data, &settings, None).expect("training");
    report.steps as f64 / t.elapsed().as_secs_f64()
}

/// Wall seconds of the reference experiment's tournament for one seed, as
/// `driftd compare` runs it (reading the files included).
fn worker_tournament(policy: &Policy) -> f64 {
    let d = reference_data();
    let files = Files {
        old: d.join("old.parquet"),
        new: d.join("new_train.parquet"),
        test: d.join("new_test.parquet"),
    };
    let t = Instant::now();
    let rows = compare::run(policy, &files, &[], 1).expect("compare");
    let seconds = t.elapsed().as_secs_f64();
    assert!(rows.iter().all(|r| r.failures == 0), "a strategy failed");
    seconds
}

/// Rows per second of predict_proba over every row of `path`, in one batch.
fn worker_score(policy: &Policy, path: &Path) -> f64 {
    let data = read(path);
    let model = Mlp::new(
        Architecture::from_policy(policy, data.width),
        policy.model.init,
        3,
    );
    model
        .predict_proba(&data.slice(0, 1000))
        .expect("warm-up scoring");
    let t = Instant::now();
    let p = model.predict_proba(&data).expect("scoring");
    let rows_per_sec = data.len() as f64 / t.elapsed().as_secs_f64();
    assert_eq!(p.len(), 2 * data.len());
    rows_per_sec
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

/// Rows per second of what the daemon does with a new file, over every file
/// of `dir`: read with `ParquetFile` (schema and bad-row checks), score with
/// the checkpoint at `model_path`, and either count correct predictions (the
/// peer's pipeline) or, with `with_monitor`, feed every row's outcome to the
/// monitor as the daemon does (rolling window and metrics, the reference
/// policy's detectors). The first file is a warm-up, untimed (as on the
/// peer's side).
fn worker_ingest(policy: &Policy, dir: &Path, model_path: &Path, with_monitor: bool) -> f64 {
    let arch = Architecture::from_policy(policy, 20);
    let bytes = std::fs::read(model_path).expect("model");
    let model = Mlp::from_safetensors(&bytes, &arch).expect("checkpoint");
    let mut monitor = Monitor::new(&policy.monitor, 2, Some(1), Some(0.9));
    let files = parquet_files(dir);
    let mut run = |paths: &[PathBuf]| {
        let mut rows = 0usize;
        for path in paths {
            let file = ParquetFile::open(path, schema(), &BTreeMap::new(), policy.data.batch_rows)
                .expect("open");
            for b in 0..file.batches.len() {
                let data: Dataset = file.read_batch(b).expect("read").data;
                let p = model.predict_proba(&data).expect("score");
                rows += data.len();
                if !with_monitor {
                    let correct = data
                        .labels
                        .iter()
                        .enumerate()
                        .filter(|&(i, &l)| {
                            model::predicted_class(&p[2 * i..2 * i + 2]) == l as usize
                        })
                        .count();
                    std::hint::black_box(correct);
                    continue;
                }
                let outcomes = driftd::update::outcomes_of(&data, &p, 2);
                monitor.observe(&outcomes);
            }
        }
        rows
    };
    run(&files[..1]);
    let t = Instant::now();
    let rows = run(&files);
    rows as f64 / t.elapsed().as_secs_f64()
}

fn worker(args: &[String]) {
    let policy = reference_policy();
    tch::set_num_threads(policy.training.threads as i32);
    let value = match args.first().map(String::as_str) {
        Some("train") => worker_train(&policy),
        Some("tournament") => worker_tournament(&policy),
        Some("score") => worker_score(&policy, Path::new(&args[1])),
        Some("ingest") => worker_ingest(&policy, Path::new(&args[1]), Path::new(&args[2]), false),
        Some("ingest-monitor") => {
            worker_ingest(&policy, Path::new(&args[1]), Path::new(&args[2]), true)
        }
        other => panic!("unknown worker mode {other:?}"),
    };
    println!(
        "{}",
        serde_json::json!({"value": value, "peak_rss_kb": peak_rss_kb()})
    );
}

// ---- the orchestrator ------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Sample {
    value: f64,
    peak_rss_kb: u64,
}

/// Runs one child to completion and reads the JSON object on its last line.
fn sample(cmd: &mut Command) -> Sample {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{cmd:?} printed {line:?}: {e}"));
    Sample {
        value: v["value"].as_f64().expect("value"),
        peak_rss_kb: v["peak_rss_kb"].as_u64().expect("peak_rss_kb"),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `a` and `b` `runs` times each, alternating which goes first.
fn alternate<A: FnMut() -> T, B: FnMut() -> T, T>(
    runs: usize,
    mut a: A,
    mut b: B,
) -> (Vec<T>, Vec<T>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..runs {
        if i % 2 == 0 {
            xs.push(a());
            ys.push(b());
        } else {
            ys.push(b());
            xs.push(a());
        }
    }
    (xs, ys)
}

/// Wall seconds from spawn to exit of a command whose output is discarded.
fn wall_seconds(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let s = t.elapsed().as_secs_f64();
    assert!(status.success(), "{cmd:?} failed: {status}");
    s
}

/// "p50 .. ms, p99 .. ms, max .. ms" of latencies in milliseconds.
fn spread(millis: &[f64]) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(millis.to_vec(), 0.5),
        percentile(millis.to_vec(), 0.99),
        percentile(millis.to_vec(), 1.0),
    )
}

fn percentile(mut v: Vec<f64>, q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cores} cores ({cpu}), {:.1} GiB RAM",
        mem_kb as f64 / (1024.0 * 1024.0)
    )
}

struct Row {
    measure: String,
    driftd: String,
    peer: String,
    /// `None` when the peer has no figure.
    ratio: Option<f64>,
}

/// Throughput rows and peak-memory rows of one measurement. `higher_better`:
/// the value is a rate (else a time).
fn rows_for(
    rows: &mut Vec<Row>,
    what: &str,
    unit: &str,
    higher_better: bool,
    (d, p): (Vec<Sample>, Vec<Sample>),
) {
    let dv = median(d.iter().map(|s| s.value).collect());
    let pv = median(p.iter().map(|s| s.value).collect());
    let fmt = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.3}")
        }
    };
    rows.push(Row {
        measure: format!("{what} ({unit})"),
        driftd: fmt(dv),
        peer: fmt(pv),
        ratio: Some(if higher_better { dv / pv } else { pv / dv }),
    });
    let dm = median(d.iter().map(|s| s.peak_rss_kb as f64).collect()) / 1024.0;
    let pm = median(p.iter().map(|s| s.peak_rss_kb as f64).collect()) / 1024.0;
    rows.push(Row {
        measure: format!("peak RSS, {what} (MiB)"),
        driftd: format!("{dm:.0}"),
        peer: format!("{pm:.0}"),
        ratio: Some(pm / dm),
    });
}

/// The rows of the components, each in a harness (a worker process of
/// this binary beside a peer process), and the cold start of the binary.
fn component_rows(runs: usize, python: &str, threads: usize) -> Vec<Row> {
    let peer_script = Path::new(ROOT).join("benches/peer/suite_peer.py");
    let me = std::env::current_exe().expect("own path");
    let data = reference_data();
    let driftd = |mode: &str, extra: &[&Path]| {
        let mut c = Command::new(&me);
        // polars' pool gets the same threads as the peer's polars.
        c.args(["--worker", mode])
            .args(extra)
            .env("POLARS_MAX_THREADS", threads.to_string());
        sample(&mut c)
    };
    let peer = |mode: &str, extra: &[&str]| {
        let mut c = Command::new(python);
        c.arg(&peer_script)
            .arg(mode)
            .arg(format!("--threads={threads}"))
            .arg("--data")
            .arg(&data)
            .args(extra);
        sample(&mut c)
    };

    let mut rows = Vec::new();
    eprintln!("suite: training ({runs} runs per side)");
    let train = alternate(runs, || driftd("train", &[]), || peer("train", &[]));
    rows_for(
        &mut rows,
        "training, reference MLP, batch 32, 150 epochs",
        "steps/s",
        true,
        train,
    );

    eprintln!("suite: tournament");
    let tour = alternate(
        runs,
        || driftd("tournament", &[]),
        || peer("tournament", &[]),
    );
    rows_for(
        &mut rows,
        "reference tournament, 8 strategies, 1 seed",
        "s",
        false,
        tour,
    );

    eprintln!("suite: scoring");
    let dir = tempfile::tempdir().expect("tempdir");
    let scoring = dir.path().join("scoring.parquet");
    let mut spec = ClassificationSpec::reference(2);
    spec.n_samples = SCORING_ROWS;
    synth::write_parquet(&scoring, &synth::make_classification(&spec), None).expect("write");
    let scoring_arg = scoring.display().to_string();
    let score = alternate(
        runs,
        || driftd("score", &[&scoring]),
        || peer("score", &["--scoring", &scoring_arg]),
    );
    rows_for(
        &mut rows,
        "batch scoring, 1,000,000 rows",
        "rows/s",
        true,
        score,
    );

    eprintln!("suite: ingest + score + metric update");
    let ingest_dir = dir.path().join("ingest");
    let model_path = dir.path().join("model.safetensors");
    common::write_ingest_fixture(
        &synth::make_classification(&spec),
        INGEST_FILES,
        &ingest_dir,
        &model_path,
        &reference_policy(),
    );
    let ingest_peer = || {
        let v = product::ingest_peer(python, &ingest_dir, &model_path, threads);
        Sample {
            value: v["rows"].as_f64().expect("rows") / v["seconds"].as_f64().expect("seconds"),
            peak_rss_kb: v["peak_rss_kb"].as_u64().expect("peak_rss_kb"),
        }
    };
    for (mode, what) in [
        (
            "ingest",
            "ingest + score + accuracy, 1,000,000 rows in 10 Parquet files",
        ),
        (
            "ingest-monitor",
            "ingest + score + the daemon's Monitor::observe (peer: accuracy), same files",
        ),
    ] {
        let ingest = alternate(
            runs,
            || driftd(mode, &[&ingest_dir, &model_path]),
            ingest_peer,
        );
        rows_for(&mut rows, what, "rows/s", true, ingest);
    }

    eprintln!("suite: cold start");
    let (d, p) = alternate(
        runs,
        || wall_seconds(Command::new(DRIFTD).arg("--help")),
        || wall_seconds(Command::new(python).arg(&peer_script).arg("--help")),
    );
    let (d, p) = (median(d) * 1e3, median(p) * 1e3);
    rows.push(Row {
        measure: "cold start: `driftd --help` / `suite_peer.py --help` (ms)".into(),
        driftd: format!("{d:.1}"),
        peer: format!("{p:.1}"),
        ratio: Some(p / d),
    });
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--worker") {
        worker(&args[i + 1..]);
        return;
    }
    let runs: usize = std::env::var("DRIFTD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    // DRIFTD_BENCH_ONLY=product,latency,components: only those parts.
    let only = std::env::var("DRIFTD_BENCH_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    let python =
        std::env::var("DRIFTD_PYTHON").unwrap_or_else(|_| format!("{ROOT}/.venv/bin/python"));
    let threads = reference_policy().training.threads;
    let torch_version = Command::new(&python)
        .args(["-c", "import torch; print(torch.__version__)"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| panic!("{python}: {e}"));

    let load_at_start = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut notes = Vec::new();
    let components = if wants("components") {
        component_rows(runs, &python, threads)
    } else {
        Vec::new()
    };

    if wants("latency") {
        eprintln!("suite: file landed to drift_alert ({LATENCY_FILES} files)");
        let latency = daemon::alert_latency(threads);
        let ready = median((0..runs).map(|_| daemon::daemon_readiness()).collect()) * 1e3;
        notes.push(format!(
            "driftd only: daemon readiness (spawn to status.json, empty data dir): {ready:.1} ms"
        ));
        notes.push(format!(
            "driftd only: file landed (rename) to its drift_alert log line, {} files of {LATENCY_ROWS} rows: {}",
            latency.millis.len(),
            spread(&latency.millis),
        ));
        notes.push(format!(
            "driftd only: daemon RSS while tailing with the reference model (after those files): \
             {:.0} MiB (peak {:.0} MiB, including the training of version 1)",
            latency.rss_kb as f64 / 1024.0,
            latency.hwm_kb as f64 / 1024.0
        ));
    }

    let mut product_rows = Vec::new();
    if wants("product") || wants("latency") {
        eprintln!("suite: the daemon end to end (fixture, driftd init)");
        let root = tempfile::tempdir().expect("tempdir");
        let fixture = product::fixture(root.path());
        if wants("product") {
            eprintln!("suite: the daemon catching up ({runs} runs per side)");
            let ticks = daemon::clock_ticks();
            let mut run = 0;
            let catch_up = alternate(
                runs,
                || {
                    run += 1;
                    product::daemon_run(&fixture, run, ticks)
                },
                || product::peer_run(&fixture, &python, threads),
            );
            product_rows = product::rows(&catch_up, &mut notes);
        }
        if wants("latency") {
            eprintln!("suite: file landed to drift_alert behind a backlog");
            let b = daemon::backlog_latency(threads, &fixture.files);
            let what = format!(
                "driftd only: file landed (rename) to its drift_alert log line while catching up a \
                 2M-row backlog (the latency daemon; {} files × {} rows linked at once, the flipped \
                 file renamed in once the first is read)",
                product::FILES,
                product::ROWS_PER_FILE,
            );
            notes.push(format!(
                "{what}, named after the backlog (arrival order), {} rounds: {}",
                b.after.len(),
                spread(&b.after)
            ));
            notes.push(format!(
                "{what}, named to sort before the unread backlog, {} rounds: {}",
                b.before.len(),
                spread(&b.before)
            ));
        }
    }

    println!(
        "Machine: {}. Threads: {threads} (training.threads of config/reference.toml) on both sides. \
         Peer: Python + PyTorch {torch_version}. Median of {runs} runs per side, alternating.",
        machine()
    );
    println!();
    println!("| what | measure | driftd | PyTorch peer | ratio (× in driftd's favour) |");
    println!("|---|---|---:|---:|---:|");
    let (components, cold_start) = components.split_at(components.len().saturating_sub(1));
    let sections = [
        ("product (the daemon)", &product_rows[..]),
        ("component, in a harness", components),
        ("the binary", cold_start),
    ];
    for (what, rows) in sections {
        for r in rows {
            let ratio = r.ratio.map_or("-".into(), |v| format!("{v:.2}"));
            println!(
                "| {what} | {} | {} | {} | {ratio} |",
                r.measure, r.driftd, r.peer
            );
        }
    }
    println!();
    for n in &notes {
        println!("{n}");
    }
    let load = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(", ");
    println!(
        "Load average (1, 5, 15 min) at the start: {}; at the end: {} (other processes share the cores)",
        load(&load_at_start),
        load(&std::fs::read_to_string("/proc/loadavg").unwrap_or_default())
    );
}
