//! The `driftd` binary: parses the command line and hands over to the
//! library. All behaviour lives in `driftd::cli`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    driftd::cli::main()
}
