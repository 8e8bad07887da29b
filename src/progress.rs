//! Progress of long commands (`backtest`, `compare`, `update`): a bar with
//! a rate and an ETA (indicatif) when stderr is a terminal, otherwise one
//! plain line on stderr every few seconds, so logs and CI output stay
//! readable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Policy;
use crate::update::StrategyName;

/// Seconds between plain progress lines (not on a terminal); the
/// `DRIFTD_PROGRESS_SECONDS` environment variable overrides it (0: a line
/// at every step, for tests).
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct Progress {
    what: String,
    unit: &'static str,
    total: u64,
    done: u64,
    started: Instant,
    bar: Option<ProgressBar>,
    plain_every: Duration,
    last_line: Option<Instant>,
}

impl Progress {
    /// `what` names the work ("backtest"), `unit` what is counted ("rows").
    pub fn new(what: &str, total: u64, unit: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{{prefix}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} ({{percent}}%) {{msg}} elapsed {{elapsed}}, ETA {{eta}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what.to_string());
            bar
        });
        let plain_every = std::env::var("DRIFTD_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(PLAIN_EVERY, Duration::from_secs_f64);
        Progress {
            what: what.to_string(),
            unit,
            total,
            done: 0,
            started: Instant::now(),
            bar,
            plain_every,
            last_line: None,
        }
    }

    /// What is being worked on now (shown beside the bar and in the lines).
    pub fn set_message(&mut self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if self.done > self.total {
            // An estimate fell short: grow rather than overflow.
            self.total = self.done;
            if let Some(bar) = &self.bar {
                bar.set_length(self.total);
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None => {
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= self.plain_every);
                if due {
                    self.line();
                }
            }
        }
    }

    fn line(&mut self) {
        self.last_line = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64();
        let share = self.done as f64 / self.total.max(1) as f64;
        let eta = if self.done > 0 && share < 1.0 {
            format!(", ETA {:.0} s", elapsed / share - elapsed)
        } else {
            String::new()
        };
        eprintln!(
            "progress: {} {}/{} {} ({:.0}%), {:.1} s elapsed{eta}",
            self.what,
            self.done,
            self.total,
            self.unit,
            100.0 * share,
            elapsed
        );
    }

    /// The last line (plain) or clears the bar.
    pub fn finish(mut self) {
        match self.bar.take() {
            Some(bar) => bar.finish_and_clear(),
            None => self.line(),
        }
    }
}

/// Epochs one candidate of `strategy` trains for (an estimate for the
/// progress bar: an ensemble's fine-tuning trains every member).
pub fn candidate_epochs(policy: &Policy, strategy: StrategyName) -> u64 {
    let u = &policy.update;
    let grid = u.fine_tune.lr_grid.len().max(1) as u64;
    match strategy {
        StrategyName::None => 0,
        StrategyName::ContinueNew | StrategyName::ContinueAll => u.fine_tune.epochs as u64 * grid,
        StrategyName::Graft => u.graft.epochs.unwrap_or(policy.training.epochs) as u64,
        _ => policy.training.epochs as u64,
    }
}

/// Runs `f` with a progress bar counting training epochs (`total` is an
/// estimate; the bar grows if it falls short).
pub fn with_epoch_progress<R>(what: &str, total: u64, f: impl FnOnce() -> R) -> R {
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Progress::new(what, total, "epochs")));
    let hook: crate::model::EpochHook = {
        let progress = progress.clone();
        std::sync::Arc::new(move |epochs| {
            if let Ok(mut p) = progress.lock() {
                p.inc(epochs);
            }
        })
    };
    let result = crate::model::with_epoch_hook(hook, f);
    // The hook (and every clone the training threads held) is gone now.
    if let Ok(p) = std::sync::Arc::try_unwrap(progress) {
        if let Ok(p) = p.into_inner() {
            p.finish();
        }
    }
    result
}
