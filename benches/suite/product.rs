//! The product as a user runs it: `driftd run` with the shipped policy
//! (`config/policy.toml` with only the data, registry and state paths and
//! the feature names set), version 1 trained by `driftd init`, catching up
//! 20 files of 100,000 rows that land at once. Timed from the links to the
//! 20th `file_ingested`; the daemon's CPU time over that span and its peak
//! resident set. Whatever the policy starts meanwhile (continual updates,
//! input drift checks) counts, as it would for a user. Beside it the
//! ingest and score peer (`benches/peer/ingest_score.py`) on the same files
//! with version 1's checkpoint.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use driftd::synth::{self, ClassificationSpec};

use super::daemon::{self, is_event, Daemon};
use super::{median, rows_for, Row, Sample, DRIFTD, ROOT};

/// Files the daemon catches up, and rows per file.
pub const FILES: usize = 20;
pub const ROWS_PER_FILE: usize = 100_000;
/// Rows version 1 is trained on.
const INIT_ROWS: usize = 2_000;

/// What `driftd init` left, and the files to catch up.
pub struct Fixture {
    /// Holds `template/` (policy.toml, models/, state/), `staging/` (the
    /// files, outside any data directory) and the runs' directories.
    root: PathBuf,
    /// The files to catch up, sorted.
    pub files: Vec<PathBuf>,
}

/// The shipped policy, with only the paths (relative to the policy's
/// directory) and the feature names changed; comments and every other
/// setting stay as shipped.
fn shipped_policy() -> String {
    let path = Path::new(ROOT).join("config/policy.toml");
    let text = std::fs::read_to_string(&path).expect("config/policy.toml");
    let mut doc: toml_edit::DocumentMut = text.parse().expect("config/policy.toml parses");
    doc["data"]["dir"] = toml_edit::value("incoming");
    doc["data"]["features"] =
        toml_edit::value(toml_edit::Array::from_iter(synth::feature_names(20)));
    doc["registry"]["dir"] = toml_edit::value("models");
    doc["state"]["dir"] = toml_edit::value("state");
    doc.to_string()
}

/// Writes the files (of the latency daemon's concept, so they serve as its
/// backlog too) and trains version 1 with `driftd init` on more rows of it.
pub fn fixture(root: &Path) -> Fixture {
    let mut spec = ClassificationSpec::reference(daemon::LATENCY_SEED);
    spec.n_samples = INIT_ROWS + FILES * ROWS_PER_FILE;
    let all = synth::make_classification(&spec);
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).expect("staging dir");
    let files: Vec<PathBuf> = (0..FILES)
        .map(|f| {
            let path = staging.join(format!("part-{f:03}.parquet"));
            let start = INIT_ROWS + f * ROWS_PER_FILE;
            synth::write_parquet(&path, &all.slice(start, start + ROWS_PER_FILE), None)
                .expect("write");
            path
        })
        .collect();
    let init = root.join("init.parquet");
    synth::write_parquet(&init, &all.slice(0, INIT_ROWS), None).expect("write");
    let template = root.join("template");
    std::fs::create_dir_all(template.join("incoming")).expect("template dir");
    let policy = template.join("policy.toml");
    std::fs::write(&policy, shipped_policy()).expect("policy");
    let out = Command::new(DRIFTD)
        .args(["--log-format", "json", "init", "--config"])
        .arg(&policy)
        .arg("--data")
        .arg(&init)
        .output()
        .expect("driftd init");
    assert!(
        out.status.success(),
        "driftd init failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Fixture {
        root: root.to_path_buf(),
        files,
    }
}

impl Fixture {
    /// Version 1's checkpoint, which the peer loads.
    pub fn checkpoint(&self) -> PathBuf {
        self.root
            .join("template/models/versions/000001/model.safetensors")
    }
}

/// One catch-up, either side.
#[derive(Debug, Clone, Default)]
pub struct CatchUp {
    pub rows_per_sec: f64,
    pub peak_rss_kb: u64,
    pub cpu_per_million_rows: Option<f64>,
    /// The daemon's events from the links to the 20th `file_ingested`.
    pub updates_started: usize,
    pub promoted: usize,
    pub rejected: usize,
    pub drift_alerts: usize,
    /// Seconds from SIGTERM to the daemon's exit.
    pub stop_seconds: f64,
}

impl CatchUp {
    pub fn sample(&self) -> Sample {
        Sample {
            value: self.rows_per_sec,
            peak_rss_kb: self.peak_rss_kb,
        }
    }
}

/// Copies a directory tree, keeping permissions (the registry and state are
/// owner-only).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
    let perms = std::fs::metadata(from).expect("metadata").permissions();
    std::fs::set_permissions(to, perms).expect("chmod");
}

/// The daemon side of run `run`: a fresh copy of the registry and state
/// `driftd init` left (an empty manifest), `driftd run` until it has
/// started, then every file hard-linked into the data directory at once.
pub fn daemon_run(fx: &Fixture, run: usize, ticks: f64) -> CatchUp {
    let dir = fx.root.join(format!("run-{run}"));
    let template = fx.root.join("template");
    std::fs::create_dir_all(dir.join("incoming")).expect("data dir");
    std::fs::copy(template.join("policy.toml"), dir.join("policy.toml")).expect("policy");
    copy_dir(&template.join("models"), &dir.join("models"));
    // `driftd init` writes no state; copied in case a version does.
    if template.join("state").exists() {
        copy_dir(&template.join("state"), &dir.join("state"));
    }
    let d = Daemon::spawn(&dir.join("policy.toml"));
    d.wait_for(&|l| is_event(l, "daemon_started"), "daemon_started");
    let cpu_before = d.cpu_seconds(ticks);
    let linked = Instant::now();
    for file in &fx.files {
        let name = file.file_name().expect("file name");
        std::fs::hard_link(file, dir.join("incoming").join(name)).expect("link");
    }
    let mut out = CatchUp::default();
    let (mut ingested, deadline) = (0, linked + Duration::from_secs(600));
    let mut last = linked;
    while ingested < fx.files.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, line) = d.next_line(left, "file_ingested of every file");
        let counts = [
            ("file_ingested", &mut ingested),
            ("update_started", &mut out.updates_started),
            ("model_promoted", &mut out.promoted),
            ("update_rejected", &mut out.rejected),
            ("drift_alert", &mut out.drift_alerts),
        ];
        for (event, count) in counts {
            if is_event(&line, event) {
                *count += 1;
            }
        }
        assert!(
            !is_event(&line, "file_quarantined"),
            "a file was quarantined: {line}"
        );
        last = at;
    }
    let rows = (fx.files.len() * ROWS_PER_FILE) as f64;
    let cpu = d.cpu_seconds(ticks) - cpu_before;
    out.rows_per_sec = rows / last.duration_since(linked).as_secs_f64();
    out.cpu_per_million_rows = Some(cpu / (rows / 1e6));
    out.peak_rss_kb = d.rss().1;
    (_, out.stop_seconds) = d.stop();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// Runs `benches/peer/ingest_score.py` on the Parquet files of `dir` with
/// `model`'s checkpoint, libtorch and polars on `threads` threads; returns
/// the JSON line it prints (rows, seconds, peak_rss_kb, cpu_seconds: its
/// timed loop, imports, the checkpoint's load and one warm-up file
/// excluded).
pub fn ingest_peer(python: &str, dir: &Path, model: &Path, threads: usize) -> serde_json::Value {
    let script = Path::new(ROOT).join("benches/peer/ingest_score.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(dir)
        .arg(model)
        .arg(threads.to_string())
        .env("POLARS_MAX_THREADS", threads.to_string())
        .output()
        .expect("ingest peer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ingest peer failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("json")
}

/// The peer side: [`ingest_peer`] on the files, 1 libtorch and polars
/// thread as in the ingest rows.
pub fn peer_run(fx: &Fixture, python: &str, threads: usize) -> CatchUp {
    let staging = fx.files[0].parent().expect("staging dir");
    let v = ingest_peer(python, staging, &fx.checkpoint(), threads);
    let rows = v["rows"].as_f64().expect("rows");
    CatchUp {
        rows_per_sec: rows / v["seconds"].as_f64().expect("seconds"),
        peak_rss_kb: v["peak_rss_kb"].as_u64().expect("peak_rss_kb"),
        cpu_per_million_rows: v["cpu_seconds"].as_f64().map(|c| c / (rows / 1e6)),
        ..CatchUp::default()
    }
}

/// The product's rows: rows per second and peak RSS (as every measurement),
/// then CPU seconds per million rows; what the policy did during each
/// catch-up goes to `notes`.
pub fn rows((d, p): &(Vec<CatchUp>, Vec<CatchUp>), notes: &mut Vec<String>) -> Vec<Row> {
    let mut rows = Vec::new();
    rows_for(
        &mut rows,
        "the daemon end to end: `driftd run`, shipped policy, catching up 20 files × 100,000 rows",
        "rows/s",
        true,
        (
            d.iter().map(CatchUp::sample).collect(),
            p.iter().map(CatchUp::sample).collect(),
        ),
    );
    let cpu = |runs: &[CatchUp]| {
        let v: Option<Vec<f64>> = runs.iter().map(|r| r.cpu_per_million_rows).collect();
        v.map(median)
    };
    let (dc, pc) = (cpu(d).expect("the daemon's CPU time"), cpu(p));
    rows.push(Row {
        measure: "CPU seconds per million rows, daemon catching up (peer: its ingest + score loop)"
            .into(),
        driftd: format!("{dc:.3}"),
        peer: pc.map_or("-".into(), |v| format!("{v:.3}")),
        ratio: pc.map(|v| v / dc),
    });
    let per_run = |f: fn(&CatchUp) -> usize| {
        d.iter()
            .map(|r| f(r).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    notes.push(format!(
        "driftd only: during each catch-up of the daemon (shipped policy; per run): updates started \
         [{}], promoted [{}], rejected [{}]; drift alerts [{}]; SIGTERM to exit median {:.2} s",
        per_run(|r| r.updates_started),
        per_run(|r| r.promoted),
        per_run(|r| r.rejected),
        per_run(|r| r.drift_alerts),
        median(d.iter().map(|r| r.stop_seconds).collect()),
    ));
    rows
}
