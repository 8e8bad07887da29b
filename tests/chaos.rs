//! Crash chaos: the whole daemon lifecycle, SIGKILLed at random moments and
//! restarted, many times over, with the state checked after every kill.
//!
//! Each lane is one daemon setup. Files arrive while the daemon runs (a
//! seeded pace; streams whose concept changes at seeded rows, so drift
//! alerts, tournaments, promotions and probation rollbacks happen on their
//! own; now and then a bad file: garbage, empty, text), `SIGUSR1` asks for
//! manual updates, and between runs `driftd rollback` moves the live
//! pointer by hand (itself sometimes SIGKILLed). Every daemon run ends in
//! a SIGKILL: after a seeded delay, or a few milliseconds after the n-th
//! occurrence of a seeded log event (`file_ingested`, `update_started`,
//! `candidate_scored`, `model_promoted`, `rollback`, `drift_alert`).
//!
//! After every kill, with nothing running:
//! - the manifest (snapshot + journal, as the daemon loads it) lists only
//!   delivered files; each good one with exactly its rows, each bad one
//!   quarantined; `rows_ingested` is the sum of its entries; every file is
//!   recorded once (sequence numbers 1..=n, no gaps, no repeats);
//! - the registry verifies with no broken version; the live pointer names
//!   an existing version whose model loads and scores a good file (finite
//!   probabilities in [0, 1]);
//! - every history line parses, each names the version live before it as
//!   `previous`, and the last names the live version (or the pointer moved
//!   just before the kill and the next start must record it: checked at
//!   the end);
//! - `status.json`, when present, parses.
//!
//! At the end each lane runs once more until every delivered file is in the
//! manifest and stops with SIGTERM: then every good file's rows are counted
//! exactly once, the history chain is complete and ends at the live
//! version, and `driftd versions` succeeds.
//!
//! `DRIFTD_CHAOS_ITERATIONS` sets the number of kills (default 24; `make
//! test` runs 40, `make chaos` 300). Violations are collected, printed and
//! fail the test at the end.
//!
//! `harness = false`: one `main` drives the lanes on threads.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::BIN;
use driftd::ingest::{self, Manifest, Outcome, Schema};
use driftd::registry::{CheckMode, HistoryEntry, Registry};
use driftd::synth::{self, ClassificationSpec, StreamSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const LANES: usize = 2;
const ROWS_PER_FILE: usize = 200;
const FILES_PER_CHUNK: usize = 30;
/// Longest a daemon run lasts before its kill.
const MAX_LIFE: Duration = Duration::from_millis(6000);
const KILL_EVENTS: [&str; 6] = [
    "file_ingested",
    "update_started",
    "candidate_scored",
    "model_promoted",
    "rollback",
    "drift_alert",
];
/// How often each of [`KILL_EVENTS`] is picked (the rarer events less).
const KILL_WEIGHTS: [u32; 6] = [35, 20, 15, 10, 5, 15];

fn policy(root: &Path, keep_last: usize) -> PathBuf {
    std::fs::create_dir_all(root.join("incoming")).unwrap();
    let text = format!(
        r#"[data]
dir = "incoming"
features = "f*"
poll_interval_ms = 20
initial_rows = 600
incomplete_after_ms = 300
[training]
epochs = 15
[monitor]
window = 200
min_rows_before_alert = 150
[schedule]
enabled = false
[update]
candidates = ["refit_new", "continue_new"]
min_new_rows = 200
cooldown_seconds = 0
max_updates_per_day = 100000
reservoir_rows = 2000
max_new_rows = 3000
[update.fine_tune]
epochs = 15
[update.rollback]
enabled = true
watch_rows = 200
margin = 0.0
[registry]
dir = "models"
keep_last = {keep_last}
[state]
dir = "state"
"#
    );
    let p = root.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    kills_by_time: usize,
    kills_at_max_life: usize,
    kills_after: BTreeMap<String, usize>,
    events: BTreeMap<String, usize>,
    usr1: usize,
    manual_rollbacks: usize,
    manual_rollbacks_killed: usize,
    manual_rollbacks_refused: usize,
    files_good: usize,
    files_bad: usize,
    rows_good: usize,
    checks: usize,
    violations: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.kills += o.kills;
        self.kills_by_time += o.kills_by_time;
        self.kills_at_max_life += o.kills_at_max_life;
        for (k, v) in o.kills_after {
            *self.kills_after.entry(k).or_default() += v;
        }
        for (k, v) in o.events {
            *self.events.entry(k).or_default() += v;
        }
        self.usr1 += o.usr1;
        self.manual_rollbacks += o.manual_rollbacks;
        self.manual_rollbacks_killed += o.manual_rollbacks_killed;
        self.manual_rollbacks_refused += o.manual_rollbacks_refused;
        self.files_good += o.files_good;
        self.files_bad += o.files_bad;
        self.rows_good += o.rows_good;
        self.checks += o.checks;
        self.violations.extend(o.violations);
    }
}

struct Lane {
    root: PathBuf,
    policy: PathBuf,
    rng: ChaCha8Rng,
    /// Generated files not yet delivered (name in `incoming`, path, rows).
    pool: Vec<(String, PathBuf, usize)>,
    chunks: usize,
    good: BTreeMap<String, usize>,
    bad: BTreeSet<String>,
    tally: Tally,
    seed: u64,
}

impl Lane {
    fn new(root: PathBuf, seed: u64, keep_last: usize) -> Lane {
        let policy = policy(&root, keep_last);
        Lane {
            root,
            policy,
            rng: ChaCha8Rng::seed_from_u64(seed),
            pool: Vec::new(),
            chunks: 0,
            good: BTreeMap::new(),
            bad: BTreeSet::new(),
            tally: Tally::default(),
            seed,
        }
    }

    fn incoming(&self) -> PathBuf {
        self.root.join("incoming")
    }

    /// A chunk of files from a fresh concept that changes twice at seeded
    /// rows (each change is a drift the daemon should catch).
    fn refill(&mut self) {
        let rows = ROWS_PER_FILE * FILES_PER_CHUNK;
        let a = self.rng.random_range(600..rows / 2);
        // The second change often lands while the version promoted after
        // the first is still on probation: the occasion for a rollback.
        let b = (a + self.rng.random_range(400..1200)).min(rows - 200);
        let concept_seed = self.seed * 1000 + self.chunks as u64;
        let dir = self.root.join(format!("pool/{:04}", self.chunks));
        let spec = StreamSpec {
            rows,
            concept: ClassificationSpec::reference(concept_seed),
            drift_at: vec![a, b],
            drift_width: 0,
            drift_magnitude: 1.0,
            rows_per_file: ROWS_PER_FILE,
            timestamps: None,
            seed: concept_seed,
        };
        let paths = synth::write_stream(&dir, &spec).unwrap();
        for p in paths {
            let name = format!(
                "c{:04}-{}",
                self.chunks,
                p.file_name().unwrap().to_string_lossy()
            );
            self.pool.push((name, p, ROWS_PER_FILE));
        }
        self.pool.reverse(); // popped from the end
        self.chunks += 1;
    }

    /// Puts the next file in place (atomically: a rename), or now and then
    /// a bad one.
    fn deliver(&mut self) {
        let incoming = self.incoming();
        if self.rng.random_bool(0.06) {
            let n = self.tally.files_bad;
            let name = format!("bad-{n:05}.parquet");
            let bytes: Vec<u8> = match n % 3 {
                0 => {
                    let mut b = b"PAR1".to_vec();
                    b.extend((0..200).map(|_| self.rng.random::<u8>()));
                    b.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
                    b.extend_from_slice(b"PAR1");
                    b
                }
                1 => Vec::new(),
                _ => b"label,f0\n1,2\n".to_vec(),
            };
            let tmp = incoming.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, incoming.join(&name)).unwrap();
            self.bad.insert(name);
            self.tally.files_bad += 1;
            return;
        }
        if self.pool.is_empty() {
            self.refill();
        }
        let (name, path, rows) = self.pool.pop().unwrap();
        std::fs::rename(&path, incoming.join(&name)).unwrap();
        self.good.insert(name, rows);
        self.tally.files_good += 1;
        self.tally.rows_good += rows;
    }

    fn violation(&mut self, context: &str, what: String) {
        eprintln!("VIOLATION ({context}): {what}");
        self.tally.violations.push(format!("{context}: {what}"));
    }

    /// One daemon run ended by SIGKILL.
    fn run_and_kill(&mut self, iteration: usize) -> String {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed * 100_003 + iteration as u64);
        let mut child = spawn(&self.policy);
        let events = follow_events(&mut child);
        let started = Instant::now();
        // The kill: after a delay, or after the n-th occurrence of an event.
        let by_event = rng.random_bool(0.6);
        let kill_event = *KILL_EVENTS
            .iter()
            .zip(KILL_WEIGHTS)
            .scan(
                rng.random_range(0..KILL_WEIGHTS.iter().sum::<u32>()),
                |left, (e, w)| {
                    let pick = *left < w;
                    *left = left.saturating_sub(w);
                    Some((e, pick))
                },
            )
            .find(|(_, pick)| *pick)
            .map(|(e, _)| e)
            .expect("weights cover the range");
        let kill_nth = if kill_event == "file_ingested" {
            rng.random_range(1..40)
        } else {
            rng.random_range(1..3)
        };
        let extra = Duration::from_millis(rng.random_range(0..30));
        let delay = Duration::from_millis(rng.random_range(0..4000));
        let mut usr1_at = rng
            .random_bool(0.25)
            .then(|| Duration::from_millis(rng.random_range(300..2500)));
        let mut next_delivery = started;
        let mut delivered = 0;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut kill_at: Option<Instant> = (!by_event).then(|| started + delay);
        let mut why = format!("{} ms after spawn", delay.as_millis());
        loop {
            let now = Instant::now();
            while let Ok(event) = events.try_recv() {
                let n = seen.entry(event.clone()).or_default();
                *n += 1;
                if by_event && kill_at.is_none() && event == kill_event && *n == kill_nth {
                    kill_at = Some(Instant::now() + extra);
                    why = format!("{} ms after {kill_event} #{kill_nth}", extra.as_millis());
                }
            }
            // At most a few files ahead of the daemon: the runs are about
            // the lifecycle, not a growing backlog.
            let taken = seen.get("file_ingested").copied().unwrap_or(0)
                + seen.get("file_quarantined").copied().unwrap_or(0);
            if now >= next_delivery && delivered < taken + 3 {
                delivered += 1;
                self.deliver();
                next_delivery = now + Duration::from_millis(rng.random_range(10..120));
            }
            if let Some(at) = usr1_at {
                if now >= started + at {
                    let _ = Command::new("kill")
                        .args(["-USR1", &child.id().to_string()])
                        .status();
                    self.tally.usr1 += 1;
                    usr1_at = None; // once per run
                }
            }
            if kill_at.is_some_and(|at| now >= at) || now >= started + MAX_LIFE {
                if kill_at.is_none_or(|at| now < at) {
                    why = format!(
                        "{} ms after spawn (no {kill_event} #{kill_nth})",
                        MAX_LIFE.as_millis()
                    );
                    self.tally.kills_at_max_life += 1;
                } else if by_event {
                    *self.tally.kills_after.entry(kill_event.into()).or_default() += 1;
                } else {
                    self.tally.kills_by_time += 1;
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The reader thread drains what the daemon wrote before dying.
        std::thread::sleep(Duration::from_millis(5));
        while let Ok(event) = events.try_recv() {
            *seen.entry(event).or_default() += 1;
        }
        for (k, v) in seen {
            *self.tally.events.entry(k).or_default() += v;
        }
        self.tally.kills += 1;
        why
    }

    /// `driftd rollback` between runs, SIGKILLed half the time.
    fn manual_rollback(&mut self, rng: &mut ChaCha8Rng) {
        let mut child = Command::new(BIN)
            .args(["rollback", "--reason", "chaos", "--config"])
            .arg(&self.policy)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if rng.random_bool(0.5) {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..900)));
            let _ = child.kill();
            child.wait().unwrap();
            self.tally.manual_rollbacks_killed += 1;
        } else {
            let status = child.wait().unwrap();
            if status.success() {
                self.tally.manual_rollbacks += 1;
            } else {
                // No version to go back to yet: refused, nothing changed.
                self.tally.manual_rollbacks_refused += 1;
            }
        }
    }

    /// The invariants that must hold whenever nothing runs. `strict`: after
    /// a clean stop (the history must record the live pointer).
    fn check(&mut self, context: &str, strict: bool) {
        self.tally.checks += 1;
        let mut problems = Vec::new();
        self.check_manifest(&mut problems, strict);
        self.check_registry(&mut problems, strict);
        if let Ok(bytes) = std::fs::read(self.root.join("state/status.json")) {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                problems.push(format!("status.json does not parse: {e}"));
            }
        }
        for p in problems {
            self.violation(context, p);
        }
    }

    fn check_manifest(&self, problems: &mut Vec<String>, strict: bool) {
        let path = self.root.join("state/manifest.json");
        let m = match Manifest::load(&path) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("the manifest does not load: {e}"));
                return;
            }
        };
        let mut rows = 0u64;
        let mut seqs = BTreeSet::new();
        for (name, e) in &m.files {
            seqs.insert(e.seq);
            match (&e.outcome, self.good.get(name), self.bad.contains(name)) {
                (Outcome::Ingested { rows: r, dropped }, Some(&truth), _) => {
                    if *r != truth || *dropped != 0 {
                        problems.push(format!(
                            "{name}: {r} rows ({dropped} dropped) recorded, the file has {truth}"
                        ));
                    }
                    rows += *r as u64;
                }
                (Outcome::Quarantined { .. }, _, true) => {}
                (outcome, _, _) => {
                    problems.push(format!("{name}: unexpected manifest entry {outcome:?}"))
                }
            }
        }
        if rows != m.rows_ingested {
            problems.push(format!(
                "rows_ingested is {} but the entries hold {rows}",
                m.rows_ingested
            ));
        }
        let n = m.files.len() as u64;
        if m.next_seq != n || seqs != (1..=n).collect::<BTreeSet<_>>() {
            problems.push(format!(
                "a file was recorded twice or a record was lost: {n} files, next_seq {}, sequences {:?}..{:?}",
                m.next_seq,
                seqs.first(),
                seqs.last()
            ));
        }
        if strict {
            for (name, truth) in &self.good {
                if !matches!(m.files.get(name).map(|e| &e.outcome), Some(Outcome::Ingested { rows, .. }) if rows == truth)
                {
                    problems.push(format!("{name} ({truth} rows) is not counted: lost"));
                }
            }
            for name in &self.bad {
                if !m.files.contains_key(name) {
                    problems.push(format!("bad file {name} is not recorded"));
                }
            }
            let total: usize = self.good.values().sum();
            if m.rows_ingested != total as u64 {
                problems.push(format!(
                    "rows_ingested {} != {total} rows in the good files",
                    m.rows_ingested
                ));
            }
        }
    }

    fn check_registry(&self, problems: &mut Vec<String>, strict: bool) {
        let dir = self.root.join("models");
        if !dir.join("versions").exists() {
            return;
        }
        let (reg, report) = match Registry::open_checked(&dir, "chaos check", CheckMode::ReadOnly) {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("the registry does not open: {e}"));
                return;
            }
        };
        for b in &report.broken {
            problems.push(format!("version {} is broken: {}", b.version, b.reason));
        }
        let history = match std::fs::read_to_string(dir.join("history.jsonl")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                problems.push(format!("history.jsonl: {e}"));
                return;
            }
        };
        let mut entries: Vec<HistoryEntry> = Vec::new();
        for (i, line) in history.lines().enumerate() {
            match serde_json::from_str::<HistoryEntry>(line) {
                Ok(e) => entries.push(e),
                Err(e) => problems.push(format!("history.jsonl line {}: {e}: {line}", i + 1)),
            }
        }
        if !history.is_empty() && !history.ends_with('\n') {
            problems.push("history.jsonl ends in a torn line".into());
        }
        for (i, e) in entries.iter().enumerate() {
            let expected = i.checked_sub(1).map(|p| entries[p].version);
            if e.previous != expected {
                problems.push(format!(
                    "history line {} ({} to {}) says the previous version was {:?}, the line before names {expected:?}",
                    i + 1,
                    e.event,
                    e.version,
                    e.previous
                ));
            }
        }
        let live = match reg.live_version() {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("live.json: {e}"));
                return;
            }
        };
        let Some(live) = live else {
            if !entries.is_empty() {
                problems.push("the history records versions but nothing is live".into());
            }
            return;
        };
        let last = entries.last().map(|e| e.version);
        if last != Some(live) && (strict || !reg.versions().unwrap_or_default().contains(&live)) {
            problems.push(format!(
                "live.json names version {live}, the history's last line {last:?}"
            ));
        }
        match reg.load_model(live) {
            Ok((meta, model)) => {
                let schema = Schema::new(meta.features.clone(), meta.label.clone(), 2);
                let Some(name) = self.good.keys().next() else {
                    return;
                };
                match ingest::read_file(&self.incoming().join(name), &schema) {
                    Ok(data) => match model.predict_proba(&data) {
                        Ok(p) => {
                            if p.len() != data.len() * 2
                                || p.iter().any(|x| !x.is_finite() || !(0.0..=1.0).contains(x))
                            {
                                problems.push(format!(
                                    "live version {live} scores {} values for {} rows, or values outside [0, 1]",
                                    p.len(),
                                    data.len()
                                ));
                            }
                        }
                        Err(e) => problems.push(format!("live version {live} cannot score: {e}")),
                    },
                    Err(e) => problems.push(format!("cannot read {name} to score it: {e}")),
                }
            }
            Err(e) => problems.push(format!("live version {live} does not load: {e}")),
        }
        if strict {
            let o = Command::new(BIN)
                .args(["versions", "--json", "--config"])
                .arg(&self.policy)
                .output()
                .unwrap();
            if !o.status.success() {
                problems.push(format!(
                    "driftd versions failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
    }

    /// The last run: until every delivered file is recorded, then SIGTERM.
    fn finish(&mut self) {
        let mut child = spawn(&self.policy);
        let _events = follow_events(&mut child);
        let path = self.root.join("state/manifest.json");
        let status_path = self.root.join("state/status.json");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            // This run's own status first: every file may already be
            // recorded by the killed run before it, and a SIGTERM before
            // the daemon has installed its handlers kills any process.
            let started = std::fs::read(&status_path)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .is_some_and(|s| s["pid"] == pid);
            let done = started
                && Manifest::load(&path).is_ok_and(|m| {
                    self.good
                        .keys()
                        .chain(self.bad.iter())
                        .all(|n| m.files.contains_key(n))
                });
            if done {
                break;
            }
            if Instant::now() > deadline {
                self.violation(
                    "final run",
                    "not every delivered file was recorded within 180 s".into(),
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait().unwrap();
        if !status.success() {
            self.violation(
                "final run",
                format!("the daemon exited with {status:?} on SIGTERM"),
            );
        }
        self.check("after the final clean stop", true);
    }
}

fn spawn(policy: &Path) -> Child {
    Command::new(BIN)
        .args(["--log-format", "json", "run", "--config"])
        .arg(policy)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("driftd run starts")
}

/// The `event` field of every log line, as it is written.
fn follow_events(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(at) = line.find("\"event\":\"") {
                let rest = &line[at + 9..];
                if let Some(end) = rest.find('"') {
                    let _ = tx.send(rest[..end].to_string());
                }
            }
        }
    });
    rx
}

fn run_lane(root: PathBuf, lane: usize, iterations: usize) -> Tally {
    let seed = 7 + lane as u64;
    // One lane keeps every version, the other deletes old ones.
    let mut l = Lane::new(root, seed, if lane.is_multiple_of(2) { 0 } else { 3 });
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC4A05);
    for i in 0..iterations {
        let why = l.run_and_kill(i);
        let context = format!("lane {lane} seed {seed} kill {i} ({why})");
        l.check(&context, false);
        if rng.random_bool(0.12) {
            l.manual_rollback(&mut rng);
            l.check(&format!("{context}, then a manual rollback"), false);
        }
    }
    l.finish();
    l.tally
}

fn main() {
    let iterations: usize = std::env::var("DRIFTD_CHAOS_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let root = tmp.path().join(format!("lane-{lane}"));
                let n = iterations / LANES + usize::from(lane < iterations % LANES);
                scope.spawn(move || run_lane(root, lane, n))
            })
            .collect();
        lanes.into_iter().map(|l| l.join().unwrap()).collect()
    });
    let mut t = Tally::default();
    for x in tallies {
        t.add(x);
    }
    println!(
        "chaos: {} SIGKILLs of the daemon in {:.0} s ({LANES} lanes): {} at a random time, {} at the end of a run whose event did not come, after an event: {:?}",
        t.kills,
        started.elapsed().as_secs_f64(),
        t.kills_by_time,
        t.kills_at_max_life,
        t.kills_after
    );
    println!(
        "chaos: delivered {} good files ({} rows) and {} bad files; SIGUSR1 {}; manual rollbacks: {} done, {} refused, {} killed; {} state checks",
        t.files_good,
        t.rows_good,
        t.files_bad,
        t.usr1,
        t.manual_rollbacks,
        t.manual_rollbacks_refused,
        t.manual_rollbacks_killed,
        t.checks
    );
    println!("chaos: daemon events seen: {:?}", t.events);
    println!("chaos: violations: {}", t.violations.len());
    for v in &t.violations {
        println!("  {v}");
    }
    assert!(t.violations.is_empty(), "{} violations", t.violations.len());
    let seen = |e: &str| t.events.get(e).copied().unwrap_or(0);
    // The lifecycle really ran (with enough kills to get there).
    if t.kills >= 20 {
        for e in [
            "file_ingested",
            "file_quarantined",
            "drift_alert",
            "update_started",
            "model_promoted",
        ] {
            assert!(
                seen(e) > 0,
                "no {e} in {} runs: the scenario no longer covers it",
                t.kills
            );
        }
    }
}
