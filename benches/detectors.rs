//! The drift detectors on generated error streams: detection rate, delay
//! after the drift point, and false alarms per 100,000 rows on stable
//! streams, for several settings of each detector. This is the table the
//! policy's default detector was chosen from (see src/detect/spec.rs).
//!
//! `cargo bench --bench detectors` (about two minutes in release).
#![forbid(unsafe_code)]

use driftd::detect::{
    candidate_specs, evaluate, reference_scenarios, robustness_scenarios, table, Scenario, Shape,
    REFERENCE_ERROR,
};

fn seeds(sc: &Scenario) -> std::ops::Range<u64> {
    if sc.shape == Shape::Stable {
        0..200
    } else {
        0..500
    }
}

fn sweep(scenarios: Vec<Scenario>) -> String {
    let mut rows = Vec::new();
    for spec in candidate_specs() {
        for sc in &scenarios {
            rows.push(evaluate(&spec, sc, seeds(sc)));
        }
    }
    table(&rows)
}

fn main() {
    println!("## At the reference model's error rate ({REFERENCE_ERROR})\n");
    println!("{}", sweep(reference_scenarios(REFERENCE_ERROR)));
    println!("## Robustness: other error rates, a misjudged baseline\n");
    println!("{}", sweep(robustness_scenarios()));
}
