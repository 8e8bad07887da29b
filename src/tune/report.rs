//! What `driftd tune` found: the JSON report (`--json`), which the text
//! table is made from.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::split::{tally, Split};
use crate::backtest::{DataReport, RunReport};
use crate::update::evidence::PairedDifference;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TuneReport {
    /// The history replayed (as in the backtest's report).
    pub data: DataReport,
    /// The policy given with --config (point 0).
    pub config: PathBuf,
    /// "built-in" or the --grid file.
    pub grid: String,
    pub split: Split,
    /// Point 0 is the policy as given, then the grid's points in order.
    pub points: Vec<PointReport>,
    /// For reference, never a candidate: version 1 scores every row.
    pub never_update: Scores,
    /// Index into `points`.
    pub chosen: usize,
    /// The chosen point's later-part accuracy minus the policy as given's.
    pub later_difference: Option<f64>,
    /// Whether the chosen point beat the policy as given on the later part.
    pub beats_base: bool,
    pub verdict: String,
    /// Where the chosen policy was written.
    pub out: PathBuf,
    /// Wall time of the whole tune.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PointReport {
    /// 0: the policy as given; then the grid's points, numbered from 1.
    pub point: usize,
    pub name: Option<String>,
    pub overrides: Vec<OverrideRecord>,
    pub chosen: bool,
    /// Its lead in accuracy over the policy as given on the earlier part,
    /// by blocks of rows (`difference`, `standard_error`, `rows` = blocks);
    /// absent for the policy as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_lead: Option<PairedDifference>,
    #[serde(flatten)]
    pub scores: Scores,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OverrideRecord {
    pub key: String,
    /// As TOML.
    pub value: String,
}

/// One replay's scores: on the whole history and on each part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scores {
    pub earlier: PartScores,
    pub later: PartScores,
    /// Over every row after version 1's.
    pub prequential_accuracy: Option<f64>,
    /// Over the whole replay.
    pub updates: usize,
    pub promoted: usize,
    pub rollbacks: usize,
    pub training_seconds: f64,
    pub replay_seconds: f64,
}

/// One part of the split: global rows `first_row..end_row`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartScores {
    pub first_row: u64,
    pub end_row: u64,
    pub rows_scored: u64,
    pub correct: u64,
    pub accuracy: Option<f64>,
    /// Updates decided, versions promoted and rollbacks in this part.
    pub updates: usize,
    pub promoted: usize,
    pub rollbacks: usize,
}

impl Scores {
    pub fn of(run: &RunReport, split: &Split) -> Scores {
        let part = |rows: std::ops::Range<u64>| {
            let (scored, correct) = tally(&run.outcomes, rows.clone());
            let updates = run.updates.iter().filter(|u| rows.contains(&u.row));
            PartScores {
                first_row: rows.start,
                end_row: rows.end,
                rows_scored: scored,
                correct,
                accuracy: (scored > 0).then(|| correct as f64 / scored as f64),
                updates: updates.clone().count(),
                promoted: updates.filter(|u| u.promoted_version.is_some()).count(),
                rollbacks: run
                    .rollbacks
                    .iter()
                    .filter(|r| rows.contains(&r.row))
                    .count(),
            }
        };
        Scores {
            earlier: part(split.earlier()),
            later: part(split.later()),
            prequential_accuracy: run.prequential_accuracy,
            updates: run.update_count,
            promoted: run.promoted_count,
            rollbacks: run.rollback_count,
            training_seconds: run.training_seconds,
            replay_seconds: run.replay_seconds,
        }
    }
}

/// The last line: did the chosen point beat the policy as given on the
/// held-out later part, and by how much.
pub fn verdict(points: &[PointReport], chosen: usize) -> (String, Option<f64>, bool) {
    let base = points[0].scores.later.accuracy;
    let pick = points[chosen].scores.later.accuracy;
    let difference = base.zip(pick).map(|(b, p)| p - b);
    let f = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.4}"));
    let text = if chosen == 0 {
        format!(
            "the policy as given was chosen (no grid point beat it beyond the noise on the earlier part); \
             held-out later part: {}",
            f(base)
        )
    } else {
        let what = format!("the chosen point {chosen}");
        match difference {
            Some(d) if d > 0.0 => format!(
                "{what} beats the policy as given on the held-out later part by {d:.4} ({} against {})",
                f(pick),
                f(base)
            ),
            Some(d) if d < 0.0 => format!(
                "{what} does not beat the policy as given on the held-out later part: {} against {} ({d:.4})",
                f(pick),
                f(base)
            ),
            Some(_) => format!(
                "{what} ties with the policy as given on the held-out later part ({})",
                f(pick)
            ),
            None => format!("{what} cannot be compared with the policy as given"),
        }
    };
    (text, difference, difference.is_some_and(|d| d > 0.0))
}
