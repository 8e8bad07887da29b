//! The history to replay: every file of the directory read with the
//! daemon's scan and reader, in replay order, and the clock that dates it.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::report::QuarantinedFile;
use super::BacktestError;
use crate::config::Policy;
use crate::ingest::Ingestor;
use crate::model::Dataset;

/// How the replay tells time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ReplayTime {
    /// Each row's time is its `data.timestamp` value (the policy has one).
    Timestamp,
    /// No timestamp column: row `i` of the replay happens `i *
    /// seconds_per_row` after 2026-01-01T00:00:00Z (`--seconds-per-row`).
    RowsPerTime { seconds_per_row: f64 },
    /// No timestamp column and no `--seconds-per-row`: each file's rows
    /// carry its modification time, as in the daemon.
    FileMtime,
}

impl ReplayTime {
    pub(super) fn describe(self, policy: &Policy) -> String {
        match self {
            ReplayTime::Timestamp => format!(
                "timestamp column {}",
                policy.data.timestamp.as_deref().unwrap_or("?")
            ),
            ReplayTime::RowsPerTime { seconds_per_row } => {
                format!("{seconds_per_row} s per row from 2026-01-01T00:00:00Z")
            }
            ReplayTime::FileMtime => "file modification times".into(),
        }
    }
}

/// The files in replay order, the quarantined ones, and the feature
/// columns.
pub(super) struct History {
    pub(super) files: Vec<HistoryFile>,
    pub(super) quarantined: Vec<QuarantinedFile>,
    pub(super) features: Vec<String>,
}

/// One file of history, read and checked.
pub(super) struct HistoryFile {
    pub(super) name: String,
    pub(super) data: Dataset,
}

/// Reads every file of the directory with the daemon's scan and reader,
/// in replay order: by first timestamp with `data.timestamp`, else by name.
pub(super) fn load_history(policy: &Policy, clock: ReplayTime) -> Result<History, BacktestError> {
    let mut ingestor = Ingestor::open(policy)?;
    let mut found = ingestor.scan()?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    let mut files = Vec::new();
    let mut quarantined = Vec::new();
    for file in found {
        let read = (|| {
            if let Some(problem) = &file.problem {
                return Err(problem.clone());
            }
            let opened = ingestor.reader().open(&file)?;
            let mut data = Dataset::new(opened.schema.features.len());
            for i in 0..opened.batches.len() {
                data.extend(&opened.read_batch(i)?.data);
            }
            if data.is_empty() {
                return Err(crate::ingest::FileProblem::NoUsableRows {
                    dropped: opened.rows(),
                });
            }
            Ok((opened.schema.clone(), opened.types.clone(), data))
        })();
        match read {
            Ok((schema, types, data)) => {
                ingestor.schema.get_or_insert(schema);
                ingestor.record_types(&types);
                files.push(HistoryFile {
                    name: file.name.clone(),
                    data,
                });
            }
            Err(problem) => quarantined.push(QuarantinedFile {
                file: file.name.clone(),
                reason: problem.to_string(),
            }),
        }
    }
    if clock == ReplayTime::Timestamp {
        // Stable: files with the same first time keep their name order.
        files.sort_by_key(|f| f.data.times_us.iter().copied().min().unwrap_or(i64::MAX));
    }
    if let ReplayTime::RowsPerTime { seconds_per_row } = clock {
        let origin = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .map_or(0, |t| t.timestamp_micros());
        let mut row = 0u64;
        for f in &mut files {
            for t in &mut f.data.times_us {
                *t = origin + (row as f64 * seconds_per_row * 1e6) as i64;
                row += 1;
            }
        }
    }
    let features = ingestor.schema.map(|s| s.features).unwrap_or_default();
    Ok(History {
        files,
        quarantined,
        features,
    })
}

pub(super) fn time_of(us: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us)
}
