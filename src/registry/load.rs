//! Loading a version: its files verified against `meta.json` (names,
//! checksums, shapes) before any of them becomes a model.

use std::fs;

use super::{hex_sha256, io_err, Registry, RegistryError, VersionMeta, META};
use crate::model::{Architecture, Classifier, Mlp};

impl Registry {
    /// Verifies a version without loading it into libtorch: meta.json
    /// parses, lists at least one member, and every member file exists,
    /// matches its sha256 and fits its architecture (names, shapes, finite
    /// values). Returns the meta and the members' bytes.
    pub fn verify_version(
        &self,
        version: u64,
    ) -> Result<(VersionMeta, Vec<Vec<u8>>), RegistryError> {
        let meta = self.read_meta(version)?;
        let dir = self.version_dir(version);
        if meta.members.is_empty() {
            return Err(RegistryError::NoMembers {
                path: dir.join(META),
            });
        }
        let model_err = |source| RegistryError::Model { version, source };
        let mut all = Vec::new();
        for member in &meta.members {
            if !is_checkpoint_name(&member.file) {
                return Err(RegistryError::BadMemberName {
                    path: dir.join(META),
                    file: member.file.clone(),
                });
            }
            let path = dir.join(&member.file);
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let sum = hex_sha256(&bytes);
            if sum != member.sha256 {
                return Err(RegistryError::ChecksumMismatch {
                    path,
                    found: sum,
                    expected: member.sha256.clone(),
                });
            }
            crate::model::verify_checkpoint(&bytes, &member.architecture).map_err(model_err)?;
            all.push(bytes);
        }
        let archs: Vec<&Architecture> = meta.members.iter().map(|m| &m.architecture).collect();
        let weights: Vec<f64> = meta.members.iter().map(|m| m.weight).collect();
        crate::model::check_ensemble(&archs, &weights).map_err(|e| model_err(e.into()))?;
        Ok((meta, all))
    }

    /// Loads a version's model after verifying it ([`Registry::verify_version`]).
    pub fn load_model(&self, version: u64) -> Result<(VersionMeta, Classifier), RegistryError> {
        let (meta, files) = self.verify_version(version)?;
        let model_err = |source| RegistryError::Model { version, source };
        let mut members = Vec::new();
        for (member, bytes) in meta.members.iter().zip(&files) {
            members.push(Mlp::from_safetensors(bytes, &member.architecture).map_err(model_err)?);
        }
        let model = if members.len() == 1 {
            Classifier::Single(members.pop().expect("one member"))
        } else {
            let weights = meta.members.iter().map(|m| m.weight).collect();
            Classifier::ensemble(members, weights).map_err(model_err)?
        };
        Ok((meta, model))
    }

    /// The newest member of up to `n` ancestors of `meta` (parent first in
    /// the walk), returned oldest first; unreadable ancestors end the walk.
    pub fn lineage(&self, meta: &VersionMeta, n: usize) -> Vec<Mlp> {
        let mut out = Vec::new();
        let mut next = meta.parent;
        while let (Some(v), true) = (next, out.len() < n) {
            match self.load_model(v) {
                Ok((m, model)) => {
                    out.push(model.newest().clone());
                    next = m.parent;
                }
                Err(e) => {
                    tracing::warn!(version = v, error = %e, "lineage stops at an unreadable version");
                    break;
                }
            }
        }
        out.reverse();
        out
    }
}

/// A member file name meta.json may name: `NAME.safetensors`, no path
/// separator, not hidden (so never `..` or an absolute path).
fn is_checkpoint_name(name: &str) -> bool {
    name.ends_with(".safetensors")
        && name.len() > ".safetensors".len()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}
