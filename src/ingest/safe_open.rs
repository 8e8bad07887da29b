//! Opening data files safely: no symlink followed at open (the scan
//! resolved links already), the Parquet trailer checked and the tail hashed.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::problem::{FileProblem, TrailerProblem};

const FOOTER_HASH_BYTES: u64 = 64 * 1024;

/// What the last bytes of a file say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Footer {
    /// Ends in `PAR1` with a plausible footer length; the hash of the tail.
    Valid { sha256: String },
    /// Too short or no trailer yet: maybe still being written.
    Incomplete(TrailerProblem),
    /// Wrong magic at the start, or a footer length that cannot be: no
    /// amount of waiting helps.
    Invalid(TrailerProblem),
}

/// Checks the Parquet trailer (`<footer> <u32 footer length> PAR1`, and
/// `PAR1` at the start) and hashes the file's tail.
pub(super) fn read_footer(path: &Path) -> io::Result<Footer> {
    let mut f = open_no_follow(path)?;
    let len = f.metadata()?.len();
    if len < 12 {
        return Ok(Footer::Incomplete(TrailerProblem::TooShort { len }));
    }
    let mut head = [0u8; 4];
    f.read_exact(&mut head)?;
    let tail_len = len.min(FOOTER_HASH_BYTES);
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    f.read_exact(&mut tail)?;
    if &head != b"PAR1" {
        return Ok(Footer::Invalid(TrailerProblem::NoStartMagic));
    }
    if &tail[tail.len() - 4..] != b"PAR1" {
        return Ok(Footer::Incomplete(TrailerProblem::NoEndMagic));
    }
    let n = tail.len();
    let footer_len = u32::from_le_bytes(tail[n - 8..n - 4].try_into().expect("4 bytes")) as u64;
    if footer_len == 0 || footer_len + 12 > len {
        return Ok(Footer::Invalid(TrailerProblem::FooterLength {
            footer_len,
            len,
        }));
    }
    let sha = Sha256::digest(&tail);
    Ok(Footer::Valid {
        sha256: sha.iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Opens a data file for reading without following a symlink in its last
/// component (`O_NOFOLLOW`): the scan resolved links already, so a link
/// here was put in place after the scan checked where it points.
pub(super) fn open_no_follow(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

pub(super) fn open_problem(e: io::Error) -> FileProblem {
    match e.kind() {
        io::ErrorKind::NotFound => FileProblem::Vanished,
        _ => FileProblem::Io(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_checks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        fs::write(&p, b"").unwrap();
        assert_eq!(
            read_footer(&p).unwrap(),
            Footer::Incomplete(TrailerProblem::TooShort { len: 0 })
        );
        fs::write(&p, b"PAR1\xff\xff\xff\x00PAR1PAR1").unwrap();
        let Footer::Invalid(problem) = read_footer(&p).unwrap() else {
            panic!("an impossible footer length is invalid")
        };
        assert!(
            matches!(problem, TrailerProblem::FooterLength { len: 16, .. }),
            "{problem}"
        );
        assert!(problem.to_string().contains("footer length"), "{problem}");
        fs::write(&p, b"XXXXaaaa\x01\x00\x00\x00PAR1").unwrap();
        assert_eq!(
            read_footer(&p).unwrap(),
            Footer::Invalid(TrailerProblem::NoStartMagic)
        );
        assert!(TrailerProblem::NoStartMagic.to_string().contains("start"));
    }
}
