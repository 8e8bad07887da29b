//! Version folders: listing them, writing one atomically (hidden
//! temporary folder, every file synced, renamed into place), reading its
//! `meta.json`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    hex_sha256, io_err, MemberFile, Registry, RegistryError, VersionMeta, CHECKPOINT, META,
};
use crate::fsutil;
use crate::model::{Architecture, Classifier};

impl Registry {
    pub(super) fn version_dir(&self, version: u64) -> PathBuf {
        self.root.join("versions").join(format!("{version:06}"))
    }

    /// Ids of complete versions, ascending; none when the registry does
    /// not exist (a read-only handle does not create it).
    pub fn versions(&self) -> Result<Vec<u64>, RegistryError> {
        let dir = self.root.join("versions");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&dir)(e)),
        };
        let mut ids: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    pub fn next_version(&self) -> Result<u64, RegistryError> {
        Ok(self.versions()?.last().copied().unwrap_or(0) + 1)
    }

    /// Writes a complete version folder atomically. `meta.version` decides
    /// the folder; the member list and checksums are filled in here.
    pub fn write_version(
        &self,
        meta: VersionMeta,
        model: &Classifier,
    ) -> Result<VersionMeta, RegistryError> {
        let version = meta.version;
        let model_err = |source| RegistryError::Model { version, source };
        let mut members = Vec::new();
        for (m, w) in model.members().iter().zip(model.weights()) {
            members.push((m.arch.clone(), w, m.to_safetensors().map_err(model_err)?));
        }
        self.write_version_bytes(meta, members)
    }

    /// The durable write behind [`Registry::write_version`], from serialized
    /// members (architecture, ensemble weight, safetensors bytes; oldest
    /// first): a hidden temporary folder, every file fsynced, the folder
    /// fsynced, renamed into place, `versions/` fsynced.
    pub fn write_version_bytes(
        &self,
        mut meta: VersionMeta,
        members: Vec<(Architecture, f64, Vec<u8>)>,
    ) -> Result<VersionMeta, RegistryError> {
        let version = meta.version;
        let single = members.len() == 1;
        let mut files = Vec::new();
        meta.members.clear();
        for (i, (arch, weight, bytes)) in members.into_iter().enumerate() {
            let file = if single {
                CHECKPOINT.to_string()
            } else {
                format!("member-{i}.safetensors")
            };
            meta.architecture = arch.clone();
            meta.members.push(MemberFile {
                file: file.clone(),
                architecture: arch,
                weight,
                sha256: hex_sha256(&bytes),
            });
            files.push((file, bytes));
        }
        let final_dir = self.version_dir(version);
        let versions = self.root.join("versions");
        let tmp = versions.join(format!(".{version:06}.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let write = || -> io::Result<()> {
            fsutil::create_private_dir_new(&tmp)?;
            for (file, bytes) in &files {
                write_synced(&tmp.join(file), bytes)?;
            }
            let json = serde_json::to_vec_pretty(&meta).expect("meta serializes");
            write_synced(&tmp.join(META), &json)?;
            fsutil::sync_dir(&tmp)?;
            fs::rename(&tmp, &final_dir)?;
            fsutil::sync_dir(&versions)
        };
        write().map_err(|source| {
            let _ = fs::remove_dir_all(&tmp);
            RegistryError::Io {
                path: final_dir.clone(),
                source,
            }
        })?;
        Ok(meta)
    }

    pub fn read_meta(&self, version: u64) -> Result<VersionMeta, RegistryError> {
        let path = self.version_dir(version).join(META);
        let text = fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound && !self.version_dir(version).exists() {
                RegistryError::NoSuchVersion(version)
            } else {
                RegistryError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        serde_json::from_slice(&text).map_err(|e| RegistryError::Corrupt { path, source: e })
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    fsutil::injected_fault(path)?;
    let mut f = fsutil::create_private_file(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::meta;
    use super::super::*;
    use crate::config::Init;
    use crate::model::{Classifier, Mlp};

    #[test]
    fn write_load_and_switch_live() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.next_version().unwrap(), 1);
        let m = meta(1);
        let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, 1));
        reg.write_version(m, &model).unwrap();
        assert_eq!(reg.live_version().unwrap(), None);
        reg.set_live(1, "model_promoted", "initial").unwrap();
        assert_eq!(reg.live_version().unwrap(), Some(1));
        let (meta, _) = reg.load_model(1).unwrap();
        assert_eq!(meta.members.len(), 1);
        assert_eq!(meta.members[0].sha256.len(), 64);
        assert_eq!(reg.history().unwrap().len(), 1);
        assert!(matches!(
            reg.set_live(7, "rollback", "x"),
            Err(RegistryError::NoSuchVersion(7))
        ));
    }

    #[test]
    fn an_ensemble_version_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let m = meta(1);
        let members: Vec<Mlp> = (0..3)
            .map(|s| Mlp::new(m.architecture.clone(), Init::HeNormal, s))
            .collect();
        let model = Classifier::ensemble(members, vec![1.0, 1.0, 2.0]).unwrap();
        let written = reg.write_version(m, &model).unwrap();
        assert_eq!(written.members.len(), 3);
        assert!(dir
            .path()
            .join("versions/000001/member-2.safetensors")
            .exists());
        let (_, back) = reg.load_model(1).unwrap();
        assert_eq!(back.weights(), vec![0.25, 0.25, 0.5]);
        let mut x = crate::model::Dataset::new(3);
        x.push_row(&[0.1, 0.2, 0.3], 0);
        x.push_row(&[-1.0, 2.0, 0.5], 1);
        assert_eq!(
            model.predict_proba(&x).unwrap(),
            back.predict_proba(&x).unwrap()
        );
    }
}
