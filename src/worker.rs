//! Dedicated OS threads for libtorch work.
//!
//! libtorch calls block for milliseconds to minutes; running them on tokio
//! worker threads would stall the runtime (timers, signals, ingestion). A
//! [`Worker`] owns one thread and some state (for the scorer: the live
//! model) and runs closures on it in order.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("the libtorch job panicked")]
    Panicked,
    #[error("the libtorch worker thread is gone")]
    Gone,
}

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

pub struct Worker<S> {
    jobs: mpsc::Sender<Job<S>>,
}

impl<S: Send + 'static> Worker<S> {
    pub fn spawn(name: &str, state: S) -> std::io::Result<Worker<S>> {
        let (tx, rx) = mpsc::channel::<Job<S>>();
        thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let mut state = state;
                // Ends when every Worker handle is dropped.
                while let Ok(job) = rx.recv() {
                    // A panicking job drops its reply channel (the caller
                    // sees `WorkerError`) but must not take the thread down.
                    let _ = panic::catch_unwind(AssertUnwindSafe(|| job(&mut state)));
                }
            })?;
        Ok(Worker { jobs: tx })
    }

    /// Runs `f` on the worker thread and waits for its result.
    pub async fn run<R, F>(&self, f: F) -> Result<R, WorkerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| WorkerError::Panicked)
    }

    /// Whether the thread still takes jobs (it is gone only if it died).
    pub fn alive(&self) -> bool {
        self.jobs.send(Box::new(|_| {})).is_ok()
    }

    /// Queues `f` and returns a receiver for its result, without waiting.
    pub fn submit<R, F>(&self, f: F) -> Result<oneshot::Receiver<R>, WorkerError>
    where
        R: Send + 'static,
        F: FnOnce(&mut S) -> R + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))
            .map_err(|_| WorkerError::Gone)?;
        Ok(rx)
    }
}

impl<S> Clone for Worker<S> {
    fn clone(&self) -> Self {
        Worker {
            jobs: self.jobs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic in a job (say, inside libtorch's bindings) is reported to
    /// its caller; the thread and its state keep serving the next jobs.
    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_thread_keeps_serving() {
        let worker = Worker::spawn("test-worker", 41u32).unwrap();
        let panicked = worker
            .run(|_: &mut u32| -> u32 { panic!("boom in a job") })
            .await;
        assert!(
            matches!(panicked, Err(WorkerError::Panicked)),
            "{panicked:?}"
        );
        assert!(worker.alive());
        let next = worker
            .run(|s: &mut u32| {
                *s += 1;
                *s
            })
            .await;
        assert_eq!(next.unwrap(), 42);
    }
}
