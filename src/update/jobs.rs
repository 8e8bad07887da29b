//! Running every candidate of a tournament: one job per training (a shared
//! fresh model is trained once), longest first, on as many threads as the
//! cores allow.

use std::sync::Arc;
use std::time::Instant;

use crate::config::{Policy, StrategyName};
use crate::model::{self, Classifier, Dataset, Mlp};

use super::candidate::{rows_for, run_candidate, Candidate, CandidateError};
use super::strategies::fit_fresh_for;

/// How many trainings of a tournament run at once: as many as the cores
/// allow at `training.threads` libtorch threads each. Each training is
/// deterministic on its own, so the results do not depend on this.
pub fn concurrent_trainings(policy: &Policy) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / policy.training.threads.max(1)).max(1)
}

/// The work of one strategy, for ordering the tournament's trainings
/// longest first: rows times epochs (times the rates searched).
fn training_cost(strategy: StrategyName, policy: &Policy, old: usize, new: usize) -> usize {
    let rows = rows_for(strategy, policy, old, new);
    let epochs = match strategy {
        StrategyName::ContinueNew | StrategyName::ContinueAll => {
            policy.update.fine_tune.epochs * policy.update.fine_tune.lr_grid.len().max(1)
        }
        StrategyName::Graft => policy.update.graft.epochs.unwrap_or(policy.training.epochs),
        _ => policy.training.epochs,
    };
    rows * epochs
}

/// Builds and scores every strategy on `holdout`, candidates in the order of
/// `strategies`. Strategies that share a fresh model (`refit_new` and
/// `ensemble_new`, `refit_all` and `ensemble_all`) train it once, and the
/// independent trainings run on [`concurrent_trainings`] threads, longest
/// first. Each candidate's `seconds` includes the training it used.
#[allow(clippy::too_many_arguments)]
pub fn run_candidates(
    policy: &Policy,
    live: &Classifier,
    lineage: &[Mlp],
    old: &Dataset,
    new_train: &Dataset,
    holdout: &Dataset,
    strategies: &[StrategyName],
    seed: u64,
    search_lr: bool,
) -> Vec<Candidate> {
    // One job per training: strategies sharing a fresh model form one job.
    let mut jobs: Vec<Vec<usize>> = Vec::new();
    for (i, s) in strategies.iter().enumerate() {
        let shared = s.fresh_rows().and_then(|rows| {
            jobs.iter()
                .position(|job| strategies[job[0]].fresh_rows() == Some(rows))
        });
        match shared {
            Some(j) => jobs[j].push(i),
            None => jobs.push(vec![i]),
        }
    }
    let cost =
        |job: &Vec<usize>| training_cost(strategies[job[0]], policy, old.len(), new_train.len());
    jobs.sort_by_key(|job| std::cmp::Reverse(cost(job)));
    let run_job = |(live, lineage): &(Classifier, Vec<Mlp>), job: &Vec<usize>| {
        let started = Instant::now();
        let fresh = strategies[job[0]]
            .fresh_rows()
            .map(|rows| fit_fresh_for(rows, policy, old, new_train, seed).map_err(Arc::new));
        let trained = started.elapsed().as_secs_f64();
        job.iter()
            .map(|&i| {
                let strategy = strategies[i];
                let started = Instant::now();
                let outcome = match &fresh {
                    Some(Err(e)) => Err(CandidateError::Training(Arc::clone(e))),
                    Some(Ok(f)) => run_candidate(
                        strategy,
                        policy,
                        live,
                        lineage,
                        old,
                        new_train,
                        holdout,
                        seed,
                        search_lr,
                        Some(f),
                    ),
                    None => run_candidate(
                        strategy, policy, live, lineage, old, new_train, holdout, seed, search_lr,
                        None,
                    ),
                };
                let seconds = started.elapsed().as_secs_f64() + trained;
                (
                    i,
                    Candidate {
                        strategy,
                        outcome,
                        seconds,
                    },
                )
            })
            .collect::<Vec<_>>()
    };
    let threads = concurrent_trainings(policy).min(jobs.len()).max(1);
    // Tensors are not shared between threads: every thread gets its own
    // copy of the live model and the lineage.
    let contexts: Vec<(Classifier, Vec<Mlp>)> = (0..threads)
        .map(|_| (live.clone(), lineage.to_vec()))
        .collect();
    let mut done: Vec<(usize, Candidate)> = model::run_concurrently(contexts, &jobs, run_job)
        .into_iter()
        .flatten()
        .collect();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, c)| c).collect()
}
