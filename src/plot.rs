//! The picture of a backtest or a live daemon: rolling accuracy over rows
//! for the policy (and baselines), drift alerts as markers, updates as
//! vertical lines labelled with their strategy, and the live versions as
//! bands. Drawn with plotters as SVG, or as PNG through its bitmap backend
//! with an embedded DejaVu Sans (`assets/fonts/`), so a PNG has readable
//! text on a machine without system fonts.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// DejaVu Sans (its licence is beside it in `assets/fonts/`).
const FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    #[error("the embedded font cannot be loaded")]
    Font,
}

/// One line of the picture.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    /// (row, accuracy) points, by row.
    pub points: Vec<(f64, f64)>,
}

/// A drift alert at a row.
#[derive(Debug, Clone)]
pub struct Alert {
    pub row: f64,
    pub detector: String,
    /// A drift (filled marker) or only a warning (hollow).
    pub drift: bool,
}

/// An update at a row: its winning strategy (or "rejected").
#[derive(Debug, Clone)]
pub struct Update {
    pub row: f64,
    pub label: String,
    pub promoted: bool,
}

/// An update of a baseline run (periodic only): a tick in its line's
/// colour hanging from the top of the plot.
#[derive(Debug, Clone)]
pub struct BaselineUpdate {
    pub row: f64,
    /// Index into [`Chart::series`].
    pub series: usize,
    pub promoted: bool,
}

/// Rows during which a version was live.
#[derive(Debug, Clone)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub version: u64,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    /// A second, smaller line under the title.
    pub subtitle: Option<String>,
    pub x_label: String,
    pub y_label: String,
    /// The first series is the policy: the alerts, updates and bands are
    /// its.
    pub series: Vec<Series>,
    pub alerts: Vec<Alert>,
    pub updates: Vec<Update>,
    pub baseline_updates: Vec<BaselineUpdate>,
    pub bands: Vec<Band>,
}

fn register_font() -> Result<(), PlotError> {
    static ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *ONCE
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    ok.then_some(()).ok_or(PlotError::Font)
}

/// The chart as an SVG document.
pub fn svg(chart: &Chart) -> Result<String, PlotError> {
    register_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| PlotError::Draw(e.to_string()))?;
        root.present().map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    Ok(out)
}

/// The chart as a PNG image.
pub fn png(chart: &Chart) -> Result<Vec<u8>, PlotError> {
    register_font()?;
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| PlotError::Draw(e.to_string()))?;
        root.present().map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    encode_png(WIDTH, HEIGHT, &rgb).map_err(|e| PlotError::Draw(e.to_string()))
}

/// A minimal PNG encoder (8-bit RGB, no filter, zlib via flate2, which the
/// build already has), rather than a PNG crate whose dependency features
/// would rebuild polars.
fn encode_png(width: u32, height: u32, rgb: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut raw = Vec::with_capacity(rgb.len() + height as usize);
    for row in rgb.chunks(width as usize * 3) {
        raw.push(0); // filter: none
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw)?;
    let idat = z.finish()?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", &ihdr), (b"IDAT", &idat), (b"IEND", &Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    Ok(out)
}

/// Line colours: the policy first, then the baselines.
const SERIES_COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(127, 127, 127),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
];
/// Version bands alternate between these pale fills.
const BAND_COLOURS: [RGBColor; 2] = [RGBColor(232, 240, 250), RGBColor(250, 246, 226)];
/// Height of one row of update labels, in pixels.
const LABEL_ROW: i32 = 17;
const ALERT: RGBColor = RGBColor(214, 39, 40);
const PROMOTED: RGBColor = RGBColor(44, 160, 44);
const REJECTED: RGBColor = RGBColor(150, 150, 150);

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

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    chart: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (plot_area, legend_area) = root.split_vertically(HEIGHT - 64);
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
    // The title first, then the chart below it with a strip on top for
    // the update labels.
    let mut plot_area = plot_area
        .margin(10, 0, 0, 0)
        .titled(&chart.title, (FAMILY, 26))?;
    if let Some(subtitle) = &chart.subtitle {
        plot_area = plot_area.titled(
            subtitle,
            (FAMILY, 16).into_font().color(&RGBColor(60, 60, 60)),
        )?;
    }
    let mut cc = ChartBuilder::on(&plot_area)
        .margin(16)
        // Room above the plot for the update labels.
        .margin_top(8 + 2 * LABEL_ROW)
        .margin_right(28)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..x_max, y_lo..y_hi)?;
    // Version bands first, under everything else; the rows before the
    // first band trained version 1 and were not scored.
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
    // Version labels at the top of their bands, where they fit.
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
    // Updates: vertical lines, labelled in the strip above the plot,
    // staggered over rows so neighbours do not overlap.
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
    // The accuracy lines, the policy's last so that it is on top.
    for (i, s) in chart.series.iter().enumerate().rev() {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        let width = if i == 0 { 3 } else { 2 };
        cc.draw_series(LineSeries::new(
            s.points.iter().copied(),
            colour.stroke_width(width),
        ))?;
    }
    // Baselines' updates: ticks hanging from the top axis, so they never
    // hide the policy's labelled lines.
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
    // Alerts: triangles along the bottom of the plot.
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
    draw_legend(&legend_area, chart)?;
    Ok(())
}

fn text_width<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    font: &TextStyle,
) -> i32 {
    area.estimate_text_size(text, font)
        .map_or(8 * text.len() as i32, |(w, _)| w as i32)
}

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
fn draw_legend<DB: DrawingBackend>(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            title: "t".into(),
            subtitle: Some("s".into()),
            x_label: "rows".into(),
            y_label: "accuracy".into(),
            series: vec![Series {
                name: "policy".into(),
                points: vec![(0.0, 0.9), (100.0, 0.8)],
            }],
            alerts: vec![Alert {
                row: 50.0,
                detector: "adwin".into(),
                drift: true,
            }],
            updates: vec![Update {
                row: 60.0,
                label: "refit_new".into(),
                promoted: true,
            }],
            baseline_updates: vec![BaselineUpdate {
                row: 70.0,
                series: 0,
                promoted: true,
            }],
            bands: vec![Band {
                from: 0.0,
                to: 60.0,
                version: 1,
            }],
        }
    }

    #[test]
    fn a_png_is_a_png_of_the_declared_size() {
        let png = png(&chart()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), WIDTH);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), HEIGHT);
        assert_eq!(&png[png.len() - 8..png.len() - 4], b"IEND");
    }

    #[test]
    fn row_ticks_read_as_thousands() {
        assert_eq!(rows_label(250_000.0), "250k");
        assert_eq!(rows_label(1_500_000.0), "1.5M");
        assert_eq!(rows_label(2500.0), "2.5k");
        assert_eq!(rows_label(40.0), "40");
    }
}
