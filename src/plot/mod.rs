//! The picture of a backtest or a live daemon: rolling accuracy over rows
//! for the policy (and baselines), drift alerts as markers, updates as
//! vertical lines labelled with their strategy, and the live versions as
//! bands. Drawn with plotters as SVG, or as PNG through its bitmap backend
//! with an embedded DejaVu Sans (`assets/fonts/`), so a PNG has readable
//! text on a machine without system fonts.

use plotters::prelude::*;
use plotters::style::FontStyle;

use draw::draw;
use png_encoder::encode_png;

mod draw;
mod legend;
mod png_encoder;

/// DejaVu Sans (its licence is beside it in `assets/fonts/`).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
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
}
