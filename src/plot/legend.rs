//! The legend, in its own strip under the plot.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::draw::{text_width, ALERT, BAND_COLOURS, PROMOTED, REJECTED, SERIES_COLOURS};
use super::{Chart, FAMILY};

/// What a legend entry shows before its text.
enum Key {
    Line(RGBColor, u32),
    Marker(bool),
    Vertical(RGBColor, u32),
    Tick(RGBColor),
    Bands,
}

/// The legend in its own strip under the plot, so it never hides a line;
/// entries wrap to a second row when the first is full.
pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let font = (FAMILY, 15).into_font();
    let mut entries: Vec<(Key, String)> = chart
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            (
                Key::Line(colour, if i == 0 { 3 } else { 2 }),
                s.name.clone(),
            )
        })
        .collect();
    entries.push((Key::Marker(true), "drift alert".into()));
    if chart.alerts.iter().any(|a| !a.drift) {
        entries.push((Key::Marker(false), "warning (no update)".into()));
    }
    entries.push((Key::Vertical(PROMOTED, 2), "update, promoted".into()));
    entries.push((Key::Vertical(REJECTED, 1), "update, none promoted".into()));
    let mut ticked: Vec<usize> = chart.baseline_updates.iter().map(|u| u.series).collect();
    ticked.sort_unstable();
    ticked.dedup();
    for i in ticked {
        if let Some(s) = chart.series.get(i) {
            let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
            entries.push((Key::Tick(colour), format!("{} update", s.name)));
        }
    }
    entries.push((Key::Bands, "live version".into()));
    let (width, _) = area.dim_in_pixel();
    let (mut x, mut y) = (24, 16);
    for (key, text) in entries {
        let w = 36 + text_width(area, &text, &font.clone().into()) + 22;
        if x + w > width as i32 - 16 && x > 24 {
            x = 24;
            y += 24;
        }
        match key {
            Key::Line(colour, stroke) => area.draw(&PathElement::new(
                vec![(x, y), (x + 28, y)],
                colour.stroke_width(stroke),
            ))?,
            Key::Marker(true) => area.draw(&TriangleMarker::new((x + 14, y), 7, ALERT.filled()))?,
            Key::Marker(false) => area.draw(&Circle::new((x + 14, y), 5, ALERT.stroke_width(2)))?,
            Key::Vertical(colour, stroke) => area.draw(&PathElement::new(
                vec![(x + 14, y - 10), (x + 14, y + 10)],
                colour.stroke_width(stroke),
            ))?,
            Key::Tick(colour) => area.draw(&PathElement::new(
                vec![(x + 14, y - 10), (x + 14, y + 6)],
                colour.stroke_width(4),
            ))?,
            Key::Bands => {
                area.draw(&Rectangle::new(
                    [(x, y - 9), (x + 14, y + 9)],
                    BAND_COLOURS[0].filled(),
                ))?;
                area.draw(&Rectangle::new(
                    [(x + 14, y - 9), (x + 28, y + 9)],
                    BAND_COLOURS[1].filled(),
                ))?;
            }
        }
        area.draw(&Text::new(text, (x + 36, y - 8), font.clone()))?;
        x += w;
    }
    Ok(())
}
