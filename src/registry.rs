//! Versions on disk.
//!
//! ```text
//! <registry.dir>/
//!   versions/000001/model.safetensors   the checkpoint
//!   versions/000001/meta.json           how it was made and how it scored
//!   live.json                           {"version": 1}: the live pointer
//!   history.jsonl                       append-only: which version went live, when, why
//! ```
//!
//! Invariants: a version folder appears only complete (written under a
//! hidden temporary name, synced, renamed); the live pointer is replaced
//! atomically and only after the version it names is durable; history lines
//! are appended after the pointer switched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil;
use crate::model::{Architecture, Classifier, Mlp, ModelError, Scores, TrainReport, TrainSettings};

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
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RegistryError + '_ {
    move |source| RegistryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One candidate's line on the leaderboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    pub strategy: String,
    /// Holdout scores; `None` when the candidate failed.
    pub scores: Option<Scores>,
    pub train_seconds: f64,
    /// Rows the candidate was trained on (after sampling).
    #[serde(default)]
    pub train_rows: usize,
    /// Fine-tuning rate used (the chosen one after a grid search).
    #[serde(default)]
    pub learning_rate: Option<f64>,
    /// Every rate tried and its holdout scores, when a grid was searched.
    #[serde(default)]
    pub lr_search: Vec<(f64, Scores)>,
    pub error: Option<String>,
    pub promoted: bool,
}

/// One checkpoint file of a version (ensembles have several).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberFile {
    pub file: String,
    pub architecture: Architecture,
    /// Weight in the ensemble average (1 for a single model).
    pub weight: f64,
    pub sha256: String,
}

/// The data a version was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DataSummary {
    pub train_rows: usize,
    pub holdout_rows: usize,
    /// Files whose rows fed the version (first and last by ingestion order).
    pub first_file: Option<String>,
    pub last_file: Option<String>,
    /// Manifest sequence number of the last file ingested before this
    /// version: files after it are "new" rows for the next update.
    #[serde(default)]
    pub last_seq: u64,
}

/// `meta.json`: everything needed to know how a version came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionMeta {
    pub version: u64,
    pub parent: Option<u64>,
    pub strategy: String,
    /// What started the update: `initial`, `drift`, `schedule`, `manual`.
    pub trigger: String,
    pub created_at: DateTime<Utc>,
    /// Architecture of the newest member (the only one unless an ensemble).
    pub architecture: Architecture,
    /// The checkpoint files; filled in by [`Registry::write_version`].
    #[serde(default)]
    pub members: Vec<MemberFile>,
    pub features: Vec<String>,
    pub label: String,
    pub training: TrainSettings,
    pub threads: usize,
    pub train_report: Option<TrainReport>,
    pub data: DataSummary,
    /// This version's score on the holdout when it was promoted: the
    /// monitor's baseline.
    pub holdout: Option<Scores>,
    /// The live model's score on the same holdout (none for version 1).
    pub live_holdout: Option<Scores>,
    pub leaderboard: Vec<CandidateScore>,
    pub driftd_version: String,
    /// The distribution of the rows the version was trained and judged on,
    /// for input-drift checks (absent for versions made before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_profile: Option<crate::input_drift::InputProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LivePointer {
    version: u64,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub event: String,
    pub version: u64,
    pub previous: Option<u64>,
    pub reason: String,
}

pub struct Registry {
    root: PathBuf,
}

pub const CHECKPOINT: &str = "model.safetensors";
pub const META: &str = "meta.json";

impl Registry {
    /// Opens (creating if needed) the registry at `root` and removes
    /// leftovers of interrupted writes.
    pub fn open(root: &Path) -> Result<Registry, RegistryError> {
        let versions = root.join("versions");
        fsutil::create_private_dir(&versions).map_err(io_err(&versions))?;
        let reg = Registry {
            root: root.to_path_buf(),
        };
        for entry in fs::read_dir(&versions).map_err(io_err(&versions))? {
            let entry = entry.map_err(io_err(&versions))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                tracing::warn!(path = %entry.path().display(), "removing an interrupted version write");
                let _ = fs::remove_dir_all(entry.path());
            }
        }
        Ok(reg)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn version_dir(&self, version: u64) -> PathBuf {
        self.root.join("versions").join(format!("{version:06}"))
    }

    /// Ids of complete versions, ascending.
    pub fn versions(&self) -> Result<Vec<u64>, RegistryError> {
        let dir = self.root.join("versions");
        let mut ids: Vec<u64> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
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
        mut meta: VersionMeta,
        model: &Classifier,
    ) -> Result<VersionMeta, RegistryError> {
        let version = meta.version;
        let model_err = |source| RegistryError::Model { version, source };
        let single = matches!(model, Classifier::Single(_));
        let mut files = Vec::new();
        meta.members.clear();
        for (i, (m, w)) in model.members().iter().zip(model.weights()).enumerate() {
            let bytes = m.to_safetensors().map_err(model_err)?;
            let file = if single {
                CHECKPOINT.to_string()
            } else {
                format!("member-{i}.safetensors")
            };
            meta.members.push(MemberFile {
                file: file.clone(),
                architecture: m.arch.clone(),
                weight: w,
                sha256: hex_sha256(&bytes),
            });
            files.push((file, bytes));
        }
        meta.architecture = model.newest().arch.clone();
        let final_dir = self.version_dir(version);
        let versions = self.root.join("versions");
        let tmp = versions.join(format!(".{version:06}.tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        let write = || -> io::Result<()> {
            fs::create_dir(&tmp)?;
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
            if e.kind() == io::ErrorKind::NotFound {
                RegistryError::NoSuchVersion(version)
            } else {
                RegistryError::Io {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        serde_json::from_slice(&text).map_err(|e| RegistryError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

    /// Loads a version's model after checking every checkpoint's checksum.
    pub fn load_model(&self, version: u64) -> Result<(VersionMeta, Classifier), RegistryError> {
        let meta = self.read_meta(version)?;
        let dir = self.version_dir(version);
        if meta.members.is_empty() {
            return Err(RegistryError::Corrupt {
                path: dir.join(META),
                message: "lists no checkpoint files".into(),
            });
        }
        let mut members = Vec::new();
        for member in &meta.members {
            let path = dir.join(&member.file);
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let sum = hex_sha256(&bytes);
            if sum != member.sha256 {
                return Err(RegistryError::Corrupt {
                    path,
                    message: format!(
                        "checksum {sum} does not match meta.json's {}",
                        member.sha256
                    ),
                });
            }
            members.push(
                Mlp::from_safetensors(&bytes, &member.architecture)
                    .map_err(|source| RegistryError::Model { version, source })?,
            );
        }
        let model = if members.len() == 1 {
            Classifier::Single(members.pop().expect("one member"))
        } else {
            let weights = meta.members.iter().map(|m| m.weight).collect();
            Classifier::ensemble(members, weights)
                .map_err(|source| RegistryError::Model { version, source })?
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

    pub fn live_version(&self) -> Result<Option<u64>, RegistryError> {
        let path = self.root.join("live.json");
        match fs::read(&path) {
            Ok(bytes) => {
                let p: LivePointer =
                    serde_json::from_slice(&bytes).map_err(|e| RegistryError::Corrupt {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                Ok(Some(p.version))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RegistryError::Io { path, source: e }),
        }
    }

    /// Switches the live pointer and records why in the history.
    pub fn set_live(&self, version: u64, event: &str, reason: &str) -> Result<(), RegistryError> {
        if !self.version_dir(version).join(META).exists() {
            return Err(RegistryError::NoSuchVersion(version));
        }
        let previous = self.live_version()?;
        let path = self.root.join("live.json");
        let json = serde_json::to_vec(&LivePointer { version }).expect("pointer serializes");
        fsutil::write_atomic(&path, &json).map_err(io_err(&path))?;
        let entry = HistoryEntry {
            at: Utc::now(),
            event: event.to_string(),
            version,
            previous,
            reason: reason.to_string(),
        };
        let history = self.root.join("history.jsonl");
        fsutil::append_line(
            &history,
            &serde_json::to_string(&entry).expect("history serializes"),
        )
        .map_err(io_err(&history))
    }

    pub fn history(&self) -> Result<Vec<HistoryEntry>, RegistryError> {
        let path = self.root.join("history.jsonl");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::Io { path, source: e }),
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(e) => out.push(e),
                // A torn last line after a crash is expected; skip it.
                Err(e) => {
                    tracing::warn!(path = %path.display(), line = i + 1, error = %e, "skipping an unreadable history line")
                }
            }
        }
        Ok(out)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Activation, Init, OptimizerKind};

    fn meta(version: u64) -> VersionMeta {
        VersionMeta {
            version,
            parent: None,
            strategy: "initial".into(),
            trigger: "initial".into(),
            created_at: Utc::now(),
            architecture: Architecture {
                inputs: 3,
                hidden: vec![4],
                activation: Activation::Relu,
                classes: 2,
            },
            features: vec!["a".into(), "b".into(), "c".into()],
            label: "y".into(),
            training: TrainSettings {
                optimizer: OptimizerKind::Sgd,
                learning_rate: 0.01,
                momentum: 0.9,
                epochs: 1,
                batch_size: 32,
                shuffle: true,
                seed: 1,
            },
            threads: 1,
            train_report: None,
            data: DataSummary::default(),
            holdout: None,
            live_holdout: None,
            leaderboard: vec![],
            members: vec![],
            driftd_version: "test".into(),
            input_profile: None,
        }
    }

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

    #[test]
    fn corrupt_checkpoint_is_refused_and_leftovers_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let m = meta(1);
        let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, 1));
        reg.write_version(m, &model).unwrap();
        let ckpt = dir.path().join("versions/000001").join(CHECKPOINT);
        let mut bytes = fs::read(&ckpt).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&ckpt, bytes).unwrap();
        assert!(matches!(
            reg.load_model(1),
            Err(RegistryError::Corrupt { .. })
        ));

        fs::create_dir(dir.path().join("versions/.000002.tmp-1")).unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        assert_eq!(reg.versions().unwrap(), vec![1]);
        assert!(!dir.path().join("versions/.000002.tmp-1").exists());
    }
}
