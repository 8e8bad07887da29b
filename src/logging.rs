//! Log output: human-readable by default, JSON lines for log shippers, and
//! under journald (stderr is the `JOURNAL_STREAM`) human lines without a
//! timestamp (the journal keeps its own) prefixed with the syslog priority
//! `<N>` of their level, as sd-daemon(3) describes.
//! Every decision is an event with a stable `event` field (see DESIGN.md).

use std::fmt;
use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The filter of the installed subscriber, replaceable on reload.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Dependencies whose INFO lines are chatter to a user ("Uninited", "Job
/// creator created"): held at WARN unless a filter names them.
const QUIET_DEPENDENCIES: &[&str] = &["tokio_cron_scheduler"];

/// The policy's filter with the chatty dependencies held at WARN (a
/// directive the filter has for one of them wins).
fn policy_filter(filter: &str) -> String {
    let mut full = filter.to_string();
    for dependency in QUIET_DEPENDENCIES {
        if !filter.contains(dependency) {
            if !full.trim().is_empty() {
                full.push(',');
            }
            full.push_str(dependency);
            full.push_str("=warn");
        }
    }
    full
}

/// Installs the global subscriber. `RUST_LOG` wins over the policy's filter.
/// Logs go to stderr so that stdout stays for command output (`--json`).
pub fn init(format: LogFormat, default_filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(policy_filter(default_filter)))
        .unwrap_or_else(|_| EnvFilter::new(policy_filter("info")));
    let (filter, handle) = reload::Layer::new(filter);
    let journald = stderr_is_journal();
    let output = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_target(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Human if journald => tracing_subscriber::fmt::layer()
            .event_format(SyslogPriority(
                tracing_subscriber::fmt::format()
                    .without_time()
                    .with_target(false)
                    .with_ansi(false),
            ))
            .with_ansi(false)
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // A second init (tests, demo inside a process that has one) is harmless.
    if tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
    }
}

/// Replaces the filter (a policy reload). `RUST_LOG`, when set, wins.
pub fn set_filter(filter: &str) -> Result<(), String> {
    if std::env::var_os("RUST_LOG").is_some() {
        return Err("RUST_LOG is set and wins over log.filter".into());
    }
    let new = EnvFilter::try_new(policy_filter(filter)).map_err(|e| format!("{filter:?}: {e}"))?;
    let handle = FILTER.get().ok_or("no log subscriber installed")?;
    handle.reload(new).map_err(|e| e.to_string())
}

/// Whether stderr is the journal stream systemd connected: `JOURNAL_STREAM`
/// holds its `device:inode` (systemd.exec(5)).
fn stderr_is_journal() -> bool {
    let Some(expected) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    stderr_identity().is_some_and(|id| expected.to_str() == Some(id.as_str()))
}

fn stderr_identity() -> Option<String> {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let meta = std::fs::File::from(fd).metadata().ok()?;
    Some(format!("{}:{}", meta.dev(), meta.ino()))
}

/// The syslog priority of a level, as journald reads `<N>` prefixes.
fn priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Prefixes each event with `<N>`, its syslog priority.
struct SyslogPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for SyslogPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", priority(*event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatty_dependencies_are_held_at_warn_unless_named() {
        assert_eq!(policy_filter("info"), "info,tokio_cron_scheduler=warn");
        assert_eq!(policy_filter(""), "tokio_cron_scheduler=warn");
        assert_eq!(
            policy_filter("debug,tokio_cron_scheduler=debug"),
            "debug,tokio_cron_scheduler=debug"
        );
        assert!(EnvFilter::try_new(policy_filter("driftd=debug,info")).is_ok());
    }

    #[test]
    fn priorities_follow_syslog() {
        assert_eq!(priority(Level::ERROR), 3);
        assert_eq!(priority(Level::WARN), 4);
        assert_eq!(priority(Level::INFO), 6);
        assert_eq!(priority(Level::DEBUG), 7);
    }

    #[test]
    fn stderr_identity_is_device_and_inode() {
        let id = stderr_identity().expect("stderr has metadata");
        let (dev, ino) = id.split_once(':').unwrap();
        assert!(dev.parse::<u64>().is_ok() && ino.parse::<u64>().is_ok());
    }
}
