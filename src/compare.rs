//! `driftd compare`: the tutorial's experiment on the user's own files, so a
//! policy can be chosen before it is automated. A model is trained on OLD
//! with the policy's settings, each strategy updates it with NEW, and every
//! result is scored on TEST, over several seeds.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::config::Policy;
use crate::ingest::{self, Schema};
use crate::model::{Classifier, Dataset};
use crate::update::{self, StrategyName};

pub struct Files {
    pub old: PathBuf,
    pub new: PathBuf,
    pub test: PathBuf,
}

/// One strategy's line of the table (the JSON output is a list of these).
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    pub strategy: String,
    pub repeats: usize,
    pub accuracy_mean: f64,
    pub accuracy_std: f64,
    pub log_loss_mean: f64,
    pub log_loss_std: f64,
    pub auc_mean: Option<f64>,
    pub auc_std: Option<f64>,
    /// Training time of the update alone (the base model is shared).
    pub seconds_mean: f64,
    pub failures: usize,
}

/// One strategy's result on one seed.
#[derive(Debug, Clone)]
struct Trial {
    accuracy: f64,
    log_loss: f64,
    auc: Option<f64>,
    seconds: f64,
}

fn read(path: &Path, schema: &Schema) -> Result<Dataset> {
    ingest::read_file(path, schema).map_err(|e| anyhow!("{}: {e}", path.display()))
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    // Sample standard deviation, as numpy's std(ddof=1) / pandas.
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

pub fn run(
    policy: &Policy,
    files: &Files,
    strategies: &[StrategyName],
    repeats: u64,
) -> Result<Vec<CompareRow>> {
    let cols =
        ingest::column_names(&files.old).map_err(|e| anyhow!("{}: {e}", files.old.display()))?;
    let schema = Schema::from_policy(policy).unwrap_or_else(|| Schema::resolve(policy, &cols));
    let old = read(&files.old, &schema)?;
    let new = read(&files.new, &schema)?;
    let test = read(&files.test, &schema)?;
    let list: Vec<StrategyName> = if strategies.is_empty() {
        std::iter::once(StrategyName::None)
            .chain(StrategyName::ALL_RETRAINING)
            .collect()
    } else {
        strategies.to_vec()
    };
    tch::set_num_threads(policy.training.threads as i32);
    let repeats = repeats.max(1);
    let mut results: Vec<Vec<Trial>> = vec![Vec::new(); list.len()];
    let mut failures = vec![0usize; list.len()];
    for r in 0..repeats {
        let seed = policy.training.seed.wrapping_add(r);
        let (base, _) = update::fit_fresh(policy, &old, seed)
            .map_err(|e| anyhow!("training the base model on {}: {e}", files.old.display()))?;
        let base = Classifier::Single(base);
        let candidates =
            update::run_candidates(policy, &base, &[], &old, &new, &test, &list, seed, false);
        for (i, c) in candidates.into_iter().enumerate() {
            match c.outcome {
                Ok(b) => results[i].push(Trial {
                    accuracy: b.scores.accuracy,
                    log_loss: b.scores.log_loss,
                    auc: b.scores.auc,
                    seconds: c.seconds,
                }),
                Err(e) => {
                    tracing::warn!(strategy = %c.strategy, seed, error = %e, "candidate failed");
                    failures[i] += 1;
                }
            }
        }
        tracing::info!("compare: seed {} of {repeats} done", r + 1);
    }
    Ok(list
        .iter()
        .zip(results)
        .zip(failures)
        .map(|((s, res), failures)| {
            let acc: Vec<f64> = res.iter().map(|r| r.accuracy).collect();
            let ll: Vec<f64> = res.iter().map(|r| r.log_loss).collect();
            let auc: Vec<f64> = res.iter().filter_map(|r| r.auc).collect();
            let secs: Vec<f64> = res.iter().map(|r| r.seconds).collect();
            let (accuracy_mean, accuracy_std) = mean_std(&acc);
            let (log_loss_mean, log_loss_std) = mean_std(&ll);
            let (auc_mean, auc_std) = if auc.is_empty() {
                (None, None)
            } else {
                let (m, s) = mean_std(&auc);
                (Some(m), Some(s))
            };
            CompareRow {
                strategy: s.to_string(),
                repeats: res.len(),
                accuracy_mean,
                accuracy_std,
                log_loss_mean,
                log_loss_std,
                auc_mean,
                auc_std,
                seconds_mean: mean_std(&secs).0,
                failures,
            }
        })
        .collect())
}

pub fn render(rows: &[CompareRow], repeats: u64) -> String {
    let mut out = format!(
        "strategy comparison on the test file, mean ± std over {repeats} seeds\n\n{:<14} {:>17} {:>17} {:>17} {:>9}\n",
        "strategy", "accuracy", "log loss", "roc auc", "seconds"
    );
    let pm = |m: f64, s: f64| format!("{m:.3} ± {s:.3}");
    for r in rows {
        out.push_str(&format!(
            "{:<14} {:>17} {:>17} {:>17} {:>9.2}{}\n",
            r.strategy,
            pm(r.accuracy_mean, r.accuracy_std),
            pm(r.log_loss_mean, r.log_loss_std),
            match (r.auc_mean, r.auc_std) {
                (Some(m), Some(s)) => pm(m, s),
                _ => "-".into(),
            },
            r.seconds_mean,
            if r.failures > 0 {
                format!("  ({} failed)", r.failures)
            } else {
                String::new()
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_std() {
        let (m, s) = mean_std(&[1.0, 2.0, 3.0]);
        assert_eq!(m, 2.0);
        assert!((s - 1.0).abs() < 1e-12);
        assert_eq!(mean_std(&[5.0]), (5.0, 0.0));
    }
}
