//! The text report: one line per point, the chosen one marked with `*`,
//! never update for reference, and the verdict on the held-out later part.

use std::fmt::Write;

use super::report::{Scores, TuneReport};

pub fn render(r: &TuneReport) -> String {
    let mut out = String::new();
    let s = &r.split;
    let grid = if r.grid == "built-in" {
        "the built-in grid".to_string()
    } else {
        format!("grid {}", r.grid)
    };
    let _ = writeln!(
        out,
        "driftd tune: the policy as given ({}) and {} points of {grid}, each replayed over {}",
        r.config.display(),
        r.points.len() - 1,
        r.data.dir.display()
    );
    let _ = writeln!(
        out,
        "{} files, {} rows ({}); version 1 trained on rows 0..{}; chosen on rows {}..{} \
         ({} rows, earlier part), reported on rows {}..{} ({} rows, later part, held out; split {})",
        r.data.files,
        r.data.rows,
        r.data.clock_description,
        s.bootstrap_rows,
        s.bootstrap_rows,
        s.cut_row,
        s.cut_row - s.bootstrap_rows,
        s.cut_row,
        s.end_row,
        s.end_row - s.cut_row,
        s.fraction,
    );
    if !r.data.quarantined.is_empty() {
        let _ = writeln!(out, "{} files quarantined", r.data.quarantined.len());
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "    # earlier   later  updates  promoted  rollbacks  train s  point"
    );
    for p in &r.points {
        let mark = if p.chosen { '*' } else { ' ' };
        let label = if p.point == 0 {
            "the policy as given".to_string()
        } else {
            let overrides: Vec<String> = p
                .overrides
                .iter()
                .map(|o| format!("{} = {}", o.key, o.value))
                .collect();
            match &p.name {
                Some(n) => format!("{n}: {}", overrides.join(", ")),
                None => overrides.join(", "),
            }
        };
        let _ = writeln!(out, "{mark} {:>3} {}  {label}", p.point, columns(&p.scores));
    }
    let _ = writeln!(
        out,
        "    - {}  never update (for reference)",
        columns(&r.never_update)
    );
    let _ = writeln!(out);
    let chosen = &r.points[r.chosen];
    let _ = match chosen.earlier_lead.filter(|_| r.chosen > 0) {
        Some(lead) => writeln!(
            out,
            "chosen: point {} ({}): it beat the policy as given on the earlier part by {:+.4} ± {:.4} \
             in accuracy ({} blocks of {} rows; beyond the noise at 95% confidence over {} points), \
             the best of the points that did",
            r.chosen,
            chosen.name.as_deref().unwrap_or("its overrides above"),
            lead.difference,
            lead.standard_error,
            lead.rows,
            super::choose::BLOCK_ROWS,
            r.points.len() - 1
        ),
        None => writeln!(
            out,
            "chosen: point 0 (the policy as given): no grid point beat it beyond the noise on the earlier part"
        ),
    };
    let _ = writeln!(
        out,
        "wrote the chosen policy to {} ({:.1} s in all)",
        r.out.display(),
        r.seconds
    );
    let _ = writeln!(out, "{}", r.verdict);
    out
}

fn columns(s: &Scores) -> String {
    let acc = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{a:.4}"));
    format!(
        "{:>7} {:>7} {:>8} {:>9} {:>10} {:>8.2}",
        acc(s.earlier.accuracy),
        acc(s.later.accuracy),
        s.updates,
        s.promoted,
        s.rollbacks,
        s.training_seconds
    )
}
