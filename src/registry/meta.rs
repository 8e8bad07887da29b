//! `meta.json`: how a version came to be and how it scored (members and
//! their checksums, training, data, leaderboard, seeds, origin).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Architecture, Scores, TrainReport, TrainSettings};

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
    /// The checkpoint files; filled in by [`Registry::write_version`](super::Registry::write_version).
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
    /// An online version's anchor: the last version the online challenger
    /// did not make, which its versions are compared with and rolled back
    /// to (see `Registry::anchor_of`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<u64>,
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

pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
