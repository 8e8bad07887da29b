//! The command line: clap definitions and one handler per subcommand.
//! Library errors are typed; they become `anyhow` errors only here.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tokio::sync::{mpsc, watch};

use crate::config::Policy;
use crate::daemon::{self, Promotion};
use crate::gen;
use crate::ingest;
use crate::logging::{self, LogFormat};
use crate::model::Dataset;
use crate::registry::{
    CheckMode, DataSummary, ImportSource, Registry, TrainedFile, TrainedFiles, VersionMeta,
};
use crate::update::{self as strategies, StrategyName, UpdateData};

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
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Read one data file as the daemon would (the daemon runs this in a
    /// child process for a file that killed its previous process).
    #[command(hide = true)]
    ProbeFile {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        file: PathBuf,
    },
    /// Validate a policy file; report every error with its line.
    CheckConfig {
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
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Parquet files with the policy's feature and label columns.
        #[arg(long = "data", required = true, num_args = 1..)]
        data: Vec<PathBuf>,
    },
    /// Show the live version and the daemon's rolling metrics.
    Status {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List the versions in the registry.
    Versions {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Make an earlier version live again (default: the previous live one).
    Rollback {
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
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        version: u64,
        /// Why, kept in pins.json.
        #[arg(long, default_value = "pinned by hand")]
        reason: String,
    },
    /// Let retention delete a pinned version again.
    Unpin {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        version: u64,
    },
    /// Run one update tournament now on the rows the daemon has seen.
    Update {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Strategies to try (default: the policy's update.candidates).
        #[arg(long = "strategy", value_enum, num_args = 1..)]
        strategies: Vec<StrategyName>,
        /// Show the leaderboard without promoting.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// The tutorial's experiment on your files: train on OLD, update with
    /// NEW by each strategy, score on TEST, over several seeds.
    Compare {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        old: PathBuf,
        #[arg(long)]
        new: PathBuf,
        #[arg(long)]
        test: PathBuf,
        /// Strategies to compare (default: none and every retraining strategy).
        #[arg(long = "strategy", value_enum, num_args = 1..)]
        strategies: Vec<StrategyName>,
        /// Seeds to average over.
        #[arg(long, default_value_t = 5)]
        repeats: u64,
        #[arg(long)]
        json: bool,
    },
    /// Replay a directory of historical Parquet files through the policy,
    /// offline, beside two baselines ("never update" and "periodic only"):
    /// prequential accuracy, alerts, updates, versions, and a plot.
    Backtest {
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
    /// The backtest's picture for a live daemon: its registry history and
    /// the rolling-accuracy trace in state/status.json.
    Report {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Write the plot as SVG.
        #[arg(long, value_name = "OUT.svg")]
        plot: Option<PathBuf>,
        /// Write the plot as PNG.
        #[arg(long, value_name = "OUT.png")]
        png: Option<PathBuf>,
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
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Rows in all (split 50/25/25 into old, new_train, new_test).
        #[arg(long, default_value_t = 1000)]
        rows: usize,
    },
    /// A stream with concept drift, split into files.
    Stream {
        #[arg(long)]
        out: PathBuf,
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
        #[arg(long, default_value_t = 250)]
        rows_per_file: usize,
        #[arg(long, default_value_t = 20)]
        features: usize,
        /// Add a timestamp column `ts`, one row every this many seconds.
        #[arg(long)]
        seconds_per_row: Option<f64>,
        /// Unix seconds of the first row's `ts` (default: now); fixed, the
        /// stream is the same on every run.
        #[arg(long, requires = "seconds_per_row")]
        start: Option<i64>,
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

fn load_policy(path: &Path) -> Result<Policy> {
    Ok(load_resolved(path)?)
}

/// The policy with relative directories resolved against its file's
/// directory (typed errors, for the daemon's reload).
fn load_resolved(path: &Path) -> Result<Policy, crate::config::ConfigError> {
    let mut policy = Policy::load(path)?;
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    policy.resolve_paths(&base);
    Ok(policy)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let format = cli.log_format;
    match cli.command {
        Command::CheckConfig { config } => {
            logging::init(format, "warn");
            match Policy::load(&config) {
                Ok(_) => {
                    println!("{}: ok", config.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::ProbeFile { config, file } => {
            logging::init(format, "warn");
            let policy = load_policy(&config)?;
            println!("{}", daemon::guard::probe_file(&policy, &file)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            runtime()?.block_on(run_daemon(policy, config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { dir, json } => {
            logging::init(format, "info");
            let summary = runtime()?.block_on(crate::demo::run(dir))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", summary.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Init { config, data } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            init(&policy, &data)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config, json } => {
            let policy = load_policy(&config)?;
            logging::init(format, "warn");
            status(&policy, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Versions { config, json } => {
            let policy = load_policy(&config)?;
            logging::init(format, "warn");
            versions(&policy, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rollback { config, to, reason } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            switch_live(&policy, to, true, &reason)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Promote {
            config,
            version,
            reason,
        } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            switch_live(&policy, Some(version), false, &reason)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            config,
            safetensors,
            reason,
            promote,
        } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            import(&policy, &safetensors, &reason, promote)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Pin {
            config,
            version,
            reason,
        } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd pin")?;
            if registry.pin(version, &reason)? {
                tracing::info!(event = "pin", version, reason, "version {version} pinned");
                println!("version {version} is pinned: retention keeps it");
            } else {
                println!("version {version} was already pinned");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Unpin { config, version } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd unpin")?;
            if registry.unpin(version)? {
                tracing::info!(event = "unpin", version, "version {version} unpinned");
                println!("version {version} is no longer pinned");
            } else {
                println!("version {version} was not pinned");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Update {
            config,
            strategies,
            dry_run,
            json,
        } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            update(&policy, &strategies, dry_run, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare {
            config,
            old,
            new,
            test,
            strategies,
            repeats,
            json,
        } => {
            let policy = load_policy(&config)?;
            logging::init(format, &policy.log.filter);
            let files = crate::compare::Files { old, new, test };
            let listed: Vec<StrategyName> = if strategies.is_empty() {
                StrategyName::ALL_RETRAINING.to_vec()
            } else {
                strategies.clone()
            };
            // Per seed: the base model, then every strategy.
            let per_seed: u64 = policy.training.epochs as u64
                + listed
                    .iter()
                    .map(|&s| crate::progress::candidate_epochs(&policy, s))
                    .sum::<u64>();
            let rows =
                crate::progress::with_epoch_progress("compare", per_seed * repeats.max(1), || {
                    crate::compare::run(&policy, &files, &strategies, repeats)
                })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", crate::compare::render(&rows, repeats));
            }
            Ok(ExitCode::SUCCESS)
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
            let policy = load_policy(&config)?;
            // Alerts and updates are the report's subject: the log shows
            // only problems unless RUST_LOG asks for more.
            logging::init(format, "error");
            let options = crate::backtest::Options {
                data_dir: data,
                seconds_per_row,
                window_rows,
            };
            let report = crate::backtest::run(&policy, &options)?;
            let chart = crate::backtest::chart(&report);
            write_plots(&chart, plot.as_deref(), png.as_deref())?;
            match json.as_deref() {
                Some(p) if p == Path::new("-") => {
                    println!("{}", serde_json::to_string_pretty(&report)?)
                }
                Some(p) => {
                    std::fs::write(p, serde_json::to_vec_pretty(&report)?)
                        .with_context(|| format!("cannot write {}", p.display()))?;
                    print!("{}", crate::backtest::render(&report));
                }
                None => print!("{}", crate::backtest::render(&report)),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            config,
            plot,
            png,
            json,
        } => {
            let policy = load_policy(&config)?;
            logging::init(format, "warn");
            let report = crate::report::gather(&policy)?;
            write_plots(
                &crate::report::chart(&report),
                plot.as_deref(),
                png.as_deref(),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", crate::report::render(&report));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::GenData { kind } => {
            logging::init(format, "info");
            gen_data(kind)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes the chart as SVG and / or PNG.
fn write_plots(chart: &crate::plot::Chart, svg: Option<&Path>, png: Option<&Path>) -> Result<()> {
    if let Some(path) = svg {
        std::fs::write(path, crate::plot::svg(chart)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = png {
        std::fs::write(path, crate::plot::png(chart)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn run_daemon(policy: Policy, config: PathBuf) -> Result<()> {
    let (trig_tx, trig_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = watch::channel(daemon::Status::default());
    if let Some(addr) = policy.metrics.address() {
        crate::metrics::start(addr, status_rx)?;
    }
    // SIGUSR1 asks for an update now, through the channel the schedule uses.
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("cannot install the SIGUSR1 handler")?;
    let manual = trig_tx.clone();
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            tracing::info!("SIGUSR1: update requested");
            // Full channel: a request is already waiting.
            let _ = manual.try_send(daemon::Trigger::Manual);
        }
    });
    // SIGHUP re-reads the policy; the daemon validates what changed.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let (reload_tx, reload_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading {}", config.display());
            if reload_tx.send(load_resolved(&config)).await.is_err() {
                break;
            }
        }
    });
    let service = daemon::service::Service {
        notifier: crate::notify::Notifier::from_env()?,
        reloads: Some(reload_rx),
    };
    // Installed now, not when the loop first polls the future: a SIGTERM
    // right after the first status.json (the daemon looks up) must stop it
    // cleanly, not kill it with the default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested");
    };
    daemon::run_with(
        policy,
        daemon::Clock::System,
        shutdown,
        trig_tx,
        trig_rx,
        status_tx,
        service,
    )
    .await?;
    Ok(())
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
        daemon::train_first_version(policy, &rows)?;
    let meta = daemon::promote_version(
        &registry,
        policy,
        None,
        &crate::model::Classifier::Single(model),
        Promotion {
            strategy: None,
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

/// `driftd update`: one tournament on the rows the manifest lists since the
/// live version (and a bounded sample of older rows), under the registry
/// lock; a running daemon follows the live pointer.
fn update(policy: &Policy, only: &[StrategyName], dry_run: bool, json: bool) -> Result<()> {
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd update")?;
    let Some(live_version) = registry.live_version()? else {
        bail!(
            "the registry {} has no live version yet: run the daemon or `driftd init` first",
            policy.registry.dir.display()
        );
    };
    let (meta, live) = registry.load_model(live_version)?;
    let manifest = ingest::Manifest::load(&policy.state.dir.join("manifest.json"))?;
    let schema = ingest::Schema::of_version(&meta, policy);
    let (old, new) = ingest::rows_from_manifest(
        &policy.data.dir,
        &manifest,
        &schema,
        ingest::RereadLimits {
            last_seq: meta.data.last_seq,
            max_old: policy.update.reservoir_rows,
            max_new: policy.update.max_new_rows,
            follow_symlinks: policy.data.follow_symlinks,
        },
    );
    let list: Vec<StrategyName> = if only.is_empty() {
        policy.update.candidates.clone()
    } else {
        only.to_vec()
    };
    tch::set_num_threads(policy.training.threads as i32);
    let seed = policy.training.seed.wrapping_add(live_version);
    let lineage = match policy.update.ensemble.members {
        crate::config::EnsembleMembers::LastVersions => {
            registry.lineage(&meta, policy.update.ensemble.max_members.saturating_sub(2))
        }
        crate::config::EnsembleMembers::Grow => Vec::new(),
    };
    let data = UpdateData { old, new, lineage };
    tracing::info!(
        event = "update_started",
        trigger = "manual",
        new_rows = data.new.len(),
        old_rows = data.old.len(),
        "manual update of version {live_version}: {} candidates on {} new and {} old rows",
        list.len(),
        data.new.len(),
        data.old.len()
    );
    let epochs = list
        .iter()
        .map(|&s| crate::progress::candidate_epochs(policy, s))
        .sum();
    let t = crate::progress::with_epoch_progress("update", epochs, || {
        strategies::run_tournament(policy, &live, &data, &list, seed)
    })?;
    daemon::log_candidates(&t);
    let board = daemon::leaderboard_of(&t);
    let mut promoted = None;
    if let (Some(i), false) = (t.winner, dry_run) {
        let built = t.candidates[i]
            .outcome
            .as_ref()
            .expect("the winner trained");
        let meta = daemon::promote_version(
            &registry,
            policy,
            Some(live_version),
            &built.model,
            Promotion {
                strategy: Some(t.candidates[i].strategy),
                trigger: "manual".into(),
                features: meta.features.clone(),
                holdout: built.scores,
                live_holdout: Some(t.live),
                report: built.report.clone(),
                leaderboard: board.clone(),
                data: DataSummary {
                    train_rows: t.train_rows,
                    holdout_rows: t.holdout_rows,
                    first_file: None,
                    last_file: manifest.ingested_in_order().last().map(|(n, _)| n.clone()),
                    last_seq: manifest.next_seq,
                },
                input_profile: Some(crate::input_drift::InputProfile::from_dataset(
                    &data.new,
                    &meta.features,
                )),
                files: None,
            },
        )?;
        promoted = Some(meta.version);
    } else if t.winner.is_none() {
        tracing::info!(event = "update_rejected", trigger = "manual", reason = %t.decision, "no candidate promoted: {}", t.decision);
    }
    if json {
        let v = serde_json::json!({
            "live_version": live_version,
            "holdout_rows": t.holdout_rows,
            "train_rows": t.train_rows,
            "old_rows": t.old_rows,
            "metric": t.metric,
            "live": t.live,
            "leaderboard": board,
            "decision": t.decision,
            "dry_run": dry_run,
            "promoted": promoted,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!(
        "leaderboard ({} holdout rows, newest; {} new and {} old training rows):",
        t.holdout_rows, t.train_rows, t.old_rows
    );
    println!(
        "  {:<14} {:>8} {:>8} {:>8} {:>8}",
        "candidate", "accuracy", "log loss", "auc", "seconds"
    );
    println!(
        "  {:<14} {:>8.4} {:>8.4} {:>8} {:>8}",
        format!("live (v{live_version})"),
        t.live.accuracy,
        t.live.log_loss,
        fmt_opt(t.live.auc),
        ""
    );
    for c in &board {
        match &c.scores {
            Some(s) => println!(
                "  {:<14} {:>8.4} {:>8.4} {:>8} {:>8.2}{}",
                c.strategy,
                s.accuracy,
                s.log_loss,
                fmt_opt(s.auc),
                c.train_seconds,
                if c.promoted { "  <- winner" } else { "" }
            ),
            None => println!(
                "  {:<14} failed: {}",
                c.strategy,
                c.error.as_deref().unwrap_or("?")
            ),
        }
    }
    println!("decision: {}", t.decision);
    match (promoted, dry_run) {
        (Some(v), _) => println!("promoted: version {v} is live"),
        (None, true) => println!("dry run: nothing promoted"),
        (None, false) => println!("nothing promoted"),
    }
    Ok(())
}

/// How to turn a PyTorch checkpoint into what `driftd import` reads.
const CONVERT_HINT: &str = "Save the state_dict with safetensors instead: \
    safetensors.torch.save_file(model.state_dict(), \"model.safetensors\") \
    (for an existing file: save_file(torch.load(\"model.pt\", weights_only=True), \"model.safetensors\"))";

/// What a file written by `torch.save` or `pickle` starts with: a zip
/// archive (torch.save's default since PyTorch 1.6) or a pickle stream
/// (protocol 2 and later open with 0x80).
fn pickle_kind(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"PK\x03\x04") {
        Some("a zip archive (torch.save)")
    } else if bytes.first() == Some(&0x80) && bytes.get(1).is_some_and(|p| (2..=5).contains(p)) {
        Some("a pickle (torch.save / pickle.dump)")
    } else {
        None
    }
}

/// `driftd import`: checks a PyTorch state_dict against the policy's
/// architecture and writes it as the next version (live only with
/// `--promote`).
fn import(policy: &Policy, file: &Path, reason: &str, promote: bool) -> Result<()> {
    if file.extension().and_then(|e| e.to_str()) != Some("safetensors") {
        bail!(
            "{} is not a .safetensors file: driftd import takes only safetensors checkpoints \
             (pickled .pt / .pth files are never read: unpickling can run code). {CONVERT_HINT}",
            file.display()
        );
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if let Some(kind) = pickle_kind(&bytes) {
        bail!(
            "{} is named .safetensors but holds {kind}, not safetensors: it is not read \
             (unpickling can run code). {CONVERT_HINT}",
            file.display()
        );
    }
    let (registry, _lock, _) = Registry::open_locked(&policy.registry.dir, "driftd import")?;
    let live = registry.live_version()?;
    // Feature order: the policy's list, else the live version's.
    let features = match (&policy.data.features, live) {
        (crate::config::FeatureSpec::List(list), _) => list.clone(),
        (crate::config::FeatureSpec::Pattern(_), Some(v)) => registry.read_meta(v)?.features,
        (crate::config::FeatureSpec::Pattern(p), None) => bail!(
            "data.features is a pattern ({p:?}) and the registry has no live version, so the \
             model's input order is unknown: list the features in the policy"
        ),
    };
    let arch = crate::model::Architecture::from_policy(policy, features.len());
    let mlp = crate::model::Mlp::from_pytorch_state_dict(&bytes, &arch).map_err(|e| {
        anyhow::anyhow!(
            "{} does not fit the policy's model (inputs {} = the features {:?}, hidden {:?}, \
             {} classes): {e}",
            file.display(),
            arch.inputs,
            features,
            arch.hidden,
            arch.classes
        )
    })?;
    let scaler = if mlp.scaler == crate::model::Scaler::identity(arch.inputs) {
        "identity"
    } else {
        "checkpoint"
    };
    let version = registry.next_version()?;
    let meta = VersionMeta {
        version,
        parent: live,
        strategy: "import".into(),
        trigger: "import".into(),
        created_at: chrono::Utc::now(),
        architecture: arch.clone(),
        members: Vec::new(),
        features,
        label: policy.data.label.clone(),
        training: None,
        threads: policy.training.threads,
        train_report: None,
        data: DataSummary::default(),
        holdout: None,
        live_holdout: None,
        leaderboard: Vec::new(),
        driftd_version: env!("CARGO_PKG_VERSION").into(),
        import: Some(ImportSource {
            file: file.display().to_string(),
            sha256: crate::registry::hex_sha256(&bytes),
            scaler: scaler.into(),
            reason: reason.to_string(),
        }),
        seeds: None,
        update_settings: None,
        files: None,
        // No training rows are known: input drift is not checked for it.
        input_profile: None,
    };
    registry.write_version(meta, &crate::model::Classifier::Single(mlp))?;
    tracing::info!(
        event = "import",
        version,
        file = %file.display(),
        scaler,
        "{} imported as version {version}",
        file.display()
    );
    if promote {
        registry.set_live(version, "import", reason)?;
        if let Err(e) = registry.apply_retention(policy.registry.keep_last) {
            tracing::warn!(error = %e, "retention failed; old versions are kept");
        }
        tracing::warn!(
            event = "promote",
            version,
            previous = ?live,
            reason,
            "version {version} (imported) is live"
        );
        println!(
            "version {version} imported from {} and live",
            file.display()
        );
    } else {
        println!(
            "version {version} imported from {}; make it live with `driftd promote {version}`",
            file.display()
        );
    }
    Ok(())
}

/// `rollback` and `promote`: move the live pointer to a version that loads
/// (checksums verified), under the registry lock, with a history entry. A
/// running daemon follows the pointer.
fn switch_live(policy: &Policy, to: Option<u64>, rollback: bool, reason: &str) -> Result<()> {
    let what = if rollback {
        "driftd rollback"
    } else {
        "driftd promote"
    };
    let (registry, _lock, report) = Registry::open_locked(&policy.registry.dir, what)?;
    let live = registry.live_version()?;
    let target = match to {
        Some(v) => v,
        None => {
            // The version that was live before the current one.
            let history = registry.history()?;
            history
                .iter()
                .rev()
                .find(|h| Some(h.version) == live)
                .and_then(|h| h.previous)
                .with_context(|| {
                    format!(
                        "the history of {} names no version before the live one; use --to VERSION",
                        policy.registry.dir.display()
                    )
                })?
        }
    };
    if Some(target) == live {
        bail!("version {target} is already live");
    }
    if let Some(b) = report.broken.iter().find(|b| b.version == target) {
        bail!(
            "version {target} is broken and cannot be made live: {}{}",
            b.reason,
            if to.is_none() {
                "; choose another with --to VERSION (see `driftd versions`)"
            } else {
                ""
            }
        );
    }
    registry
        .load_model(target)
        .with_context(|| format!("version {target} cannot be made live"))?;
    let event = if rollback { "rollback" } else { "promote" };
    registry.set_live(target, event, reason)?;
    tracing::warn!(
        event,
        version = target,
        previous = ?live,
        reason,
        "version {target} is live ({event} from {}): {reason}",
        live.map(|v| v.to_string()).unwrap_or_else(|| "none".into())
    );
    println!("version {target} is live");
    Ok(())
}

fn status(policy: &Policy, json: bool) -> Result<()> {
    let (registry, report) =
        Registry::open_checked(&policy.registry.dir, "driftd status", CheckMode::ReadOnly)?;
    let live = registry.live_version()?;
    let live_broken = report
        .broken
        .iter()
        .find(|b| Some(b.version) == live)
        .map(|b| b.reason.clone());
    let status = daemon::read_status(&policy.state.dir);
    let next = if policy.schedule.enabled {
        daemon::schedule::next_fire(&policy.schedule, chrono::Utc::now())
    } else {
        None
    };
    if json {
        let running = status.as_ref().is_some_and(daemon_running);
        let v = serde_json::json!({
            "live_version": live,
            "live_broken": live_broken,
            "broken_versions": report.broken.iter().map(|b| b.version).collect::<Vec<_>>(),
            "next_scheduled_update": next,
            "daemon_running": running,
            "daemon": status,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if let (Some(v), Some(reason)) = (live, &live_broken) {
        println!("live version: {v} is BROKEN: {reason}");
        println!("  the daemon's next start falls back to the newest good version");
    }
    if !report.broken.is_empty() {
        let ids: Vec<String> = report
            .broken
            .iter()
            .map(|b| b.version.to_string())
            .collect();
        println!(
            "broken versions: {} (see `driftd versions`)",
            ids.join(", ")
        );
    }
    match live.filter(|_| live_broken.is_none()) {
        Some(v) => {
            let meta = registry.read_meta(v)?;
            println!(
                "live version: {v} ({}, created {}, holdout accuracy {})",
                meta.strategy,
                meta.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                meta.holdout
                    .map(|s| format!("{:.4}", s.accuracy))
                    .unwrap_or_else(|| "-".into())
            );
        }
        None if live.is_none() => println!("live version: none (the registry is empty)"),
        None => {}
    }
    if let Some(s) = status {
        let running = daemon_running(&s);
        println!(
            "daemon {} (pid {}, status of {}): {} files ingested, {} quarantined, {} rows",
            if running { "running" } else { "not running" },
            s.pid,
            s.updated_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_default(),
            s.files_ingested,
            s.files_quarantined,
            s.rows_ingested
        );
        println!(
            "rolling accuracy: {} (baseline {}), {} rows since the live version",
            fmt_opt(s.rolling_accuracy),
            fmt_opt(s.baseline),
            s.rows_since_live
        );
        if let Some(m) = &s.metrics {
            print_metrics(&format!("last {} rows", m.rows), m);
        }
        if let Some(m) = &s.time_window_metrics {
            print_metrics(
                &format!(
                    "last {}s ({} rows)",
                    policy.monitor.time_window_seconds, m.rows
                ),
                m,
            );
        }
        if !s.input_drift.is_empty() {
            let moved: Vec<String> = s
                .input_drift
                .iter()
                .map(|f| format!("{} PSI {:.3} KS {:.3}", f.feature, f.psi, f.ks_statistic))
                .collect();
            println!("input drift (most moved): {}", moved.join("; "));
        }
        if let Some(a) = s.alerts.last() {
            println!(
                "last alert: {} ({:?}) at rolling {} {:.4}, baseline {}",
                a.detector,
                a.severity,
                a.metric,
                a.current,
                fmt_opt(a.baseline)
            );
        }
        if let Some(u) = s.updates.last() {
            println!("last update: {}", u.decision);
        }
    } else {
        println!("daemon: no status file in {}", policy.state.dir.display());
    }
    if let Some(t) = next {
        println!(
            "next scheduled update: {}",
            t.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}

/// A status file's daemon is running if it did not say it stopped and its
/// process exists.
fn daemon_running(s: &daemon::Status) -> bool {
    !s.stopped && Path::new(&format!("/proc/{}", s.pid)).exists()
}

/// One line of overall metrics, then one per class.
fn print_metrics(label: &str, m: &crate::monitor::WindowMetrics) {
    println!(
        "{label}: accuracy {:.4}, log loss {:.4}{}",
        m.accuracy,
        m.log_loss,
        m.auc
            .map(|a| format!(", ROC AUC {a:.4}"))
            .unwrap_or_default()
    );
    for c in &m.classes {
        println!(
            "  class {}: precision {} recall {} F1 {}; labels {:.1}%, predictions {:.1}%",
            c.class,
            fmt_opt(c.precision),
            fmt_opt(c.recall),
            fmt_opt(c.f1),
            100.0 * c.label_share,
            100.0 * c.predicted_share
        );
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into())
}

fn versions(policy: &Policy, json: bool) -> Result<()> {
    let (registry, report) =
        Registry::open_checked(&policy.registry.dir, "driftd versions", CheckMode::ReadOnly)?;
    let live = registry.live_version().ok().flatten();
    let broken = |v: u64| {
        report
            .broken
            .iter()
            .find(|b| b.version == v)
            .map(|b| b.reason.clone())
    };
    let pinned: Vec<u64> = registry.pins()?.iter().map(|p| p.version).collect();
    let ids = registry.versions()?;
    // A broken version may have no readable meta.json: list it anyway.
    let metas: Vec<(u64, Option<VersionMeta>)> = ids
        .iter()
        .map(|&v| (v, registry.read_meta(v).ok()))
        .collect();
    if json {
        let rows: Vec<_> = metas
            .iter()
            .map(|(v, m)| {
                serde_json::json!({
                    "version": v,
                    "parent": m.as_ref().and_then(|m| m.parent),
                    "strategy": m.as_ref().map(|m| &m.strategy),
                    "trigger": m.as_ref().map(|m| &m.trigger),
                    "created_at": m.as_ref().map(|m| m.created_at),
                    "holdout_accuracy": m.as_ref().and_then(|m| m.holdout).map(|s| s.accuracy),
                    "live": Some(*v) == live,
                    "pinned": pinned.contains(v),
                    "broken": broken(*v),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:>8}  {:>7}  {:>6}  {:<14} {:<10} {:<20} {:>8}",
        "", "version", "parent", "strategy", "trigger", "created (UTC)", "holdout"
    );
    for (v, m) in &metas {
        let marker = match (Some(*v) == live, pinned.contains(v)) {
            (true, true) => "live pin",
            (true, false) => "live",
            (false, true) => "pin",
            (false, false) => "",
        };
        let (parent, strategy, trigger, created, holdout) = match m {
            Some(m) => (
                m.parent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                m.strategy.clone(),
                m.trigger.clone(),
                m.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                fmt_opt(m.holdout.map(|s| s.accuracy)),
            ),
            None => ("?".into(), "?".into(), "?".into(), "?".into(), "-".into()),
        };
        println!(
            "{marker:>8}  {v:>7}  {parent:>6}  {strategy:<14} {trigger:<10} {created:<20} {holdout:>8}"
        );
        if let Some(reason) = broken(*v) {
            println!("{:>19}BROKEN: {reason}", "");
        }
    }
    Ok(())
}

fn gen_data(kind: GenKind) -> Result<()> {
    match kind {
        GenKind::Reference { out, seed, rows } => {
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let mut spec = gen::ClassificationSpec::reference(seed);
            spec.n_samples = rows;
            let data = gen::make_classification(&spec);
            let half = rows / 2;
            let three_q = rows * 3 / 4;
            for (name, a, b) in [
                ("old.parquet", 0, half),
                ("new_train.parquet", half, three_q),
                ("new_test.parquet", three_q, rows),
            ] {
                let path = out.join(name);
                gen::write_parquet(&path, &data.slice(a, b), None)?;
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
            let mut concept = gen::ClassificationSpec::reference(seed);
            concept.n_features = features;
            concept.n_informative = (features * 3 / 4).max(2);
            concept.n_redundant = features - concept.n_informative;
            let spec = gen::StreamSpec {
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
            let files = gen::write_stream(&out, &spec)?;
            println!("{}: {} files, {} rows", out.display(), files.len(), rows);
        }
    }
    Ok(())
}
