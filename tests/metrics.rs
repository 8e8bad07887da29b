//! The Prometheus endpoint of the real binary, parsed with the reference
//! client library (`prometheus_client`'s parser, tests/python), and the
//! loopback rule of `metrics.listen`.
#![forbid(unsafe_code)]

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn python() -> String {
    std::env::var("DRIFTD_PYTHON").unwrap_or_else(|_| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
        assert!(
            std::path::Path::new(venv).exists(),
            "set DRIFTD_PYTHON to a Python with prometheus_client \
             (`make test` does), or run scripts/bootstrap.sh --python"
        );
        venv.to_string()
    })
}

fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

#[derive(Debug, serde::Deserialize)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
    #[serde(rename = "type")]
    kind: String,
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {samples:?}"))
        .value
}

fn parse(root: &std::path::Path, body: &str) -> Vec<Sample> {
    let file = root.join("metrics.txt");
    std::fs::write(&file, body).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/parse_metrics.py");
    let o = std::process::Command::new(python())
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the parser rejected:\n{body}\n{}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn metrics_endpoint_parses_with_the_reference_parser() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Port 0: the kernel picks a free port; the daemon logs which.
    let policy = write_policy(root, "[metrics]\nlisten = \"127.0.0.1:0\"\n");
    gen_stream(&root.join("incoming"), 1000, None, 250, 31);
    std::fs::write(root.join("incoming/part-000050.parquet"), b"not parquet").unwrap();
    let mut child = spawn_daemon(&policy);
    let daemon_stderr = child.stderr.take().unwrap();
    let addr = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(daemon_stderr).lines();
        let line = lines
            .by_ref()
            .map(|l| l.unwrap())
            .find(|l| l.contains("serving Prometheus metrics"))
            .expect("the daemon logs the metrics address");
        // Keep draining stderr so the daemon never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["address"].as_str().unwrap().to_string()
    };
    wait_status(root, "version 1, every file", |s| {
        s["live_version"] == 1 && s["files_ingested"] == 4 && s["files_quarantined"] == 1
    });
    let before = status(root).unwrap();
    let samples = parse(root, &get(&addr, "/metrics").1);
    assert_eq!(
        value(&samples, "driftd_rolling_accuracy", &[]),
        before["rolling_accuracy"].as_f64().unwrap()
    );
    signal(&child, "USR1");
    let status = wait_status(root, "the manual update", |s| {
        s["updates"].as_array().is_some_and(|u| !u.is_empty()) && s["update_running"] == false
    });

    let (head, body) = get(&addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (head404, _) = get(&addr, "/");
    assert!(head404.starts_with("HTTP/1.1 404"), "{head404}");

    let samples = parse(root, &body);

    assert_eq!(value(&samples, "driftd_rows_ingested_total", &[]), 1000.0);
    assert_eq!(value(&samples, "driftd_files_ingested_total", &[]), 4.0);
    assert_eq!(value(&samples, "driftd_files_quarantined_total", &[]), 1.0);
    let kind = |n: &str| samples.iter().find(|s| s.name == n).unwrap().kind.clone();
    assert_eq!(kind("driftd_rows_ingested_total"), "counter");
    assert_eq!(kind("driftd_live_version"), "gauge");
    let live = status["live_version"].as_f64().unwrap();
    assert_eq!(value(&samples, "driftd_live_version", &[]), live);
    // Unknown until the window has rows (a promotion starts a new one): absent.
    match status["rolling_accuracy"].as_f64() {
        Some(a) => assert_eq!(value(&samples, "driftd_rolling_accuracy", &[]), a),
        None => assert!(!samples.iter().any(|s| s.name == "driftd_rolling_accuracy")),
    }
    assert!(value(&samples, "driftd_baseline_accuracy", &[]) > 0.5);
    let promoted = value(&samples, "driftd_updates_total", &[("outcome", "promoted")]);
    let rejected = value(&samples, "driftd_updates_total", &[("outcome", "rejected")]);
    assert_eq!(promoted + rejected, 1.0);
    assert_eq!(
        value(
            &samples,
            "driftd_updates_total",
            &[("outcome", "abandoned")]
        ),
        0.0
    );
    assert!(value(&samples, "driftd_last_update_duration_seconds", &[]) > 0.0);
    assert!(value(&samples, "driftd_last_training_loss", &[]) > 0.0);
    let rss = value(&samples, "process_resident_memory_bytes", &[]);
    assert!(rss > 10.0 * 1024.0 * 1024.0, "rss {rss}");

    signal(&child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
}

#[test]
fn metrics_refuse_a_non_loopback_address_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = write_policy(root, "[metrics]\nlisten = \"0.0.0.0:9464\"\n");
    let o = driftd(&["check-config", "--config", policy.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("metrics.listen") && stderr(&o).contains("allow_non_loopback"),
        "{}",
        stderr(&o)
    );
    let policy = write_policy(
        root,
        "[metrics]\nlisten = \"0.0.0.0:9464\"\nallow_non_loopback = true\n",
    );
    let o = driftd(&["check-config", "--config", policy.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}
