//! `driftd report`: the backtest's picture for a live daemon (its registry
//! history and the rolling-accuracy trace in `state/status.json`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::{load_policy, write_plots};
use crate::logging::{self, LogFormat};

pub(super) fn run(
    format: LogFormat,
    config: &Path,
    plot: Option<&Path>,
    png: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let policy = load_policy(config)?;
    logging::init(format, "warn");
    let report = crate::report::gather(&policy)?;
    write_plots(&crate::report::chart(&report), plot, png)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::report::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
