//! Ingest and score: reading new files within a time budget, absorbing their
//! rows (scored by the live model or judged as served) into the monitors and
//! the training buffers, and recording each file's outcome.

use std::time::Duration;

use tracing::{error, info, warn};

use super::state::{Daemon, TRACE_LIMIT};
use super::TracePoint;
use crate::ingest::probe;
use crate::ingest::{FileProblem, NewFile, Outcome, Served};
use crate::model::Dataset;
use crate::monitor::RowOutcome;
use crate::update::{buffer_new_rows, outcomes_of};

/// How long one poll may read files before the loop turns again.
const POLL_BUDGET: Duration = Duration::from_millis(500);

impl Daemon {
    /// Reads new files for at most [`POLL_BUDGET`]; returns whether some
    /// are left for the next turn of the loop. The budget keeps a backlog
    /// (a restart after downtime) from holding the loop: signals, the
    /// watchdog and finished updates are served between batches.
    pub(super) async fn poll_files(&mut self) -> bool {
        self.follow_live_pointer().await;
        let files = match self.ingestor.scan() {
            Ok(f) => f,
            Err(e) => {
                // The directory may come back (remounts, deploys): keep
                // going, say so once per outage, not every poll.
                if !self.scan_failing {
                    error!(error = %e, "cannot scan the data directory; retrying at every poll, its files are read when it is back");
                    self.scan_failing = true;
                }
                self.scan_ok = false;
                self.backlog = false;
                return false;
            }
        };
        if std::mem::take(&mut self.scan_failing) {
            info!(
                dir = %self.ingestor.dir().display(),
                "the data directory {} is readable again",
                self.ingestor.dir().display()
            );
            // A directory that was removed and made again has a new inode
            // the old inotify watch does not see.
            self.rewatch = true;
        }
        self.scan_ok = true;
        let started = std::time::Instant::now();
        let mut files = files.into_iter();
        for file in files.by_ref() {
            self.ingest_file(file).await;
            if started.elapsed() >= POLL_BUDGET {
                break;
            }
        }
        self.backlog = files.next().is_some();
        self.backlog
    }

    async fn ingest_file(&mut self, file: NewFile) {
        if file.replaced {
            warn!(file = %file.name, "file was replaced with different content; ingesting it as a new file");
        }
        let (rows, dropped, first_dropped, file_accuracy) = match self.read_and_absorb(&file).await
        {
            Ok(r) => r,
            Err(problem) => {
                let name = &file.name;
                warn!(event = "file_quarantined", file = %name, reason = %problem, "quarantined {name}: {problem}");
                self.status.files_quarantined += 1;
                // A vanished file is not recorded: if it comes back, it is read.
                if problem != FileProblem::Vanished {
                    let reason = problem.to_string();
                    self.commit(&file, Outcome::Quarantined { reason });
                }
                return;
            }
        };
        let name = file.name.clone();
        self.commit(&file, Outcome::Ingested { rows, dropped });
        self.online_verdict().await;
        let ready = self
            .bootstrap
            .as_ref()
            .is_some_and(|b| b.len() >= self.policy.data.initial_rows);
        if self.live.is_none() && ready {
            let rows = self.bootstrap.take().expect("checked");
            self.train_initial(rows).await;
        }
        self.status.files_ingested += 1;
        self.status.rows_ingested += rows as u64;
        self.status.rows_dropped += dropped as u64;
        self.status.rolling_accuracy = self.monitor.rolling_accuracy();
        let point = TracePoint {
            file: name.clone(),
            // Over every run (the manifest's count, this file included), so
            // a trace carried over a restart keeps counting up.
            rows_total: self.status.manifest_rows_ingested,
            live_version: self.status.live_version,
            rolling_accuracy: self.monitor.rolling_accuracy(),
            file_accuracy,
            at: Some(self.clock.now()),
        };
        self.status.trace.push(point);
        if self.status.trace.len() > TRACE_LIMIT {
            self.status.trace.remove(0);
        }
        info!(
            event = "file_ingested",
            file = %name,
            rows,
            dropped_rows = dropped,
            first_dropped = first_dropped.map(|p| p.to_string()),
            live_version = ?self.status.live_version,
            rolling_accuracy = ?self.monitor.rolling_accuracy(),
            "ingested {name}: {rows} rows"
        );
    }

    /// Reads a file batch by batch and absorbs its rows; returns the rows
    /// kept, the rows dropped (and why the first were), and the file's
    /// accuracy (when scored). A file
    /// of several batches is checked whole before any row is used, so a
    /// problem in a late batch never leaves the early ones counted.
    async fn read_and_absorb(
        &mut self,
        file: &NewFile,
    ) -> Result<(usize, usize, Option<FileProblem>, Option<f64>), FileProblem> {
        if let Some(problem) = &file.problem {
            return Err(problem.clone());
        }
        // The previous process died reading this very file: read it in a
        // child first (see `ingest::probe`).
        if let Some(note) = self.suspect.take() {
            if note.is(file) {
                warn!(file = %file.name, "the previous process stopped while reading this file; reading it in a child process first");
                probe::probe(&self.policy, &file.path).await?;
            } else {
                self.suspect = Some(note);
            }
        }
        probe::note(&self.policy.state.dir, file);
        let reader = self.ingestor.reader();
        let to_open = file.clone();
        let opened = std::sync::Arc::new(off_thread(move || reader.open(&to_open)).await?);
        let batches = opened.batches.len();
        let mut first = None;
        let mut kept = 0;
        for i in 0..batches {
            let f = opened.clone();
            let batch = off_thread(move || f.read_batch(i)).await?;
            kept += batch.data.len();
            if batches == 1 {
                first = Some(batch);
            }
        }
        if kept == 0 {
            return Err(FileProblem::NoUsableRows {
                dropped: opened.rows(),
            });
        }
        let (mut dropped, mut scored, mut correct) = (0, 0usize, 0.0);
        let mut first_dropped = None;
        for i in 0..batches {
            let batch = match first.take() {
                Some(b) => b,
                None => {
                    let f = opened.clone();
                    off_thread(move || f.read_batch(i)).await?
                }
            };
            dropped += batch.dropped;
            first_dropped = first_dropped.or(batch.first_dropped);
            let n = batch.data.len();
            if n == 0 {
                continue;
            }
            if let Some(accuracy) = self.absorb(&file.name, batch.data, batch.served).await {
                scored += n;
                correct += accuracy * n as f64;
            }
        }
        self.ingestor.schema.get_or_insert(opened.schema.clone());
        self.ingestor.record_types(&opened.types);
        let accuracy = (scored > 0).then(|| correct / scored as f64);
        Ok((kept, dropped, first_dropped, accuracy))
    }

    fn commit(&mut self, file: &NewFile, outcome: Outcome) {
        if let Err(e) = self.ingestor.commit(file, outcome) {
            // The rows are in memory; the file will be re-read after a
            // restart, which the buffers tolerate. Say so loudly.
            error!(error = %e, file = %file.name, "cannot persist the manifest");
        }
        self.last_file = Some(file.name.clone());
        probe::clear(&self.policy.state.dir);
        self.count_manifest();
    }

    /// The status's totals over every run, from the manifest (a pass over
    /// its entries: microseconds per thousand files, once per file).
    pub(super) fn count_manifest(&mut self) {
        let manifest = &self.ingestor.manifest;
        let (ingested, quarantined) = manifest.file_counts();
        self.status.manifest_files_ingested = ingested;
        self.status.manifest_files_quarantined = quarantined;
        self.status.manifest_rows_ingested = manifest.rows_ingested;
    }

    /// Scores a file's rows with the live model (or takes what was served),
    /// feeds the monitor and the training buffers. Returns the file's
    /// accuracy when judged.
    async fn absorb(&mut self, name: &str, data: Dataset, served: Option<Served>) -> Option<f64> {
        let width = data.width;
        let n = data.len() as u64;
        if self.live.is_none() {
            // Buffered for version 1, trained once the file is committed.
            let buf = self.bootstrap.get_or_insert_with(|| Dataset::new(width));
            buf.extend(&data);
            self.rows_total += n;
            return None;
        }
        let classes = self
            .live
            .as_ref()
            .expect("checked")
            .meta
            .architecture
            .classes;
        // What was served is what the monitor judges; the live model scores
        // the rows without a valid served value, and every row while a
        // promotion is on probation (which judges the promoted model, not
        // whatever the serving side still ran).
        let all_served = served.as_ref().is_some_and(|s| s.invalid_rows() == 0);
        let scored = if all_served && self.probation.is_none() && self.online.is_none() {
            None
        } else {
            Some(self.score(name, &data, classes).await?)
        };
        let outcomes: Vec<RowOutcome> = match &served {
            None => scored.clone().expect("scored without served columns"),
            Some(s) => {
                let mut judged_as_served = 0;
                let outcomes = (0..data.len())
                    .map(|i| {
                        if !s.valid[i] {
                            return scored.as_ref().expect("scored when invalid")[i];
                        }
                        judged_as_served += 1;
                        RowOutcome {
                            label: data.labels[i] as u32,
                            predicted: s.predicted[i],
                            p_label: s.p_label[i],
                            p_positive: s.p_positive[i],
                            time_us: data.times_us[i],
                        }
                    })
                    .collect();
                self.status.rows_judged_as_served += judged_as_served;
                outcomes
            }
        };
        let file_accuracy =
            outcomes.iter().filter(|o| o.correct()).count() as f64 / outcomes.len().max(1) as f64;
        let monitor_before = self.monitor.rows_seen();
        let alerts = self.monitor.observe(&outcomes);
        self.status.metrics = self.monitor.window_metrics();
        self.status.time_window_metrics = self.monitor.time_window_metrics();
        let input_checks = self.input_monitor.observe(&data);
        let first_new = self.rows_total;
        self.rows_total += n;
        buffer_new_rows(
            &mut self.new_rows,
            &mut self.reservoir,
            &self.policy,
            &data,
            first_new,
        );
        self.status.rows_since_live = self.monitor.rows_seen();
        for alert in alerts {
            // Global row number of the row that raised the alert.
            let at = first_new + (alert.rows_since_live - monitor_before);
            self.raise_alert(alert, at);
        }
        for check in input_checks {
            self.on_input_check(check, first_new + n);
        }
        let live_outcomes = scored.as_deref().unwrap_or(&outcomes);
        self.online_step(&data, live_outcomes).await;
        self.judge_probation(&data, live_outcomes).await;
        self.request_continual();
        Some(file_accuracy)
    }

    /// The live model's outcome for each row.
    async fn score(
        &mut self,
        name: &str,
        data: &Dataset,
        classes: usize,
    ) -> Option<Vec<RowOutcome>> {
        let scored = {
            let data = data.clone();
            self.scorer
                .run(move |slot| slot.as_ref().map(|m| m.predict_proba(&data)))
                .await
        };
        let probs = match scored {
            Ok(Some(Ok(p))) => p,
            Ok(Some(Err(e))) => {
                error!(file = %name, error = %e, "cannot score the file's rows");
                return None;
            }
            Ok(None) => {
                error!(file = %name, "the scorer has no live model");
                return None;
            }
            Err(e) => {
                // A panicking scoring job (caught on the scorer thread,
                // which keeps serving): the rows stay unscored.
                error!(file = %name, error = %e, "cannot score the file's rows: {e}");
                return None;
            }
        };
        Some(outcomes_of(data, &probs, classes))
    }
}

/// Runs CPU-bound file work (polars) off the async worker threads.
async fn off_thread<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FileProblem> + Send + 'static,
) -> Result<T, FileProblem> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(FileProblem::ReaderTaskFailed(e.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader task that panics quarantines the file with the join error
    /// as its cause; the message keeps the manifest's wording.
    #[tokio::test]
    async fn a_failed_reader_task_names_its_cause() {
        let problem = off_thread(|| -> Result<(), FileProblem> { panic!("boom in a reader") })
            .await
            .unwrap_err();
        let FileProblem::ReaderTaskFailed(cause) = &problem else {
            panic!("{problem:?}");
        };
        assert!(cause.get().is_panic(), "{cause}");
        let text = problem.to_string();
        assert!(
            text.starts_with("cannot read the file: the reader task failed: task ")
                && text.contains("panicked"),
            "{text}"
        );
    }
}
