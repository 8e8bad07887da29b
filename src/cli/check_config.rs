//! `driftd check-config`: validates a policy file and reports every error
//! with its line (exit code 2 if it has any); for a valid one, the
//! directories that fell back to defaults and a missing data directory (a
//! warning: the daemon waits for it).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::support::load_resolved;
use crate::logging::{self, LogFormat};

pub(super) fn run(format: LogFormat, config: &Path) -> Result<ExitCode> {
    logging::init(format, "warn");
    match load_resolved(config) {
        Ok(policy) => {
            // Read again for which keys are set; it parsed a moment ago.
            let text = std::fs::read_to_string(config).unwrap_or_default();
            let notes = crate::config::notes(&text, &policy);
            for d in &notes.defaults {
                println!("note: {d}");
            }
            for w in &notes.warnings {
                eprintln!("warning: {w}");
            }
            match notes.warnings.len() {
                0 => println!("{}: ok", config.display()),
                n => println!(
                    "{}: ok, with {n} warning{}",
                    config.display(),
                    if n == 1 { "" } else { "s" }
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(2))
        }
    }
}
