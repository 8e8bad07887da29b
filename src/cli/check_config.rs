//! `driftd check-config`: validates a policy file and reports every error
//! with its line (exit code 2 if it has any).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::config::Policy;
use crate::logging::{self, LogFormat};

pub(super) fn run(format: LogFormat, config: &Path) -> Result<ExitCode> {
    logging::init(format, "warn");
    match Policy::load(config) {
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
