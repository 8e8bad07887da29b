//! The live model: loading it, handing it to the scorer, following a live
//! pointer moved by another process, and the buffers restored at start.

use tracing::{error, info, warn};

use super::state::Daemon;
use super::{DaemonError, NewRows, Reservoir};
use crate::model::Classifier;
use crate::registry::VersionMeta;
use crate::update::{monitors_for, reservoir_of};

/// The live model as the scorer thread holds it.
pub(super) type LiveSlot = Option<Classifier>;

pub(super) struct Live {
    pub(super) meta: VersionMeta,
    /// A copy of the scorer's model, handed to the trainer for updates.
    pub(super) model: Classifier,
}

impl Daemon {
    pub(super) async fn load_live(&mut self) -> Result<(), DaemonError> {
        let Some(version) = self.registry.live_version()? else {
            return Ok(());
        };
        let (meta, mlp) = self.registry.load_model(version)?;
        self.install_live(meta, mlp).await;
        Ok(())
    }

    pub(super) async fn install_live(&mut self, meta: VersionMeta, mlp: Classifier) {
        let baseline = meta.holdout.map(|s| s.accuracy);
        if self.ingestor.schema.is_none() {
            self.ingestor.schema = Some(crate::ingest::Schema::of_version(&meta, &self.policy));
        }
        let for_scorer = mlp.clone();
        if let Err(e) = self.scorer.run(move |slot| *slot = Some(for_scorer)).await {
            error!(error = %e, "cannot hand the live model to the scorer");
        }
        if meta.input_profile.is_none() && self.policy.monitor.input.enabled {
            info!(
                version = meta.version,
                "version {} has no training distribution in its meta.json; input drift is not checked for it",
                meta.version
            );
        }
        self.last_seq = meta.data.last_seq;
        self.status.live_version = Some(meta.version);
        self.status.baseline = baseline;
        self.live = Some(Live { meta, model: mlp });
        self.reset_monitors();
        self.fork_online();
    }

    /// Fresh monitors for the live version (a new version, or a reload that
    /// changed `[monitor]`): windows, detectors and episodes start empty.
    pub(super) fn reset_monitors(&mut self) {
        let Some(live) = &self.live else {
            return;
        };
        (self.monitor, self.input_monitor) =
            monitors_for(&self.policy, &live.meta, live.model.inputs());
        self.input_episode = None;
        // The new monitor has scored nothing yet: the status must not show
        // the previous version's rows (or rolling accuracy) as the new one's.
        self.status.rows_since_live = 0;
        self.status.rolling_accuracy = None;
        self.status.metrics = None;
        self.status.time_window_metrics = None;
        self.status.input_drift = Vec::new();
    }

    /// After a restart: rows since the live version (and a sample of older
    /// rows) are re-read from the files the manifest lists, so an update
    /// after a restart sees the same data as before it.
    pub(super) async fn restore_buffers(&mut self) {
        if self.ingestor.manifest.rows_ingested == 0 {
            return;
        }
        let Some(schema) = self.ingestor.schema.clone() else {
            return;
        };
        // New rows are those since the last version the tournament (or the
        // first training) made: the online versions after it do not consume
        // them, so a restart re-reads from their anchor.
        let anchor = self
            .live
            .as_ref()
            .and_then(|l| self.registry.anchor_of(l.meta.version).ok().flatten());
        let last_seq = anchor
            .and_then(|a| self.registry.read_meta(a).ok())
            .map_or(self.last_seq, |m| m.data.last_seq);
        let dir = self.ingestor.dir().to_path_buf();
        let follow_symlinks = self.policy.data.follow_symlinks;
        let manifest = self.ingestor.manifest.clone();
        let (max_old, max_new) = if self.live.is_some() {
            (
                self.policy.update.reservoir_rows,
                self.policy.update.max_new_rows,
            )
        } else {
            // Before version 1 every row so far is bootstrap material.
            (usize::MAX, usize::MAX)
        };
        let (old, new) = tokio::task::spawn_blocking(move || {
            let limits = crate::ingest::RereadLimits {
                last_seq,
                max_old,
                max_new,
                follow_symlinks,
            };
            crate::ingest::rows_from_manifest(&dir, &manifest, &schema, limits)
        })
        .await
        .unwrap_or_default();
        if self.live.is_none() {
            let mut all = old;
            all.extend(&new);
            self.rows_total = all.len() as u64;
            self.bootstrap = Some(all);
            return;
        }
        self.reservoir_mut(old.width).add(&old);
        self.rows_total = new.len() as u64;
        let new_rows = NewRows {
            rows: new,
            first: 0,
        };
        info!(
            old_rows = self.reservoir.as_ref().map_or(0, |r| r.rows.len()),
            new_rows = new_rows.rows.len(),
            "restored training rows from the manifest"
        );
        self.new_rows = Some(new_rows);
        // The online challenger's window: the rows just restored.
        self.fork_online();
    }

    pub(super) fn reservoir_mut(&mut self, width: usize) -> &mut Reservoir {
        reservoir_of(&mut self.reservoir, &self.policy, width)
    }

    /// Another process (`driftd update`, later `rollback` / `promote`) may
    /// move the live pointer: follow it.
    pub(super) async fn follow_live_pointer(&mut self) {
        let current = self.live.as_ref().map(|l| l.meta.version);
        let pointer = match self.registry.live_version() {
            Ok(p) => p,
            Err(e) => {
                warn!(error = %e, "cannot read the live pointer");
                return;
            }
        };
        if pointer.is_none() || pointer == current {
            return;
        }
        let version = pointer.expect("checked");
        match self.registry.load_model(version) {
            Ok((meta, model)) => {
                info!(
                    event = "live_changed",
                    version,
                    previous = ?current,
                    "version {version} was made live by another process; scoring with it from now on"
                );
                self.install_live(meta, model).await;
            }
            Err(e) => {
                error!(version, error = %e, "the live pointer names a version that cannot be loaded; keeping the current model")
            }
        }
    }
}
