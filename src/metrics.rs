//! The optional Prometheus endpoint: `GET /metrics` in the text exposition
//! format (version 0.0.4), rendered from the daemon's published [`Status`].
//!
//! A minimal HTTP/1.1 responder (one request per connection, `Connection:
//! close`) on a `std::net::TcpListener` in its own thread: a scrape is one
//! small GET on loopback. No HTTP framework, and not tokio's listener
//! either: tokio's `net` feature would rebuild polars (it shares tokio),
//! which costs more build time than this endpoint is worth. Requests are
//! served one at a time, each bounded by a 5 s read/write timeout.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info};

use crate::status::Status;

/// Outcomes always exported, so that each series exists from the start.
const UPDATE_OUTCOMES: &[&str] = &["promoted", "rejected", "failed", "abandoned"];
const MAX_REQUEST_HEAD: usize = 8192;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("metrics.listen {addr}: {source}")]
pub struct MetricsError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}

/// Binds the endpoint and serves it from a thread `driftd-metrics` for the
/// life of the process. Binding happens here, at start, so that a taken
/// port fails the start loudly.
pub fn start(
    addr: SocketAddr,
    status: watch::Receiver<Status>,
) -> Result<SocketAddr, MetricsError> {
    let err = |source| MetricsError { addr, source };
    let listener = TcpListener::bind(addr).map_err(err)?;
    let local = listener.local_addr().map_err(err)?;
    std::thread::Builder::new()
        .name("driftd-metrics".into())
        .spawn(move || serve(listener, status))
        .map_err(err)?;
    info!(address = %local, "serving Prometheus metrics on http://{local}/metrics");
    Ok(local)
}

fn serve(listener: TcpListener, status: watch::Receiver<Status>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = respond(stream, &status) {
                    debug!(error = %e, "metrics request failed");
                }
            }
            Err(e) => {
                debug!(error = %e, "cannot accept a metrics connection");
                // Out of file descriptors and the like: do not spin.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn respond(mut stream: TcpStream, status: &watch::Receiver<Status>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let head = read_head(&mut stream)?;
    let request_line = head.lines().next().unwrap_or_default();
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (code, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let snapshot = status.borrow().clone();
            (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                render(&snapshot, resident_memory_bytes()),
            )
        }
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "see /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET /metrics only\n".to_string(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if code.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if method != "HEAD" {
        response.push_str(&body);
    }
    stream.write_all(response.as_bytes())?;
    stream.flush()
}

/// Reads up to the blank line that ends the request head.
fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() >= MAX_REQUEST_HEAD {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// This process's resident set size. `/proc/self/statm` counts pages and
/// the page size needs sysconf (unsafe FFI); `/proc/self/status` has
/// `VmRSS` in kB.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The text exposition of a status.
pub fn render(s: &Status, resident_bytes: Option<u64>) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {}", number(*value));
        }
    };
    let one = |v: Option<f64>| v.map(|v| vec![(String::new(), v)]).unwrap_or_default();
    let count = |v: u64| vec![(String::new(), v as f64)];

    family(
        "driftd_rolling_accuracy",
        "gauge",
        "Accuracy of the live model over the rolling window (monitor.window rows).",
        &one(s.rolling_accuracy),
    );
    family(
        "driftd_baseline_accuracy",
        "gauge",
        "Holdout accuracy of the live version, the drift detectors' baseline.",
        &one(s.baseline),
    );
    family(
        "driftd_live_version",
        "gauge",
        "The live model version.",
        &one(s.live_version.map(|v| v as f64)),
    );
    family(
        "driftd_rows_since_live",
        "gauge",
        "Rows scored since the live version went live.",
        &count(s.rows_since_live),
    );
    family(
        "driftd_rows_ingested_total",
        "counter",
        "Labelled rows read from the data directory.",
        &count(s.rows_ingested),
    );
    family(
        "driftd_files_ingested_total",
        "counter",
        "Parquet files read from the data directory.",
        &count(s.files_ingested),
    );
    family(
        "driftd_files_quarantined_total",
        "counter",
        "Files that could not be used (not Parquet, bad schema or values).",
        &count(s.files_quarantined),
    );
    let alerts: Vec<(String, f64)> = s
        .alerts_by_detector
        .iter()
        .flat_map(|(detector, by_severity)| {
            by_severity.iter().map(move |(severity, n)| {
                (
                    format!(
                        "{{detector=\"{}\",severity=\"{}\"}}",
                        escape(detector),
                        escape(severity)
                    ),
                    *n as f64,
                )
            })
        })
        .collect();
    family(
        "driftd_drift_alerts_total",
        "counter",
        "drift_alert events by detector and severity (warning or drift).",
        &alerts,
    );
    let updates: Vec<(String, f64)> = UPDATE_OUTCOMES
        .iter()
        .map(|o| o.to_string())
        .chain(
            s.updates_by_outcome
                .keys()
                .filter(|k| !UPDATE_OUTCOMES.contains(&k.as_str()))
                .cloned(),
        )
        .map(|o| {
            let n = s.updates_by_outcome.get(&o).copied().unwrap_or(0);
            (format!("{{outcome=\"{}\"}}", escape(&o)), n as f64)
        })
        .collect();
    family(
        "driftd_updates_total",
        "counter",
        "Finished update tournaments by outcome.",
        &updates,
    );
    family(
        "driftd_update_triggers_total",
        "counter",
        "Update triggers received (drift, schedule, manual).",
        &count(s.triggers),
    );
    family(
        "driftd_update_triggers_suppressed_total",
        "counter",
        "Triggers the cooldown or the daily cap suppressed.",
        &count(s.triggers_suppressed),
    );
    family(
        "driftd_update_running",
        "gauge",
        "1 while an update tournament runs.",
        &count(u64::from(s.update_running)),
    );
    family(
        "driftd_last_update_duration_seconds",
        "gauge",
        "Wall time of the last finished update.",
        &one(s.last_update_seconds),
    );
    if let Some(o) = &s.online {
        family(
            "driftd_online_promotions_total",
            "counter",
            "Versions the online challenger promoted.",
            &count(o.promotions),
        );
        family(
            "driftd_online_rollbacks_total",
            "counter",
            "Rollbacks of the online versions to their anchor.",
            &count(o.rollbacks),
        );
    }
    family(
        "driftd_last_training_loss",
        "gauge",
        "Final training loss of the last promoted version.",
        &one(s.last_train_loss),
    );
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        &one(resident_bytes.map(|b| b as f64)),
    );
    family(
        "driftd_build_info",
        "gauge",
        "Always 1; the version label is driftd's.",
        &[(
            format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
            1.0,
        )],
    );
    out
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_help_and_type() {
        let mut s = Status {
            live_version: Some(3),
            rolling_accuracy: Some(0.8125),
            rows_ingested: 1500,
            ..Status::default()
        };
        s.alerts_by_detector
            .entry("a\"b".into())
            .or_default()
            .insert("drift".into(), 2);
        let text = render(&s, Some(4096));
        assert!(text.contains(
            "# TYPE driftd_rows_ingested_total counter\ndriftd_rows_ingested_total 1500\n"
        ));
        assert!(text.contains("driftd_rolling_accuracy 0.8125\n"));
        assert!(text.contains("driftd_live_version 3\n"));
        assert!(
            text.contains("driftd_drift_alerts_total{detector=\"a\\\"b\",severity=\"drift\"} 2\n")
        );
        assert!(text.contains("driftd_updates_total{outcome=\"abandoned\"} 0\n"));
        // Unknown values are left out rather than exported as 0.
        assert!(!text.contains("driftd_baseline_accuracy"));
    }

    #[test]
    fn resident_memory_is_read() {
        assert!(resident_memory_bytes().is_some_and(|b| b > 1024 * 1024));
    }
}
