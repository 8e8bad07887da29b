//! What `driftd check-config` says about a valid policy besides "ok": the
//! directories that fell back to their defaults (a policy without
//! `[registry]` silently uses `/var/lib/driftd/models`) and a data directory
//! that does not exist. The latter is a warning, not an error: `driftd run`
//! keeps polling a missing data directory by design (an unmounted share, a
//! deploy that replaces it) and reads it once it appears, and check-config
//! runs before every start and reload of the service, which must not fail
//! for it.

use std::path::Path;

use super::Policy;

/// Remarks on a valid policy, for check-config.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// "registry.dir not set: using /var/lib/driftd/models".
    pub defaults: Vec<String>,
    /// Problems `driftd run` tolerates but that keep it from working yet.
    pub warnings: Vec<String>,
}

/// `text` is the policy file as written (to tell a default from a set
/// key); `policy` is its parse with the directories resolved.
pub fn notes(text: &str, policy: &Policy) -> Notes {
    let doc = text.parse::<toml::Table>().unwrap_or_default();
    let set = |section: &str, key: &str| {
        doc.get(section)
            .and_then(|s| s.as_table())
            .is_some_and(|t| t.contains_key(key))
    };
    let mut out = Notes::default();
    for (section, dir) in [
        ("data", &policy.data.dir),
        ("registry", &policy.registry.dir),
        ("state", &policy.state.dir),
    ] {
        if !set(section, "dir") {
            out.defaults
                .push(format!("{section}.dir not set: using {}", dir.display()));
        }
    }
    if let Some(w) = data_dir_warning(&policy.data.dir) {
        out.warnings.push(w);
    }
    out
}

fn data_dir_warning(dir: &Path) -> Option<String> {
    let waits = "`driftd run` keeps polling for it and reads nothing until it appears";
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "data.dir: {} is not a directory; {waits}",
            dir.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "data.dir: the data directory {} does not exist; {waits}",
            dir.display()
        )),
        Err(e) => Some(format!(
            "data.dir: cannot read the data directory {}: {e}; {waits}",
            dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_directories_and_a_missing_data_dir_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "[data]\ndir = \"incoming\"\nfeatures = [\"a\"]\n[state]\ndir = \"s\"\n";
        let mut policy = Policy::parse(text).unwrap();
        policy.resolve_paths(tmp.path());
        let n = notes(text, &policy);
        assert_eq!(
            n.defaults,
            vec!["registry.dir not set: using /var/lib/driftd/models".to_string()]
        );
        let data = tmp.path().join("incoming");
        assert_eq!(n.warnings.len(), 1);
        assert!(
            n.warnings[0].starts_with(&format!(
                "data.dir: the data directory {} does not exist",
                data.display()
            )),
            "{:?}",
            n.warnings
        );
        std::fs::create_dir(&data).unwrap();
        assert!(notes(text, &policy).warnings.is_empty());
    }
}
