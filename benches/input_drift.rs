//! Input drift (PSI and two-sample KS per feature, `src/input_drift/`) on
//! generated feature streams of the reference concept (20 features): false
//! alarms per 100,000 rows on stable streams, and detection rate and delay
//! after a concept change of several magnitudes, with the policy's default
//! `[monitor.input]` settings. An alarm is the first check of an episode
//! (a check where some feature moved after one where none did), as the
//! daemon alerts.
//!
//! `cargo bench --bench input_drift` (under a minute in release).
#![forbid(unsafe_code)]

use driftd::config::InputDriftConfig;
use driftd::input_drift::{InputMonitor, InputProfile};
use driftd::synth::{ClassificationSpec, Concept};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const SEEDS: u64 = 40;
const TRAIN_ROWS: usize = 2000;
const BATCH: usize = 250;
const STABLE_ROWS: usize = 100_000;
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

fn main() {
    let seeds = 0..SEEDS;
    println!("| stream | seeds | detected | mean delay | p90 delay | false alarms / 100k rows |");
    println!("|---|---|---|---|---|---|");
    let mut false_alarms = 0usize;
    for seed in seeds.clone() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let concept = Concept::new(&ClassificationSpec::reference(seed));
        let mut m = monitor(&concept, &mut rng);
        let mut episode = false;
        false_alarms += feed(&mut m, &concept, STABLE_ROWS, 0, &mut episode, &mut rng).len();
    }
    let rate = false_alarms as f64 / (SEEDS as usize * STABLE_ROWS) as f64 * 100_000.0;
    println!("| stable | {} | - | - | - | {rate:.2} |", SEEDS as usize);
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
        let fa = early as f64 / (SEEDS as usize * DRIFT_AT) as f64 * 100_000.0;
        println!(
            "| drift, magnitude {magnitude} | {} | {:.0}% | {mean:.0} | {p90} | {fa:.2} |",
            SEEDS as usize,
            detected * 100.0
        );
    }
}
