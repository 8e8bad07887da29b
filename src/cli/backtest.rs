//! `driftd backtest`: replays a directory of historical files through the
//! policy beside two baselines; the text or JSON report, and the plot.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::support::{load_policy, write_plots};
use crate::logging::{self, LogFormat};

pub(super) fn run(
    format: LogFormat,
    config: &Path,
    options: &crate::backtest::Options,
    json: Option<&Path>,
    plot: Option<&Path>,
    png: Option<&Path>,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    // Alerts and updates are the report's subject: the log shows
    // only problems unless RUST_LOG asks for more.
    logging::init(format, "error");
    let report = crate::backtest::run(&policy, options)?;
    let chart = crate::backtest::chart(&report);
    write_plots(&chart, plot, png)?;
    match json {
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
