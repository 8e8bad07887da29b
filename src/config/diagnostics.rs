//! Policy errors: each problem pinned to its file, line and column
//! (ripgrep-style), and the line index that maps byte spans to them.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line, when the problem can be pinned to a place in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters).
    pub column: Option<usize>,
    /// Dotted key path, e.g. `training.learning_rate`.
    pub key: String,
    pub message: String,
}

/// Every problem found in one policy file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The cause is part of the message, not a `source`: a chain printer
    // would print it twice.
    #[error("cannot read policy file {path}: {error}{}", missing_hint(error))]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}", render_diagnostics(path, diagnostics))]
    Invalid {
        path: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

/// What to do about a policy file that is not there.
fn missing_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::NotFound {
        "; give the policy with --config FILE (without it driftd reads \
         /etc/driftd/policy.toml, which `sudo make install` puts there)"
    } else {
        ""
    }
}

impl ConfigError {
    /// One line per problem, each naming the file (and line:column).
    pub fn messages(&self) -> Vec<String> {
        match self {
            ConfigError::Read { .. } => vec![self.to_string()],
            ConfigError::Invalid { path, diagnostics } => diagnostics
                .iter()
                .map(|d| DiagnosticAt { path, d }.to_string())
                .collect(),
        }
    }
}

fn render_diagnostics(path: &Path, diagnostics: &[Diagnostic]) -> String {
    let mut out = format!(
        "policy file {} has {} error{}:",
        path.display(),
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        out.push_str(&format!("\n  {}", DiagnosticAt { path, d }));
    }
    out
}

struct DiagnosticAt<'a> {
    path: &'a Path,
    d: &'a Diagnostic,
}

impl fmt::Display for DiagnosticAt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.d;
        match (d.line, d.column) {
            (Some(l), Some(c)) => write!(f, "{}:{}:{}: ", self.path.display(), l, c)?,
            _ => write!(f, "{}: ", self.path.display())?,
        }
        if d.key.is_empty() {
            write!(f, "{}", d.message)
        } else {
            write!(f, "{}: {}", d.key, d.message)
        }
    }
}

pub(super) struct LineIndex {
    starts: Vec<usize>,
    text: String,
}

impl LineIndex {
    pub(super) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex {
            starts,
            text: text.to_string(),
        }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let end = offset.min(self.text.len());
        let col = self
            .text
            .get(start..end)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (line, col + 1)
    }

    pub(super) fn diagnostic(
        &self,
        span: Option<Range<usize>>,
        key: String,
        message: String,
    ) -> Diagnostic {
        let (line, column) = match span {
            Some(s) => {
                let (l, c) = self.position(s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Diagnostic {
            line,
            column,
            key,
            message,
        }
    }
}
