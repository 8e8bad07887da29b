//! The registry's error type.

use std::io;
use std::path::{Path, PathBuf};

use crate::model::ModelError;
use crate::registry::lock::LockError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("registry file {path} is not valid: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("version {0} does not exist")]
    NoSuchVersion(u64),
    #[error("version {version}: {source}")]
    Model {
        version: u64,
        #[source]
        source: ModelError,
    },
    #[error("version {version} is broken: {reason}")]
    Broken { version: u64, reason: String },
    #[error("no version of the registry {path} is usable; the live pointer stays on broken version {live}")]
    NoGoodVersion { path: PathBuf, live: u64 },
    #[error(transparent)]
    Lock(#[from] LockError),
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}
