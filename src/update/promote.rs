//! Making a new version live: what it is besides its weights, writing it to
//! the registry before the pointer moves, the leaderboard, and version 1.

use chrono::Utc;
use tracing::{info, warn};

use crate::config::Policy;
use crate::input_drift::InputProfile;
use crate::model::{self, Classifier, Dataset, Mlp, ModelError, TrainSettings};
use crate::registry::{
    CandidateScore, DataSummary, Registry, Seeds, TrainedFile, TrainedFiles, VersionMeta,
};
use crate::update::{self, StrategyName, Tournament};

/// Logs one `candidate_scored` event per candidate.
pub fn log_candidates(t: &Tournament) {
    for c in &t.candidates {
        match &c.outcome {
            Ok(b) => info!(
                event = "candidate_scored",
                strategy = c.strategy.as_str(),
                accuracy = b.scores.accuracy,
                log_loss = b.scores.log_loss,
                auc = ?b.scores.auc,
                live_accuracy = t.live.accuracy,
                holdout_rows = t.holdout_rows,
                train_rows = b.train_rows,
                learning_rate = ?b.learning_rate,
                seconds = c.seconds,
                "{}: accuracy {:.4} (live {:.4}), log loss {:.4}, trained on {} rows in {:.2}s",
                c.strategy,
                b.scores.accuracy,
                t.live.accuracy,
                b.scores.log_loss,
                b.train_rows,
                c.seconds
            ),
            Err(e) => warn!(
                event = "candidate_scored",
                strategy = c.strategy.as_str(),
                error = %e,
                "{} failed and is dropped: {e}",
                c.strategy
            ),
        }
    }
}

/// The leaderboard kept in `meta.json` and shown by `update` and `demo`.
pub fn leaderboard_of(t: &Tournament) -> Vec<CandidateScore> {
    t.candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let built = c.outcome.as_ref().ok();
            CandidateScore {
                strategy: c.strategy.to_string(),
                scores: c.scores(),
                train_seconds: c.seconds,
                train_rows: built.map_or(0, |b| b.train_rows),
                learning_rate: built.and_then(|b| b.learning_rate),
                lr_search: built.map(|b| b.lr_search.clone()).unwrap_or_default(),
                error: c.outcome.as_ref().err().map(ToString::to_string),
                promoted: t.winner == Some(i),
            }
        })
        .collect()
}

/// What made a new version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeBy {
    /// A first version trained from scratch (`initial`).
    Initial,
    /// A tournament's winning strategy.
    Strategy(StrategyName),
    /// The online challenger (`update.online`), following `anchor`.
    Online { anchor: u64 },
}

impl MadeBy {
    /// `meta.json`'s `strategy`.
    pub fn label(self) -> String {
        match self {
            MadeBy::Initial => "initial".into(),
            MadeBy::Strategy(s) => s.to_string(),
            MadeBy::Online { .. } => update::ONLINE_STRATEGY.into(),
        }
    }
}

/// What a new version is, besides its weights.
pub struct Promotion {
    pub made_by: MadeBy,
    pub trigger: String,
    pub features: Vec<String>,
    pub holdout: model::Scores,
    pub live_holdout: Option<model::Scores>,
    pub report: Option<model::TrainReport>,
    pub leaderboard: Vec<CandidateScore>,
    pub data: DataSummary,
    pub input_profile: Option<InputProfile>,
    /// The files of the new rows; `None`: taken from the manifest (files
    /// after the parent's `last_seq`, up to `data.last_seq`).
    pub files: Option<TrainedFiles>,
}

/// Writes `model` as the next version and makes it live (the version is
/// durable before the pointer moves).
pub fn promote_version(
    registry: &Registry,
    policy: &Policy,
    parent: Option<u64>,
    model: &Classifier,
    p: Promotion,
) -> Result<VersionMeta, crate::registry::RegistryError> {
    let version = registry.next_version()?;
    // The seed the tournament (or the first training) used.
    let seed = policy.training.seed.wrapping_add(parent.unwrap_or(0));
    let last_seq = p.data.last_seq;
    let mut training = TrainSettings::from_policy(policy);
    match p.made_by {
        MadeBy::Strategy(StrategyName::ContinueNew | StrategyName::ContinueAll) => {
            training.learning_rate = policy.update.fine_tune.learning_rate;
            training.epochs = policy.update.fine_tune.epochs;
        }
        MadeBy::Online { .. } => {
            training.learning_rate = policy.update.online.learning_rate;
            training.epochs = policy.update.online.epochs;
            training.early_stopping = crate::config::EarlyStopping::off();
        }
        _ => {}
    }
    let strategy = p.made_by.label();
    let meta = VersionMeta {
        version,
        parent,
        strategy: strategy.clone(),
        trigger: p.trigger.clone(),
        created_at: Utc::now(),
        architecture: model.newest().arch.clone(),
        members: Vec::new(),
        features: p.features,
        label: policy.data.label.clone(),
        training: Some(training),
        threads: policy.training.threads,
        train_report: p.report,
        data: p.data,
        holdout: Some(p.holdout),
        live_holdout: p.live_holdout,
        leaderboard: p.leaderboard,
        driftd_version: env!("CARGO_PKG_VERSION").into(),
        input_profile: p.input_profile,
        import: None,
        seeds: Some(Seeds {
            policy: policy.training.seed,
            tournament: seed,
            fresh_model: seed.wrapping_add(update::FRESH_SEED_OFFSET),
        }),
        update_settings: serde_json::to_value(&policy.update).ok(),
        files: p
            .files
            .or_else(|| files_from_manifest(registry, policy, parent, last_seq)),
        anchor: match p.made_by {
            MadeBy::Online { anchor } => Some(anchor),
            _ => None,
        },
    };
    let meta = registry.write_version(meta, model)?;
    let reason = match (parent, p.made_by) {
        (None, _) => "initial training".to_string(),
        (Some(_), MadeBy::Online { .. }) => "the online challenger's newest version".to_string(),
        (Some(_), _) => format!("{strategy} won the {} update", p.trigger),
    };
    registry.set_live(version, "model_promoted", &reason)?;
    // Only now that the new pointer is durable may old versions go.
    if let Err(e) = registry.apply_retention(policy.registry.keep_last) {
        warn!(error = %e, "retention failed; old versions are kept");
    }
    info!(
        event = "model_promoted",
        version,
        parent = ?parent,
        strategy = %strategy,
        accuracy = p.holdout.accuracy,
        live_accuracy = ?p.live_holdout.map(|s| s.accuracy),
        "version {version} is live ({strategy}): holdout accuracy {:.4}{}",
        p.holdout.accuracy,
        p.live_holdout
            .map(|s| format!(" against {:.4} for the previous version", s.accuracy))
            .unwrap_or_default()
    );
    Ok(meta)
}

/// The manifest's ingested files after the parent version's `last_seq`, up
/// to `last_seq`: where a version's new rows came from.
fn files_from_manifest(
    registry: &Registry,
    policy: &Policy,
    parent: Option<u64>,
    last_seq: u64,
) -> Option<TrainedFiles> {
    let path = policy.state.dir.join("manifest.json");
    let manifest = match crate::ingest::Manifest::load(&path) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "cannot list the version's files from the manifest");
            return None;
        }
    };
    let after = parent
        .and_then(|p| registry.read_meta(p).ok())
        .map_or(0, |m| m.data.last_seq);
    Some(TrainedFiles::new(ingested_files(
        &manifest, after, last_seq,
    )))
}

/// The manifest's ingested files with sequence numbers `after+1..=last`,
/// in ingestion order.
pub fn ingested_files(
    manifest: &crate::ingest::Manifest,
    after: u64,
    last: u64,
) -> Vec<TrainedFile> {
    let mut files: Vec<TrainedFile> = manifest
        .files
        .iter()
        .filter(|(_, e)| e.seq > after && e.seq <= last)
        .filter_map(|(name, e)| match e.outcome {
            crate::ingest::Outcome::Ingested { rows, .. } => Some(TrainedFile {
                seq: e.seq,
                name: name.clone(),
                rows,
            }),
            crate::ingest::Outcome::Quarantined { .. } => None,
        })
        .collect();
    files.sort_by_key(|f| f.seq);
    files
}

/// Trains a first version on `rows` (newest `holdout_fraction` held out).
pub fn train_first_version(
    policy: &Policy,
    rows: &Dataset,
) -> Result<(Mlp, model::Scores, model::TrainReport, usize, usize), ModelError> {
    let (train, holdout) = update::split_holdout(rows, policy.update.holdout_fraction);
    let (m, report) = update::fit_fresh(policy, &train, policy.training.seed)?;
    let s = model::score(&m.predict_proba(&holdout)?, &holdout.labels, m.arch.classes);
    Ok((m, s, report, train.len(), holdout.len()))
}
