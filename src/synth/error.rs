//! The generator's error type.

use std::path::{Path, PathBuf};

use polars::prelude::PolarsError;

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Polars { path: PathBuf, source: PolarsError },
    #[error("invalid generator spec: {0}")]
    InvalidSpec(String),
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GenError + '_ {
    move |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn invalid(msg: impl Into<String>) -> GenError {
    GenError::InvalidSpec(msg.into())
}
