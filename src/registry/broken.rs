//! `broken.json`: the versions the last repairing check found unusable,
//! and why (their files stay in place for a human).

use std::fs;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{io_err, Registry, RegistryError, BROKEN};
use crate::fsutil;

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

impl Registry {
    /// Every version that does not load, with why (keeping the first time
    /// each was seen broken).
    pub(super) fn find_broken(&self) -> Result<Vec<BrokenVersion>, RegistryError> {
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

    pub(super) fn record_broken(&self, broken: &[BrokenVersion]) -> Result<(), RegistryError> {
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
}
