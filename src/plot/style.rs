//! The house style shared by every figure: colours, fonts (the embedded DejaVu Sans and its
//! registration), the PNG path check, the atomic render helper, and the axis, extent and legend
//! helpers the figures build their charts from.

use crate::error::{Error, Result};
use plotters::chart::MeshStyle;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;
use std::sync::OnceLock;

/// The family name the embedded font is registered under (plotters' default family).
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

pub(super) const TITLE_PX: f64 = 24.0;
const CAPTION_PX: f64 = 21.0;
const AXIS_DESC_PX: f64 = 16.0;
const TICK_PX: f64 = 14.0;
const LEGEND_PX: f64 = 15.0;

/// matplotlib's "tab10" colour cycle.
const TAB10: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];
const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
const AXIS: RGBColor = RGBColor(0x40, 0x40, 0x40);

pub(super) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
pub(super) type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

pub(super) fn tab10(i: usize) -> RGBColor {
    TAB10[i % TAB10.len()]
}

pub(super) fn font(px: f64) -> TextStyle<'static> {
    (FONT, px).into_font().color(&BLACK)
}

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("the embedded font DejaVuSans.ttf could not be loaded".into())
    }
}

/// Refuses paths that would not produce a PNG (the encoder picks the format from the extension).
pub(super) fn check_png_path(path: &Path) -> Result<()> {
    match path.extension() {
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(()),
        _ => Err(Error::invalid(
            "figure path",
            format!("{} must end in .png", path.display()),
        )),
    }
}

fn plot_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Plot {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Draws a `size` PNG at `path` atomically: `draw` gets a white drawing area covering the image.
pub(super) fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<()>
where
    F: FnOnce(&Area<'_>) -> DrawResult,
{
    ensure_font().map_err(|r| plot_error(path, r))?;
    crate::fsutil::write_atomic(path, |tmp| {
        let result = (|| -> DrawResult {
            let root = BitMapBackend::new(tmp, size).into_drawing_area();
            root.fill(&WHITE)?;
            draw(&root)?;
            root.present()?;
            Ok(())
        })();
        result.map_err(|e| plot_error(path, e.to_string()))
    })
}

/// Min and max of the finite values, or `None` when there is none.
pub(super) fn finite_extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Widens `[lo, hi]` by `frac` of its width on each side (matplotlib's 5% margins); a single value
/// gets a small range around it. Errors when the result is not a finite, non-empty range.
pub(super) fn padded(what: &str, (lo, hi): (f64, f64), frac: f64) -> Result<(f64, f64)> {
    let (lo, hi) = if hi > lo {
        let pad = (hi - lo) * frac;
        (lo - pad, hi + pad)
    } else {
        let pad = if lo == 0.0 {
            0.5
        } else {
            (lo.abs() * 0.05).max(1e-9)
        };
        (lo - pad, hi + pad)
    };
    if lo.is_finite() && hi.is_finite() && (hi - lo).is_finite() && hi > lo {
        Ok((lo, hi))
    } else {
        Err(Error::invalid(what, "the values are too large to plot"))
    }
}

/// An axis: its range, how many labels to ask for and how many decimals those labels need.
#[derive(Clone, Copy)]
pub(super) struct Axis {
    pub(super) lo: f64,
    hi: f64,
    pub(super) labels: usize,
    decimals: Option<usize>,
}

impl Axis {
    pub(super) fn new((lo, hi): (f64, f64), labels: usize) -> Self {
        // The same key points the mesh will label (plotters asks the coordinate for `labels` bold points).
        let ticks = RangedCoordf64::from(lo..hi).key_points(labels);
        // The fewest decimals that show every tick to within a thousandth of the tick spacing;
        // None (scientific notation) when six decimals are not enough.
        let spacing = ticks
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(f64::INFINITY, f64::min);
        let tolerance = if spacing.is_finite() {
            spacing * 1e-3
        } else {
            ticks.first().map_or(0.0, |t| t.abs() * 1e-6)
        };
        let decimals = (0..=6).find(|&d| {
            let scale = 10f64.powi(d as i32);
            ticks
                .iter()
                .all(|t| ((t * scale).round() / scale - t).abs() <= tolerance)
        });
        Axis {
            lo,
            hi,
            labels,
            decimals,
        }
    }

    pub(super) fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }

    pub(super) fn format(&self, v: f64) -> String {
        let s = match self.decimals {
            Some(d) => format!("{v:.d$}"),
            None => format!("{v:.2e}"),
        };
        // "-0.00" reads as noise: drop the sign of a zero.
        match s.strip_prefix('-') {
            Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
            _ => s,
        }
    }

    /// Where `v` falls across the axis, 0 at `lo` and 1 at `hi`.
    pub(super) fn frac(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// Picks the legend corner that hides the fewest data points. `points` are in axis fractions
/// (0..1, y upwards), `legend` is the legend's size as a fraction of the plotting area.
fn legend_corner(points: &[(f64, f64)], legend: (f64, f64)) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    let (w, h) = (legend.0 + 0.02, legend.1 + 0.02);
    let candidates = [
        (UpperRight, true, true),
        (UpperLeft, false, true),
        (LowerRight, true, false),
        (LowerLeft, false, false),
    ];
    let mut best = (usize::MAX, UpperRight);
    for (pos, right, upper) in candidates {
        let covered = points
            .iter()
            .filter(|&&(x, y)| {
                let in_x = if right { x >= 1.0 - w } else { x <= w };
                let in_y = if upper { y >= 1.0 - h } else { y <= h };
                in_x && in_y
            })
            .count();
        if covered < best.0 {
            best = (covered, pos);
        }
    }
    best.1
}

/// The legend's size in pixels as plotters lays it out (see `SeriesLabelStyle::draw`).
fn legend_size(
    area: &Area<'_>,
    labels: &[&str],
    marker_px: u32,
    margin: u32,
) -> DrawResult<(f64, f64)> {
    let style = font(LEGEND_PX);
    let mut w = 0u32;
    for l in labels {
        w = w.max(area.estimate_text_size(l, &style)?.0);
    }
    let h = LEGEND_PX * 1.25 * labels.len() as f64;
    Ok((
        f64::from(w + marker_px + 2 * margin),
        h + 2.0 * f64::from(margin),
    ))
}

/// A legend with a white, slightly transparent background and a thin grey frame.
fn draw_legend<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
    marker_px: u32,
) -> DrawResult
where
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .position(position)
        .margin(LEGEND_MARGIN)
        .legend_area_size(marker_px)
        .label_font(font(LEGEND_PX))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(0xc0, 0xc0, 0xc0))
        .draw()?;
    Ok(())
}

const LEGEND_MARGIN: u32 = 10;

/// Draws the legend (`labels`, measured in `area`) in the corner of the chart's plotting area that
/// hides the fewest of `points` (in axis fractions, as [`legend_corner`] takes them).
pub(super) fn draw_legend_in_freest_corner<'a, 'b: 'a, X, Y>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, Cartesian2d<X, Y>>,
    area: &Area<'_>,
    labels: &[&str],
    points: &[(f64, f64)],
    marker_px: u32,
) -> DrawResult
where
    X: Ranged,
    Y: Ranged,
{
    let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
    let (lw, lh) = legend_size(area, labels, marker_px, LEGEND_MARGIN)?;
    let corner = legend_corner(
        points,
        (lw / f64::from(plot_w.max(1)), lh / f64::from(plot_h.max(1))),
    );
    draw_legend(chart, corner, marker_px)
}

/// Height of the x label area: tick labels, plus the axis description below them.
fn x_label_area(has_desc: bool) -> u32 {
    let ticks = TICK_PX as u32 + 12;
    if has_desc {
        ticks + AXIS_DESC_PX as u32 + 6
    } else {
        ticks
    }
}

/// Width of the y label area: the widest tick label, plus the rotated axis description left of it.
pub(super) fn y_label_area(area: &Area<'_>, y: &Axis, has_desc: bool) -> DrawResult<u32> {
    let style = font(TICK_PX);
    let mut widest = 0;
    for t in RangedCoordf64::from(y.range()).key_points(y.labels) {
        widest = widest.max(area.estimate_text_size(&y.format(t), &style)?.0);
    }
    let ticks = widest + 16;
    Ok(if has_desc {
        ticks + AXIS_DESC_PX as u32 + 12
    } else {
        ticks
    })
}

/// Builds a chart in `area` with the house style: caption, axis labels, light grid, compact ticks.
pub(super) fn styled_chart<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    x: Axis,
    y: Axis,
    x_desc: &str,
    y_desc: &str,
) -> DrawResult<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, font(CAPTION_PX))
        .margin(14)
        .margin_right(24)
        .x_label_area_size(x_label_area(!x_desc.is_empty()))
        .y_label_area_size(y_label_area(area, &y, !y_desc.is_empty())?)
        .build_cartesian_2d(x.range(), y.range())?;
    let x_fmt = move |v: &f64| x.format(*v);
    let y_fmt = move |v: &f64| y.format(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_labels(x.labels)
        .y_labels(y.labels)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(x_desc)
        .y_desc(y_desc);
    draw_mesh(&mut mesh)?;
    Ok(chart)
}

/// Draws a chart's mesh in the house style (tick and description fonts, axis colour, light grid)
/// on top of whatever labels and descriptions the caller has set.
pub(super) fn draw_mesh(
    mesh: &mut MeshStyle<'_, '_, RangedCoordf64, RangedCoordf64, BitMapBackend<'_>>,
) -> DrawResult {
    mesh.label_style(font(TICK_PX))
        .axis_desc_style(font(AXIS_DESC_PX))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_compact() {
        let a = Axis::new((0.7, 0.9), 8);
        assert_eq!(a.format(0.8000000001), "0.80");
        assert_eq!(a.format(-0.0001), "0.00");
        let e = Axis::new((-4.0, 103.0), 10);
        assert_eq!(e.format(20.0), "20");
        // Whatever ticks plotters picks, each label is distinct and no longer than needed.
        for (lo, hi, n) in [
            (0.0, 0.5, 6),
            (0.0, 1.0, 4),
            (0.31, 0.87, 8),
            (-3.7, 12.2, 10),
            (950.0, 1010.0, 8),
        ] {
            let a = Axis::new((lo, hi), n);
            let ticks = RangedCoordf64::from(lo..hi).key_points(n);
            let labels: Vec<String> = ticks.iter().map(|&t| a.format(t)).collect();
            let mut unique = labels.clone();
            unique.dedup();
            assert_eq!(unique.len(), labels.len(), "{labels:?}");
            for (t, l) in ticks.iter().zip(&labels) {
                assert!(
                    (l.parse::<f64>().unwrap() - t).abs() < 1e-9,
                    "{t} shown as {l}"
                );
                assert!(
                    !(l.contains('.')
                        && l.ends_with('0')
                        && labels.iter().all(|l| l.ends_with('0'))),
                    "{labels:?}"
                );
            }
        }
        let tiny = Axis::new((0.0, 2e-9), 5);
        assert_eq!(tiny.format(1e-9), "1.00e-9");
    }
}
