//! Crash test of the registry: a child process writes, promotes, rolls back
//! and (with retention) deletes versions and is SIGKILLed after a seeded
//! random delay, many times over. After every kill the registry must open,
//! the live pointer must name a complete checksum-valid version, no
//! half-written version may be visible, and every version the child
//! reported as written must still be there (unless retention may have
//! deleted it).
//!
//! The child is this test binary itself (`harness = false`; the
//! `DRIFTD_CRASH_CHILD` variable selects the child role), running the
//! library's real write path: `Registry::open_locked` with its start-up
//! check, `write_version` (single models and ensembles), `set_live`,
//! `apply_retention`. The parent waits for the
//! child's `ready` line before its random delay, so the kills land in the
//! writes rather than in the ~0.5-1 s every process linked with libtorch
//! spends starting. That start-up makes one kill cost about half a second,
//! so the default is 40 kills (dev: well under a minute); `make test` (CI)
//! sets `DRIFTD_CRASH_ITERATIONS=200`.
#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use driftd::config::{Activation, Init};
use driftd::model::{Architecture, Classifier, Mlp};
use driftd::registry::{CheckMode, DataSummary, Registry, VersionMeta};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHILD_ENV: &str = "DRIFTD_CRASH_CHILD";
/// Kills per registry before starting a fresh one (bounds the work each
/// start-up check does).
const GROUP: usize = 10;
/// Upper bound of the random delay before the kill.
const MAX_DELAY_MS: u64 = 40;
/// Children running at once, each on its own registries.
const LANES: usize = 4;

fn arch() -> Architecture {
    Architecture {
        inputs: 4,
        hidden: vec![8],
        activation: Activation::Relu,
        classes: 2,
    }
}

fn meta(version: u64, parent: Option<u64>) -> VersionMeta {
    VersionMeta {
        version,
        parent,
        strategy: "crash_test".into(),
        trigger: "manual".into(),
        created_at: chrono::Utc::now(),
        architecture: arch(),
        members: Vec::new(),
        features: (0..4).map(|i| format!("f{i}")).collect(),
        label: "label".into(),
        training: None,
        threads: 1,
        train_report: None,
        data: DataSummary::default(),
        holdout: None,
        live_holdout: None,
        leaderboard: Vec::new(),
        driftd_version: "crash-test".into(),
        import: None,
        seeds: None,
        update_settings: None,
        files: None,
        anchor: None,
        input_profile: None,
    }
}

/// The child: operations until killed, each announced (`intent ...`) before
/// it starts and reported after it is durable.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split('|').collect();
    let (dir, seed, keep_last) = (
        Path::new(parts[0]),
        parts[1].parse::<u64>().unwrap(),
        parts[2].parse::<usize>().unwrap(),
    );
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    let (reg, _lock, _) = Registry::open_locked(dir, "crash child").unwrap();
    say("ready".into());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    loop {
        let roll: f64 = rng.random();
        let live = match reg.live_version().unwrap() {
            Some(l) if roll >= 0.6 => l,
            live => {
                let v = reg.next_version().unwrap();
                let n = if rng.random_bool(0.3) { 2 } else { 1 };
                let members: Vec<Mlp> = (0..n)
                    .map(|_| Mlp::new(arch(), Init::HeNormal, rng.random()))
                    .collect();
                let model = if n == 1 {
                    Classifier::Single(members.into_iter().next().unwrap())
                } else {
                    Classifier::ensemble(members, vec![1.0; n]).unwrap()
                };
                say(format!("intent write {v}"));
                reg.write_version(meta(v, live), &model).unwrap();
                say(format!("written {v}"));
                say(format!("intent live {v}"));
                reg.set_live(v, "model_promoted", "crash test").unwrap();
                say(format!("live {v}"));
                for gone in reg.apply_retention(keep_last).unwrap() {
                    say(format!("deleted {gone}"));
                }
                continue;
            }
        };
        let target = if roll < 0.85 {
            reg.previous_live(live).unwrap()
        } else {
            let ids = reg.versions().unwrap();
            Some(ids[rng.random_range(0..ids.len())])
        };
        let Some(t) = target.filter(|&t| t != live) else {
            continue;
        };
        say(format!("intent live {t}"));
        reg.set_live(t, "rollback", "crash test").unwrap();
        say(format!("live {t}"));
    }
}

/// What the parent knows about one registry from the children's reports.
#[derive(Default)]
struct Known {
    written: BTreeSet<u64>,
    deleted: BTreeSet<u64>,
    live: Option<u64>,
    pinned: Option<u64>,
}

#[derive(Default)]
struct Stats {
    killed_before_ready: usize,
    killed_mid_step: usize,
    killed_between_steps: usize,
    steps: usize,
}

/// `Registry::open_locked` for the test process, which spawns children
/// from several lane threads at once: a child forked while this lane held
/// the lock (its start-up check, just before) keeps a copy of the lock's
/// descriptor until it execs, and the `flock` is held until then. So a
/// `Held` naming this process is retried for a moment (regression: this
/// failed once under load).
fn open_locked_after_fork_window(dir: &Path) -> (Registry, driftd::registry::lock::RegistryLock) {
    let me = format!("(pid {})", std::process::id());
    for _ in 0..200 {
        match Registry::open_locked(dir, "crash test") {
            Ok((reg, lock, _)) => return (reg, lock),
            Err(driftd::registry::RegistryError::Lock(
                driftd::registry::lock::LockError::Held { holder, .. },
            )) if holder.contains(&me) => std::thread::sleep(std::time::Duration::from_millis(10)),
            Err(e) => panic!("{}: {e}", dir.display()),
        }
    }
    panic!("{}: still locked by this process after 2 s", dir.display())
}

fn hidden_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".lock")
        .collect()
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let iterations: usize = std::env::var("DRIFTD_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let start = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    // Lanes of independent registries run side by side: most of a
    // child's life is loading libtorch, which overlaps well.
    let stats: Vec<Stats> = std::thread::scope(|scope| {
        let lanes: Vec<_> = (0..LANES)
            .map(|lane| {
                let root = tmp.path().join(format!("lane-{lane}"));
                let mine: Vec<usize> = (lane..iterations).step_by(LANES).collect();
                scope.spawn(move || run_lane(&root, &mine))
            })
            .collect();
        lanes.into_iter().map(|l| l.join().unwrap()).collect()
    });
    let sum = |f: fn(&Stats) -> usize| stats.iter().map(f).sum::<usize>();
    let mid_step = sum(|s| s.killed_mid_step);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "registry crash test: {iterations} SIGKILLs in {secs:.1} s ({LANES} lanes); killed before \
         the first step {}, in the middle of a step {mid_step}, between steps {}; {} durable \
         steps reported",
        sum(|s| s.killed_before_ready),
        sum(|s| s.killed_between_steps),
        sum(|s| s.steps)
    );
    assert!(
        mid_step >= iterations / 4,
        "too few kills landed mid-write ({mid_step}); the delays no longer cover the writes"
    );
}

/// Runs the given iterations (seeds) one after the other, a fresh registry
/// every [`GROUP`] of them.
fn run_lane(root: &Path, iterations: &[usize]) -> Stats {
    let exe = std::env::current_exe().unwrap();
    let mut stats = Stats::default();
    let mut known = Known::default();
    let mut dir = root.join("unused");
    let mut keep_last = 0;
    for (n, &i) in iterations.iter().enumerate() {
        if n % GROUP == 0 {
            // Every other registry runs with retention.
            dir = root.join(format!("registry-{}", n / GROUP));
            keep_last = if (n / GROUP).is_multiple_of(2) { 0 } else { 3 };
            known = Known::default();
        }
        let seed = i as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(1_000 + seed);
        let delay = rng.random_range(0..MAX_DELAY_MS);
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, format!("{}|{seed}|{keep_last}", dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the child's "ready" (its start-up check done) so the
        // delay is spent writing, not loading libraries.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut out = String::new();
        stdout.read_line(&mut out).unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stdout.read_to_string(&mut out).unwrap();
        let context =
            format!("iteration {i} (seed {seed}, kill after {delay} ms, keep_last {keep_last})");

        // Replay the reports.
        let mut pending_live = None;
        let mut last = "";
        for line in out.lines() {
            let (what, v) = line.rsplit_once(' ').unwrap_or((line, ""));
            let v: u64 = v.parse().unwrap_or(0);
            match what {
                "intent live" => pending_live = Some(v),
                "written" => {
                    known.written.insert(v);
                    stats.steps += 1;
                }
                "live" => {
                    known.live = Some(v);
                    pending_live = None;
                    stats.steps += 1;
                }
                "deleted" => {
                    known.deleted.insert(v);
                }
                _ => {}
            }
            last = line;
        }
        if out.trim() == "ready" {
            stats.killed_before_ready += 1;
        } else if last.starts_with("intent") {
            stats.killed_mid_step += 1;
        } else {
            stats.killed_between_steps += 1;
        }

        // Before any repair: nothing half-written is visible and the
        // pointer names a complete version.
        let (reg, report) = Registry::open_checked(&dir, "crash test", CheckMode::ReadOnly)
            .unwrap_or_else(|e| panic!("{context}: read-only open failed: {e}"));
        assert!(report.broken.is_empty(), "{context}: {:?}", report.broken);
        let live = reg
            .live_version()
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        // The pointer is where the last completed switch put it, or where
        // the interrupted one was taking it.
        assert!(
            live == known.live || (pending_live.is_some() && live == pending_live),
            "{context}: live is {live:?}; reported {:?}, in flight {pending_live:?}",
            known.live
        );
        if let Some(l) = live {
            reg.verify_version(l)
                .unwrap_or_else(|e| panic!("{context}: live version {l}: {e}"));
        }
        known.live = live;
        let on_disk = reg.versions().unwrap();
        for &v in &known.written {
            if on_disk.contains(&v) || known.deleted.contains(&v) {
                continue;
            }
            // Only retention may have removed it, and only if it was
            // allowed to: at least keep_last newer versions, not live, not
            // pinned.
            let newer = on_disk.iter().filter(|&&d| d > v).count();
            assert!(
                keep_last > 0 && newer >= keep_last && Some(v) != live && Some(v) != known.pinned,
                "{context}: version {v} was reported written and is gone; on disk {on_disk:?}"
            );
        }

        // The repairing check (what the next process runs first) succeeds,
        // removes every leftover and leaves the history naming the live
        // version.
        let (reg, report) = Registry::open_checked(&dir, "crash test", CheckMode::Repair)
            .unwrap_or_else(|e| panic!("{context}: repairing open failed: {e}"));
        assert!(
            report.fallback.is_none(),
            "{context}: {:?}",
            report.fallback
        );
        assert!(
            hidden_entries(&dir.join("versions")).is_empty(),
            "{context}"
        );
        assert!(
            hidden_entries(&dir).is_empty(),
            "{context}: {:?}",
            hidden_entries(&dir)
        );
        if let Some(l) = live {
            assert_eq!(
                reg.history().unwrap().last().map(|h| h.version),
                Some(l),
                "{context}"
            );
        }
        // With retention, pin the oldest version once there is one: it
        // must survive every later deletion.
        if let (true, None, Some(&oldest)) = (keep_last > 0, known.pinned, on_disk.first()) {
            let (reg, _lock) = open_locked_after_fork_window(&dir);
            reg.pin(oldest, "crash test").unwrap();
            known.pinned = Some(oldest);
        }
        if let Some(p) = known.pinned {
            assert!(
                on_disk.contains(&p),
                "{context}: pinned version {p} is gone"
            );
        }
    }
    stats
}
