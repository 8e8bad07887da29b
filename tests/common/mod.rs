//! Helpers shared by the end-to-end tests: the real binary, policies in
//! temp dirs, and waiting on the daemon's status file.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_driftd");

pub fn driftd(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("driftd runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A policy for a small fast setup rooted in `root` (data in `root/incoming`).
pub fn write_policy(root: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(root.join("incoming")).unwrap();
    let text = format!(
        r#"[data]
dir = "incoming"
features = "f*"
poll_interval_ms = 20
initial_rows = 500
[training]
epochs = 30
[monitor]
window = 200
[schedule]
enabled = false
[update]
min_new_rows = 200
[registry]
dir = "models"
[state]
dir = "state"
{extra}"#
    );
    let p = root.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Reads the daemon's status.json, if present and complete.
pub fn status(root: &Path) -> Option<serde_json::Value> {
    let bytes = std::fs::read(root.join("state/status.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Waits (bounded) until `f` holds for the daemon's status.
pub fn wait_status(
    root: &Path,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(s) = status(root) {
            if f(&s) {
                return s;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}; status: {:?}",
            status(root)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn spawn_daemon(policy: &Path) -> Running {
    Running::new(
        Command::new(BIN)
            .args(["--log-format", "json", "run", "--config"])
            .arg(policy)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("driftd run starts"),
    )
}

/// A child process that is killed and reaped when dropped, so that a test
/// that fails (panics) while its daemon runs does not leave it running.
/// Derefs to the [`Child`].
pub struct Running(Option<Child>);

impl Running {
    pub fn new(child: Child) -> Running {
        Running(Some(child))
    }

    /// The child, no longer killed on drop (for `wait_with_output`).
    pub fn into_inner(mut self) -> Child {
        self.0.take().expect("present until dropped")
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.0.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("present until dropped")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

pub fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

/// Generates a stream into `dir` with the real `gen-data` command.
pub fn gen_stream(dir: &Path, rows: usize, drift_at: Option<usize>, per_file: usize, seed: u64) {
    let mut args = vec![
        "gen-data".to_string(),
        "stream".into(),
        "--out".into(),
        dir.display().to_string(),
        "--rows".into(),
        rows.to_string(),
        "--rows-per-file".into(),
        per_file.to_string(),
        "--seed".into(),
        seed.to_string(),
    ];
    if let Some(d) = drift_at {
        args.push("--drift-at".into());
        args.push(d.to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = driftd(&args);
    assert!(o.status.success(), "gen-data failed: {}", stderr(&o));
}

/// Writes `df` into `dir` as `name` the way producers do: under a hidden
/// temporary name, then renamed into place.
pub fn publish_parquet(df: &mut polars::prelude::DataFrame, dir: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    polars::prelude::ParquetWriter::new(std::fs::File::create(&tmp).unwrap())
        .finish(df)
        .unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The tutorial's split (old / new_train / new_test) with `gen-data reference`.
pub fn gen_reference(dir: &Path) {
    let o = driftd(&["gen-data", "reference", "--out", dir.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "gen-data reference failed: {}",
        stderr(&o)
    );
}

/// The daemon's manifest as the daemon itself reads it: `state/manifest.json`
/// plus the journal of outcomes appended since its last compaction.
pub fn manifest(root: &Path) -> Option<serde_json::Value> {
    let m = driftd::ingest::Manifest::load(&root.join("state/manifest.json")).ok()?;
    (m.next_seq > 0).then(|| serde_json::to_value(&m).expect("manifest serializes"))
}

/// stderr of a running daemon, collected by a thread.
pub struct Logs(Arc<Mutex<String>>);

impl Logs {
    pub fn collect(child: &mut Child) -> Logs {
        let buf = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = buf.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut b = sink.lock().unwrap();
                b.push_str(&line);
                b.push('\n');
            }
        });
        Logs(buf)
    }

    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits (bounded) for `n` lines containing every one of `parts`.
    pub fn wait_for(&self, parts: &[&str], n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found: Vec<String> = self
                .text()
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .map(String::from)
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} log lines with {parts:?}; logs:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The run called `name` (`policy`, `periodic_only`, `never_update`) of a
/// backtest's JSON report.
pub fn run_named<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run"] == name)
        .unwrap_or_else(|| panic!("no run {name}"))
}
