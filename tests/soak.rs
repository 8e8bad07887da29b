//! Soak: one daemon run ingests many small files and runs many updates
//! while its resident memory, open file descriptors and threads are sampled
//! from /proc; they must stay flat.
//!
//! `DRIFTD_SOAK_FILES` (default 1000) files of `DRIFTD_SOAK_ROWS` rows (20)
//! are fed with a bounded backlog, and `DRIFTD_SOAK_UPDATES` (default 5)
//! manual updates (SIGUSR1) are spread over them. `make soak` runs 20,000
//! files and 50 updates. Prints the samples' start and end values (start:
//! the first sample once version 1 is live and the first 5% of the files are
//! in; end: after the last file and update), the ingestion rate early and
//! late (a cost that grows with the files seen shows as a falling rate), and
//! asserts bounds that a loaded 2-core machine keeps: descriptors within 4
//! of the start, threads within 6 (tokio's blocking pool grows and shrinks
//! with the reads), resident memory growth under 25% plus 64 MiB, and the
//! late rate at least a third of the early one.
//!
//! `harness = false`: the numbers are printed, not captured.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use driftd::synth::{self, ClassificationSpec, StreamSpec};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    files: u64,
    rss_kib: u64,
    fds: usize,
    threads: u64,
}

fn sample(pid: u32, started: Instant, files: u64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Sample {
        seconds: started.elapsed().as_secs_f64(),
        files,
        rss_kib: field("VmRSS:")?,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count(),
        threads: field("Threads:")?,
    })
}

fn status_u64(root: &Path, key: &str) -> u64 {
    status(root).and_then(|s| s[key].as_u64()).unwrap_or(0)
}

fn updates_done(root: &Path) -> u64 {
    status(root)
        .and_then(|s| {
            s["updates_by_outcome"]
                .as_object()
                .map(|o| o.values().filter_map(|v| v.as_u64()).sum())
        })
        .unwrap_or(0)
}

fn main() {
    let files = env("DRIFTD_SOAK_FILES", 1000);
    let rows = env("DRIFTD_SOAK_ROWS", 20);
    let updates = env("DRIFTD_SOAK_UPDATES", 5);
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let policy = write_policy(root, "[update.fine_tune]\nepochs = 10\n");
    // write_policy's [training] and [update] get a few more keys.
    let text = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("epochs = 30", "epochs = 10")
        .replace(
            "min_new_rows = 200",
            "min_new_rows = 200\ncandidates = [\"refit_new\", \"continue_new\"]\n\
             cooldown_seconds = 0\nmax_updates_per_day = 100000\n\
             max_new_rows = 4000\nreservoir_rows = 4000\nmin_improvement = 0.0",
        );
    std::fs::write(&policy, text).unwrap();

    // The files, made before the run (not timed): a stream of at most 1000
    // files with a concept change every fifth of the way (so updates have
    // work to do), copied over and over beyond that (each copy is a new
    // file to the daemon: another name and inode).
    let gen_started = Instant::now();
    let pool = root.join("pool");
    let total_rows = files * rows;
    let distinct = files.min(1000);
    let spec = StreamSpec {
        rows: distinct * rows,
        concept: ClassificationSpec::reference(3),
        drift_at: (1..5).map(|k| k * distinct * rows / 5).collect(),
        drift_width: 0,
        drift_magnitude: 1.0,
        rows_per_file: rows,
        timestamps: None,
        seed: 3,
    };
    let made = synth::write_stream(&pool.join("stream"), &spec).unwrap();
    let paths: Vec<_> = (0..files)
        .map(|i| {
            let path = pool.join(format!("soak-{i:06}.parquet"));
            std::fs::copy(&made[i % distinct], &path).unwrap();
            path
        })
        .collect();
    println!(
        "soak: made {files} files of {rows} rows in {:.0} s",
        gen_started.elapsed().as_secs_f64()
    );

    let log_path = root.join("daemon.log");
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(&policy)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let incoming = root.join("incoming");
    let started = Instant::now();
    let mut delivered = 0usize;
    let mut asked = 0usize;
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = Instant::now();
    let every = files / updates.max(1);
    // The backlog the daemon may have: files delivered but not yet read.
    let backlog = 40;
    loop {
        let ingested = status_u64(root, "files_ingested") as usize;
        while delivered < files && delivered < ingested + backlog {
            let name = paths[delivered].file_name().unwrap();
            std::fs::rename(&paths[delivered], incoming.join(name)).unwrap();
            delivered += 1;
        }
        // An update after every `every` files (once version 1 is live).
        let live = status(root).is_some_and(|s| s["live_version"].is_u64());
        if live && asked < updates && ingested >= (asked + 1) * every - every / 2 {
            signal(&child, "USR1");
            asked += 1;
        }
        if Instant::now() >= next_sample {
            if let Some(s) = sample(pid, started, ingested as u64) {
                samples.push(s);
            }
            next_sample = Instant::now() + Duration::from_millis(500);
        }
        let done = ingested >= files && updates_done(root) >= updates as u64;
        if done {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the daemon exited during the soak"
        );
        assert!(
            started.elapsed() < Duration::from_secs(3 * 3600),
            "the soak did not finish: {ingested} of {files} files, {} updates",
            updates_done(root)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let end = sample(pid, started, files as u64).unwrap();
    samples.push(end);
    let seconds = started.elapsed().as_secs_f64();
    let s = status(root).unwrap();
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());

    let log = std::fs::read_to_string(&log_path).unwrap();
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    let warnings = log
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .count();
    println!(
        "soak: daemon log: {} lines, {} errors, {warnings} warnings (drift alerts among them)",
        log.lines().count(),
        errors.len()
    );
    for e in errors.iter().take(5) {
        println!("  {e}");
    }
    // Warnings other than drift alerts (a failed update says why here).
    for w in log
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") && !l.contains("drift_alert"))
        .take(5)
    {
        println!("  {}", &w[..w.len().min(400)]);
    }
    let m = manifest(root).expect("manifest");
    assert_eq!(m["files"].as_object().unwrap().len(), files);
    assert_eq!(m["rows_ingested"].as_u64(), Some(total_rows as u64));
    assert_eq!(m["next_seq"].as_u64(), Some(files as u64));

    let start = samples
        .iter()
        .find(|x| x.files as usize >= files / 20 && x.files > 0)
        .copied()
        .unwrap_or(samples[0]);
    let rate = |from: f64, to: f64| {
        let a = samples
            .iter()
            .find(|x| x.files as f64 >= from * files as f64);
        let b = samples.iter().find(|x| x.files as f64 >= to * files as f64);
        match (a, b) {
            (Some(a), Some(b)) if b.seconds > a.seconds => {
                (b.files - a.files) as f64 / (b.seconds - a.seconds)
            }
            _ => f64::NAN,
        }
    };
    let (early, late) = (rate(0.05, 0.25), rate(0.75, 0.95));
    let max = |f: fn(&Sample) -> u64| samples.iter().map(f).max().unwrap();
    println!(
        "soak: {files} files ({total_rows} rows), {updates} manual updates asked, updates by outcome {}, live version at the end {}, in {seconds:.0} s",
        s["updates_by_outcome"],
        s["live_version"]
    );
    println!("soak: {} samples (every 0.5 s)", samples.len());
    println!(
        "| measure | start ({} files, {:.0} s) | end ({} files, {:.0} s) | max |",
        start.files, start.seconds, end.files, end.seconds
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| RSS (MiB) | {:.1} | {:.1} | {:.1} |",
        start.rss_kib as f64 / 1024.0,
        end.rss_kib as f64 / 1024.0,
        max(|x| x.rss_kib) as f64 / 1024.0
    );
    println!(
        "| open fds | {} | {} | {} |",
        start.fds,
        end.fds,
        max(|x| x.fds as u64)
    );
    println!(
        "| threads | {} | {} | {} |",
        start.threads,
        end.threads,
        max(|x| x.threads)
    );
    println!("| files/s (5-25% / 75-95% of the files) | {early:.0} | {late:.0} | |");

    // Regression: drift updates started with fewer rows than the holdout
    // needs, and failed.
    assert!(
        s["updates_by_outcome"].get("failed").is_none(),
        "updates failed: {}",
        s["updates_by_outcome"]
    );
    assert!(
        end.fds <= start.fds + 4,
        "open descriptors grew from {} to {}",
        start.fds,
        end.fds
    );
    assert!(
        end.threads <= start.threads + 6,
        "threads grew from {} to {}",
        start.threads,
        end.threads
    );
    assert!(
        end.rss_kib <= start.rss_kib + start.rss_kib / 4 + 64 * 1024,
        "resident memory grew from {} KiB to {} KiB",
        start.rss_kib,
        end.rss_kib
    );
    if early.is_finite() && late.is_finite() {
        assert!(
            late >= early / 3.0,
            "ingestion slowed from {early:.0} to {late:.0} files/s as files accumulated"
        );
    }
}
