//! A file that kills the process while it is read must not kill every
//! restart. Panics inside polars are caught (`ingest::catching`), but an
//! allocation failure aborts the process (a corrupt page or footer can claim
//! exabytes; the fuzzer found such files) and an out-of-memory kill cannot
//! be caught either. So before reading a file the daemon notes it in
//! `state/reading.json`, and drops the note once the file's outcome is
//! committed. A note left by a previous process names a file whose read
//! never finished: that file is first read in a child process
//! (`driftd probe-file`); if the child dies of a signal the file is
//! quarantined, otherwise (the previous process was stopped by something
//! else, such as SIGKILL) it is read as usual.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Policy;
use crate::ingest::{FileProblem, NewFile};

const NOTE: &str = "reading.json";
const PROBE_POLICY: &str = "probe-policy.toml";

/// The file being read, by name and `stat` identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadingNote {
    pub name: String,
    pub size: u64,
    pub inode: u64,
    pub mtime_ns: i128,
}

impl ReadingNote {
    fn of(file: &NewFile) -> ReadingNote {
        ReadingNote {
            name: file.name.clone(),
            size: file.identity.size,
            inode: file.identity.inode,
            mtime_ns: file.identity.mtime_ns,
        }
    }

    pub fn is(&self, file: &NewFile) -> bool {
        *self == ReadingNote::of(file)
    }
}

/// The note a previous process left, if any.
pub fn left_over(state_dir: &Path) -> Option<ReadingNote> {
    let bytes = std::fs::read(state_dir.join(NOTE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Notes `file` as being read. Not fsynced: it guards against the process
/// dying, after which the page cache still holds it; a machine crash that
/// loses it only means the next start reads the file without a probe.
pub fn note(state_dir: &Path, file: &NewFile) {
    let json = serde_json::to_vec(&ReadingNote::of(file)).expect("a note serializes");
    let path = state_dir.join(NOTE);
    let tmp = crate::fsutil::temp_name(&path);
    let written = crate::fsutil::create_private_file(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &json))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot note the file being read");
    }
}

/// Drops the note (the file's outcome is committed).
pub fn clear(state_dir: &Path) {
    let _ = std::fs::remove_file(state_dir.join(NOTE));
}

/// Reads `path` in a child `driftd probe-file` with the daemon's policy.
/// `Err` when the child died of a signal: the file must not be read here.
pub async fn probe(policy: &Policy, path: &Path) -> Result<(), FileProblem> {
    let policy_path = policy.state.dir.join(PROBE_POLICY);
    let text = toml::to_string(policy).expect("a policy serializes");
    let exe = std::env::current_exe();
    let path: PathBuf = path.to_path_buf();
    let status = tokio::task::spawn_blocking(move || {
        crate::fsutil::write_atomic(&policy_path, text.as_bytes())?;
        let status = std::process::Command::new(exe?)
            .arg("probe-file")
            .arg("--config")
            .arg(&policy_path)
            .arg(&path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_file(&policy_path);
        status
    })
    .await;
    match status {
        Ok(Ok(status)) => {
            use std::os::unix::process::ExitStatusExt;
            match status.signal() {
                Some(signal) => Err(FileProblem::ReaderCrashed { signal }),
                None => Ok(()),
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot probe the file in a child process; reading it here");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(error = %e, "the probe task failed; reading the file here");
            Ok(())
        }
    }
}

/// `driftd probe-file`: reads one file as the daemon would (schema from
/// the policy and the manifest's recorded types). Exits normally whether
/// the file reads or is quarantinable; only a crash of the reader kills it.
pub fn probe_file(policy: &Policy, path: &Path) -> Result<String, crate::ingest::IngestError> {
    let reader = crate::ingest::Ingestor::read_only_reader(policy)?;
    let file = NewFile {
        name: path.display().to_string(),
        path: path.to_path_buf(),
        identity: crate::ingest::FileIdentity {
            size: 0,
            mtime_ns: 0,
            inode: 0,
            device: 0,
            footer_sha256: String::new(),
        },
        replaced: false,
        problem: None,
    };
    let outcome = reader.open(&file).and_then(|opened| {
        let mut rows = 0;
        for i in 0..opened.batches.len() {
            rows += opened.read_batch(i)?.data.len();
        }
        Ok(rows)
    });
    Ok(match outcome {
        Ok(rows) => format!("{}: {rows} rows", path.display()),
        Err(problem) => format!("{}: would be quarantined: {problem}", path.display()),
    })
}
