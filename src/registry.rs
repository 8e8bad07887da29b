//! Versions on disk.
//!
//! ```text
//! <registry.dir>/
//!   versions/000001/model.safetensors   the checkpoint
//!   versions/000001/meta.json           how it was made and how it scored
//!   live.json                           {"version": 1}: the live pointer
//!   history.jsonl                       append-only: which version went live, when, why
//!   broken.json                         versions the last check found unusable, and why
//!   pins.json                           versions retention never deletes
//!   .lock                               flock of the one writer
//! ```
//!
//! Invariants: a version folder appears only complete (written under a
//! hidden temporary name, synced, renamed); the live pointer is replaced
//! atomically and only after the version it names is durable; history lines
//! are appended after the pointer switched. [`Registry::check`] runs at the
//! start of every process that uses the registry: it removes leftovers of
//! interrupted writes, verifies every version, records the broken ones (their
//! files are left in place) and moves the live pointer off a broken version.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil;
use crate::lock::{LockError, RegistryLock};
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
    #[error("version {version} is broken: {reason}")]
    Broken { version: u64, reason: String },
    #[error("no version of the registry {path} is usable; the live pointer stays on broken version {live}")]
    NoGoodVersion { path: PathBuf, live: u64 },
    #[error(transparent)]
    Lock(#[from] LockError),
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
    /// How the newest member was trained; `None` for an imported model
    /// (trained elsewhere: see `import`).
    pub training: Option<TrainSettings>,
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
    /// Where an imported version came from (`driftd import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportSource>,
    /// The seeds the update used (none for imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Seeds>,
    /// The policy's `[update]` section when the version was made: the
    /// strategies' settings (fine-tuning rate and grid, sampling,
    /// weighting, graft, ensemble, holdout, metric, margin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_settings: Option<serde_json::Value>,
    /// The data files whose rows were new for this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<TrainedFiles>,
}

/// Seeds of the update that made a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seeds {
    /// `training.seed` of the policy.
    pub policy: u64,
    /// The tournament's seed (policy seed + the parent version): fine-tuning,
    /// sampling and graft's new layers use it.
    pub tournament: u64,
    /// The fresh model of `refit_*` and `ensemble_*` is initialised with it.
    /// A first version (no parent) is trained with `policy`.
    pub fresh_model: u64,
}

/// One data file and how many of its rows were read (all of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedFile {
    /// Manifest sequence number (0 for files given to `driftd init`).
    pub seq: u64,
    pub name: String,
    pub rows: usize,
}

/// The files a version's new rows came from: a manifest sequence range,
/// with the list itself when short and a digest always.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedFiles {
    /// Sequence range `first_seq..=last_seq` in `state/manifest.json`.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub count: usize,
    pub rows: usize,
    /// sha256 over one `seq<TAB>name<TAB>rows` line per file, in order.
    pub digest: String,
    /// Every file when there are at most [`TrainedFiles::MAX_LISTED`];
    /// otherwise empty (the range and the digest identify them).
    pub list: Vec<TrainedFile>,
}

impl TrainedFiles {
    pub const MAX_LISTED: usize = 100;

    pub fn new(files: Vec<TrainedFile>) -> TrainedFiles {
        let mut text = String::new();
        for f in &files {
            text.push_str(&format!("{}\t{}\t{}\n", f.seq, f.name, f.rows));
        }
        let seqs = files.iter().map(|f| f.seq).filter(|&s| s > 0);
        TrainedFiles {
            first_seq: seqs.clone().min(),
            last_seq: seqs.max(),
            count: files.len(),
            rows: files.iter().map(|f| f.rows).sum(),
            digest: hex_sha256(text.as_bytes()),
            list: if files.len() <= Self::MAX_LISTED {
                files
            } else {
                Vec::new()
            },
        }
    }
}

/// The origin of a version adopted with `driftd import`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSource {
    /// The `.safetensors` file as given on the command line.
    pub file: String,
    /// sha256 of that file (the version's own checkpoint is rewritten in
    /// driftd's layout, so its checksum differs).
    pub sha256: String,
    /// `checkpoint` when the file held `input.mean` / `input.std`,
    /// `identity` when it did not (raw features go into the first layer).
    pub scaler: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LivePointer {
    version: u64,
}

/// One line of `history.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    /// `model_promoted`, `rollback`, `promote`, `import`, `fallback` (the
    /// start-up check left a broken live version) or `recovered` (a process
    /// stopped between switching the pointer and writing this line).
    pub event: String,
    pub version: u64,
    pub previous: Option<u64>,
    pub reason: String,
    /// Which process made the change: command, pid and user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A version the start-up check found unusable (kept on disk for a human).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokenVersion {
    pub version: u64,
    pub reason: String,
    pub detected_at: DateTime<Utc>,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct BrokenFile {
    versions: Vec<BrokenVersion>,
}

/// What [`Registry::check`] found and did.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Leftovers of interrupted writes that were removed.
    pub removed: Vec<PathBuf>,
    /// Every version that fails verification now.
    pub broken: Vec<BrokenVersion>,
    /// The history entry written when the live pointer was moved off a
    /// broken version.
    pub fallback: Option<HistoryEntry>,
    /// False when another process held the lock: verified, nothing changed.
    pub repaired: bool,
}

/// Whether opening may change the registry (clean up, mark, fall back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMode {
    /// Takes the lock for the check and repairs what it finds (the daemon).
    Repair,
    /// Verifies and reports only (`status`, `versions`).
    ReadOnly,
}

pub struct Registry {
    root: PathBuf,
    /// Who writes history lines through this handle ("driftd rollback (pid
    /// 12, user ops)").
    actor: String,
}

pub const CHECKPOINT: &str = "model.safetensors";
pub const META: &str = "meta.json";
pub const LIVE: &str = "live.json";
pub const HISTORY: &str = "history.jsonl";
pub const BROKEN: &str = "broken.json";
pub const PINS: &str = "pins.json";

/// A version kept by retention whatever its age (`driftd pin`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pin {
    pub version: u64,
    pub at: DateTime<Utc>,
    pub reason: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PinsFile {
    pins: Vec<Pin>,
}

impl Registry {
    /// Opens (creating if needed) the registry at `root` without checking
    /// it; see [`Registry::open_checked`] and [`Registry::open_locked`].
    pub fn open(root: &Path) -> Result<Registry, RegistryError> {
        let versions = root.join("versions");
        fsutil::create_private_dir(&versions).map_err(io_err(&versions))?;
        Ok(Registry {
            root: root.to_path_buf(),
            actor: actor("driftd"),
        })
    }

    /// Opens and checks the registry. `who` names this process in the lock
    /// file and the history ("driftd run"). In [`CheckMode::Repair`] the
    /// lock is taken for the check and released; if another process holds
    /// it, the check only verifies (that process is mid-write, so its
    /// temporary files are not leftovers).
    pub fn open_checked(
        root: &Path,
        who: &str,
        mode: CheckMode,
    ) -> Result<(Registry, CheckReport), RegistryError> {
        let mut reg = Registry::open(root)?;
        reg.actor = actor(who);
        if mode == CheckMode::ReadOnly {
            let report = reg.verify()?;
            return Ok((reg, report));
        }
        match RegistryLock::acquire(root, &format!("{who} (start-up check)")) {
            Ok(lock) => {
                let report = reg.check(&lock)?;
                Ok((reg, report))
            }
            Err(LockError::Held { holder, .. }) => {
                tracing::warn!(
                    registry = %root.display(),
                    holder = %holder,
                    "the registry is locked by {holder}; checking it without repairing"
                );
                let report = reg.verify()?;
                Ok((reg, report))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Opens the registry for a writer: takes the lock (held until the
    /// returned guard drops), then checks and repairs.
    pub fn open_locked(
        root: &Path,
        who: &str,
    ) -> Result<(Registry, RegistryLock, CheckReport), RegistryError> {
        let mut reg = Registry::open(root)?;
        reg.actor = actor(who);
        let lock = RegistryLock::acquire(root, who)?;
        let report = reg.check(&lock)?;
        Ok((reg, lock, report))
    }

    /// The start-up check, under the lock: removes leftovers of interrupted
    /// writes (logged at warn with their paths), truncates a torn last
    /// history line, verifies every version (meta.json parses, every member
    /// file exists, matches its sha256 and loads with its architecture),
    /// records the broken ones in `broken.json` (files left in place), and
    /// when the live version is broken, unreadable or missing, moves the
    /// pointer to the newest good version with a `fallback` history entry,
    /// logged at error level.
    pub fn check(&self, _lock: &RegistryLock) -> Result<CheckReport, RegistryError> {
        let mut report = CheckReport {
            repaired: true,
            ..CheckReport::default()
        };
        self.remove_leftovers(&mut report.removed)?;
        self.repair_history_tail()?;
        report.broken = self.find_broken()?;
        self.record_broken(&report.broken)?;
        let live = self.live_version();
        let problem = match &live {
            Ok(None) => None,
            Ok(Some(v)) => report
                .broken
                .iter()
                .find(|b| b.version == *v)
                .map(|b| format!("live version {v} is broken: {}", b.reason))
                .or_else(|| {
                    (!self.version_dir(*v).exists())
                        .then(|| format!("live version {v} does not exist"))
                }),
            Err(e) => Some(format!("the live pointer is unreadable: {e}")),
        };
        if let Some(why) = problem {
            let bad: Vec<u64> = report.broken.iter().map(|b| b.version).collect();
            let good = self
                .versions()?
                .into_iter()
                .filter(|v| !bad.contains(v))
                .max();
            let Some(target) = good else {
                tracing::error!(
                    event = "fallback",
                    registry = %self.root.display(),
                    "{why}, and no other version is usable: there is no model to serve"
                );
                return Err(RegistryError::NoGoodVersion {
                    path: self.root.clone(),
                    live: live.ok().flatten().unwrap_or(0),
                });
            };
            let previous = live.ok().flatten();
            let reason = format!("{why}; falling back to the newest good version {target}");
            let entry = self.switch_live(target, previous, "fallback", &reason)?;
            tracing::error!(
                event = "fallback",
                version = target,
                previous = ?previous,
                reason = %reason,
                "REGISTRY FALLBACK: {reason}"
            );
            report.fallback = Some(entry);
        } else if let Ok(Some(v)) = live {
            self.reconcile_history(v)?;
        }
        Ok(report)
    }

    /// The read-only check: verifies every version and reports; changes
    /// nothing.
    pub fn verify(&self) -> Result<CheckReport, RegistryError> {
        let broken = self.find_broken()?;
        if let Ok(Some(v)) = self.live_version() {
            if let Some(b) = broken.iter().find(|b| b.version == v) {
                tracing::error!(
                    version = v,
                    reason = %b.reason,
                    "the live version {v} is broken; the next start of the daemon (or any writer) falls back to the newest good version"
                );
            }
        }
        Ok(CheckReport {
            broken,
            ..CheckReport::default()
        })
    }

    /// Hidden entries are temporaries: `versions/.NNNNNN.tmp-PID` (a version
    /// being written), `versions/.NNNNNN.deleting-PID` (a version being
    /// removed by retention) and `.NAME.tmp-PID` beside the pointer files
    /// (an atomic replace in flight). Only called under the lock, so none
    /// belongs to a live writer.
    fn remove_leftovers(&self, removed: &mut Vec<PathBuf>) -> Result<(), RegistryError> {
        let versions = self.root.join("versions");
        for (dir, all_hidden) in [(&versions, true), (&self.root, false)] {
            let mut any = false;
            for entry in fs::read_dir(dir).map_err(io_err(dir))? {
                let entry = entry.map_err(io_err(dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let leftover = name.starts_with('.') && (all_hidden || name.contains(".tmp-"));
                if !leftover {
                    continue;
                }
                let path = entry.path();
                tracing::warn!(path = %path.display(), "removing the leftover of an interrupted registry write");
                let result = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                result.map_err(io_err(&path))?;
                removed.push(path);
                any = true;
            }
            if any {
                fsutil::sync_dir(dir).map_err(io_err(dir))?;
            }
        }
        Ok(())
    }

    /// A crash mid-append can leave a last line without its newline; the
    /// next append would glue onto it and spoil both. Cut it off.
    fn repair_history_tail(&self) -> Result<(), RegistryError> {
        let path = self.root.join(HISTORY);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RegistryError::Io { path, source: e }),
        };
        if bytes.is_empty() || bytes.ends_with(b"\n") {
            return Ok(());
        }
        let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        tracing::warn!(
            path = %path.display(),
            torn = %String::from_utf8_lossy(&bytes[keep..]),
            "removing a torn last history line left by an interrupted write"
        );
        let f = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        f.set_len(keep as u64).map_err(io_err(&path))?;
        f.sync_all().map_err(io_err(&path))
    }

    /// Every version that does not load, with why (keeping the first time
    /// each was seen broken).
    fn find_broken(&self) -> Result<Vec<BrokenVersion>, RegistryError> {
        let known = self.recorded_broken();
        let mut out = Vec::new();
        for v in self.versions()? {
            if let Err(e) = self.verify_version(v) {
                let reason = e.to_string();
                let detected_at = known
                    .iter()
                    .find(|b| b.version == v && b.reason == reason)
                    .map_or_else(Utc::now, |b| b.detected_at);
                out.push(BrokenVersion {
                    version: v,
                    reason,
                    detected_at,
                });
            }
        }
        Ok(out)
    }

    /// Versions recorded broken by the last repairing check.
    pub fn recorded_broken(&self) -> Vec<BrokenVersion> {
        fs::read(self.root.join(BROKEN))
            .ok()
            .and_then(|b| serde_json::from_slice::<BrokenFile>(&b).ok())
            .map(|f| f.versions)
            .unwrap_or_default()
    }

    fn record_broken(&self, broken: &[BrokenVersion]) -> Result<(), RegistryError> {
        let before = self.recorded_broken();
        for b in broken {
            if !before
                .iter()
                .any(|o| o.version == b.version && o.reason == b.reason)
            {
                tracing::error!(
                    event = "version_broken",
                    version = b.version,
                    reason = %b.reason,
                    "version {} is broken and will not be loaded: {}",
                    b.version,
                    b.reason
                );
            }
        }
        for o in &before {
            if !broken.iter().any(|b| b.version == o.version) {
                tracing::info!(
                    version = o.version,
                    "version {} is no longer broken (its files verify, or it is gone)",
                    o.version
                );
            }
        }
        let path = self.root.join(BROKEN);
        if before == broken {
            return Ok(());
        }
        let file = BrokenFile {
            versions: broken.to_vec(),
        };
        let json = serde_json::to_vec_pretty(&file).expect("broken list serializes");
        fsutil::write_atomic(&path, &json).map_err(io_err(&path))
    }

    /// After a crash between the pointer switch and the history append the
    /// history's last line names another version: record the switch.
    fn reconcile_history(&self, live: u64) -> Result<(), RegistryError> {
        let last = self.history()?.last().map(|h| h.version);
        if last == Some(live) {
            return Ok(());
        }
        tracing::warn!(
            version = live,
            history_last = ?last,
            "live.json names version {live} but the history does not record the switch; recording it"
        );
        self.append_history(HistoryEntry {
            at: Utc::now(),
            event: "recovered".into(),
            version: live,
            previous: last,
            reason: "the live pointer was switched by a process that stopped before recording it"
                .into(),
            by: Some(self.actor.clone()),
        })
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
        serde_json::from_slice(&text).map_err(|e| RegistryError::Corrupt {
            path,
            message: e.to_string(),
        })
    }

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
            return Err(RegistryError::Corrupt {
                path: dir.join(META),
                message: "lists no checkpoint files".into(),
            });
        }
        let model_err = |source| RegistryError::Model { version, source };
        let mut all = Vec::new();
        for member in &meta.members {
            if !is_checkpoint_name(&member.file) {
                return Err(RegistryError::Corrupt {
                    path: dir.join(META),
                    message: format!(
                        "member file {:?} is not a plain .safetensors file name in the version \
                         folder: checkpoints are read only from safetensors, never from a path \
                         outside the version",
                        member.file
                    ),
                });
            }
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
            crate::model::verify_checkpoint(&bytes, &member.architecture).map_err(model_err)?;
            all.push(bytes);
        }
        let archs: Vec<&Architecture> = meta.members.iter().map(|m| &m.architecture).collect();
        let weights: Vec<f64> = meta.members.iter().map(|m| m.weight).collect();
        crate::model::check_ensemble(&archs, &weights).map_err(model_err)?;
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

    pub fn live_version(&self) -> Result<Option<u64>, RegistryError> {
        let path = self.root.join(LIVE);
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
        self.switch_live(version, previous, event, reason)?;
        Ok(())
    }

    /// Pointer first (temp → fsync → rename → fsync the folder), then the
    /// history line: a crash between the two is repaired by the next check.
    fn switch_live(
        &self,
        version: u64,
        previous: Option<u64>,
        event: &str,
        reason: &str,
    ) -> Result<HistoryEntry, RegistryError> {
        let path = self.root.join(LIVE);
        let json = serde_json::to_vec(&LivePointer { version }).expect("pointer serializes");
        fsutil::write_atomic(&path, &json).map_err(io_err(&path))?;
        let entry = HistoryEntry {
            at: Utc::now(),
            event: event.to_string(),
            version,
            previous,
            reason: reason.to_string(),
            by: Some(self.actor.clone()),
        };
        self.append_history(entry.clone())?;
        Ok(entry)
    }

    fn append_history(&self, entry: HistoryEntry) -> Result<(), RegistryError> {
        let history = self.root.join(HISTORY);
        fsutil::append_line(
            &history,
            &serde_json::to_string(&entry).expect("history serializes"),
        )
        .map_err(io_err(&history))
    }

    /// Pinned versions, oldest pin first.
    pub fn pins(&self) -> Result<Vec<Pin>, RegistryError> {
        let path = self.root.join(PINS);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<PinsFile>(&bytes)
                .map(|f| f.pins)
                .map_err(|e| RegistryError::Corrupt {
                    path,
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(RegistryError::Io { path, source: e }),
        }
    }

    /// Pins `version` (callers hold the lock); false if it already was.
    pub fn pin(&self, version: u64, reason: &str) -> Result<bool, RegistryError> {
        if !self.version_dir(version).exists() {
            return Err(RegistryError::NoSuchVersion(version));
        }
        let mut pins = self.pins()?;
        if pins.iter().any(|p| p.version == version) {
            return Ok(false);
        }
        pins.push(Pin {
            version,
            at: Utc::now(),
            reason: reason.to_string(),
        });
        self.write_pins(pins)?;
        Ok(true)
    }

    /// Unpins `version` (callers hold the lock); false if it was not pinned.
    pub fn unpin(&self, version: u64) -> Result<bool, RegistryError> {
        let mut pins = self.pins()?;
        let before = pins.len();
        pins.retain(|p| p.version != version);
        if pins.len() == before {
            return Ok(false);
        }
        self.write_pins(pins)?;
        Ok(true)
    }

    fn write_pins(&self, pins: Vec<Pin>) -> Result<(), RegistryError> {
        let path = self.root.join(PINS);
        let json = serde_json::to_vec_pretty(&PinsFile { pins }).expect("pins serialize");
        fsutil::write_atomic(&path, &json).map_err(io_err(&path))
    }

    /// Retention (callers hold the lock, and call it only after a new live
    /// pointer is durable): keeps the live version, the version live before
    /// it (the default rollback target), the newest `keep_last` versions and
    /// every pinned one; deletes the rest. `keep_last = 0` keeps everything.
    /// A deleted folder is first renamed to a hidden name (atomic; a crash
    /// leaves a leftover the next check removes, never a half-deleted
    /// version). Returns the deleted ids.
    pub fn apply_retention(&self, keep_last: usize) -> Result<Vec<u64>, RegistryError> {
        if keep_last == 0 {
            return Ok(Vec::new());
        }
        let Some(live) = self.live_version()? else {
            return Ok(Vec::new());
        };
        let ids = self.versions()?;
        let mut keep: Vec<u64> = ids.iter().rev().take(keep_last).copied().collect();
        keep.push(live);
        keep.extend(self.previous_live(live)?);
        keep.extend(self.pins()?.iter().map(|p| p.version));
        let versions = self.root.join("versions");
        let mut deleted = Vec::new();
        for v in ids.into_iter().filter(|v| !keep.contains(v)) {
            let dir = self.version_dir(v);
            let doomed = versions.join(format!(".{v:06}.deleting-{}", std::process::id()));
            fs::rename(&dir, &doomed).map_err(io_err(&dir))?;
            fsutil::sync_dir(&versions).map_err(io_err(&versions))?;
            fs::remove_dir_all(&doomed).map_err(io_err(&doomed))?;
            tracing::info!(
                event = "version_deleted",
                version = v,
                keep_last,
                "version {v} deleted by retention (keep_last = {keep_last}, not live, not the previous live version, not pinned)"
            );
            deleted.push(v);
        }
        Ok(deleted)
    }

    /// The version that was live before `live` became live, per the history.
    pub fn previous_live(&self, live: u64) -> Result<Option<u64>, RegistryError> {
        Ok(self
            .history()?
            .iter()
            .rev()
            .find(|h| h.version == live)
            .and_then(|h| h.previous))
    }

    pub fn history(&self) -> Result<Vec<HistoryEntry>, RegistryError> {
        let path = self.root.join(HISTORY);
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

/// "driftd rollback (pid 12, user ops)": who wrote a history line.
fn actor(who: &str) -> String {
    // Services often run without USER / LOGNAME: fall back to the uid.
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let status = fs::read_to_string("/proc/self/status").ok()?;
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(format!("uid {}", line.split_whitespace().nth(1)?))
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{who} (pid {}, user {user})", std::process::id())
}

/// A member file name meta.json may name: `NAME.safetensors`, no path
/// separator, not hidden (so never `..` or an absolute path).
fn is_checkpoint_name(name: &str) -> bool {
    name.ends_with(".safetensors")
        && name.len() > ".safetensors".len()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    fsutil::injected_fault(path)?;
    let mut f = fsutil::create_private_file(path)?;
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
            training: Some(TrainSettings {
                optimizer: OptimizerKind::Sgd,
                learning_rate: 0.01,
                momentum: 0.9,
                epochs: 1,
                batch_size: 32,
                shuffle: true,
                seed: 1,
                early_stopping: crate::config::EarlyStopping::OFF,
            }),
            threads: 1,
            train_report: None,
            data: DataSummary::default(),
            holdout: None,
            live_holdout: None,
            leaderboard: vec![],
            members: vec![],
            driftd_version: "test".into(),
            input_profile: None,
            import: None,
            seeds: None,
            update_settings: None,
            files: None,
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

    fn write_live(reg: &Registry, version: u64, seed: u64) {
        let m = meta(version);
        let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, seed));
        reg.write_version(m, &model).unwrap();
        reg.set_live(version, "model_promoted", "test").unwrap();
    }

    fn flip_last_byte(path: &Path) {
        let mut bytes = fs::read(path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn corrupt_checkpoint_is_refused_and_leftovers_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        write_live(&reg, 1, 1);
        flip_last_byte(&dir.path().join("versions/000001").join(CHECKPOINT));
        assert!(matches!(
            reg.load_model(1),
            Err(RegistryError::Corrupt { .. })
        ));

        fs::create_dir(dir.path().join("versions/.000002.tmp-1")).unwrap();
        fs::write(dir.path().join("versions/.000002.tmp-1/meta.json"), b"{").unwrap();
        fs::write(dir.path().join(".live.json.tmp-77"), b"{\"ver").unwrap();
        // Another process mid-write: a read-only open removes nothing.
        let (_, report) = Registry::open_checked(dir.path(), "test", CheckMode::ReadOnly).unwrap();
        assert!(report.removed.is_empty());
        assert!(dir.path().join("versions/.000002.tmp-1").exists());
        // The only version is broken and live: nothing to fall back to.
        let err = Registry::open_checked(dir.path(), "test", CheckMode::Repair)
            .err()
            .unwrap();
        assert!(
            matches!(err, RegistryError::NoGoodVersion { live: 1, .. }),
            "{err}"
        );
        assert!(!dir.path().join("versions/.000002.tmp-1").exists());
        assert!(!dir.path().join(".live.json.tmp-77").exists());
        assert_eq!(reg.versions().unwrap(), vec![1]);
        assert_eq!(reg.recorded_broken()[0].version, 1);
        // The user's files stay where they were.
        assert!(dir.path().join("versions/000001").join(CHECKPOINT).exists());
    }

    #[test]
    fn a_broken_live_version_falls_back_to_the_newest_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        for v in 1..=4 {
            write_live(&reg, v, v);
        }
        // 3 is corrupt, 4 (live) lost a member file.
        flip_last_byte(&dir.path().join("versions/000003").join(CHECKPOINT));
        fs::remove_file(dir.path().join("versions/000004").join(CHECKPOINT)).unwrap();
        let (reg, report) =
            Registry::open_checked(dir.path(), "driftd test", CheckMode::Repair).unwrap();
        let broken: Vec<u64> = report.broken.iter().map(|b| b.version).collect();
        assert_eq!(broken, vec![3, 4]);
        assert!(
            report.broken[0].reason.contains("checksum"),
            "{:?}",
            report.broken
        );
        assert!(
            report.broken[1].reason.contains("model.safetensors"),
            "{:?}",
            report.broken
        );
        assert_eq!(reg.live_version().unwrap(), Some(2));
        let last = reg.history().unwrap().pop().unwrap();
        assert_eq!(last.event, "fallback");
        assert_eq!((last.version, last.previous), (2, Some(4)));
        assert!(
            last.reason.contains("live version 4 is broken"),
            "{}",
            last.reason
        );
        assert!(last.by.unwrap().starts_with("driftd test (pid "));
        assert_eq!(report.fallback.unwrap().version, 2);
        // Recorded durably; a second check changes nothing.
        let recorded = reg.recorded_broken();
        assert_eq!(recorded.len(), 2);
        let (_, again) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
        assert!(again.fallback.is_none());
        assert_eq!(reg.recorded_broken(), recorded);
        // Restoring the file clears the mark.
        write_live(&Registry::open(&dir.path().join("other")).unwrap(), 4, 4);
        fs::copy(
            dir.path().join("other/versions/000004").join(CHECKPOINT),
            dir.path().join("versions/000004").join(CHECKPOINT),
        )
        .unwrap();
        let (_, again) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
        assert_eq!(again.broken.len(), 1);
        assert_eq!(reg.recorded_broken().len(), 1);
    }

    #[test]
    fn an_unreadable_pointer_falls_back_and_torn_history_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        write_live(&reg, 1, 1);
        write_live(&reg, 2, 2);
        fs::write(dir.path().join(LIVE), b"garbage").unwrap();
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(HISTORY))
            .unwrap();
        std::io::Write::write_all(&mut f, b"{\"at\":\"20").unwrap();
        let (reg, report) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
        assert_eq!(reg.live_version().unwrap(), Some(2));
        assert!(report.fallback.unwrap().reason.contains("unreadable"));
        let text = fs::read_to_string(dir.path().join(HISTORY)).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<HistoryEntry>(l).is_ok()));
    }

    #[test]
    fn a_pointer_switch_missing_from_the_history_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        write_live(&reg, 1, 1);
        let m = meta(2);
        let model = Classifier::Single(Mlp::new(m.architecture.clone(), Init::HeNormal, 2));
        reg.write_version(m, &model).unwrap();
        // The pointer moved, then the process died before the history line.
        fsutil::write_atomic(&dir.path().join(LIVE), br#"{"version":2}"#).unwrap();
        Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
        let last = reg.history().unwrap().pop().unwrap();
        assert_eq!(
            (last.event.as_str(), last.version, last.previous),
            ("recovered", 2, Some(1))
        );
    }

    #[test]
    fn retention_keeps_live_previous_newest_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        for v in 1..=8 {
            write_live(&reg, v, v);
        }
        // Live goes back to 3: 3 is live, 8 the previous live version.
        reg.set_live(3, "rollback", "test").unwrap();
        assert!(reg.pin(1, "the reference").unwrap());
        assert!(!reg.pin(1, "again").unwrap());
        assert!(matches!(
            reg.pin(9, "x"),
            Err(RegistryError::NoSuchVersion(9))
        ));
        assert_eq!(reg.apply_retention(0).unwrap(), Vec::<u64>::new());
        assert_eq!(reg.apply_retention(2).unwrap(), vec![2, 4, 5, 6]);
        assert_eq!(reg.versions().unwrap(), vec![1, 3, 7, 8]);
        // No leftover of the deletions.
        assert_eq!(
            fs::read_dir(dir.path().join("versions")).unwrap().count(),
            4
        );
        assert!(reg.unpin(1).unwrap());
        assert!(!reg.unpin(1).unwrap());
        assert_eq!(reg.apply_retention(2).unwrap(), vec![1]);
        // A deletion interrupted after its rename is finished by the check.
        fs::rename(
            dir.path().join("versions/000007"),
            dir.path().join("versions/.000007.deleting-1"),
        )
        .unwrap();
        let (reg, report) = Registry::open_checked(dir.path(), "t", CheckMode::Repair).unwrap();
        assert_eq!(report.removed.len(), 1);
        assert_eq!(reg.versions().unwrap(), vec![3, 8]);
    }

    #[test]
    fn long_file_lists_keep_their_range_and_digest() {
        let files = |n: u64| -> Vec<TrainedFile> {
            (1..=n)
                .map(|seq| TrainedFile {
                    seq,
                    name: format!("part-{seq}.parquet"),
                    rows: 10,
                })
                .collect()
        };
        let short = TrainedFiles::new(files(3));
        assert_eq!(
            (short.first_seq, short.last_seq, short.rows),
            (Some(1), Some(3), 30)
        );
        assert_eq!(short.list.len(), 3);
        let long = TrainedFiles::new(files(150));
        assert_eq!((long.count, long.last_seq), (150, Some(150)));
        assert!(long.list.is_empty());
        assert_eq!(long.digest, TrainedFiles::new(files(150)).digest);
        assert_ne!(long.digest, TrainedFiles::new(files(149)).digest);
    }
}
