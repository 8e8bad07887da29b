//! The command line as users meet it: help, the policy checker, global flags.
#![forbid(unsafe_code)]

mod common;
use common::*;

#[test]
fn help_runs_with_an_empty_environment() {
    // The binary finds libtorch through its baked-in run path.
    let o = std::process::Command::new(BIN)
        .env_clear()
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for cmd in [
        "run",
        "check-config",
        "demo",
        "init",
        "status",
        "versions",
        "rollback",
        "promote",
        "import",
        "pin",
        "unpin",
        "update",
        "compare",
        "gen-data",
        "tune",
    ] {
        assert!(stdout(&o).contains(cmd), "--help does not list {cmd}");
    }
}

#[test]
fn every_subcommand_has_help() {
    for cmd in [
        "run",
        "check-config",
        "demo",
        "init",
        "status",
        "versions",
        "rollback",
        "promote",
        "import",
        "pin",
        "unpin",
        "update",
        "compare",
        "gen-data",
        "tune",
    ] {
        let o = driftd(&[cmd, "--help"]);
        assert!(o.status.success(), "{cmd} --help: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage"), "{cmd} --help");
    }
}

#[test]
fn check_config_accepts_the_documented_example() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/policy.toml");
    let o = driftd(&["check-config", "--config", example]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --log-format is global: accepted after the subcommand too.
    let o = driftd(&["check-config", "--log-format", "json", "--config", example]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn check_config_names_every_mistake_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[data]\n\
         features = [\"f0\", \"f1\"]\n\
         labl = \"label\"\n\
         [training]\n\
         learning_rate = -0.01\n\
         [model]\n\
         hidden = [20, 0]\n",
    )
    .unwrap();
    let o = driftd(&["check-config", "--config", p.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    let file = p.display().to_string();
    assert!(err.contains("3 errors"), "{err}");
    assert!(
        err.contains(&format!("{file}:3:1: data.labl: unknown field")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{file}:5:17: training.learning_rate")),
        "{err}"
    );
    assert!(err.contains(&format!("{file}:7:10: model.hidden")), "{err}");
}

#[test]
fn check_config_on_a_missing_file_says_so() {
    let o = driftd(&["check-config", "--config", "/nonexistent/policy.toml"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/policy.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn read_only_commands_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let policy = write_policy(&root, "");
    gen_reference(&root.join("ref"));
    let cfg = policy.to_str().unwrap();
    let (models, state) = (root.join("models"), root.join("state"));
    let file = root.join("ref/old.parquet");
    let missing = format!("the registry directory {} does not exist", models.display());
    let cases: Vec<(Vec<&str>, bool, String)> = vec![
        (vec!["status"], true, format!("no versions yet: {missing}")),
        (
            vec!["status", "--json"],
            true,
            "\"live_version\": null".into(),
        ),
        (
            vec!["versions"],
            true,
            format!("no versions yet ({missing})"),
        ),
        (vec!["versions", "--json"], true, "[]".into()),
        (
            vec!["report"],
            false,
            format!("no status in {}", state.display()),
        ),
        (vec!["check-config"], true, "ok".into()),
        (
            vec!["probe-file", file.to_str().unwrap()],
            true,
            "500 rows".into(),
        ),
    ];
    for (args, ok, expected) in cases {
        let mut a = args.clone();
        a.extend(["--config", cfg]);
        let o = driftd(&a);
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert_eq!(o.status.success(), ok, "{args:?}: {out}");
        assert!(out.contains(&expected), "{args:?}: {out}");
        assert!(
            !models.exists() && !state.exists(),
            "{args:?} created the registry or the state"
        );
    }
}

#[test]
fn check_config_warns_of_a_missing_data_dir_and_names_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let p = root.join("policy.toml");
    std::fs::write(&p, "[data]\ndir = \"incoming\"\nfeatures = \"f*\"\n").unwrap();
    let o = driftd(&["check-config", "--config", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    for key in ["registry", "state"] {
        let line = format!("note: {key}.dir not set: using /var/lib/driftd/");
        assert!(out.contains(&line), "{out}");
    }
    assert!(!out.contains("data.dir not set"), "{out}");
    let warning = format!(
        "warning: data.dir: the data directory {} does not exist; `driftd run` keeps polling",
        root.join("incoming").display()
    );
    assert!(err.contains(&warning), "{err}");
    assert!(out.contains("ok, with 1 warning"), "{out}");

    std::fs::create_dir(root.join("incoming")).unwrap();
    let o = driftd(&["check-config", "--config", p.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert!(stdout(&o).ends_with(": ok\n"), "{}", stdout(&o));
}

/// A missing policy file is said once, with what to do (the cause was
/// printed twice and nothing said how to give a policy).
#[test]
fn a_missing_policy_file_is_named_once_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.toml");
    let out = driftd(&["status", "--config", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("cannot read policy file"), "{err}");
    assert!(err.contains("give the policy with --config FILE"), "{err}");
}
