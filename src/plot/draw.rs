//! Drawing a [`Chart`] on any plotters backend: the frame and titles, the
//! version bands, the update lines and their labels, the accuracy lines,
//! the baselines' ticks and the alert markers; the legend is in
//! `legend.rs`.

use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::legend::draw_legend;
use super::{Chart, FAMILY, HEIGHT};

/// Line colours: the policy first, then the baselines.
pub(super) const SERIES_COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(127, 127, 127),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];
/// Version bands alternate between these pale fills.
pub(super) const BAND_COLOURS: [RGBColor; 2] = [RGBColor(232, 240, 250), RGBColor(250, 246, 226)];
/// Height of one row of update labels, in pixels.
const LABEL_ROW: i32 = 17;
pub(super) const ALERT: RGBColor = RGBColor(214, 39, 40);
pub(super) const PROMOTED: RGBColor = RGBColor(44, 160, 44);
pub(super) const REJECTED: RGBColor = RGBColor(150, 150, 150);

/// The chart's drawing context: rows on x, accuracy on y.
type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type Drawn<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// The value ranges of the plot.
#[derive(Clone, Copy)]
struct Frame {
    x_max: f64,
    y_lo: f64,
    y_hi: f64,
}

fn rows_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        format!("{v:.0}")
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

pub(super) fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> Drawn<DB> {
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_vertically(HEIGHT - 64);
    let frame = frame_of(chart);
    let Frame { x_max, y_lo, y_hi } = frame;
    let plot_area = titled(plot_area, chart)?;
    let mut cc = ChartBuilder::on(&plot_area)
        .margin(16)
        // Room above the plot for the update labels.
        .margin_top(8 + 2 * LABEL_ROW)
        .margin_right(28)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, y_lo..y_hi)?;
    draw_bands(&mut cc, chart, frame)?;
    cc.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style((FAMILY, 17))
        .label_style((FAMILY, 14))
        .x_label_formatter(&|v| rows_label(*v))
        .y_label_formatter(&|v| format!("{v:.2}"))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;
    draw_band_labels(root, &cc, chart, frame)?;
    draw_updates(root, &mut cc, chart, frame)?;
    draw_lines(&mut cc, chart)?;
    draw_baseline_ticks(root, &cc, chart, frame)?;
    draw_alerts(&mut cc, chart, frame)?;
    draw_legend(&legend_area, chart)?;
    Ok(())
}

/// Rows up to the last point or band; accuracy from a little below the
/// lowest point up to 1.
fn frame_of(chart: &Chart) -> Frame {
    let x_max = chart
        .series
        .iter()
        .flat_map(|s| s.points.last().map(|p| p.0))
        .chain(chart.bands.iter().map(|b| b.to))
        .fold(1.0f64, f64::max);
    let y_min = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::min);
    // Room below the lowest point for the alert markers.
    let y_lo = ((y_min - 0.08) * 20.0).floor() / 20.0;
    let y_lo = y_lo.clamp(0.0, 0.9);
    let y_hi = 1.0;
    Frame { x_max, y_lo, y_hi }
}

/// The title first, then the chart below it with a strip on top for
/// the update labels.
fn titled<DB: DrawingBackend>(
    plot_area: DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut plot_area = plot_area
        .margin(10, 0, 0, 0)
        .titled(&chart.title, (FAMILY, 26))?;
    if let Some(subtitle) = &chart.subtitle {
        plot_area = plot_area.titled(
            subtitle,
            (FAMILY, 16).into_font().color(&RGBColor(60, 60, 60)),
        )?;
    }
    Ok(plot_area)
}

/// Version bands first, under everything else; the rows before the
/// first band trained version 1 and were not scored.
fn draw_bands<DB: DrawingBackend>(cc: &mut Plot<'_, DB>, chart: &Chart, frame: Frame) -> Drawn<DB> {
    let Frame { y_lo, y_hi, .. } = frame;
    if let Some(first) = chart.bands.first().filter(|b| b.from > 0.0) {
        cc.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y_lo), (first.from, y_hi)],
            RGBColor(236, 236, 236).filled(),
        )))?;
    }
    for (i, b) in chart.bands.iter().enumerate() {
        let fill = BAND_COLOURS[i % BAND_COLOURS.len()].filled();
        cc.draw_series(std::iter::once(Rectangle::new(
            [(b.from, y_lo), (b.to, y_hi)],
            fill,
        )))?;
    }
    Ok(())
}

/// Version labels at the top of their bands, where they fit.
fn draw_band_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cc: &Plot<'_, DB>,
    chart: &Chart,
    frame: Frame,
) -> Drawn<DB> {
    let y_hi = frame.y_hi;
    let label_font = (FAMILY, 14).into_font().color(&RGBColor(70, 70, 70));
    for b in &chart.bands {
        let (x0, y0) = cc.backend_coord(&(b.from, y_hi));
        let (x1, _) = cc.backend_coord(&(b.to, y_hi));
        let text = format!("v{}", b.version);
        if x1 - x0 > text_width(root, &text, &label_font) + 8 {
            root.draw(&Text::new(text, (x0 + 5, y0 + 4), label_font.clone()))?;
        }
    }
    if let Some(first) = chart.bands.first().filter(|b| b.from > 0.0) {
        let (x0, y0) = cc.backend_coord(&(0.0, y_hi));
        let (x1, _) = cc.backend_coord(&(first.from, y_hi));
        let text = "trains v1";
        if x1 - x0 > text_width(root, text, &label_font) + 8 {
            root.draw(&Text::new(text, (x0 + 5, y0 + 4), label_font.clone()))?;
        }
    }
    Ok(())
}

/// Updates: vertical lines, labelled in the strip above the plot,
/// staggered over rows so neighbours do not overlap.
fn draw_updates<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cc: &mut Plot<'_, DB>,
    chart: &Chart,
    frame: Frame,
) -> Drawn<DB> {
    let Frame { x_max, y_lo, y_hi } = frame;
    let mut label_ends: Vec<i32> = Vec::new();
    let update_font = (FAMILY, 13).into_font();
    for u in &chart.updates {
        let colour = if u.promoted { PROMOTED } else { REJECTED };
        let style = colour.stroke_width(if u.promoted { 2 } else { 1 });
        cc.draw_series(std::iter::once(PathElement::new(
            vec![(u.row, y_lo), (u.row, y_hi)],
            style,
        )))?;
        let (px, py) = cc.backend_coord(&(u.row, y_hi));
        let width = text_width(root, &u.label, &update_font.clone().into()) + 6;
        let right_edge = cc.backend_coord(&(x_max, y_hi)).0;
        // Near the right edge the label goes to the left of its line.
        let x = if px + 4 + width > right_edge {
            px - 4 - width
        } else {
            px + 4
        };
        // Only promotions are labelled (the legend says what a grey line
        // is), and only where a label fits in the strip's two rows: a
        // crowded stretch keeps its lines without piling labels on the plot.
        if !u.promoted {
            continue;
        }
        let Some(slot) = (0..2).find(|&i| label_ends.get(i).is_none_or(|&end| end < x)) else {
            continue;
        };
        if slot == label_ends.len() {
            label_ends.push(x + width);
        } else {
            label_ends[slot] = x + width;
        }
        let y = py - LABEL_ROW * (2 - slot as i32);
        root.draw(&PathElement::new(vec![(px, py), (px, y + 2)], style))?;
        root.draw(&Text::new(
            u.label.clone(),
            (x, y),
            update_font.clone().color(&colour.mix(1.0)),
        ))?;
    }
    Ok(())
}

/// The accuracy lines, the policy's last so that it is on top.
fn draw_lines<DB: DrawingBackend>(cc: &mut Plot<'_, DB>, chart: &Chart) -> Drawn<DB> {
    for (i, s) in chart.series.iter().enumerate().rev() {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        let width = if i == 0 { 3 } else { 2 };
        cc.draw_series(LineSeries::new(
            s.points.iter().copied(),
            colour.stroke_width(width),
        ))?;
    }
    Ok(())
}

/// Baselines' updates: ticks hanging from the top axis, so they never
/// hide the policy's labelled lines.
fn draw_baseline_ticks<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cc: &Plot<'_, DB>,
    chart: &Chart,
    frame: Frame,
) -> Drawn<DB> {
    let y_hi = frame.y_hi;
    for u in &chart.baseline_updates {
        let colour = SERIES_COLOURS[u.series % SERIES_COLOURS.len()];
        let (px, py) = cc.backend_coord(&(u.row, y_hi));
        let style = if u.promoted {
            colour.stroke_width(4)
        } else {
            colour.mix(0.5).stroke_width(2)
        };
        root.draw(&PathElement::new(vec![(px, py), (px, py + 22)], style))?;
    }
    Ok(())
}

/// Alerts: triangles along the bottom of the plot.
fn draw_alerts<DB: DrawingBackend>(
    cc: &mut Plot<'_, DB>,
    chart: &Chart,
    frame: Frame,
) -> Drawn<DB> {
    let Frame { y_lo, y_hi, .. } = frame;
    let marker_y = y_lo + (y_hi - y_lo) * 0.025;
    cc.draw_series(
        chart
            .alerts
            .iter()
            .filter(|a| a.drift)
            .map(|a| TriangleMarker::new((a.row, marker_y), 7, ALERT.filled())),
    )?;
    cc.draw_series(
        chart
            .alerts
            .iter()
            .filter(|a| !a.drift)
            .map(|a| Circle::new((a.row, marker_y), 5, ALERT.stroke_width(2))),
    )?;
    Ok(())
}

pub(super) fn text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
) -> i32 {
    area.estimate_text_size(text, font)
        .map_or(8 * text.len() as i32, |(w, _)| w as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ticks_read_as_thousands() {
        assert_eq!(rows_label(250_000.0), "250k");
        assert_eq!(rows_label(1_500_000.0), "1.5M");
        assert_eq!(rows_label(2500.0), "2.5k");
        assert_eq!(rows_label(40.0), "40");
    }
}
