//! The picture of a backtest: each run's rolling accuracy, and the policy
//! run's alerts, updates and versions (drawn by `crate::plot`).

use super::render::opt;
use super::Report;
use crate::detect::Severity;

/// Rolling accuracy over the last `window` scored rows, at most `points`
/// points.
fn rolling(outcomes: &[u8], window: usize, points: usize) -> Vec<(f64, f64)> {
    let mut scored = vec![0u32; outcomes.len() + 1];
    let mut correct = vec![0u32; outcomes.len() + 1];
    for (i, &o) in outcomes.iter().enumerate() {
        scored[i + 1] = scored[i] + u32::from(o < 2);
        correct[i + 1] = correct[i] + u32::from(o == 1);
    }
    let step = outcomes.len().div_ceil(points.max(1)).max(1);
    let window = window.max(1);
    (step..=outcomes.len())
        .step_by(step)
        .filter_map(|end| {
            let start = end.saturating_sub(window);
            let s = scored[end] - scored[start];
            // A window mostly of unscored rows says little.
            (s as usize * 2 >= window.min(end)).then(|| {
                (
                    end as f64,
                    f64::from(correct[end] - correct[start]) / f64::from(s),
                )
            })
        })
        .collect()
}

/// 1234567 as "1,234,567".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The picture of a backtest.
pub fn chart(report: &Report) -> crate::plot::Chart {
    use crate::plot::{Alert, Band, BaselineUpdate, Chart, Series, Update};
    let window = report.rolling_window_rows;
    let policy = &report.runs[0];
    Chart {
        title: format!(
            "driftd backtest: {} rows of {}",
            thousands(report.data.rows),
            report.data.dir.file_name().map_or_else(
                || report.data.dir.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        ),
        subtitle: Some(format!(
            "prequential accuracy (every row scored by the version live then): {}",
            report
                .runs
                .iter()
                .map(|r| format!("{} {}", r.run.title(), opt(r.prequential_accuracy)))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        x_label: "rows replayed".into(),
        y_label: format!("accuracy over the last {window} rows"),
        series: report
            .runs
            .iter()
            .map(|r| Series {
                name: r.run.title().into(),
                points: rolling(&r.outcomes, window, 1500),
            })
            .collect(),
        alerts: policy
            .alerts
            .iter()
            .map(|a| Alert {
                row: a.row as f64,
                detector: a.detector.clone(),
                drift: a.severity == Severity::Drift,
            })
            .collect(),
        updates: policy
            .updates
            .iter()
            .filter(|u| !u.candidates.is_empty())
            .map(|u| Update {
                row: u.row as f64,
                label: match &u.winner {
                    Some(w) => format!("{} ({})", w, u.trigger.as_str()),
                    None => format!("rejected ({})", u.trigger.as_str()),
                },
                promoted: u.promoted_version.is_some(),
            })
            .collect(),
        // The baselines' own updates (periodic only; never update has none).
        baseline_updates: report
            .runs
            .iter()
            .enumerate()
            .skip(1)
            .flat_map(|(series, r)| {
                r.updates
                    .iter()
                    .filter(|u| !u.candidates.is_empty())
                    .map(move |u| BaselineUpdate {
                        row: u.row as f64,
                        series,
                        promoted: u.promoted_version.is_some(),
                    })
            })
            .collect(),
        bands: policy
            .versions
            .iter()
            .map(|v| Band {
                from: v.live_from_row as f64,
                to: v.live_until_row as f64,
                version: v.version,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(12_000), "12,000");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn rolling_skips_mostly_unscored_windows() {
        let mut outcomes = vec![2u8; 10];
        outcomes.extend([1u8; 10]);
        let points = rolling(&outcomes, 4, 20);
        assert!(points.iter().all(|p| p.0 >= 12.0), "{points:?}");
        assert!(points.iter().all(|p| p.1 == 1.0));
    }
}
