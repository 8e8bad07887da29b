//! `driftd gen-data`: writes synthetic labelled Parquet data (the
//! tutorial's reference experiment, or a stream with concept drift).

use std::process::ExitCode;

use anyhow::{Context, Result};

use super::GenKind;
use crate::logging::{self, LogFormat};
use crate::synth;

pub(super) fn run(format: LogFormat, kind: GenKind) -> Result<ExitCode> {
    logging::init(format, "info");
    gen_data(kind)?;
    Ok(ExitCode::SUCCESS)
}

fn gen_data(kind: GenKind) -> Result<()> {
    match kind {
        GenKind::Reference { out, seed, rows } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut spec = synth::ClassificationSpec::reference(seed);
            spec.n_samples = rows;
            let data = synth::make_classification(&spec);
            let half = rows / 2;
            let three_q = rows * 3 / 4;
            for (name, a, b) in [
                ("old.parquet", 0, half),
                ("new_train.parquet", half, three_q),
                ("new_test.parquet", three_q, rows),
            ] {
                let path = out.join(name);
                synth::write_parquet(&path, &data.slice(a, b), None)?;
                println!("{}: {} rows", path.display(), b - a);
            }
        }
        GenKind::Stream {
            out,
            rows,
            drift_at,
            drift_width,
            drift_magnitude,
            rows_per_file,
            features,
            seconds_per_row,
            start,
            seed,
        } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut concept = synth::ClassificationSpec::reference(seed);
            concept.n_features = features;
            concept.n_informative = (features * 3 / 4).max(2);
            concept.n_redundant = features - concept.n_informative;
            let spec = synth::StreamSpec {
                rows,
                concept,
                drift_at,
                drift_width,
                drift_magnitude,
                rows_per_file,
                timestamps: seconds_per_row
                    .map(|s| (start.unwrap_or_else(|| chrono::Utc::now().timestamp()), s)),
                seed,
            };
            let files = synth::write_stream(&out, &spec)?;
            println!("{}: {} files, {} rows", out.display(), files.len(), rows);
        }
        GenKind::Drift {
            out,
            generator,
            drift,
            rows,
            drifts,
            width,
            noise,
            features,
            rows_per_file,
            seconds_per_row,
            start,
            seed,
        } => {
            let spec = synth::LiteratureSpec {
                generator,
                drift,
                rows,
                drifts,
                width,
                noise,
                features,
                rows_per_file,
                timestamps: seconds_per_row
                    .map(|s| (start.unwrap_or_else(|| chrono::Utc::now().timestamp()), s)),
                seed,
            };
            let files = synth::write_literature_stream(&out, &spec)?;
            println!("{}: {} files, {} rows", out.display(), files.len(), rows);
        }
    }
    Ok(())
}
