//! The text report of a backtest: every number in it is in the JSON
//! report.

use std::fmt::Write;

use super::report::{AlertRecord, DataReport, Report, RunReport, UpdateRecord};

pub(super) use crate::status::fmt_opt as opt;

/// The text report: every number in it is in the JSON report.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    render_data(&mut s, &report.data);
    let _ = writeln!(s);
    render_runs(&mut s, &report.runs);
    let _ = writeln!(s);
    render_comparisons(&mut s, report);
    let _ = writeln!(s);
    render_windows(&mut s, report);
    for r in &report.runs {
        render_events(&mut s, r);
    }
    s
}

/// The data replayed: directory, clock, time span, version 1, quarantine.
fn render_data(s: &mut String, d: &DataReport) {
    let _ = writeln!(
        s,
        "backtest of {}: {} files, {} rows; clock: {}",
        d.dir.display(),
        d.files,
        d.rows,
        d.clock_description
    );
    if let (Some(a), Some(b)) = (d.first_time, d.last_time) {
        let _ = writeln!(s, "time span: {} to {}", a.to_rfc3339(), b.to_rfc3339());
    }
    let _ = writeln!(
        s,
        "version 1 trained on the first {} rows in {:.2} s (not scored)",
        d.bootstrap_rows, d.initial_training_seconds
    );
    for q in &d.quarantined {
        let _ = writeln!(s, "quarantined: {}: {}", q.file, q.reason);
    }
}

/// One line per run: accuracy, counts and seconds.
fn render_runs(s: &mut String, runs: &[RunReport]) {
    let _ = writeln!(
        s,
        "{:<15} {:>11} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>10} {:>9}",
        "run",
        "prequential",
        "scored",
        "alerts",
        "updates",
        "promoted",
        "online",
        "rollbacks",
        "training s",
        "replay s"
    );
    for r in runs {
        let _ = writeln!(
            s,
            "{:<15} {:>11} {:>9} {:>8} {:>8} {:>7} {:>7} {:>9} {:>10.2} {:>9.2}",
            r.run.title(),
            opt(r.prequential_accuracy),
            r.rows_scored,
            r.alert_count,
            r.update_count,
            r.promoted_count,
            r.online_promotions,
            r.rollback_count,
            r.training_seconds,
            r.replay_seconds
        );
    }
}

/// The policy against each baseline, and the verdict.
fn render_comparisons(s: &mut String, report: &Report) {
    for c in &report.comparisons {
        let _ = writeln!(
            s,
            "policy vs {}: {} against {} ({})",
            c.baseline.title(),
            opt(c.policy_accuracy),
            opt(c.baseline_accuracy),
            c.difference.map_or("-".into(), |d| format!("{d:+.4}"))
        );
    }
    let _ = writeln!(s, "verdict: {}", report.verdict);
}

/// The accuracy per window, one column per run.
fn render_windows(s: &mut String, report: &Report) {
    let _ = writeln!(s, "accuracy per window of {} rows:", report.window_rows);
    let _ = write!(s, "{:<17}", "rows");
    for r in &report.runs {
        let _ = write!(s, " {:>14}", r.run.title());
    }
    let _ = writeln!(s);
    let n = report.runs.first().map_or(0, |r| r.windows.len());
    for i in 0..n {
        let w = &report.runs[0].windows[i];
        let _ = write!(s, "{:<17}", format!("{}..{}", w.first_row, w.end_row));
        for r in &report.runs {
            let _ = write!(s, " {:>14}", opt(r.windows[i].accuracy));
        }
        let _ = writeln!(s);
    }
}

/// A run's alerts, updates, rollbacks and versions (nothing without
/// alerts, updates or rollbacks).
fn render_events(s: &mut String, r: &RunReport) {
    if r.alerts.is_empty()
        && r.updates.is_empty()
        && r.rollbacks.is_empty()
        && r.online_promotions == 0
    {
        return;
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "{} run ({}):", r.run.title(), r.description);
    for a in &r.alerts {
        render_alert(s, a);
    }
    for u in &r.updates {
        render_update(s, u);
    }
    for b in &r.rollbacks {
        let _ = writeln!(
            s,
            "  rollback at row {}: version {} -> {} (accuracy {:.4} against {:.4})",
            b.row, b.from_version, b.to_version, b.accuracy, b.previous_accuracy
        );
    }
    for v in &r.versions {
        let later = match v.later_online_versions {
            0 => String::new(),
            1 => " and the next online version".into(),
            n => format!(" and the {n} online versions after it"),
        };
        let _ = writeln!(
            s,
            "  version {} ({}){later}: rows {}..{}, accuracy {}",
            v.version,
            v.strategy,
            v.live_from_row,
            v.live_until_row,
            opt(v.accuracy)
        );
    }
}

fn render_alert(s: &mut String, a: &AlertRecord) {
    let _ = writeln!(
        s,
        "  alert at row {}: {} {} {}, {}, version {}{}",
        a.row,
        a.kind,
        a.detector,
        a.severity.as_str(),
        a.summary(),
        a.live_version.map_or("-".into(), |v| v.to_string()),
        if a.triggered {
            ", update requested"
        } else {
            ""
        }
    );
}

/// An update, its candidates and its decision.
fn render_update(s: &mut String, u: &UpdateRecord) {
    let outcome = match (&u.winner, u.promoted_version) {
        (Some(w), Some(v)) => format!("promoted version {v} ({w})"),
        _ => "nothing promoted".into(),
    };
    let _ = writeln!(
        s,
        "  update at row {} ({} trigger): {outcome}; {} new, {} old, {} holdout rows; live {} on the holdout; {:.2} s",
        u.row,
        u.trigger.as_str(),
        u.new_rows,
        u.old_rows,
        u.holdout_rows,
        opt(u.live_accuracy),
        u.training_seconds
    );
    for c in &u.candidates {
        let _ = writeln!(
            s,
            "    {:<13} {} ({} rows, {:.2} s){}",
            c.strategy,
            opt(c.scores.map(|x| x.accuracy)),
            c.train_rows,
            c.train_seconds,
            if c.promoted { " promoted" } else { "" }
        );
    }
    let _ = writeln!(s, "    {}", u.decision);
}
