//! `driftd probe-file` (hidden): reads one data file as the daemon would;
//! the daemon runs it in a child process for a file that killed its
//! previous process.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::load_policy;
use crate::logging::{self, LogFormat};

pub(super) fn run(format: LogFormat, config: &Path, file: &Path) -> Result<ExitCode> {
    logging::init(format, "warn");
    let policy = load_policy(config)?;
    println!("{}", crate::ingest::probe::probe_file(&policy, file)?);
    Ok(ExitCode::SUCCESS)
}
