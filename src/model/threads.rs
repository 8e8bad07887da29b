//! Per-thread job context (the cancellation flag and the epoch hook) and
//! [`run_concurrently`], which carries both over to its worker threads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

thread_local! {
    /// The cancellation flag of the job running on this thread, if any.
    static CANCEL: std::cell::RefCell<Option<Arc<AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (on this thread) with a cancellation flag: once the flag is set,
/// training stops at the next batch with [`ModelError::Cancelled`]. The
/// daemon cancels an abandoned update this way, so that no libtorch work is
/// still running when the process exits.
///
/// [`ModelError::Cancelled`]: super::ModelError::Cancelled
pub fn with_cancel<R>(flag: Arc<AtomicBool>, f: impl FnOnce() -> R) -> R {
    let previous = CANCEL.with(|c| c.replace(Some(flag)));
    let result = f();
    CANCEL.with(|c| *c.borrow_mut() = previous);
    result
}

/// Called after every training epoch (progress bars); shared, because
/// [`run_concurrently`] carries it over to its threads.
pub type EpochHook = Arc<dyn Fn(u64) + Send + Sync>;

thread_local! {
    /// The epoch hook of the job running on this thread, if any.
    static EPOCH_HOOK: std::cell::RefCell<Option<EpochHook>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (on this thread, and on the threads of [`run_concurrently`]
/// inside it) calling `hook` after every training epoch, so a command can
/// show progress without the training loop knowing about it.
pub fn with_epoch_hook<R>(hook: EpochHook, f: impl FnOnce() -> R) -> R {
    let previous = EPOCH_HOOK.with(|h| h.replace(Some(hook)));
    let result = f();
    EPOCH_HOOK.with(|h| *h.borrow_mut() = previous);
    result
}

/// Tells the job's hook that `epochs` epochs are done (a run that stops
/// early reports the epochs it skipped as done, so progress adds up).
pub(super) fn epochs_done(epochs: u64) {
    let hook = EPOCH_HOOK.with(|h| h.borrow().clone());
    if let Some(hook) = hook {
        hook(epochs);
    }
}

pub(super) fn cancelled() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Relaxed))
    })
}

/// Runs `jobs` on one thread per context (each thread owns its context:
/// libtorch tensors cannot be shared between threads), every thread taking
/// the next job in order, and returns the results in job order. The
/// caller's cancellation flag ([`with_cancel`]) and epoch hook
/// ([`with_epoch_hook`]) apply on every thread.
/// With one context the jobs run on the calling thread.
pub fn run_concurrently<C, J, T, F>(contexts: Vec<C>, jobs: &[J], f: F) -> Vec<T>
where
    C: Send,
    J: Sync,
    T: Send,
    F: Fn(&C, &J) -> T + Sync,
{
    if contexts.len() <= 1 {
        return match contexts.first() {
            Some(c) => jobs.iter().map(|j| f(c, j)).collect(),
            None => Vec::new(),
        };
    }
    let flag = CANCEL.with(|c| c.borrow().clone());
    let hook = EPOCH_HOOK.with(|h| h.borrow().clone());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = contexts
            .into_iter()
            .map(|context| {
                let (f, next, flag, hook) = (&f, &next, flag.clone(), hook.clone());
                scope.spawn(move || {
                    let work = || {
                        let mut out = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(job) = jobs.get(i) else { break };
                            out.push((i, f(&context, job)));
                        }
                        out
                    };
                    let work = || match flag {
                        Some(flag) => with_cancel(flag, work),
                        None => work(),
                    };
                    match hook {
                        Some(hook) => with_epoch_hook(hook, work),
                        None => work(),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(out) => out,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::run_concurrently;
    use crate::config::Init;
    use crate::model::test_support::{arch, settings, toy};
    use crate::model::Mlp;

    #[test]
    fn concurrent_trainings_match_sequential_ones_bit_for_bit() {
        let data = toy(200, 13);
        let train = |_: &(), seed: &u64| {
            let mut m = Mlp::new(arch(2), Init::HeNormal, *seed);
            m.train(&data, &settings(*seed), None).unwrap();
            m.to_safetensors().unwrap()
        };
        let seeds = [1u64, 2, 3, 4, 5];
        let sequential = run_concurrently(vec![()], &seeds, train);
        let concurrent = run_concurrently(vec![(), ()], &seeds, train);
        assert_eq!(sequential.len(), 5);
        assert!(sequential == concurrent);
        assert!(sequential[0] != sequential[1]);
    }
}
