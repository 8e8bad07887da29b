//! The release daemon driven as a user runs it: `driftd --log-format json
//! run` on a policy in a temporary directory, its log lines read from stderr
//! as they arrive (each stamped on arrival), stopped with SIGTERM. Readiness,
//! file landed to alert (on a quiet daemon and behind a backlog) and the
//! product measurement (`product.rs`) use it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use driftd::model::Dataset;
use driftd::synth::{self, ClassificationSpec};

use super::DRIFTD;

/// The concept of the latency daemon's model. The backlog files
/// (`product::Fixture`) are drawn from it too, so its model scores them as
/// it scores its own files.
pub const LATENCY_SEED: u64 = 5;
/// Files whose alert latency is measured (each after a file that recovers).
pub const LATENCY_FILES: usize = 120;
/// Rows per latency file.
pub const LATENCY_ROWS: usize = 500;
/// Rounds of the latency behind a backlog: a backlog each, and one flipped
/// file (half of them named after the backlog, half before).
pub const BACKLOG_ROUNDS: usize = 40;

/// A running `driftd run`; killed if dropped before [`Daemon::stop`].
pub struct Daemon {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

/// Whether a JSON log line is the event `name` (the JSON format flattens
/// the event's fields into the object).
pub fn is_event(line: &str, name: &str) -> bool {
    line.contains(&format!("\"event\":\"{name}\""))
}

/// Whether a JSON log line is the `file_ingested` event of a file whose
/// name contains `name`.
pub fn is_ingested(line: &str, name: &str) -> bool {
    is_event(line, "file_ingested") && line.contains(name)
}

impl Daemon {
    /// Spawns the release binary on `policy`; stdout is discarded.
    pub fn spawn(policy: &Path) -> Daemon {
        let mut child = Command::new(DRIFTD)
            .args(["--log-format", "json", "run", "--config"])
            .arg(policy)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("driftd run starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send((Instant::now(), line)).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next log line and when it arrived; panics after `timeout`.
    pub fn next_line(&self, timeout: Duration, waiting_for: &str) -> (Instant, String) {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("no {waiting_for} from the daemon: {e}"))
    }

    /// When the first line for which `what` holds arrived (within 120 s);
    /// the lines before it are skipped.
    pub fn wait_for(&self, what: &dyn Fn(&str) -> bool, label: &str) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (at, line) =
                self.next_line(deadline.saturating_duration_since(Instant::now()), label);
            if what(&line) {
                return at;
            }
        }
    }

    /// VmRSS and VmHWM, in KiB.
    pub fn rss(&self) -> (u64, u64) {
        rss_of(self.pid())
    }

    /// CPU seconds (user + system, every thread) the daemon used so far;
    /// `ticks` is the kernel's clock ticks per second.
    pub fn cpu_seconds(&self, ticks: f64) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name (which may hold spaces): state is
        // field 3, utime 14, stime 15.
        let after = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<f64> = after
            .split_whitespace()
            .skip(11)
            .take(2)
            .map(|v| v.parse().expect("ticks"))
            .collect();
        (f[0] + f[1]) / ticks
    }

    /// SIGTERM, then reaps the daemon; returns the log lines it wrote after
    /// the last one read, and the seconds from the signal to its exit.
    pub fn stop(mut self) -> (Vec<String>, f64) {
        let t = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        self.child.wait().expect("reap driftd run");
        let seconds = t.elapsed().as_secs_f64();
        (self.lines.try_iter().map(|(_, l)| l).collect(), seconds)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 if that
/// fails), the unit of /proc/PID/stat's CPU times.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// VmRSS and VmHWM of process `pid`, in KiB.
pub fn rss_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Seconds from spawning `driftd run` on an empty data directory until its
/// status.json appears (it is published right after `daemon_started`).
pub fn daemon_readiness() -> f64 {
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("incoming")).expect("data dir");
    let policy = root.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[data]\ndir = \"incoming\"\nfeatures = \"f*\"\n[registry]\ndir = \"models\"\n\
         [state]\ndir = \"state\"\n[schedule]\nenabled = false\n",
    )
    .expect("policy");
    let status = root.path().join("state/status.json");
    let t = Instant::now();
    let mut child = Command::new(DRIFTD)
        .args(["--log-format", "json", "run", "--config"])
        .arg(&policy)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("driftd run starts");
    let deadline = t + Duration::from_secs(60);
    while !status.exists() {
        if let Ok(Some(s)) = child.try_wait() {
            panic!("driftd run exited before it was ready: {s}");
        }
        assert!(Instant::now() < deadline, "driftd run not ready in 60 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    let s = t.elapsed().as_secs_f64();
    child.kill().expect("kill driftd run");
    child.wait().expect("reap driftd run");
    s
}

/// What the latency run measured.
pub struct Latency {
    /// Milliseconds from each alerting file's rename to its `drift_alert`.
    pub millis: Vec<f64>,
    /// The daemon's VmRSS after the run (tailing, the reference model live)
    /// and its peak, in KiB.
    pub rss_kb: u64,
    pub hwm_kb: u64,
}

/// The latency daemon: the release daemon on a temporary directory, with
/// the reference model trained at start on a first file of `rows` (its
/// first 1000 rows, which `initial_rows` asks for) and a threshold detector
/// (accuracy below 0.5 over a window of one file). Updates never start:
/// one needs a million rows after an alert, and the daily cap is 0 (the
/// backlog run brings millions of rows). `incoming` is the data directory.
struct LatencyDaemon {
    _root: tempfile::TempDir,
    incoming: PathBuf,
    daemon: Daemon,
}

impl LatencyDaemon {
    fn start(threads: usize, rows: &Dataset) -> LatencyDaemon {
        let root = tempfile::tempdir().expect("tempdir");
        let incoming = root.path().join("incoming");
        std::fs::create_dir_all(&incoming).expect("data dir");
        let policy = root.path().join("policy.toml");
        std::fs::write(
            &policy,
            format!(
                "[data]\ndir = \"incoming\"\nfeatures = \"f*\"\ninitial_rows = 1000\n\
                 [model]\nhidden = [20, 10]\n[training]\nthreads = {threads}\n\
                 [monitor]\nwindow = {LATENCY_ROWS}\nmin_rows_before_alert = 0\nrealert_after_rows = 0\n\
                 recovery_margin = 0.3\n\
                 detectors = [{{ kind = \"threshold\", window = {LATENCY_ROWS}, rule = \"floor\", limit = 0.5 }}]\n\
                 [monitor.input]\nenabled = false\n\
                 [update]\nmin_new_rows = 1000000\nmax_new_rows = 1000000\nmax_updates_per_day = 0\n\
                 [schedule]\nenabled = false\n[registry]\ndir = \"models\"\n[state]\ndir = \"state\"\n"
            ),
        )
        .expect("policy");
        let d = LatencyDaemon {
            incoming,
            daemon: Daemon::spawn(&policy),
            _root: root,
        };
        let first = d.write("000000-initial.parquet", &rows.slice(0, 1000));
        d.land(&first, "000000-initial.parquet");
        d.daemon.wait_for(
            &|l| is_ingested(l, "000000-initial"),
            "ingest of the first file",
        );
        d
    }

    /// Writes `data` under a hidden temporary name in the data directory.
    fn write(&self, name: &str, data: &Dataset) -> PathBuf {
        let tmp = self.incoming.join(format!(".{name}.tmp"));
        synth::write_parquet(&tmp, data, None).expect("write");
        tmp
    }

    /// Renames a written file into place (the producer convention); returns
    /// the instant just before the rename.
    fn land(&self, tmp: &Path, name: &str) -> Instant {
        let at = Instant::now();
        std::fs::rename(tmp, self.incoming.join(name)).expect("rename");
        at
    }

    /// Stops the daemon; its VmRSS and VmHWM just before, in KiB.
    fn stop(self) -> (u64, u64) {
        let rss = self.daemon.rss();
        self.daemon.stop();
        rss
    }
}

/// A good file then a flipped one, over and over: files of the model's
/// concept alternate with files whose labels are flipped. Every flipped
/// file drops the rolling accuracy below the floor and raises one
/// `drift_alert`; the next good files end the episode. The time is taken
/// from the rename to the arrival of the alert's log line on the daemon's
/// stderr.
pub fn alert_latency(threads: usize) -> Latency {
    let mut spec = ClassificationSpec::reference(LATENCY_SEED);
    spec.n_samples = 1000 + LATENCY_FILES * 3 * LATENCY_ROWS;
    let rows = synth::make_classification(&spec);
    let d = LatencyDaemon::start(threads, &rows);
    let mut millis = Vec::new();
    let mut at = 1000;
    for i in 0..LATENCY_FILES {
        // Two good files (a full window of good rows ends the episode).
        for g in 0..2 {
            let name = format!("{:06}-good-{g}.parquet", 2 * i + 1);
            let tmp = d.write(&name, &rows.slice(at, at + LATENCY_ROWS));
            at += LATENCY_ROWS;
            d.land(&tmp, &name);
            d.daemon
                .wait_for(&|l| is_ingested(l, &name), "file_ingested of a good file");
        }
        let name = format!("{:06}-flipped.parquet", 2 * i + 2);
        let mut bad = rows.slice(at, at + LATENCY_ROWS);
        at += LATENCY_ROWS;
        bad.labels.iter_mut().for_each(|l| *l = 1 - *l);
        let tmp = d.write(&name, &bad);
        let renamed = d.land(&tmp, &name);
        let alerted = d
            .daemon
            .wait_for(&|l| is_event(l, "drift_alert"), "drift_alert");
        millis.push(alerted.duration_since(renamed).as_secs_f64() * 1e3);
        d.daemon.wait_for(
            &|l| is_ingested(l, &name),
            "file_ingested of a flipped file",
        );
    }
    let (rss_kb, hwm_kb) = d.stop();
    Latency {
        millis,
        rss_kb,
        hwm_kb,
    }
}

/// Milliseconds from a flipped file's rename to its `drift_alert` while the
/// daemon catches up a backlog.
pub struct BacklogLatency {
    /// Named in arrival order: after the backlog, so read after all of it.
    pub after: Vec<f64>,
    /// Named to sort before the backlog's unread files: read at the next
    /// rescan.
    pub before: Vec<f64>,
}

/// The latency daemon again, with a backlog: each round hard-links the
/// files of `backlog` (of the model's concept) into the data directory at
/// once under new names, and once the first of them is ingested (the daemon
/// is catching up) renames a flipped file in; the time from that rename to
/// the `drift_alert`. The daemon reads the files of a scan in name order and
/// rescans after half a second of reading, so the flipped file's name
/// decides its wait: rounds alternate between a name after the backlog's
/// (arrival order, as producers name files) and one before it. The next
/// round's backlog ends the episode.
pub fn backlog_latency(threads: usize, backlog: &[PathBuf]) -> BacklogLatency {
    let mut spec = ClassificationSpec::reference(LATENCY_SEED);
    spec.n_samples = 1000 + BACKLOG_ROUNDS * LATENCY_ROWS;
    let rows = synth::make_classification(&spec);
    let d = LatencyDaemon::start(threads, &rows);
    let mut out = BacklogLatency {
        after: Vec::new(),
        before: Vec::new(),
    };
    let backlog_name = |round: usize, j: usize| format!("{round:06}-b-{j:03}.parquet");
    for round in 1..=BACKLOG_ROUNDS {
        let in_arrival_order = round % 2 == 1;
        // `a` sorts before the backlog's `b`, `c` after it.
        let name = format!(
            "{round:06}-{}-flipped.parquet",
            if in_arrival_order { 'c' } else { 'a' }
        );
        let at = 1000 + (round - 1) * LATENCY_ROWS;
        let mut bad = rows.slice(at, at + LATENCY_ROWS);
        bad.labels.iter_mut().for_each(|l| *l = 1 - *l);
        let tmp = d.write(&name, &bad);
        for (j, file) in backlog.iter().enumerate() {
            std::fs::hard_link(file, d.incoming.join(backlog_name(round, j))).expect("link");
        }
        let first = backlog_name(round, 0);
        d.daemon.wait_for(
            &|l| is_ingested(l, &first),
            "file_ingested of the backlog's first file",
        );
        let renamed = d.land(&tmp, &name);
        let last = backlog_name(round, backlog.len() - 1);
        let (mut alerted, mut ingested) = (None, HashSet::new());
        let deadline = Instant::now() + Duration::from_secs(300);
        while alerted.is_none() || !ingested.contains(&name) || !ingested.contains(&last) {
            let left = deadline.saturating_duration_since(Instant::now());
            let (at, line) = d.daemon.next_line(left, "the round's alert and files");
            // The threshold detector's warning and drift come from the same
            // file: the first counts.
            if is_event(&line, "drift_alert") && alerted.is_none() {
                alerted = Some(at);
            }
            for n in [&name, &last] {
                if is_ingested(&line, n) {
                    ingested.insert(n.clone());
                }
            }
        }
        let millis = alerted
            .expect("checked")
            .duration_since(renamed)
            .as_secs_f64()
            * 1e3;
        if in_arrival_order {
            out.after.push(millis);
        } else {
            out.before.push(millis);
        }
    }
    d.stop();
    out
}
