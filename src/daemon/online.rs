//! The online challenger in the daemon (`[update.online]`, see
//! `update::online`): after the live model scored a batch, the challenger
//! scores and learns it on the scorer thread (libtorch stays off the async
//! workers; each step is milliseconds), and once the file is committed its
//! verdict is carried out: promote the challenger as the next version, or
//! roll the online versions back to their anchor.

use tracing::{error, info, warn};

use super::state::Daemon;
use super::DaemonError;
use crate::model::{Classifier, Dataset};
use crate::monitor::RowOutcome;
use crate::registry::VersionMeta;
use crate::status::OnlineStatus;
use crate::update::{self, Anchor, OnlineLearner, OnlinePromotion, Verdict};

impl Daemon {
    /// A new learner for the live version (after a start, a promotion by
    /// a tournament, a rollback, another process moving the pointer): it
    /// follows if the live version is an online one whose anchor can be
    /// read, else it challenges. Its window starts with the previous
    /// learner's rows, or the rows since the live version.
    pub(super) fn fork_online(&mut self) {
        let previous = self.online.take();
        if !self.policy.update.online.enabled {
            self.status.online = None;
            return;
        }
        let Some(live) = &self.live else {
            return;
        };
        let window = self.policy.update.online.window_rows;
        let recent = match &previous {
            Some(l) if !l.window().is_empty() => Some(l.window().clone()),
            // Only the newest rows of the buffer (up to max_new_rows).
            _ => self.new_rows.as_ref().map(|n| {
                let len = n.rows.len();
                n.rows.slice(len - window.min(len), len)
            }),
        };
        let anchor = update::anchor_for(&self.registry, live.meta.version);
        let learner = OnlineLearner::new(&self.policy, &live.model, anchor, recent.as_ref());
        self.online = Some(learner);
        self.publish_online();
    }

    /// Scores and learns a batch the live model scored (`live`), on the
    /// scorer thread. The verdict waits for [`Daemon::online_verdict`].
    pub(super) async fn online_step(&mut self, data: &Dataset, live: &[RowOutcome]) {
        let Some(mut learner) = self.online.take() else {
            return;
        };
        let policy = self.policy.clone();
        let parts = update::online::batch_parts(&policy, data, live);
        let stepped = self
            .scorer
            .run(move |_| {
                let r = learner
                    .observe(&parts.compared, &parts.live)
                    .and_then(|()| learner.learn(&policy, &parts.newest));
                (learner, r)
            })
            .await;
        match stepped {
            Ok((learner, Ok(()))) => {
                self.online = Some(learner);
                self.publish_online();
            }
            Ok((learner, Err(e))) => {
                warn!(error = %e, "the online challenger failed a training step; it starts over from the live version");
                self.online = Some(learner);
                self.fork_online();
            }
            Err(e) => {
                error!(error = %e, "the online challenger's step panicked; it starts over from the live version");
                self.fork_online();
            }
        }
    }

    /// After a file is committed: promote the challenger or roll back to
    /// the anchor, as its evidence says. Held while an update runs or a
    /// probation is open (either may change the live version).
    pub(super) async fn online_verdict(&mut self) {
        let Some(learner) = &self.online else {
            return;
        };
        let hold = self.running.is_some() || self.probation.is_some();
        match learner.verdict(&self.policy, hold) {
            Verdict::Wait => {}
            Verdict::Promote(p) => {
                let learner = self.online.take().expect("checked");
                self.promote_online(learner, p).await;
            }
            Verdict::RollBack {
                to,
                scores,
                anchor_scores,
                reason,
                ..
            } => {
                self.roll_back_online(to, scores.accuracy, anchor_scores.accuracy, &reason)
                    .await
            }
        }
    }

    async fn promote_online(&mut self, mut learner: OnlineLearner, p: OnlinePromotion) {
        let Some(live) = &self.live else {
            self.online = Some(learner);
            return;
        };
        let parent = live.meta.version;
        let previous = p.first.then(|| Anchor {
            version: parent,
            model: live.model.clone(),
        });
        // The sequence number of the file just committed.
        let last_seq = self.ingestor.manifest.next_seq;
        let files = update::ingested_files(&self.ingestor.manifest, self.last_seq, last_seq);
        let promotion = learner.promotion(&p, parent, &self.feature_names(), files, last_seq);
        let model = learner.challenger().clone();
        let written = (|| {
            let _lock =
                crate::registry::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
            Ok::<_, DaemonError>(update::promote_version(
                &self.registry,
                &self.policy,
                Some(parent),
                &model,
                promotion,
            )?)
        })();
        match written {
            Ok(meta) => {
                if p.first {
                    info!(
                        event = "online_challenger_promoted",
                        version = meta.version,
                        anchor = parent,
                        "{}; from now on the online challenger's newest version goes live after every batch, compared with version {parent}",
                        p.decision
                    );
                }
                learner.promoted(previous);
                self.online = Some(learner);
                if let Some(s) = &mut self.status.online {
                    s.promotions += 1;
                }
                self.install_online(meta, model).await;
            }
            Err(e) => {
                error!(error = %e, "cannot write the online challenger's version; the live model stays");
                self.online = Some(learner);
            }
        }
    }

    /// Makes an online version live without new monitors: it is the same
    /// process as its predecessor, one batch further.
    async fn install_online(&mut self, meta: VersionMeta, model: Classifier) {
        let for_scorer = model.clone();
        if let Err(e) = self.scorer.run(move |slot| *slot = Some(for_scorer)).await {
            error!(error = %e, "cannot hand the online version to the scorer");
        }
        self.monitor.set_version(meta.version);
        self.last_seq = meta.data.last_seq;
        self.status.live_version = Some(meta.version);
        self.live = Some(super::live::Live { meta, model });
        self.publish_online();
    }

    async fn roll_back_online(
        &mut self,
        to: u64,
        accuracy: f64,
        anchor_accuracy: f64,
        reason: &str,
    ) {
        let from = self.live.as_ref().map(|l| l.meta.version);
        let result = (|| {
            let _lock =
                crate::registry::lock::RegistryLock::acquire(self.registry.root(), "driftd run")?;
            let loaded = self.registry.load_model(to)?;
            self.registry.set_live(to, "rollback", reason)?;
            Ok::<_, DaemonError>(loaded)
        })();
        match result {
            Ok((meta, model)) => {
                warn!(
                    event = "rollback",
                    version = to,
                    from_version = ?from,
                    strategy = update::ONLINE_STRATEGY,
                    accuracy,
                    previous_accuracy = anchor_accuracy,
                    "rolled back to version {to}: {reason}"
                );
                let promotions = self.status.online.as_ref().map_or(0, |s| s.promotions);
                let rollbacks = self.status.online.as_ref().map_or(0, |s| s.rollbacks);
                self.install_live(meta, model).await;
                self.status.rollbacks += 1;
                if let Some(s) = &mut self.status.online {
                    s.promotions = promotions;
                    s.rollbacks = rollbacks + 1;
                }
            }
            Err(e) => {
                error!(version = to, error = %e, "cannot roll the online versions back; they stay live")
            }
        }
    }

    /// The learner's standing, into the status.
    fn publish_online(&mut self) {
        let Some(learner) = &self.online else {
            return;
        };
        let (asking, compared) = learner.comparison();
        let s = self.status.online.get_or_insert_with(OnlineStatus::default);
        s.anchor = learner.anchor();
        s.rows_compared = learner.rows_compared();
        let some = |x: f64| (learner.rows_compared() > 0).then_some(x);
        s.accuracy = some(asking.accuracy);
        s.compared_accuracy = some(compared.accuracy);
    }
}
