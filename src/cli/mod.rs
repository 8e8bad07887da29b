//! The command line: clap definitions and the dispatch to one handler per
//! subcommand, each in its own file. Library errors are typed; they become
//! `anyhow` errors only here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::logging::LogFormat;
use crate::update::StrategyName;

mod backtest;
mod check_config;
mod compare;
mod demo;
mod gen_data;
mod import;
mod init;
mod pin;
mod probe_file;
mod report;
mod rollback;
mod run;
mod status;
mod support;
mod tune;
mod update;
mod versions;

const DEFAULT_CONFIG: &str = "/etc/driftd/policy.toml";

#[derive(Debug, Parser)]
#[command(
    name = "driftd",
    version,
    about = "Keeps a deployed classifier accurate as its data drifts",
    long_about = "driftd tails a directory of labelled Parquet files, scores them with the live \
                  model, raises drift alerts, and runs a tournament of update strategies whose \
                  winner becomes the next versioned checkpoint.\n\nStart with `driftd demo`."
)]
pub struct Cli {
    /// Log format: human-readable, or JSON lines for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground.
    Run {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Read one data file as the daemon would (the daemon runs this in a
    /// child process for a file that killed its previous process).
    #[command(hide = true)]
    ProbeFile {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        file: PathBuf,
    },
    /// Validate a policy file; report every error with its line.
    CheckConfig {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Generate a drifting stream, run the real daemon on it, show what happened.
    Demo {
        /// Keep the demo's files here instead of a temporary directory.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train version 1 from the given Parquet files.
    Init {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Parquet files with the policy's feature and label columns.
        #[arg(long = "data", required = true, num_args = 1..)]
        data: Vec<PathBuf>,
    },
    /// Show the live version and the daemon's rolling metrics.
    Status {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the versions in the registry.
    Versions {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Print the versions as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier version live again (default: the previous live one).
    Rollback {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The version to go back to.
        #[arg(long)]
        to: Option<u64>,
        /// Why, for the history.
        #[arg(long, default_value = "manual rollback")]
        reason: String,
    },
    /// Make any good version live.
    Promote {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        version: u64,
        /// Why, for the history.
        #[arg(long, default_value = "manual promotion")]
        reason: String,
    },
    /// Adopt a model trained elsewhere (a PyTorch nn.Sequential state_dict
    /// saved with safetensors.torch.save_file) as a new version.
    Import {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The state_dict: tensors 0.weight, 0.bias, 2.weight, ... (and
        /// optionally input.mean / input.std) matching the policy's model.
        #[arg(long)]
        safetensors: PathBuf,
        /// Why, for meta.json and the history.
        #[arg(long, default_value = "imported")]
        reason: String,
        /// Also make the new version live (otherwise: `driftd promote N`).
        #[arg(long)]
        promote: bool,
    },
    /// Keep a version whatever the retention policy (registry.keep_last).
    Pin {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        version: u64,
        /// Why, kept in pins.json.
        #[arg(long, default_value = "pinned by hand")]
        reason: String,
    },
    /// Let retention delete a pinned version again.
    Unpin {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        version: u64,
    },
    /// Run one update tournament now on the rows the daemon has seen.
    Update {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Strategies to try (default: the policy's update.candidates).
        #[arg(long = "strategy", value_enum, num_args = 1..)]
        strategies: Vec<StrategyName>,
        /// Show the leaderboard without promoting.
        #[arg(long)]
        dry_run: bool,
        /// Print the leaderboard and the decision as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The tutorial's experiment on your files: train on OLD, update with
    /// NEW by each strategy, score on TEST, over several seeds.
    Compare {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Parquet file the original model is trained on.
        #[arg(long)]
        old: PathBuf,
        /// Parquet file of newer rows the strategies update with.
        #[arg(long)]
        new: PathBuf,
        /// Parquet file of newer rows every model is scored on.
        #[arg(long)]
        test: PathBuf,
        /// Strategies to compare (default: none and every retraining strategy).
        #[arg(long = "strategy", value_enum, num_args = 1..)]
        strategies: Vec<StrategyName>,
        /// Seeds to average over.
        #[arg(long, default_value_t = 5)]
        repeats: u64,
        /// Print the comparison as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replay a directory of historical Parquet files through the policy,
    /// offline, beside two baselines ("never update" and "periodic only"):
    /// prequential accuracy, alerts, updates, versions, and a plot.
    Backtest {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The directory of Parquet files to replay (in timestamp order
        /// with data.timestamp, else by name).
        #[arg(long)]
        data: PathBuf,
        /// Write the JSON report to this file (`--json` alone or `--json -`:
        /// print it instead of the text report).
        #[arg(long, num_args = 0..=1, default_missing_value = "-", value_name = "OUT")]
        json: Option<PathBuf>,
        /// Write the plot as SVG.
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
        /// Write the plot as PNG.
        #[arg(long, value_name = "OUT.png")]
        png: Option<PathBuf>,
        /// Without data.timestamp: the simulated clock advances this many
        /// seconds per row (from 2026-01-01T00:00:00Z); without it, rows
        /// carry their file's modification time, as in the daemon.
        #[arg(long)]
        seconds_per_row: Option<f64>,
        /// Rows per window of the per-window accuracy (default: about 20
        /// windows, at least monitor.window).
        #[arg(long)]
        window_rows: Option<usize>,
    },
    /// Replay a directory of history under a small grid of policies (the
    /// policy as given and overrides of its keys), choose the best on the
    /// earlier part of the rows, report it on the later part (held out), and
    /// write the chosen policy.
    Tune {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// The directory of Parquet files to replay (as for `backtest`).
        #[arg(long)]
        data: PathBuf,
        /// Write the chosen policy (TOML) here.
        #[arg(long, value_name = "TUNED.toml")]
        out: PathBuf,
        /// The earlier part's share of the rows after version 1's, in (0, 1):
        /// points are chosen on it and reported on the rest.
        #[arg(long, default_value_t = 0.5)]
        split: f64,
        /// A grid file of [[point]] tables of overrides (default: the
        /// built-in grid, config/tune-grid.toml).
        #[arg(long, value_name = "GRID.toml")]
        grid: Option<PathBuf>,
        /// Write the JSON report to this file (`--json` alone or `--json -`:
        /// print it instead of the table).
        #[arg(long, num_args = 0..=1, default_missing_value = "-", value_name = "OUT")]
        json: Option<PathBuf>,
        /// Without data.timestamp: the simulated clock advances this many
        /// seconds per row (as for `backtest`).
        #[arg(long)]
        seconds_per_row: Option<f64>,
    },
    /// The backtest's picture for a live daemon: its registry history and
    /// the rolling-accuracy trace in state/status.json.
    Report {
        /// The policy file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Write the plot as SVG.
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
        /// Write the plot as PNG.
        #[arg(long, value_name = "OUT.png")]
        png: Option<PathBuf>,
        /// Print the report as JSON instead of text: the versions, the registry
        /// history and the daemon's status with its accuracy trace.
        #[arg(long)]
        json: bool,
    },
    /// Write synthetic labelled Parquet data.
    GenData {
        #[command(subcommand)]
        kind: GenKind,
    },
}

#[derive(Debug, Subcommand)]
pub enum GenKind {
    /// The tutorial's experiment: old.parquet, new_train.parquet, new_test.parquet.
    Reference {
        /// Directory to write the three files into (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the generator: the same seed writes the same rows.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rows in all (split 50/25/25 into old, new_train, new_test).
        #[arg(long, default_value_t = 1000)]
        rows: usize,
    },
    /// A stream with concept drift, split into files.
    Stream {
        /// Directory to write the files into (created if missing): part-000000.parquet, ...
        #[arg(long)]
        out: PathBuf,
        /// Rows in all.
        #[arg(long, default_value_t = 6000)]
        rows: usize,
        /// Row positions where the concept changes (repeat or comma-separate).
        #[arg(long, value_delimiter = ',')]
        drift_at: Vec<usize>,
        /// 0 for abrupt drift; otherwise the width in rows of a gradual change.
        #[arg(long, default_value_t = 0)]
        drift_width: usize,
        /// Fraction of the class clusters that move at each drift (0, 1].
        #[arg(long, default_value_t = 1.0)]
        drift_magnitude: f64,
        /// Rows per Parquet file.
        #[arg(long, default_value_t = 250)]
        rows_per_file: usize,
        /// Feature columns f0, f1, ... (float32).
        #[arg(long, default_value_t = 20)]
        features: usize,
        /// Add a timestamp column `ts`, one row every this many seconds.
        #[arg(long)]
        seconds_per_row: Option<f64>,
        /// Unix seconds of the first row's `ts` (default: now); fixed, the
        /// stream is the same on every run.
        #[arg(long, requires = "seconds_per_row")]
        start: Option<i64>,
        /// Seed of the generator: the same seed writes the same rows.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// A stream from a drift generator of the literature (SEA, Agrawal,
    /// rotating hyperplane, random RBF, STAGGER), split into files.
    Drift {
        /// Directory to write the files into (created if missing): part-000000.parquet, ...
        #[arg(long)]
        out: PathBuf,
        /// The generator of the literature.
        #[arg(long, value_enum)]
        generator: crate::synth::Generator,
        /// How the concept changes: abrupt, gradual, incremental (hyperplane,
        /// RBF, SEA) or recurring (two concepts in turn).
        #[arg(long, value_enum, default_value = "abrupt")]
        drift: crate::synth::DriftKind,
        /// Rows in all.
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        /// Drift points, evenly spaced over the stream.
        #[arg(long, default_value_t = 3)]
        drifts: usize,
        /// Rows of a gradual transition.
        #[arg(long, default_value_t = 2500)]
        width: usize,
        /// Share of labels flipped, in [0, 0.5].
        #[arg(long, default_value_t = 0.0)]
        noise: f64,
        /// Features of the hyperplane and RBF generators (the others have
        /// their own: SEA 3, Agrawal 9, STAGGER 3).
        #[arg(long, default_value_t = 10)]
        features: usize,
        /// Rows per Parquet file.
        #[arg(long, default_value_t = 1000)]
        rows_per_file: usize,
        /// Add a timestamp column `ts`, one row every this many seconds.
        #[arg(long)]
        seconds_per_row: Option<f64>,
        /// Unix seconds of the first row's `ts` (default: now).
        #[arg(long, requires = "seconds_per_row")]
        start: Option<i64>,
        /// Seed of the generator: the same seed writes the same rows.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line: each command's handler is in its own file.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let format = cli.log_format;
    match cli.command {
        Command::CheckConfig { config } => check_config::run(format, &config),
        Command::ProbeFile { config, file } => probe_file::run(format, &config, &file),
        Command::Run { config } => run::run(format, config),
        Command::Demo { dir, json } => demo::run(format, dir, json),
        Command::Init { config, data } => init::run(format, &config, &data),
        Command::Status { config, json } => status::run(format, &config, json),
        Command::Versions { config, json } => versions::run(format, &config, json),
        Command::Rollback { config, to, reason } => {
            rollback::rollback(format, &config, to, &reason)
        }
        Command::Promote {
            config,
            version,
            reason,
        } => rollback::promote(format, &config, version, &reason),
        Command::Import {
            config,
            safetensors,
            reason,
            promote,
        } => import::run(format, &config, &safetensors, &reason, promote),
        Command::Pin {
            config,
            version,
            reason,
        } => pin::pin(format, &config, version, &reason),
        Command::Unpin { config, version } => pin::unpin(format, &config, version),
        Command::Update {
            config,
            strategies,
            dry_run,
            json,
        } => update::run(format, &config, &strategies, dry_run, json),
        Command::Compare {
            config,
            old,
            new,
            test,
            strategies,
            repeats,
            json,
        } => {
            let files = crate::compare::Files { old, new, test };
            compare::run(format, &config, files, &strategies, repeats, json)
        }
        Command::Backtest {
            config,
            data,
            json,
            plot,
            png,
            seconds_per_row,
            window_rows,
        } => {
            let options = crate::backtest::Options {
                data_dir: data,
                seconds_per_row,
                window_rows,
            };
            let (json, plot, png) = (json.as_deref(), plot.as_deref(), png.as_deref());
            backtest::run(format, &config, &options, json, plot, png)
        }
        Command::Tune {
            config,
            data,
            out,
            split,
            grid,
            json,
            seconds_per_row,
        } => {
            let options = crate::tune::Options {
                config,
                data_dir: data,
                out,
                split,
                grid,
                seconds_per_row,
            };
            tune::run(format, &options, json.as_deref())
        }
        Command::Report {
            config,
            plot,
            png,
            json,
        } => report::run(format, &config, plot.as_deref(), png.as_deref(), json),
        Command::GenData { kind } => gen_data::run(format, kind),
    }
}
