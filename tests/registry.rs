//! The registry end to end on the real binary: the start-up check (broken
//! versions, fallback), rollback / promote with a running daemon, pins and
//! retention.
#![forbid(unsafe_code)]

mod common;
use common::*;

use std::path::{Path, PathBuf};

use driftd::registry::lock::RegistryLock;
use driftd::registry::{HistoryEntry, Registry};

/// A registry with version 1 trained by `driftd init`; returns the policy.
fn init_registry(root: &Path, extra: &str) -> PathBuf {
    gen_reference(&root.join("ref"));
    let policy = write_policy(root, extra);
    let o = driftd(&[
        "init",
        "--config",
        policy.to_str().unwrap(),
        "--data",
        root.join("ref/old.parquet").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "init failed: {}", stderr(&o));
    let (meta, _) = Registry::open(&root.join("models"))
        .unwrap()
        .load_model(1)
        .unwrap();
    let files = meta.files.unwrap();
    assert_eq!(files.list.len(), 1);
    assert!(files.list[0].name.ends_with("ref/old.parquet"));
    assert_eq!(files.list[0].rows, 500);
    assert_eq!(meta.seeds.unwrap().tournament, 1);
    policy
}

/// Writes version `v` (version 1's weights, a new id) like a promotion
/// would, optionally making it live.
/// Version 1 from `init`, then 2 and 3, each made live in turn (3 is live).
fn three_live_versions(root: &Path) -> PathBuf {
    let policy = init_registry(root, "");
    add_version(root, 2, true);
    add_version(root, 3, true);
    policy
}

fn add_version(root: &Path, v: u64, live: bool) {
    let reg = Registry::open(&root.join("models")).unwrap();
    let (mut meta, model) = reg.load_model(1).unwrap();
    meta.parent = reg.live_version().unwrap();
    meta.version = v;
    meta.strategy = "refit_new".into();
    reg.write_version(meta, &model).unwrap();
    if live {
        reg.set_live(v, "model_promoted", "test").unwrap();
    }
}

fn last_history(root: &Path) -> HistoryEntry {
    let reg = Registry::open(&root.join("models")).unwrap();
    reg.history().unwrap().pop().expect("a history entry")
}

fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

fn stop(child: Running) -> String {
    signal(&child, "TERM");
    let out = child.into_inner().wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn a_broken_live_version_is_reported_and_the_daemon_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = three_live_versions(root);
    let cfg = policy.to_str().unwrap();
    let ckpt = root.join("models/versions/000003/model.safetensors");
    corrupt(&ckpt);

    let o = driftd(&["versions", "--config", cfg]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("BROKEN") && out.contains("checksum"), "{out}");
    let o = driftd(&["versions", "--json", "--config", cfg]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        rows[2]["broken"].as_str().unwrap().contains("checksum"),
        "{rows:#}"
    );
    assert!(rows[1]["broken"].is_null());
    let o = driftd(&["status", "--config", cfg]);
    assert!(
        stdout(&o).contains("live version: 3 is BROKEN"),
        "{}",
        stdout(&o)
    );
    // Read-only commands change nothing.
    assert!(!root.join("models/broken.json").exists());

    let child = spawn_daemon(&policy);
    wait_status(root, "the daemon serves version 2", |s| {
        s["live_version"] == 2
    });
    let logs = stop(child);
    let fallback = logs
        .lines()
        .find(|l| l.contains("\"event\":\"fallback\""))
        .unwrap_or_else(|| panic!("no fallback event: {logs}"));
    assert!(fallback.contains("\"level\":\"ERROR\""), "{fallback}");
    assert!(logs.contains("\"event\":\"version_broken\""), "{logs}");
    let h = last_history(root);
    assert_eq!(
        (h.event.as_str(), h.version, h.previous),
        ("fallback", 2, Some(3))
    );
    assert!(
        h.reason.contains("live version 3 is broken"),
        "{}",
        h.reason
    );
    let broken: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("models/broken.json")).unwrap()).unwrap();
    assert_eq!(broken["versions"][0]["version"], 3, "{broken:#}");
    // The broken files are kept for a human to look at.
    assert!(ckpt.exists());

    let o = driftd(&["promote", "--config", cfg, "3"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("version 3 is broken"), "{}", stderr(&o));
}

#[test]
fn rollback_and_promote_move_a_running_daemon_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = init_registry(root, "");
    let cfg = policy.to_str().unwrap();
    add_version(root, 2, true);
    let child = spawn_daemon(&policy);
    wait_status(root, "the daemon serves version 2", |s| {
        s["live_version"] == 2
    });

    let o = driftd(&["rollback", "--config", cfg, "--reason", "accuracy fell"]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_status(root, "the daemon follows the rollback", |s| {
        s["live_version"] == 1
    });
    let h = last_history(root);
    assert_eq!(
        (h.event.as_str(), h.version, h.previous),
        ("rollback", 1, Some(2))
    );
    assert_eq!(h.reason, "accuracy fell");
    assert!(h.by.unwrap().starts_with("driftd rollback (pid "));

    let o = driftd(&["promote", "--config", cfg, "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    wait_status(root, "the daemon follows the promotion", |s| {
        s["live_version"] == 2
    });
    assert_eq!(last_history(root).event, "promote");
    let o = driftd(&["rollback", "--config", cfg, "--to", "2"]);
    assert!(stderr(&o).contains("already live"), "{}", stderr(&o));

    // Both are writers: a held lock refuses them and names the holder.
    let lock = RegistryLock::acquire(&root.join("models"), "the test").unwrap();
    for args in [vec!["rollback"], vec!["promote", "1"]] {
        let mut a = args.clone();
        a.extend(["--config", cfg]);
        let o = driftd(&a);
        assert!(!o.status.success());
        assert!(stderr(&o).contains("locked by the test"), "{}", stderr(&o));
    }
    drop(lock);
    let logs = stop(child);
    assert_eq!(
        logs.matches("\"event\":\"live_changed\"").count(),
        2,
        "{logs}"
    );
}

#[test]
fn the_default_rollback_refuses_a_broken_previous_version() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = three_live_versions(root);
    let cfg = policy.to_str().unwrap();
    corrupt(&root.join("models/versions/000002/model.safetensors"));
    let o = driftd(&["rollback", "--config", cfg]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("version 2 is broken") && err.contains("--to"),
        "{err}"
    );
    let o = driftd(&["rollback", "--config", cfg, "--to", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_history(root).version, 1);
}

#[test]
fn pins_are_listed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = init_registry(root, "");
    let cfg = policy.to_str().unwrap();
    let o = driftd(&["pin", "--config", cfg, "1", "--reason", "the reference"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = driftd(&["versions", "--json", "--config", cfg]);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rows[0]["pinned"], true);
    let o = driftd(&["versions", "--config", cfg]);
    assert!(stdout(&o).contains("live pin"), "{}", stdout(&o));
    let reg = Registry::open(&root.join("models")).unwrap();
    assert_eq!(reg.pins().unwrap()[0].reason, "the reference");
    let o = driftd(&["pin", "--config", cfg, "5"]);
    assert!(
        stderr(&o).contains("version 5 does not exist"),
        "{}",
        stderr(&o)
    );
    let o = driftd(&["unpin", "--config", cfg, "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(reg.pins().unwrap().is_empty());
}

fn import(cfg: &str, file: &Path, promote: bool) -> std::process::Output {
    let mut args = vec![
        "import",
        "--config",
        cfg,
        "--safetensors",
        file.to_str().unwrap(),
    ];
    if promote {
        args.push("--promote");
    }
    driftd(&args)
}

#[test]
fn import_refuses_what_does_not_fit_the_policy() {
    use driftd::config::{Activation, Init};
    use driftd::model::{Architecture, Mlp};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = init_registry(root, "");
    let cfg = policy.to_str().unwrap();
    let write = |name: &str, hidden: Vec<usize>| {
        let arch = Architecture {
            inputs: 20,
            hidden,
            activation: Activation::Relu,
            classes: 2,
        };
        let path = root.join(name);
        let bytes = Mlp::new(arch, Init::HeNormal, 1).to_safetensors().unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let o = import(cfg, &write("narrow.safetensors", vec![20, 9]), false);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("tensor \"2.weight\" has shape [9, 20], expected [10, 20]"),
        "{err}"
    );
    let o = import(cfg, &write("deep.safetensors", vec![20, 10, 5]), false);
    assert!(
        stderr(&o).contains("tensor \"6.bias\" is not part of the architecture"),
        "{}",
        stderr(&o)
    );
    let pt = root.join("model.pt");
    std::fs::write(&pt, b"PK\x03\x04 a torch pickle").unwrap();
    let o = import(cfg, &pt, false);
    assert!(
        stderr(&o).contains("is not a .safetensors file"),
        "{}",
        stderr(&o)
    );
    let garbage = root.join("garbage.safetensors");
    std::fs::write(&garbage, b"not really").unwrap();
    let o = import(cfg, &garbage, false);
    assert!(
        stderr(&o).contains("not a valid safetensors file"),
        "{}",
        stderr(&o)
    );
    // Nothing was written by the refused imports.
    let reg = Registry::open(&root.join("models")).unwrap();
    assert_eq!(reg.versions().unwrap(), vec![1]);

    // A fitting file becomes version 2, live only when asked.
    let o = import(cfg, &write("good.safetensors", vec![20, 10]), false);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(reg.live_version().unwrap(), Some(1));
    let (meta, _) = reg.load_model(2).unwrap();
    assert_eq!((meta.strategy.as_str(), meta.parent), ("import", Some(1)));
    assert!(meta.training.is_none());
}

#[test]
fn retention_after_promotions_keeps_live_previous_newest_and_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = init_registry(root, "");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("dir = \"models\"", "dir = \"models\"\nkeep_last = 1"),
    )
    .unwrap();
    let cfg = policy.to_str().unwrap();
    let ckpt = root.join("v1.safetensors");
    std::fs::copy(root.join("models/versions/000001/model.safetensors"), &ckpt).unwrap();
    let reg = Registry::open(&root.join("models")).unwrap();

    assert!(import(cfg, &ckpt, true).status.success());
    // 2 is live and newest, 1 was live before it.
    assert_eq!(reg.versions().unwrap(), vec![1, 2]);
    assert!(import(cfg, &ckpt, true).status.success());
    assert_eq!(reg.versions().unwrap(), vec![2, 3]);
    assert!(driftd(&["pin", "--config", cfg, "3"]).status.success());
    // Not promoted: no retention.
    assert!(import(cfg, &ckpt, false).status.success());
    assert_eq!(reg.versions().unwrap(), vec![2, 3, 4]);
    let o = import(cfg, &ckpt, true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("deleted by retention"),
        "{}",
        stderr(&o)
    );
    // 5 is live and newest, 3 pinned (and live before 5); 2 and 4 go.
    assert_eq!(reg.versions().unwrap(), vec![3, 5]);
    // Rollbacks delete nothing.
    assert!(driftd(&["rollback", "--config", cfg]).status.success());
    assert_eq!(reg.live_version().unwrap(), Some(3));
    assert_eq!(reg.versions().unwrap(), vec![3, 5]);
}

#[test]
fn rollback_after_rollback_walks_back_and_refuses_at_the_oldest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let policy = three_live_versions(root);
    let cfg = policy.to_str().unwrap();
    let reg = Registry::open(&root.join("models")).unwrap();
    for expected in [2, 1] {
        let o = driftd(&["rollback", "--config", cfg]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(reg.live_version().unwrap(), Some(expected));
    }
    let o = driftd(&["rollback", "--config", cfg]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("nothing to roll back to") && err.contains("version 1 stays live"),
        "{err}"
    );
    assert_eq!(reg.live_version().unwrap(), Some(1));
    assert_eq!(last_history(root).event, "rollback");
}
