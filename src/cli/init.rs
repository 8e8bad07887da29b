//! `driftd init`: trains version 1 from the given Parquet files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::support::load_policy;
use crate::config::Policy;
use crate::ingest;
use crate::logging::{self, LogFormat};
use crate::model::Dataset;
use crate::registry::{DataSummary, Registry, TrainedFile, TrainedFiles};
use crate::update::{self, MadeBy, Promotion};

pub(super) fn run(format: LogFormat, config: &Path, data: &[PathBuf]) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, &policy.log.filter);
    init(&policy, data)?;
    Ok(ExitCode::SUCCESS)
}

fn init(policy: &Policy, files: &[PathBuf]) -> Result<()> {
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd init")?;
    if let Some(v) = registry.live_version()? {
        bail!(
            "the registry {} already has a live version ({v}); init only creates version 1",
            policy.registry.dir.display()
        );
    }
    let first_cols = ingest::column_names(&files[0])
        .map_err(|e| anyhow::anyhow!("{}: {e}", files[0].display()))?;
    let schema = ingest::Schema::from_policy(policy)
        .unwrap_or_else(|| ingest::Schema::resolve(policy, &first_cols));
    let mut rows = Dataset::new(schema.features.len());
    let mut trained = Vec::new();
    for f in files {
        let d =
            ingest::read_file(f, &schema).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
        trained.push(TrainedFile {
            seq: 0,
            name: f.display().to_string(),
            rows: d.len(),
        });
        rows.extend(&d);
    }
    tch::set_num_threads(policy.training.threads as i32);
    let (model, scores, report, train_rows, holdout_rows) =
        update::train_first_version(policy, &rows)?;
    let meta = update::promote_version(
        &registry,
        policy,
        None,
        &crate::model::Classifier::Single(model),
        Promotion {
            made_by: MadeBy::Initial,
            trigger: "init".into(),
            features: schema.features.clone(),
            holdout: scores,
            live_holdout: None,
            report: Some(report),
            leaderboard: vec![],
            data: DataSummary {
                train_rows,
                holdout_rows,
                first_file: files.first().map(|p| p.display().to_string()),
                last_file: files.last().map(|p| p.display().to_string()),
                last_seq: 0,
            },
            input_profile: Some(crate::input_drift::InputProfile::from_dataset(
                &rows,
                &schema.features,
            )),
            files: Some(TrainedFiles::new(trained)),
        },
    )?;
    println!(
        "version {} trained on {} rows; holdout accuracy {:.4} on {} rows",
        meta.version, train_rows, scores.accuracy, holdout_rows
    );
    Ok(())
}
