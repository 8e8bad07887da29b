//! `driftd tune`: replays a directory of history under a small grid of
//! policies with the backtest's machinery ([`backtest::Session`]: the same
//! replay as the backtest's `policy` run, version 1 trained once and
//! shared), chooses on a time-ordered split (the earlier part of the rows
//! after version 1's), reports on the later part (held out), and writes the
//! chosen policy.
//!
//! The files: `grid` (the points and the built-in grid), `overrides` (a
//! point applied to the policy's TOML document and validated as
//! `check-config` does), `split` (the time-ordered split), `choose` (the
//! choice rule), `report` (the JSON report), `render` (its text) and
//! `write` (the chosen policy's file).

use std::path::{Path, PathBuf};
use std::time::Instant;

use toml_edit::DocumentMut;

use crate::backtest::{self, BacktestError, Run, Session};
use crate::config::{ConfigError, Policy};
use crate::progress::Progress;

mod choose;
mod grid;
mod overrides;
mod render;
mod report;
mod split;
mod write;

pub use choose::{choose, lead_over_base, Earlier};
pub use grid::{Override, Point, DEFAULT_GRID};
pub use overrides::TUNABLE_SECTIONS;
pub use render::render;
pub use report::{OverrideRecord, PartScores, PointReport, Scores, TuneReport};
pub use split::{Split, SplitError, MIN_PART_ROWS};

#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error(transparent)]
    Split(#[from] SplitError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot read grid file {path}: {source}")]
    ReadGrid {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", problems_text(grid, problems))]
    Grid { grid: String, problems: Vec<String> },
    #[error("data directory {dir}: {source}")]
    TooFewRows { dir: PathBuf, source: SplitError },
    #[error("--out {path}: {reason}")]
    Out { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the chosen policy written to {path} does not pass check-config (a bug): {source}")]
    Check { path: PathBuf, source: ConfigError },
    #[error(transparent)]
    Backtest(#[from] BacktestError),
}

fn problems_text(grid: &str, problems: &[String]) -> String {
    let mut out = format!(
        "grid {grid} has {} problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(p);
    }
    out
}

pub struct Options {
    /// The policy (point 0 of the grid).
    pub config: PathBuf,
    /// The directory of history to replay.
    pub data_dir: PathBuf,
    /// Where the chosen policy is written.
    pub out: PathBuf,
    /// The earlier part's share of the rows after version 1's, in (0, 1).
    pub split: f64,
    /// A grid file; `None`: the built-in grid.
    pub grid: Option<PathBuf>,
    /// See [`backtest::ReplayTime::RowsPerTime`].
    pub seconds_per_row: Option<f64>,
}

/// The directory a path is relative to (its parent, made absolute).
fn dir_of(path: &Path) -> PathBuf {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    parent.canonicalize().unwrap_or(parent)
}

/// Runs the whole tune and writes the chosen policy to `options.out`.
pub fn run(options: &Options) -> Result<TuneReport, TuneError> {
    let started = Instant::now();
    split::check_fraction(options.split)?;
    let text = std::fs::read_to_string(&options.config).map_err(|error| ConfigError::Read {
        path: options.config.clone(),
        error,
    })?;
    let mut base = Policy::load(&options.config)?;
    let policy_dir = dir_of(&options.config);
    base.resolve_paths(&policy_dir);
    let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        // Policy::load accepted it, so this is toml_edit disagreeing.
        ConfigError::Invalid {
            path: options.config.clone(),
            diagnostics: vec![crate::config::Diagnostic {
                line: None,
                column: None,
                key: String::new(),
                message: e.to_string(),
            }],
        }
    })?;
    let out_dir = dir_of(&options.out);
    check_out(options, &out_dir)?;

    // Every point is applied and checked before anything is replayed.
    let (grid_name, grid_text) = match &options.grid {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path).map_err(|source| TuneError::ReadGrid {
                path: path.clone(),
                source,
            })?,
        ),
        None => ("built-in".to_string(), DEFAULT_GRID.to_string()),
    };
    let points = grid::parse(&grid_text, &grid_name)?;
    let mut candidates = vec![(doc.clone(), base.clone())];
    let mut problems = Vec::new();
    for (i, point) in points.iter().enumerate() {
        match overrides::apply(&doc, point, i + 1, &policy_dir) {
            Ok(applied) => candidates.push(applied),
            Err(p) => problems.extend(p),
        }
    }
    if !problems.is_empty() {
        return Err(TuneError::Grid {
            grid: grid_name,
            problems,
        });
    }

    let mut session = Session::open(
        &base,
        &backtest::Options {
            data_dir: options.data_dir.clone(),
            seconds_per_row: options.seconds_per_row,
            window_rows: None,
        },
    )?;
    let split = split::split(
        session.rows() as u64,
        session.bootstrap_rows() as u64,
        options.split,
    )
    .map_err(|source| TuneError::TooFewRows {
        dir: options.data_dir.clone(),
        source,
    })?;
    let replays = candidates.len() as u64 + 1;
    let mut progress = Progress::new("tune", session.rows() as u64 * replays, "rows");
    let mut runs = Vec::new();
    for (_, policy) in &candidates {
        runs.push(session.replay(policy, Run::Policy, &mut progress)?);
    }
    let never = session.replay(&base, Run::NeverUpdate, &mut progress)?;
    progress.finish();

    let (chosen, leads) = choose(&Earlier {
        outcomes: runs.iter().map(|r| r.outcomes.as_slice()).collect(),
        rows: split.earlier(),
    });
    let point_reports: Vec<PointReport> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let point = i.checked_sub(1).map(|j| &points[j]);
            PointReport {
                point: i,
                name: point.and_then(|p| p.name.clone()),
                overrides: point
                    .map(|p| {
                        p.overrides
                            .iter()
                            .map(|o| OverrideRecord {
                                key: o.key.clone(),
                                value: o.value_text(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                chosen: i == chosen,
                earlier_lead: leads[i],
                scores: Scores::of(run, &split),
            }
        })
        .collect();
    let (verdict, later_difference, beats_base) = report::verdict(&point_reports, chosen);

    let data = session.data_report();
    let header = write::header(
        &options.config,
        &options.data_dir,
        &grid_name,
        &point_reports,
        chosen.checked_sub(1).map(|i| &points[i]),
        &split,
    );
    let text = write::chosen_text(&candidates[chosen].0, &header, &policy_dir, &out_dir);
    std::fs::write(&options.out, text).map_err(|source| TuneError::Write {
        path: options.out.clone(),
        source,
    })?;
    Policy::load(&options.out).map_err(|source| TuneError::Check {
        path: options.out.clone(),
        source,
    })?;

    Ok(TuneReport {
        data,
        config: options.config.clone(),
        grid: grid_name,
        split,
        never_update: Scores::of(&never, &split),
        points: point_reports,
        chosen,
        later_difference,
        beats_base,
        verdict,
        out: options.out.clone(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// `--out` must be a file in an existing directory, and not the policy
/// itself (review the chosen policy before it replaces yours).
fn check_out(options: &Options, out_dir: &Path) -> Result<(), TuneError> {
    let fail = |reason: &str| TuneError::Out {
        path: options.out.clone(),
        reason: reason.to_string(),
    };
    if !out_dir.is_dir() {
        return Err(fail("its directory does not exist"));
    }
    if options.out.is_dir() {
        return Err(fail("is a directory; give a file name"));
    }
    let same = match (options.out.canonicalize(), options.config.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(fail(
            "is the policy given with --config; write the chosen policy elsewhere and review it",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every point of the built-in grid applies to the shipped policy and
    /// passes check-config's validation (a key renamed in the policy shows
    /// up here).
    #[test]
    fn the_built_in_grid_is_valid_for_the_shipped_policy() {
        let doc: DocumentMut = crate::config::EXAMPLE_POLICY.parse().unwrap();
        let points = grid::parse(DEFAULT_GRID, "built-in").unwrap();
        for (i, p) in points.iter().enumerate() {
            let (_, policy) = overrides::apply(&doc, p, i + 1, Path::new("/")).unwrap();
            assert_ne!(
                policy,
                Policy::parse(crate::config::EXAMPLE_POLICY).unwrap(),
                "point {} changes nothing",
                i + 1
            );
        }
    }
}
