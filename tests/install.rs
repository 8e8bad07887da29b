//! `make install DESTDIR=...` puts the binary, its libtorch libraries, the
//! unit, the policy, the README with the user guide it links to, and the
//! state layout in place; `make uninstall` removes what install put and
//! keeps an edited policy and the state. Installs the test's dev binary
//! (DRIFTD_BIN) so no release build is needed.
#![forbid(unsafe_code)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PREFIX: &str = "/opt/driftd";

fn make(target: &str, destdir: &Path) -> String {
    let o = Command::new("make")
        .current_dir(ROOT)
        .args(["--no-print-directory", target])
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg(format!("PREFIX={PREFIX}"))
        .arg(format!("DRIFTD_BIN={}", common::BIN))
        .output()
        .expect("make runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "make {target} failed: {out}");
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_then_uninstall() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path();
    let at = |p: &str| dest.join(p.trim_start_matches('/'));
    make("install", dest);

    let bin = at("/opt/driftd/bin/driftd");
    assert_eq!(mode(&bin), 0o755);
    // The libtorch libraries are bundled and the binary loads them from
    // there ($ORIGIN/../lib/driftd comes first in its run path).
    let libdir = at("/opt/driftd/lib/driftd");
    let manifest = std::fs::read_to_string(libdir.join("MANIFEST")).unwrap();
    let libs: Vec<&str> = manifest.lines().collect();
    for needed in ["libtorch_cpu.so", "libc10.so"] {
        assert!(libs.contains(&needed), "{needed} not bundled: {libs:?}");
    }
    for lib in &libs {
        assert!(libdir.join(lib).is_file(), "{lib} listed but missing");
    }
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let torch = ldd
        .lines()
        .find(|l| l.trim_start().starts_with("libtorch_cpu.so"))
        .unwrap_or_else(|| panic!("ldd: {ldd}"));
    // "libtorch_cpu.so => /dest/opt/driftd/bin/../lib/driftd/libtorch_cpu.so (0x...)"
    let resolved = torch.split_whitespace().nth(2).unwrap();
    assert_eq!(
        Path::new(resolved).canonicalize().unwrap(),
        libdir.join("libtorch_cpu.so").canonicalize().unwrap(),
        "libtorch_cpu.so resolves outside the install: {torch}"
    );
    let check = Command::new(&bin)
        .args(["check-config", "--config"])
        .arg(at("/etc/driftd/policy.toml"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", common::stderr(&check));

    // The unit names the installed paths.
    let unit = std::fs::read_to_string(at("/etc/systemd/system/driftd.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/driftd/bin/driftd run --config /etc/driftd/policy.toml"));
    assert!(
        !unit.contains("/usr/local/bin"),
        "unsubstituted path in the unit"
    );
    assert!(at("/etc/sysusers.d/driftd.conf").is_file());
    assert!(at("/etc/tmpfiles.d/driftd.conf").is_file());
    let shipped = std::fs::read_to_string(Path::new(ROOT).join("config/policy.toml")).unwrap();
    let policy = at("/etc/driftd/policy.toml");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), shipped);
    // The state layout: data read through the group, state private.
    assert_eq!(mode(&at("/var/lib/driftd/incoming")), 0o2770);
    assert_eq!(mode(&at("/var/lib/driftd/models")), 0o750);
    assert_eq!(mode(&at("/var/lib/driftd/state")), 0o750);
    check_docs(&at("/opt/driftd/share/doc/driftd"));

    // An edited policy survives a second install and the uninstall; so
    // does the state.
    let edited = format!("{shipped}\n# edited by the operator\n");
    std::fs::write(&policy, &edited).unwrap();
    let out = make("install", dest);
    assert!(out.contains("kept your"), "{out}");
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), edited);
    std::fs::write(at("/var/lib/driftd/state/manifest.json"), b"{}").unwrap();
    // A page an older checkout installed and this one no longer ships.
    std::fs::write(at("/opt/driftd/share/doc/driftd/docs/retired.md"), b"# old").unwrap();

    make("uninstall", dest);
    for gone in [
        "/opt/driftd/bin/driftd",
        "/opt/driftd/lib/driftd",
        "/opt/driftd/share/doc/driftd",
        "/etc/systemd/system/driftd.service",
        "/etc/sysusers.d/driftd.conf",
        "/etc/tmpfiles.d/driftd.conf",
        "/var/lib/driftd/incoming",
        "/var/lib/driftd/models",
    ] {
        assert!(!at(gone).exists(), "{gone} is still there after uninstall");
    }
    assert_eq!(std::fs::read_to_string(&policy).unwrap(), edited);
    assert!(at("/var/lib/driftd/state/manifest.json").is_file());

    // An unedited policy goes with the rest.
    std::fs::write(&policy, &shipped).unwrap();
    make("uninstall", dest);
    assert!(!policy.exists());
    assert!(!at("/etc/driftd").exists());
}

/// The README and every page of docs/ are installed as shipped, and every
/// relative link in them leads to an installed file.
fn check_docs(docdir: &Path) {
    let root = Path::new(ROOT);
    let mut pages = vec![String::from("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    assert!(pages.len() > 1, "no docs/*.md found");
    for page in &pages {
        let installed = docdir.join(page);
        let text = std::fs::read_to_string(&installed)
            .unwrap_or_else(|e| panic!("{page} is not installed: {e}"));
        assert_eq!(
            text,
            std::fs::read_to_string(root.join(page)).unwrap(),
            "{page}"
        );
        assert_eq!(mode(&installed), 0o644, "{page}");
        let dir = installed.parent().unwrap();
        for target in relative_links(&text) {
            let file = target.split('#').next().unwrap();
            if file.is_empty() {
                continue; // an anchor in the same page
            }
            assert!(
                dir.join(file).is_file(),
                "the installed {page} links to {target}, which is not installed"
            );
        }
    }
}

/// The targets of the Markdown links `[text](target)` that are not URLs.
fn relative_links(text: &str) -> Vec<&str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target))
        .filter(|t| !t.contains("://") && !t.starts_with("mailto:"))
        .collect()
}
