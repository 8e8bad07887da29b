//! `driftd run`: the daemon in the foreground, with its signals (SIGUSR1
//! asks for an update, SIGHUP reloads the policy, SIGTERM and SIGINT stop
//! it) and its metrics endpoint.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};

use super::support::{load_policy, load_resolved, runtime};
use crate::config::Policy;
use crate::daemon;
use crate::daemon::state_lock::StateLock;
use crate::logging::{self, LogFormat};

pub(super) fn run(format: LogFormat, config: PathBuf) -> Result<ExitCode> {
    let policy = load_policy(&config)?;
    logging::init(format, &policy.log.filter);
    runtime()?.block_on(run_daemon(policy, config))?;
    Ok(ExitCode::SUCCESS)
}

async fn run_daemon(policy: Policy, config: PathBuf) -> Result<()> {
    // First of all: a second daemon on this state directory must refuse
    // before it binds the metrics port or writes anything.
    let state_lock = StateLock::acquire(&policy.state.dir)?;
    let (trig_tx, trig_rx) = mpsc::channel(4);
    let (status_tx, status_rx) = watch::channel(crate::status::Status::default());
    if let Some(addr) = policy.metrics.address() {
        crate::metrics::start(addr, status_rx)?;
    }
    // SIGUSR1 asks for an update now, through the channel the schedule uses.
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .context("cannot install the SIGUSR1 handler")?;
    let manual = trig_tx.clone();
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            tracing::info!("SIGUSR1: update requested");
            // Full channel: a request is already waiting.
            let _ = manual.try_send(crate::status::Trigger::Manual);
        }
    });
    // SIGHUP re-reads the policy; the daemon validates what changed.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install the SIGHUP handler")?;
    let (reload_tx, reload_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading {}", config.display());
            if reload_tx.send(load_resolved(&config)).await.is_err() {
                break;
            }
        }
    });
    let service = daemon::service::Service {
        notifier: crate::sd_notify::Notifier::from_env()?,
        reloads: Some(reload_rx),
        state_lock: Some(state_lock),
    };
    // Installed now, not when the loop first polls the future: a SIGTERM
    // right after the first status.json (the daemon looks up) must stop it
    // cleanly, not kill it with the default action.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutdown requested");
    };
    daemon::run_with(
        policy,
        crate::trigger::Clock::System,
        shutdown,
        trig_tx,
        trig_rx,
        status_tx,
        service,
    )
    .await?;
    Ok(())
}
