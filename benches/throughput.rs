//! Throughput of the hot paths, on the reference model (20 → 20 → 10 → 1):
//! training steps per second, batch scoring rows per second, and
//! ingest + score rows per second from a directory of Parquet files.
//!
//! Run with `cargo bench --bench throughput` (after `make build`). Each
//! figure is the median of several runs; the table goes to stdout.
#![forbid(unsafe_code)]

use std::time::Instant;

use driftd::config::{Init, OptimizerKind, Policy, EXAMPLE_POLICY};
use driftd::ingest::{read_file, Schema};
use driftd::model::{Architecture, Mlp, Scaler, TrainSettings};
use driftd::synth::{self, ClassificationSpec};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    tch::set_num_threads(1);
    let policy = Policy::parse(EXAMPLE_POLICY).expect("example policy");
    let arch = Architecture::from_policy(&policy, 20);
    let runs = 5;

    // Training: the reference experiment's 500 old rows, batch 32, 20 epochs.
    let mut spec = ClassificationSpec::reference(1);
    spec.n_samples = 1000;
    let data = synth::make_classification(&spec);
    let train = data.slice(0, 500);
    let settings = TrainSettings {
        optimizer: OptimizerKind::Sgd,
        learning_rate: 0.01,
        momentum: 0.9,
        epochs: 20,
        batch_size: 32,
        shuffle: true,
        seed: 1,
        early_stopping: driftd::config::EarlyStopping::OFF,
    };
    let steps_per_sec = median(
        (0..runs)
            .map(|i| {
                let mut m = Mlp::new(arch.clone(), Init::HeNormal, i);
                m.scaler = Scaler::fit(&train);
                let t = Instant::now();
                let r = m.train(&train, &settings, None).expect("training");
                r.steps as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    );

    // Scoring: 1 million rows in one batch.
    let mut big = ClassificationSpec::reference(2);
    big.n_samples = 1_000_000;
    let rows = synth::make_classification(&big);
    let model = Mlp::new(arch.clone(), Init::HeNormal, 3);
    let score_rows_per_sec = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let p = model.predict_proba(&rows).expect("scoring");
                assert_eq!(p.len(), 2 * rows.len());
                rows.len() as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    );

    // Ingest + score + accuracy from 20 files of 50,000 rows.
    let dir = tempfile::tempdir().expect("tempdir");
    for f in 0..20 {
        let part = rows.slice(f * 50_000, (f + 1) * 50_000);
        synth::write_parquet(
            &dir.path().join(format!("part-{f:03}.parquet")),
            &part,
            None,
        )
        .expect("write");
    }
    let schema = Schema::new(synth::feature_names(20), "label".into(), 2);
    let ingest_rows_per_sec = median(
        (0..runs)
            .map(|_| {
                let t = Instant::now();
                let mut n = 0usize;
                let mut correct = 0usize;
                for f in 0..20 {
                    let d = read_file(&dir.path().join(format!("part-{f:03}.parquet")), &schema)
                        .expect("read");
                    let p = model.predict_proba(&d).expect("score");
                    for (i, &l) in d.labels.iter().enumerate() {
                        correct += (driftd::model::predicted_class(&p[2 * i..2 * i + 2])
                            == l as usize) as usize;
                    }
                    n += d.len();
                }
                assert!(correct <= n);
                n as f64 / t.elapsed().as_secs_f64()
            })
            .collect(),
    );

    println!("| measure (median of {runs}) | driftd |");
    println!("|---|---|");
    println!("| training steps/s (reference MLP, batch 32, 1 thread) | {steps_per_sec:.0} |");
    println!("| batch scoring rows/s (1,000,000 rows) | {score_rows_per_sec:.0} |");
    println!("| ingest + score + accuracy rows/s (20 Parquet files) | {ingest_rows_per_sec:.0} |");
}
