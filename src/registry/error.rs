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
    #[error("registry file {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("registry file {path} is not valid: lists no checkpoint files")]
    NoMembers { path: PathBuf },
    #[error(
        "registry file {path} is not valid: member file {file:?} is not a plain .safetensors file \
         name in the version folder: checkpoints are read only from safetensors, never from a path \
         outside the version"
    )]
    BadMemberName { path: PathBuf, file: String },
    #[error(
        "registry file {path} is not valid: checksum {found} does not match meta.json's {expected}"
    )]
    ChecksumMismatch {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("version {0} does not exist")]
    NoSuchVersion(u64),
    #[error("version {version}: {source}")]
    Model {
        version: u64,
        #[source]
        source: ModelError,
    },
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
