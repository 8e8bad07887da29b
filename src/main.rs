//! The `driftd` binary: parses the command line and hands over to the
//! library. All behaviour lives in `driftd::cli`.
#![forbid(unsafe_code)]

/// mimalloc rather than glibc's malloc: reading a Parquet file allocates
/// and frees buffers of megabytes per column, and with glibc's allocator
/// that churn cost about a quarter of the read (measured with polars on
/// one thread; see docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    driftd::cli::main()
}
