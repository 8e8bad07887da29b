//! `driftd demo`: generates a drifting stream, runs the real daemon on it
//! and shows what happened.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use super::support::runtime;
use crate::logging::{self, LogFormat};

pub(super) fn run(format: LogFormat, dir: Option<PathBuf>, json: bool) -> Result<ExitCode> {
    logging::init(format, "info");
    let summary = runtime()?.block_on(crate::demo::run(dir))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", summary.render());
    }
    Ok(ExitCode::SUCCESS)
}
