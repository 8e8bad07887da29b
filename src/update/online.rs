//! The online challenger (`[update.online]`): the live model continued on
//! every batch of rows as it arrives, the tutorial's "continue training with
//! a small learning rate" made continual. The daemon and the backtest hold
//! one and feed it the same way: after the live model has scored a batch,
//! [`OnlineLearner::observe`] scores the batch with the challenger too (paired
//! with the live model on the same rows, before the challenger has learnt
//! them), then [`OnlineLearner::learn`] trains the challenger on the newest
//! rows, and [`OnlineLearner::verdict`] says what to do.
//!
//! Two phases, because the evidence that matters is about the *process*:
//!
//! - **Challenging.** The challenger is forked from the live version (the
//!   anchor) and must beat it, paired on the rows since the fork, with
//!   `update.confidence`: then it is promoted.
//! - **Following.** From then on the newest challenger is promoted after
//!   every batch (or every `promote_every_rows` rows), with no new test: a
//!   continued model differs from the last one by one batch of training, so
//!   asking each copy to beat the previous beyond the noise would leave the
//!   live model many batches behind the learner (measured: 0.5 to 1.5
//!   points of accuracy on the drift bench's streams). Instead the versions
//!   the follower produced are compared, paired on every row since the
//!   first promotion, with the anchor: if the anchor is more accurate by
//!   more than `update.rollback.margin` with `update.confidence`, the anchor
//!   is made live again. That is probation, kept for the whole stretch.
//!
//! The learner is pure (no I/O): the caller writes versions and moves the
//! live pointer.

use crate::config::Policy;
use crate::input_drift::InputProfile;
use crate::model::{Classifier, Dataset, ModelError, Scores, TrainSettings};
use crate::monitor::RowOutcome;
use crate::registry::{CandidateScore, DataSummary, Registry, TrainedFile, TrainedFiles};

use super::evidence::{z_for, PairedDifference};
use super::{outcomes_of, MadeBy, Promotion};
pub use crate::registry::{anchor_version, ONLINE_STRATEGY};

/// The version the follower started from, which its versions must not fall
/// below.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub version: u64,
    pub model: Classifier,
}

/// Running paired tallies of two models on the same rows: `a` is the one
/// asking to be kept or promoted, `b` the one it is compared with.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tally {
    rows: u64,
    a_correct: u64,
    b_correct: u64,
    disagreements: u64,
    a_loss: f64,
    b_loss: f64,
}

impl Tally {
    fn add(&mut self, a: &[RowOutcome], b: &[RowOutcome]) {
        for (x, y) in a.iter().zip(b) {
            self.rows += 1;
            self.a_correct += u64::from(x.correct());
            self.b_correct += u64::from(y.correct());
            self.disagreements += u64::from(x.correct() != y.correct());
            self.a_loss += loss(x);
            self.b_loss += loss(y);
        }
    }

    /// `a`'s advantage over `b` in accuracy, per row.
    fn difference(&self) -> PairedDifference {
        PairedDifference::from_sums(
            self.rows as usize,
            self.a_correct as f64 - self.b_correct as f64,
            self.disagreements as f64,
        )
    }

    fn scores(&self, correct: u64, loss: f64) -> Scores {
        let n = self.rows.max(1) as f64;
        Scores {
            rows: self.rows as usize,
            accuracy: correct as f64 / n,
            log_loss: loss / n,
            auc: None,
        }
    }
}

/// A row's log loss, with the clamp of [`crate::model::score`].
fn loss(o: &RowOutcome) -> f64 {
    -(o.p_label as f64).clamp(1e-7, 1.0).ln()
}

/// What the caller does after a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing yet.
    Wait,
    /// Write [`OnlineLearner::challenger`] as a new version and make it
    /// live, then call [`OnlineLearner::promoted`].
    Promote(OnlinePromotion),
    /// The follower's versions lost to the anchor: make `to` live again.
    RollBack {
        to: u64,
        /// The follower's versions and the anchor on the same rows.
        scores: Scores,
        anchor_scores: Scores,
        evidence: PairedDifference,
        reason: String,
    },
}

/// The evidence behind a promotion of the challenger.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlinePromotion {
    /// The first promotion since the anchor went live (the challenger beat
    /// it), or a follower's next version.
    pub first: bool,
    /// The model being promoted (challenging) or the live follower
    /// (following), on the rows of the comparison.
    pub scores: Scores,
    /// The live model (challenging) or the anchor (following) on the same
    /// rows.
    pub compared: Scores,
    pub evidence: PairedDifference,
    pub decision: String,
}

#[derive(Debug, Clone)]
enum Phase {
    Challenging,
    Following(Anchor),
}

/// What of a batch the learner uses ([`batch_parts`]).
#[derive(Debug, Clone)]
pub struct BatchParts {
    /// The rows the challenger is compared on, and the live model's
    /// outcomes on them.
    pub compared: Dataset,
    pub live: Vec<RowOutcome>,
    /// The newest rows, which join the training window.
    pub newest: Dataset,
}

/// The parts of a batch (`data`, scored by the live model as `live`) the
/// learner uses: every row is compared, or, in a batch of more than
/// `window_rows` rows, `window_rows` rows spread evenly over it (a 100,000-row
/// file needs no 100,000 paired rows of evidence, and the challenger's and
/// the anchor's forward passes are then bounded per batch); the newest
/// `window_rows` rows are learnt (older ones would leave the window at once).
/// The daemon cuts them before handing them to the scorer thread.
pub fn batch_parts(policy: &Policy, data: &Dataset, live: &[RowOutcome]) -> BatchParts {
    let cap = policy.update.online.window_rows.max(1);
    let n = data.len();
    let (compared, live) = if n <= cap {
        (data.clone(), live.to_vec())
    } else {
        let picks: Vec<usize> = (0..cap).map(|i| i * n / cap).collect();
        (
            data.select(&picks),
            picks.iter().map(|&i| live[i]).collect(),
        )
    };
    BatchParts {
        compared,
        live,
        newest: data.slice(n - n.min(cap), n),
    }
}

/// The challenger and its evidence.
#[derive(Debug, Clone)]
pub struct OnlineLearner {
    challenger: Classifier,
    phase: Phase,
    /// Challenging: the challenger against the live model since the fork.
    /// Following: the live follower against the anchor since the first
    /// promotion.
    tally: Tally,
    /// The newest `window_rows` rows, which each step trains on.
    window: Dataset,
    /// Rows since the last promotion (`promote_every_rows`).
    since_promotion: u64,
    /// Training steps taken (each seeds its own shuffling).
    steps: u64,
}

impl OnlineLearner {
    /// A learner for the live model `live`. With `anchor` (the live
    /// version was made by the follower: see [`anchor_version`]) it
    /// follows at once; without, it challenges `live`. `recent` seeds the
    /// training window (the newest rows already seen, oldest first).
    pub fn new(
        policy: &Policy,
        live: &Classifier,
        anchor: Option<Anchor>,
        recent: Option<&Dataset>,
    ) -> Self {
        let mut learner = OnlineLearner {
            challenger: live.clone(),
            phase: match anchor {
                Some(a) => Phase::Following(a),
                None => Phase::Challenging,
            },
            tally: Tally::default(),
            window: Dataset::new(live.inputs()),
            since_promotion: 0,
            steps: 0,
        };
        if let Some(r) = recent {
            learner.seed_window(policy, r);
        }
        learner
    }

    pub fn challenger(&self) -> &Classifier {
        &self.challenger
    }

    pub fn following(&self) -> bool {
        matches!(self.phase, Phase::Following(_))
    }

    pub fn anchor(&self) -> Option<u64> {
        match &self.phase {
            Phase::Following(a) => Some(a.version),
            Phase::Challenging => None,
        }
    }

    /// The newest rows it trains on (a new learner of the next live
    /// version starts from them).
    pub fn window(&self) -> &Dataset {
        &self.window
    }

    /// Starts the training window over with the newest rows of `rows`
    /// (the rows version 1 was trained on, when it is made).
    pub fn seed_window(&mut self, policy: &Policy, rows: &Dataset) {
        if rows.width == self.window.width {
            let n = policy.update.online.window_rows.min(rows.len());
            self.window = rows.slice(rows.len() - n, rows.len());
        }
    }

    /// Paired rows behind the current comparison.
    pub fn rows_compared(&self) -> u64 {
        self.tally.rows
    }

    /// Counts a batch the live model scored (`live`, one outcome per row
    /// of `data`): challenging, the challenger scores the same rows;
    /// following, the anchor does (the live model is the follower).
    pub fn observe(&mut self, data: &Dataset, live: &[RowOutcome]) -> Result<(), ModelError> {
        let other = match &self.phase {
            Phase::Challenging => &self.challenger,
            Phase::Following(a) => &a.model,
        };
        let probs = other.predict_proba(data)?;
        let theirs = outcomes_of(data, &probs, other.classes());
        match self.phase {
            Phase::Challenging => self.tally.add(&theirs, live),
            Phase::Following(_) => self.tally.add(live, &theirs),
        }
        self.since_promotion += data.len() as u64;
        Ok(())
    }

    /// One step: the batch joins the window of the newest rows, and the
    /// challenger trains on the window for `update.online.epochs` at
    /// `update.online.learning_rate` (the policy's optimizer, batch size
    /// and shuffling; no early stopping: the window is all it has). On an
    /// error (a diverging run) the challenger is left half-trained: the
    /// caller forks a new learner.
    pub fn learn(&mut self, policy: &Policy, data: &Dataset) -> Result<(), ModelError> {
        let cfg = &policy.update.online;
        self.window.extend(data);
        if self.window.len() > cfg.window_rows {
            let n = self.window.len();
            self.window = self.window.slice(n - cfg.window_rows, n);
        }
        let mut settings = TrainSettings::from_policy(policy);
        settings.learning_rate = cfg.learning_rate;
        settings.epochs = cfg.epochs;
        settings.early_stopping = crate::config::EarlyStopping::off();
        settings.seed = policy.training.seed.wrapping_add(self.steps);
        self.steps += 1;
        self.challenger = continue_members(&self.challenger, &self.window, &settings)?;
        Ok(())
    }

    /// What to do after the batch just observed and learnt. `hold`: a
    /// promotion would race another change of the live model (an update
    /// running, a probation open), so only the tallies move.
    pub fn verdict(&self, policy: &Policy, hold: bool) -> Verdict {
        let cfg = &policy.update.online;
        let z = z_for(policy.update.confidence, 1);
        let d = self.tally.difference();
        if hold || self.tally.rows < cfg.min_rows as u64 {
            return Verdict::Wait;
        }
        match &self.phase {
            Phase::Challenging => {
                if !d.beats(policy.update.min_improvement, z) {
                    return Verdict::Wait;
                }
                let (scores, compared) = self.comparison();
                Verdict::Promote(OnlinePromotion {
                    first: true,
                    decision: format!(
                        "the online challenger scored accuracy {:.4} on the {} rows since it was forked, against the live model's {:.4} on the same rows: {:+.4} ± {:.4} paired (lower bound {:+.4} at {} confidence)",
                        scores.accuracy,
                        d.rows,
                        compared.accuracy,
                        d.difference,
                        d.standard_error,
                        d.lower_bound(z),
                        policy.update.confidence
                    ),
                    scores,
                    compared,
                    evidence: d,
                })
            }
            Phase::Following(anchor) => {
                let margin = policy.update.rollback.margin;
                if d.upper_bound(z) < -margin {
                    let (live, anchor_scores) = self.comparison();
                    return Verdict::RollBack {
                        to: anchor.version,
                        scores: live,
                        anchor_scores,
                        evidence: d,
                        reason: format!(
                            "the online versions scored {:.3} over the {} rows since they followed version {}, which scores {:.3} on the same rows ({:+.4} ± {:.4} paired; margin {margin})",
                            live.accuracy,
                            d.rows,
                            anchor.version,
                            anchor_scores.accuracy,
                            d.difference,
                            d.standard_error
                        ),
                    };
                }
                if self.since_promotion < cfg.promote_every_rows.max(1) {
                    return Verdict::Wait;
                }
                let (scores, compared) = self.comparison();
                Verdict::Promote(OnlinePromotion {
                    first: false,
                    decision: format!(
                        "the online challenger continued on {} more rows; the online versions score {:.4} over the {} rows since they followed version {} ({:.4} on the same rows: {:+.4} ± {:.4} paired)",
                        self.since_promotion,
                        scores.accuracy,
                        d.rows,
                        anchor.version,
                        compared.accuracy,
                        d.difference,
                        d.standard_error
                    ),
                    scores,
                    compared,
                    evidence: d,
                })
            }
        }
    }

    /// The current comparison on its rows: (the model asking, the model it
    /// is compared with), that is (challenger, live) while challenging and
    /// (live follower, anchor) while following.
    pub fn comparison(&self) -> (Scores, Scores) {
        let t = &self.tally;
        (
            t.scores(t.a_correct, t.a_loss),
            t.scores(t.b_correct, t.b_loss),
        )
    }

    /// The challenger was promoted: challenging, the version it replaced
    /// becomes the anchor (`previous`) and the comparison starts over
    /// against it; following, the comparison with the anchor goes on.
    pub fn promoted(&mut self, previous: Option<Anchor>) {
        self.since_promotion = 0;
        if let (Phase::Challenging, Some(anchor)) = (&self.phase, previous) {
            self.phase = Phase::Following(anchor);
            self.tally = Tally::default();
        }
    }
}

impl OnlineLearner {
    /// The version record of the challenger for `p`, promoted over the
    /// live version `parent`: `files` are the files since the live version
    /// (the last of them has manifest sequence `last_seq`).
    pub fn promotion(
        &self,
        p: &OnlinePromotion,
        parent: u64,
        features: &[String],
        files: Vec<TrainedFile>,
        last_seq: u64,
    ) -> Promotion {
        Promotion {
            // The first promotion's anchor is the version it replaces.
            made_by: MadeBy::Online {
                anchor: self.anchor().unwrap_or(parent),
            },
            trigger: ONLINE_STRATEGY.into(),
            features: features.to_vec(),
            holdout: p.scores,
            live_holdout: Some(p.compared),
            report: None,
            leaderboard: vec![CandidateScore {
                strategy: ONLINE_STRATEGY.into(),
                scores: Some(p.scores),
                train_seconds: 0.0,
                train_rows: self.window.len(),
                learning_rate: None,
                lr_search: Vec::new(),
                error: None,
                promoted: true,
            }],
            data: DataSummary {
                train_rows: self.window.len(),
                holdout_rows: p.scores.rows,
                first_file: files.first().map(|f| f.name.clone()),
                last_file: files.last().map(|f| f.name.clone()),
                last_seq,
            },
            input_profile: Some(InputProfile::from_dataset(&self.window, features)),
            files: Some(TrainedFiles::new(files)),
        }
    }
}

/// The anchor of the live `version` when the online challenger made it,
/// loaded from the registry; `None` otherwise, or when the anchor cannot be
/// read (logged: the learner then challenges the live version instead).
pub fn anchor_for(registry: &Registry, version: u64) -> Option<Anchor> {
    let v = match registry.anchor_of(version) {
        Ok(v) => v?,
        Err(e) => {
            tracing::warn!(version, error = %e, "cannot find the anchor of the online version; the online challenger starts over");
            return None;
        }
    };
    match registry.load_model(v) {
        Ok((_, model)) => Some(Anchor { version: v, model }),
        Err(e) => {
            tracing::warn!(version = v, error = %e, "cannot load the online versions' anchor; the online challenger starts over");
            None
        }
    }
}

/// Continues training every member of `model` on `rows`.
fn continue_members(
    model: &Classifier,
    rows: &Dataset,
    settings: &TrainSettings,
) -> Result<Classifier, ModelError> {
    let mut members = Vec::with_capacity(model.members().len());
    for m in model.members() {
        let mut m = m.clone();
        m.train_weighted(rows, None, settings, None)?;
        members.push(m);
    }
    match model {
        Classifier::Single(_) => Ok(Classifier::Single(members.pop().expect("one member"))),
        Classifier::Ensemble { weights, .. } => Classifier::ensemble(members, weights.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::test_fixtures::{live, policy, rows};

    fn outcomes(data: &Dataset, model: &Classifier) -> Vec<RowOutcome> {
        let probs = model.predict_proba(data).unwrap();
        outcomes_of(data, &probs, model.classes())
    }

    fn online_policy() -> Policy {
        let mut p = policy();
        p.update.online.enabled = true;
        p.update.online.min_rows = 100;
        p
    }

    /// Concept B after a model of concept A: the challenger learns B batch
    /// by batch, beats the live model beyond the noise and is promoted;
    /// then it follows, a version per batch.
    #[test]
    fn a_challenger_that_learns_a_new_concept_is_promoted_then_follows() {
        let p = online_policy();
        let a = live(&p, &rows(400, 2));
        let b = rows(3000, 3);
        let mut learner = OnlineLearner::new(&p, &a, None, None);
        let mut promoted_at = None;
        for (i, start) in (0..b.len()).step_by(250).enumerate() {
            let batch = b.slice(start, start + 250);
            learner.observe(&batch, &outcomes(&batch, &a)).unwrap();
            learner.learn(&p, &batch).unwrap();
            if let Verdict::Promote(promotion) = learner.verdict(&p, false) {
                assert!(promotion.first);
                assert!(promotion.scores.accuracy > promotion.compared.accuracy);
                assert!(promotion.evidence.lower_bound(1.645) > 0.0);
                promoted_at = Some(i);
                break;
            }
        }
        assert!(promoted_at.is_some(), "never promoted");
        learner.promoted(Some(Anchor {
            version: 1,
            model: a.clone(),
        }));
        assert_eq!(learner.anchor(), Some(1));
        assert_eq!(learner.rows_compared(), 0);
        // Following: the live model is the follower; a batch later (of at
        // least min_rows rows) the next version is due, and it is not a
        // first promotion.
        let live_now = learner.challenger().clone();
        let batch = b.slice(0, 50);
        learner
            .observe(&batch, &outcomes(&batch, &live_now))
            .unwrap();
        learner.learn(&p, &batch).unwrap();
        assert_eq!(learner.verdict(&p, false), Verdict::Wait, "min_rows first");
        let batch = b.slice(50, 300);
        learner
            .observe(&batch, &outcomes(&batch, &live_now))
            .unwrap();
        match learner.verdict(&p, false) {
            Verdict::Promote(promotion) => assert!(!promotion.first),
            other => panic!("{other:?}"),
        }
        assert_eq!(learner.verdict(&p, true), Verdict::Wait, "held");
    }

    /// A challenger that is no better than the live model (here it barely
    /// moves: a learning rate of 1e-9) is never promoted.
    #[test]
    fn a_challenger_no_better_than_the_live_model_waits() {
        let mut p = online_policy();
        p.update.online.learning_rate = 1e-9;
        let data = rows(4000, 2);
        let a = live(&p, &data.slice(0, 2000));
        let mut learner = OnlineLearner::new(&p, &a, None, None);
        for start in (2000..4000).step_by(250) {
            let batch = data.slice(start, start + 250);
            learner.observe(&batch, &outcomes(&batch, &a)).unwrap();
            learner.learn(&p, &batch).unwrap();
            assert_eq!(learner.verdict(&p, false), Verdict::Wait);
        }
        assert_eq!(learner.rows_compared(), 2000);
    }

    /// Following a version that is worse than the anchor on the same rows
    /// rolls back to the anchor.
    #[test]
    fn a_follower_worse_than_its_anchor_is_rolled_back() {
        let p = online_policy();
        let data = rows(2000, 2);
        let good = live(&p, &data.slice(0, 1000));
        let bad = live(&p, &rows(300, 9));
        let mut learner = OnlineLearner::new(
            &p,
            &bad,
            Some(Anchor {
                version: 4,
                model: good,
            }),
            None,
        );
        assert!(learner.following());
        let batch = data.slice(1000, 2000);
        learner.observe(&batch, &outcomes(&batch, &bad)).unwrap();
        match learner.verdict(&p, false) {
            Verdict::RollBack { to, evidence, .. } => {
                assert_eq!(to, 4);
                assert!(evidence.difference < 0.0);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_large_batch_is_compared_on_rows_spread_over_it_and_its_newest_are_learnt() {
        let mut p = online_policy();
        p.update.online.window_rows = 100;
        let data = rows(1000, 2);
        let a = live(&p, &data.slice(0, 200));
        let scored = outcomes(&data, &a);
        let parts = batch_parts(&p, &data, &scored);
        assert_eq!(parts.compared.len(), 100);
        assert_eq!(parts.compared.row(0), data.row(0));
        assert_eq!(parts.compared.row(99), data.row(990));
        assert_eq!(parts.live[99], scored[990]);
        assert_eq!(parts.newest, data.slice(900, 1000));
        // A batch within the window is used whole.
        let small = data.slice(0, 80);
        let parts = batch_parts(&p, &small, &scored[..80]);
        assert_eq!(
            (parts.compared, parts.live),
            (small.clone(), scored[..80].to_vec())
        );
        assert_eq!(parts.newest, small);
    }

    #[test]
    fn the_window_keeps_the_newest_rows() {
        let mut p = online_policy();
        p.update.online.window_rows = 300;
        let data = rows(1000, 2);
        let a = live(&p, &data.slice(0, 200));
        let mut learner = OnlineLearner::new(&p, &a, None, Some(&data.slice(0, 500)));
        assert_eq!(learner.window, data.slice(200, 500));
        learner.learn(&p, &data.slice(500, 600)).unwrap();
        assert_eq!(learner.window, data.slice(300, 600));
        learner.learn(&p, &data.slice(600, 1000)).unwrap();
        assert_eq!(learner.window, data.slice(700, 1000));
    }
}
