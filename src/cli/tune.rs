//! `driftd tune`: replays a directory of history under a grid of policies,
//! chooses on the earlier part, reports on the later part, and writes the
//! chosen policy.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::logging::{self, LogFormat};

pub(super) fn run(
    format: LogFormat,
    options: &crate::tune::Options,
    json: Option<&Path>,
) -> Result<ExitCode> {
    // Alerts and updates are the replays' subject: the log shows only
    // problems unless RUST_LOG asks for more.
    logging::init(format, "error");
    let report = crate::tune::run(options)?;
    match json {
        Some(p) if p == Path::new("-") => {
            println!("{}", serde_json::to_string_pretty(&report)?)
        }
        Some(p) => {
            std::fs::write(p, serde_json::to_vec_pretty(&report)?)
                .with_context(|| format!("cannot write {}", p.display()))?;
            print!("{}", crate::tune::render(&report));
        }
        None => print!("{}", crate::tune::render(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
