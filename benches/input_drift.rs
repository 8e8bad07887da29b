//! Input drift (PSI and two-sample KS per feature, `src/input_drift/`) on
//! generated feature streams of the reference concept (20 features): false
//! alarms per million rows on stable streams (and the monitor's own speed
//! there, rows per second through `InputMonitor::observe`), and detection rate and delay
//! after a concept change of several magnitudes, with the policy's default
//! `[monitor.input]` settings. An alarm is the first check of an episode
//! (a check where some feature moved after one where none did), as the
//! daemon alerts.
//!
//! `cargo bench --bench input_drift` (a few minutes in release).
#![forbid(unsafe_code)]

use driftd::config::InputDriftConfig;
use driftd::input_drift::{InputMonitor, InputProfile};
use driftd::synth::{ClassificationSpec, Concept};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SEEDS: u64 = 40;
const TRAIN_ROWS: usize = 2000;
const BATCH: usize = 250;
const STABLE_ROWS: usize = 250_000;
const DRIFT_AT: usize = 5_000;
const AFTER_DRIFT: usize = 5_000;

fn monitor(concept: &Concept, rng: &mut ChaCha8Rng) -> InputMonitor {
    let train = concept.sample(TRAIN_ROWS, rng);
    let names = driftd::synth::feature_names(train.width);
    let profile = InputProfile::from_dataset(&train, &names);
    InputMonitor::new(InputDriftConfig::default(), Some(profile), train.width)
}

/// Feeds `rows` rows of `concept` in batches; returns the row numbers
/// (counted from `offset`) of alarms, with the episode state carried over.
fn feed(
    m: &mut InputMonitor,
    concept: &Concept,
    rows: usize,
    offset: usize,
    in_episode: &mut bool,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let mut alarms = Vec::new();
    let mut fed = 0;
    while fed < rows {
        let batch = concept.sample(BATCH.min(rows - fed), rng);
        for check in m.observe(&batch) {
            if check.moved > 0 && !*in_episode {
                alarms.push(offset + fed + batch.len());
            }
            *in_episode = check.moved > 0;
        }
        fed += batch.len();
    }
    alarms
}

/// Rows per second through `observe` in batches of `batch` rows (a file's
/// worth in the daemon), the generated rows made beforehand.
fn observe_speed(batch: usize) -> f64 {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let concept = Concept::new(&ClassificationSpec::reference(7));
    let mut m = monitor(&concept, &mut rng);
    let rows = concept.sample(batch, &mut rng);
    let rounds = (2_000_000 / batch).max(1);
    let t = std::time::Instant::now();
    let mut checks = 0;
    for _ in 0..rounds {
        checks += m.observe(&rows).len();
    }
    assert!(checks > 0);
    (rounds * batch) as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    if std::env::var_os("DRIFTD_INPUT_DRIFT_SPEED_ONLY").is_some() {
        println!("observe: {:.1} M rows/s", observe_speed(100_000) / 1e6);
        return;
    }
    let seeds = 0..SEEDS;
    println!("| stream | seeds | detected | mean delay | p90 delay | false alarms / 1M rows |");
    println!("|---|---|---|---|---|---|");
    let mut false_alarms = 0usize;
    let mut observing = std::time::Duration::ZERO;
    for seed in seeds.clone() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let concept = Concept::new(&ClassificationSpec::reference(seed));
        let mut m = monitor(&concept, &mut rng);
        let mut episode = false;
        let (alarms, took) = feed_timed(&mut m, &concept, STABLE_ROWS, &mut episode, &mut rng);
        false_alarms += alarms;
        observing += took;
    }
    let stable_rows = SEEDS as usize * STABLE_ROWS;
    let rate = false_alarms as f64 / stable_rows as f64 * 1e6;
    println!(
        "| stable | {} | - | - | - | {rate:.2} ({false_alarms} in {:.0}M rows) |",
        SEEDS as usize,
        stable_rows as f64 / 1e6
    );
    for magnitude in [0.1, 0.25, 0.5, 1.0] {
        let mut delays = Vec::new();
        let mut early = 0usize;
        for seed in seeds.clone() {
            let mut rng = ChaCha8Rng::seed_from_u64(1000 + seed);
            let concept = Concept::new(&ClassificationSpec::reference(seed));
            let after = concept.drifted(magnitude, seed);
            let mut m = monitor(&concept, &mut rng);
            let mut episode = false;
            early += feed(&mut m, &concept, DRIFT_AT, 0, &mut episode, &mut rng).len();
            episode = false;
            let alarms = feed(
                &mut m,
                &after,
                AFTER_DRIFT,
                DRIFT_AT,
                &mut episode,
                &mut rng,
            );
            if let Some(first) = alarms.first() {
                delays.push(first - DRIFT_AT);
            }
        }
        delays.sort_unstable();
        let detected = delays.len() as f64 / SEEDS as usize as f64;
        let mean = delays.iter().sum::<usize>() as f64 / delays.len().max(1) as f64;
        let p90 = delays
            .get(((delays.len() as f64 * 0.9).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0);
        let fa = early as f64 / (SEEDS as usize * DRIFT_AT) as f64 * 1e6;
        println!(
            "| drift, magnitude {magnitude} | {} | {:.0}% | {mean:.0} | {p90} | {fa:.2} |",
            SEEDS as usize,
            detected * 100.0
        );
    }
    println!(
        "\nInputMonitor::observe, 20 features: {:.1} M rows/s in batches of {BATCH} \
         (the stable runs), {:.1} M rows/s in batches of 100,000",
        stable_rows as f64 / observing.as_secs_f64() / 1e6,
        observe_speed(100_000) / 1e6
    );
}

/// [`feed`] on a stable stream, timing `observe` alone (the generator is
/// far slower than the monitor); returns the alarms and the time.
fn feed_timed(
    m: &mut InputMonitor,
    concept: &Concept,
    rows: usize,
    in_episode: &mut bool,
    rng: &mut ChaCha8Rng,
) -> (usize, std::time::Duration) {
    let (mut alarms, mut took) = (0, std::time::Duration::ZERO);
    let mut fed = 0;
    while fed < rows {
        let batch = concept.sample(BATCH.min(rows - fed), rng);
        let t = std::time::Instant::now();
        let checks = m.observe(&batch);
        took += t.elapsed();
        for check in checks {
            if check.moved > 0 && !*in_episode {
                alarms += 1;
            }
            *in_episode = check.moved > 0;
        }
        fed += batch.len();
    }
    (alarms, took)
}
