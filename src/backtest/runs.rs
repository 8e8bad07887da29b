//! The three runs (the policy, "periodic only" and "never update") over
//! one history, and how the policy compares with each baseline.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::history::{load_history, time_of, History};
use super::initial::train_initial;
use super::replay::{count, replay};
use super::report::{Comparison, DataReport, Report, RunReport, WindowAccuracy};
use super::{BacktestError, Options, ReplayTime};
use crate::config::Policy;
use crate::progress::Progress;

/// Which replay: the policy or one of the baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Run {
    Policy,
    PeriodicOnly,
    NeverUpdate,
}

impl Run {
    pub fn as_str(self) -> &'static str {
        match self {
            Run::Policy => "policy",
            Run::PeriodicOnly => "periodic_only",
            Run::NeverUpdate => "never_update",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Run::Policy => "policy",
            Run::PeriodicOnly => "periodic only",
            Run::NeverUpdate => "never update",
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Run::Policy => "the policy as the daemon runs it: detector triggers and the schedule",
            Run::PeriodicOnly => "the [schedule] cron alone (even if schedule.enabled = false); drift alerts are recorded but trigger nothing",
            Run::NeverUpdate => "version 1 scores every row; alerts are recorded but trigger nothing",
        }
    }
}

/// Runs the backtest: the policy and both baselines over the directory.
pub fn run(policy: &Policy, options: &Options) -> Result<Report, BacktestError> {
    let started = Instant::now();
    let work = tempfile::Builder::new()
        .prefix("driftd-backtest-")
        .tempdir()
        .map_err(BacktestError::Temp)?;
    let (policy, clock) = replay_setup(policy, options, work.path())?;
    let History {
        files: history,
        quarantined,
        features,
    } = load_history(&policy, clock).map_err(|e| match e {
        BacktestError::Ingest(e) => BacktestError::Data {
            path: options.data_dir.clone(),
            reason: e.to_string(),
        },
        e => e,
    })?;
    let rows: usize = history.iter().map(|f| f.data.len()).sum();
    if history.is_empty() {
        return Err(BacktestError::NoRows(options.data_dir.clone()));
    }
    if rows <= policy.data.initial_rows {
        return Err(BacktestError::TooFewRows {
            dir: options.data_dir.clone(),
            rows,
            initial: policy.data.initial_rows,
        });
    }
    let initial = train_initial(&policy, &history)?;
    let runs = [Run::Policy, Run::PeriodicOnly, Run::NeverUpdate];
    let mut progress = Progress::new("backtest", rows as u64 * runs.len() as u64, "rows");
    let mut reports = Vec::new();
    for run in runs {
        reports.push(replay(
            &policy,
            run,
            &history,
            &initial,
            &features,
            work.path(),
            &mut progress,
        )?);
    }
    progress.finish();
    let window_rows = options.window_rows.unwrap_or_else(|| {
        let w = rows.div_ceil(20).div_ceil(100) * 100;
        w.max(policy.monitor.window)
    });
    for r in &mut reports {
        r.windows = windows(&r.outcomes, window_rows);
    }
    let comparisons = comparisons_of(&reports);
    let verdict = verdict_of(&comparisons);
    let times = history.iter().flat_map(|f| f.data.times_us.iter().copied());
    let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    Ok(Report {
        data: DataReport {
            dir: options.data_dir.clone(),
            files: history.len(),
            rows,
            quarantined,
            clock,
            clock_description: clock.describe(&policy),
            first_time: time_of(lo),
            last_time: time_of(hi),
            bootstrap_rows: initial.rows.len(),
            initial_training_seconds: initial.report.seconds,
        },
        window_rows,
        // monitor.window, or wider on long histories so that the lines
        // stay readable (about 200 windows across the plot).
        rolling_window_rows: policy.monitor.window.max(rows / 200),
        runs: reports,
        comparisons,
        verdict,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The policy (the first report) against each baseline.
fn comparisons_of(reports: &[RunReport]) -> Vec<Comparison> {
    let policy_accuracy = reports[0].prequential_accuracy;
    reports[1..]
        .iter()
        .map(|b| {
            let difference = policy_accuracy
                .zip(b.prequential_accuracy)
                .map(|(p, b)| p - b);
            Comparison {
                baseline: b.run,
                policy_accuracy,
                baseline_accuracy: b.prequential_accuracy,
                difference,
                policy_wins: difference.is_some_and(|d| d > 0.0),
            }
        })
        .collect()
}

fn verdict_of(comparisons: &[Comparison]) -> String {
    let parts: Vec<String> = comparisons
        .iter()
        .map(|c| match c.difference {
            Some(d) if d > 0.0 => format!("beats {} by {d:.4}", c.baseline.title()),
            Some(d) if d < 0.0 => format!("loses to {} by {:.4}", c.baseline.title(), -d),
            Some(_) => format!("ties with {}", c.baseline.title()),
            None => format!("cannot be compared with {}", c.baseline.title()),
        })
        .collect();
    format!("the policy {} (prequential accuracy)", parts.join(" and "))
}

/// Accuracy per window of `window` global rows (unscored rows left out).
fn windows(outcomes: &[u8], window: usize) -> Vec<WindowAccuracy> {
    (0..outcomes.len())
        .step_by(window.max(1))
        .map(|from| {
            let until = (from + window).min(outcomes.len());
            let (scored, correct) = count(outcomes, from as u64, until as u64);
            WindowAccuracy {
                first_row: from as u64,
                end_row: until as u64,
                rows_scored: scored,
                accuracy: (scored > 0).then(|| correct as f64 / scored as f64),
            }
        })
        .collect()
}

/// The policy a replay runs under (the data directory of `options`, a scan
/// state in `work`, files read as soon as they are whole) and its clock;
/// sets libtorch's threads to the policy's. The backtest's runs and a tune
/// session start the same way.
pub(super) fn replay_setup(
    policy: &Policy,
    options: &Options,
    work: &std::path::Path,
) -> Result<(Policy, ReplayTime), BacktestError> {
    let mut policy = policy.clone();
    policy.data.dir = options.data_dir.clone();
    policy.state.dir = work.join("scan");
    policy.data.settle_ms = 0;
    policy.data.incomplete_after_ms = 0;
    crate::fsutil::create_private_dir(&policy.state.dir).map_err(BacktestError::Temp)?;
    let clock = match (&policy.data.timestamp, options.seconds_per_row) {
        (_, Some(s)) => ReplayTime::RowsPerTime { seconds_per_row: s },
        (Some(_), None) => ReplayTime::Timestamp,
        (None, None) => ReplayTime::FileMtime,
    };
    tch::set_num_threads(policy.training.threads as i32);
    Ok((policy, clock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_only_scored_rows() {
        let outcomes = [2, 2, 1, 0, 1, 1];
        let w = windows(&outcomes, 4);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].rows_scored, w[0].accuracy), (2, Some(0.5)));
        assert_eq!((w[1].rows_scored, w[1].accuracy), (2, Some(1.0)));
    }
}
