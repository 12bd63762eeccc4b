//! Figures as PNG files: the blobs scatter plot, learning curves and the box-and-whisker comparison.
//!
//! Every figure is drawn with plotters' bitmap backend and the embedded DejaVu Sans font, and is
//! written through [`crate::fsutil::write_atomic`], so a failure never leaves a half-written PNG.
//! Bad input (no points, an empty series or group, a path that does not end in `.png`) is reported
//! as an [`Error`]; non-finite values are skipped.

use crate::error::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// One panel of the scatter figure: points coloured by class.
pub struct ScatterPanel<'a> {
    pub title: String,
    /// Row-major features, `n_features` per row; columns 0 and 1 are plotted (with one feature, y = 0).
    pub x: &'a [f64],
    pub n_features: usize,
    /// Class index per row.
    pub y: &'a [usize],
    /// Legend text per class index (e.g. "class 0").
    pub class_names: Vec<String>,
}

/// One line of a learning-curve panel.
pub struct Curve<'a> {
    pub label: &'a str,
    pub values: &'a [f64],
}

/// Five-number summary of a box plot, computed the way matplotlib's boxplot does (whis=1.5).
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStats {
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
    pub whisker_lo: f64,
    pub whisker_hi: f64,
    pub outliers: Vec<f64>,
    pub mean: f64,
}

// ---------------------------------------------------------------------------------------------
// Shared drawing machinery
// ---------------------------------------------------------------------------------------------

/// The family name the embedded font is registered under (plotters' default family).
const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/DejaVuSans.ttf"
));

const TITLE_PX: f64 = 24.0;
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

type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;
type DrawResult<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn tab10(i: usize) -> RGBColor {
    TAB10[i % TAB10.len()]
}

fn font(px: f64) -> TextStyle<'static> {
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
fn check_png_path(path: &Path) -> Result<()> {
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
fn render<F>(path: &Path, size: (u32, u32), draw: F) -> Result<()>
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
fn finite_extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
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
fn padded(what: &str, (lo, hi): (f64, f64), frac: f64) -> Result<(f64, f64)> {
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
struct Axis {
    lo: f64,
    hi: f64,
    labels: usize,
    decimals: Option<usize>,
}

impl Axis {
    fn new((lo, hi): (f64, f64), labels: usize) -> Self {
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

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }

    fn format(&self, v: f64) -> String {
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
    fn frac(&self, v: f64) -> f64 {
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
fn y_label_area(area: &Area<'_>, y: &Axis, has_desc: bool) -> DrawResult<u32> {
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
fn styled_chart<'a, 'b>(
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
    chart
        .configure_mesh()
        .x_labels(x.labels)
        .y_labels(y.labels)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(font(TICK_PX))
        .axis_desc_style(font(AXIS_DESC_PX))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .draw()?;
    Ok(chart)
}

// ---------------------------------------------------------------------------------------------
// Scatter
// ---------------------------------------------------------------------------------------------

/// Draws the panels stacked vertically (the tutorial's subplot(211)/(212)), each with axes, ticks, axis labels "x0"/"x1", title, legend.
pub fn scatter(path: &Path, panels: &[ScatterPanel]) -> Result<()> {
    check_png_path(path)?;
    if panels.is_empty() {
        return Err(Error::invalid("scatter plot", "no panels to draw"));
    }
    // Validate everything and group the finite points by class before touching the file.
    let mut prepared = Vec::with_capacity(panels.len());
    for (i, panel) in panels.iter().enumerate() {
        let what = format!("scatter panel {} ('{}')", i + 1, panel.title);
        if panel.n_features == 0 {
            return Err(Error::invalid(what, "n_features is 0"));
        }
        if panel.y.is_empty() {
            return Err(Error::invalid(what, "no points to draw"));
        }
        if panel.x.len() != panel.y.len().saturating_mul(panel.n_features) {
            return Err(Error::invalid(
                what,
                format!(
                    "{} feature values do not make {} rows of {} features",
                    panel.x.len(),
                    panel.y.len(),
                    panel.n_features
                ),
            ));
        }
        let mut by_class: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
        for (row, &class) in panel.x.chunks_exact(panel.n_features).zip(panel.y) {
            let px = row[0];
            let py = if panel.n_features >= 2 { row[1] } else { 0.0 };
            if px.is_finite() && py.is_finite() {
                by_class.entry(class).or_default().push((px, py));
            }
        }
        let all = by_class.values().flatten();
        let (Some(xe), Some(ye)) = (
            finite_extent(all.clone().map(|p| p.0)),
            finite_extent(all.map(|p| p.1)),
        ) else {
            return Err(Error::invalid(what, "no point has finite coordinates"));
        };
        let x_axis = Axis::new(padded(&what, xe, 0.05)?, 10);
        let y_axis = Axis::new(padded(&what, ye, 0.05)?, 8);
        prepared.push((panel, by_class, x_axis, y_axis));
    }

    let height = if panels.len() == 2 {
        900
    } else {
        450 * panels.len() as u32
    };
    render(path, (800, height), |root| {
        let areas = root.split_evenly((panels.len(), 1));
        for ((panel, by_class, x_axis, y_axis), area) in prepared.iter().zip(&areas) {
            let y_desc = if panel.n_features >= 2 { "x1" } else { "" };
            let mut chart = styled_chart(area, &panel.title, *x_axis, *y_axis, "x0", y_desc)?;
            let names: Vec<String> = by_class
                .keys()
                .map(|&c| {
                    panel
                        .class_names
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| format!("class {c}"))
                })
                .collect();
            for ((&class, points), name) in by_class.iter().zip(&names) {
                let color = tab10(class);
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?
                    .label(name.as_str())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 5, color.filled()));
            }
            let labels: Vec<&str> = names.iter().map(String::as_str).collect();
            let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
            let (lw, lh) = legend_size(area, &labels, 20, LEGEND_MARGIN)?;
            let fracs: Vec<(f64, f64)> = by_class
                .values()
                .flatten()
                .map(|&(x, y)| (x_axis.frac(x), y_axis.frac(y)))
                .collect();
            let corner = legend_corner(
                &fracs,
                (lw / f64::from(plot_w.max(1)), lh / f64::from(plot_h.max(1))),
            );
            draw_legend(&mut chart, corner, 20)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Learning curves
// ---------------------------------------------------------------------------------------------

/// The tutorial's learning-curve figure: the loss panel on top ("Loss"), the accuracy panel below ("Accuracy"), x axis "epoch"; train lines blue and test (validation) lines orange, as matplotlib's default colours; a legend in each panel; `title` above everything (e.g. "Problem 1 MLP").
///
/// Curves take matplotlib's colour cycle in the order given (pass train first, then test). Point
/// `i` of a curve is epoch `i + 1`. Non-finite values are skipped (the line breaks there).
pub fn learning_curves(path: &Path, title: &str, loss: &[Curve], accuracy: &[Curve]) -> Result<()> {
    check_png_path(path)?;
    let mut panels = Vec::with_capacity(2);
    for (name, curves) in [("Loss", loss), ("Accuracy", accuracy)] {
        let what = format!("{} learning curves", name.to_lowercase());
        if curves.is_empty() {
            return Err(Error::invalid(what, "no curve to draw"));
        }
        if let Some(c) = curves.iter().find(|c| c.values.is_empty()) {
            return Err(Error::invalid(
                what,
                format!("curve '{}' has no values", c.label),
            ));
        }
        let Some(extent) = finite_extent(curves.iter().flat_map(|c| c.values.iter().copied()))
        else {
            return Err(Error::invalid(what, "no curve has a finite value"));
        };
        let y_axis = Axis::new(padded(&what, extent, 0.05)?, 8);
        panels.push((name, curves, y_axis));
    }
    let epochs = loss
        .iter()
        .chain(accuracy)
        .map(|c| c.values.len())
        .max()
        .unwrap_or(1);
    let x_axis = Axis::new(
        padded("epoch axis", (1.0, epochs as f64), 0.03)?,
        epochs.clamp(2, 10),
    );

    render(path, (800, 800), |root| {
        let body = root.margin(10, 0, 0, 0).titled(title, font(TITLE_PX))?;
        let areas = body.split_evenly((2, 1));
        for ((name, curves, y_axis), area) in panels.iter().zip(&areas) {
            let y_axis = *y_axis;
            let mut chart = styled_chart(area, name, x_axis, y_axis, "epoch", "")?;
            let mut fracs = Vec::new();
            for (i, curve) in curves.iter().enumerate() {
                let color = tab10(i);
                let style = color.stroke_width(2);
                let points: Vec<Option<(f64, f64)>> = curve
                    .values
                    .iter()
                    .enumerate()
                    .map(|(e, &v)| v.is_finite().then_some(((e + 1) as f64, v)))
                    .collect();
                // Runs of consecutive finite values; a lone point gets a dot so it stays visible.
                let mut labelled = false;
                for run in points.split(Option::is_none).filter(|r| !r.is_empty()) {
                    let run: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
                    let anno = if run.len() == 1 {
                        chart.draw_series(run.iter().map(|&p| Circle::new(p, 3, color.filled())))?
                    } else {
                        chart.draw_series(LineSeries::new(run.iter().copied(), style))?
                    };
                    if !labelled {
                        anno.label(curve.label).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 24, y)], style)
                        });
                        labelled = true;
                    }
                    // Sample along the segments so the legend avoids lines, not just vertices.
                    for w in run.windows(2) {
                        for k in 0..8 {
                            let t = f64::from(k) / 8.0;
                            let (x, y) = (
                                w[0].0 + t * (w[1].0 - w[0].0),
                                w[0].1 + t * (w[1].1 - w[0].1),
                            );
                            fracs.push((x_axis.frac(x), y_axis.frac(y)));
                        }
                    }
                    if let Some(&(x, y)) = run.last() {
                        fracs.push((x_axis.frac(x), y_axis.frac(y)));
                    }
                }
            }
            let labels: Vec<&str> = curves.iter().map(|c| c.label).collect();
            let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
            let (lw, lh) = legend_size(area, &labels, 32, LEGEND_MARGIN)?;
            let corner = legend_corner(
                &fracs,
                (lw / f64::from(plot_w.max(1)), lh / f64::from(plot_h.max(1))),
            );
            draw_legend(&mut chart, corner, 32)?;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Box plot
// ---------------------------------------------------------------------------------------------

/// numpy's default (`method="linear"`) percentile of sorted, non-empty data, with numpy's lerp.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let t = pos - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    // numpy's _lerp: from the nearer end, so t = 1 gives b exactly.
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// Quartiles by numpy's default percentile method (linear interpolation between order statistics); whiskers at the most extreme data points within 1.5*IQR of the box; points beyond are outliers.
///
/// Non-finite values are ignored; with no finite value at all every field is NaN and there are no
/// outliers. Outliers are listed as matplotlib's `boxplot_stats` lists its fliers: the low ones,
/// then the high ones, each in data order.
pub fn box_stats(values: &[f64]) -> BoxStats {
    let data: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if data.is_empty() {
        return BoxStats {
            q1: f64::NAN,
            median: f64::NAN,
            q3: f64::NAN,
            whisker_lo: f64::NAN,
            whisker_hi: f64::NAN,
            outliers: Vec::new(),
            mean: f64::NAN,
        };
    }
    let mut sorted = data.clone();
    sorted.sort_by(f64::total_cmp);
    let q1 = percentile(&sorted, 25.0);
    let median = percentile(&sorted, 50.0);
    let q3 = percentile(&sorted, 75.0);
    let iqr = q3 - q1;
    let (lo_limit, hi_limit) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    // matplotlib.cbook.boxplot_stats: the whisker never reaches into the box.
    let whisker_hi = match data
        .iter()
        .copied()
        .filter(|&v| v <= hi_limit)
        .max_by(f64::total_cmp)
    {
        Some(m) if m >= q3 => m,
        _ => q3,
    };
    let whisker_lo = match data
        .iter()
        .copied()
        .filter(|&v| v >= lo_limit)
        .min_by(f64::total_cmp)
    {
        Some(m) if m <= q1 => m,
        _ => q1,
    };
    let outliers = data
        .iter()
        .copied()
        .filter(|&v| v < whisker_lo)
        .chain(data.iter().copied().filter(|&v| v > whisker_hi))
        .collect();
    let mean = data.iter().sum::<f64>() / data.len() as f64;
    BoxStats {
        q1,
        median,
        q3,
        whisker_lo,
        whisker_hi,
        outliers,
        mean,
    }
}

/// Splits a label into two lines at the space nearest its middle (None when it has no space).
fn split_label(label: &str) -> Option<(String, String)> {
    let mid = label.len() / 2;
    let (i, _) = label
        .char_indices()
        .filter(|&(_, c)| c == ' ')
        .min_by_key(|&(i, _)| i.abs_diff(mid))?;
    Some((label[..i].to_string(), label[i + 1..].to_string()))
}

/// Font size for the box plot's group labels and whether they need two lines, so that the widest
/// fits `slot` pixels: one line at 16..13 px, else two lines at 16..11 px, else one line at 11 px.
fn group_label_layout(
    area: &Area<'_>,
    groups: &[(String, Vec<f64>)],
    slot: f64,
) -> DrawResult<(f64, bool)> {
    let widest = |px: f64, split: bool| -> DrawResult<f64> {
        let style = font(px);
        let mut w = 0u32;
        for (name, _) in groups {
            let lines = match split_label(name) {
                Some((a, b)) if split => vec![a, b],
                _ => vec![name.clone()],
            };
            for line in &lines {
                w = w.max(area.estimate_text_size(line, &style)?.0);
            }
        }
        Ok(f64::from(w))
    };
    for px in [16.0, 15.0, 14.0, 13.0] {
        if widest(px, false)? <= slot {
            return Ok((px, false));
        }
    }
    for px in [16.0, 15.0, 14.0, 13.0, 12.0, 11.0] {
        if widest(px, true)? <= slot {
            return Ok((px, true));
        }
    }
    Ok((11.0, false))
}

/// The tutorial's comparison figure: one box per group, labels under each box (e.g. "standalone", "transfer (fixed=0)"), median as an orange line, quartile box, whiskers with caps, outliers as dots, mean as a small green triangle, y axis "test accuracy", title.
pub fn box_plot(path: &Path, title: &str, groups: &[(String, Vec<f64>)]) -> Result<()> {
    check_png_path(path)?;
    if groups.is_empty() {
        return Err(Error::invalid("box plot", "no groups to draw"));
    }
    let mut stats = Vec::with_capacity(groups.len());
    for (name, values) in groups {
        if values.is_empty() {
            return Err(Error::invalid(
                "box plot",
                format!("group '{name}' has no values"),
            ));
        }
        let s = box_stats(values);
        if s.median.is_nan() {
            return Err(Error::invalid(
                "box plot",
                format!("group '{name}' has no finite value"),
            ));
        }
        stats.push(s);
    }
    let extent = finite_extent(stats.iter().flat_map(|s| {
        [s.whisker_lo, s.whisker_hi, s.mean]
            .into_iter()
            .chain(s.outliers.iter().copied())
    }))
    .ok_or_else(|| Error::invalid("box plot", "no finite value"))?;
    let y_axis = Axis::new(padded("box plot", extent, 0.06)?, 8);
    let n = groups.len();
    let x_range = 0.5..n as f64 + 0.5;
    const HALF_WIDTH: f64 = 0.25;
    let any_outliers = stats.iter().any(|s| !s.outliers.is_empty());

    render(path, (900, 600), |root| {
        // Group labels go under the boxes, shrunk (or broken in two lines) to fit their slot; the
        // layout is settled first so the label area below the plot is just tall enough.
        let (margin, margin_right) = (14, 24);
        let y_area = y_label_area(root, &y_axis, true)?;
        let plot_w = f64::from(
            root.dim_in_pixel()
                .0
                .saturating_sub(y_area + margin + margin_right),
        );
        let (size, two_lines) = group_label_layout(root, groups, plot_w / n as f64 * 0.92)?;
        let lines = if two_lines { 2.0 } else { 1.0 };
        let x_area = (12.0 + lines * size * 1.25 + 8.0) as u32;

        let y_fmt = move |v: &f64| y_axis.format(*v);
        let mut chart = ChartBuilder::on(root)
            .caption(title, font(TITLE_PX))
            .margin(margin)
            .margin_top(12)
            .margin_right(margin_right)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            .build_cartesian_2d(x_range.clone(), y_axis.range())?;
        chart
            .configure_mesh()
            .x_labels(0)
            .disable_x_mesh()
            .y_labels(y_axis.labels)
            .y_label_formatter(&y_fmt)
            .y_desc("test accuracy")
            .label_style(font(TICK_PX))
            .axis_desc_style(font(AXIS_DESC_PX))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;

        let box_style = ShapeStyle::from(&BLACK).stroke_width(1);
        let median_style = tab10(1).stroke_width(2);
        let mean_style = tab10(2).filled();
        for (i, s) in stats.iter().enumerate() {
            let p = (i + 1) as f64;
            let (l, r) = (p - HALF_WIDTH, p + HALF_WIDTH);
            let (cl, cr) = (p - HALF_WIDTH / 2.0, p + HALF_WIDTH / 2.0);
            chart.draw_series([
                PathElement::new(vec![(p, s.q1), (p, s.whisker_lo)], box_style),
                PathElement::new(vec![(p, s.q3), (p, s.whisker_hi)], box_style),
                PathElement::new(vec![(cl, s.whisker_lo), (cr, s.whisker_lo)], box_style),
                PathElement::new(vec![(cl, s.whisker_hi), (cr, s.whisker_hi)], box_style),
            ])?;
            chart.draw_series([Rectangle::new([(l, s.q1), (r, s.q3)], box_style)])?;
            let median = chart.draw_series([PathElement::new(
                vec![(l, s.median), (r, s.median)],
                median_style,
            )])?;
            if i == 0 {
                median.label("median").legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], median_style)
                });
            }
            let mean = chart.draw_series([TriangleMarker::new((p, s.mean), 6, mean_style)])?;
            if i == 0 {
                mean.label("mean")
                    .legend(move |(x, y)| TriangleMarker::new((x + 11, y), 6, mean_style));
            }
            let outliers = chart.draw_series(
                s.outliers
                    .iter()
                    .map(|&v| Circle::new((p, v), 4, box_style)),
            )?;
            if any_outliers && i == 0 {
                outliers
                    .label("outliers")
                    .legend(move |(x, y)| Circle::new((x + 11, y), 4, box_style));
            }
        }

        let (plot_w, plot_h) = chart.plotting_area().dim_in_pixel();
        let style = font(size).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, (name, _)) in groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&((i + 1) as f64, y_axis.lo));
            let lines = match (two_lines, split_label(name)) {
                (true, Some((a, b))) => vec![a, b],
                _ => vec![name.clone()],
            };
            for (k, line) in lines.iter().enumerate() {
                let y = py + 10 + (k as f64 * size * 1.25) as i32;
                root.draw(&Text::new(line.as_str(), (px, y), style.clone()))?;
            }
        }

        // Legend in the corner with the least drawn over.
        let mut fracs = Vec::new();
        for (i, s) in stats.iter().enumerate() {
            let p = (i + 1) as f64;
            let x_frac = |x: f64| (x - 0.5) / n as f64;
            let steps = 24;
            for k in 0..=steps {
                let v =
                    s.whisker_lo + (s.whisker_hi - s.whisker_lo) * f64::from(k) / f64::from(steps);
                for dx in [-HALF_WIDTH, 0.0, HALF_WIDTH] {
                    fracs.push((x_frac(p + dx), y_axis.frac(v)));
                }
            }
            for &v in s.outliers.iter().chain([s.mean].iter()) {
                fracs.push((x_frac(p), y_axis.frac(v)));
            }
        }
        let mut labels = vec!["median", "mean"];
        if any_outliers {
            labels.push("outliers");
        }
        let (lw, lh) = legend_size(root, &labels, 32, LEGEND_MARGIN)?;
        let corner = legend_corner(
            &fracs,
            (lw / f64::from(plot_w.max(1)), lh / f64::from(plot_h.max(1))),
        );
        draw_legend(&mut chart, corner, 32)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(a: f64, b: f64, what: &str) {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "{what}: got {a}, expected {b}"
        );
    }

    /// `expected`: q1, median, q3, whisker_lo, whisker_hi, mean.
    fn check(values: &[f64], expected: [f64; 6], outliers: &[f64]) {
        let [q1, median, q3, lo, hi, mean] = expected;
        let s = box_stats(values);
        assert_close(s.q1, q1, "q1");
        assert_close(s.median, median, "median");
        assert_close(s.q3, q3, "q3");
        assert_close(s.whisker_lo, lo, "whisker_lo");
        assert_close(s.whisker_hi, hi, "whisker_hi");
        assert_close(s.mean, mean, "mean");
        assert_eq!(s.outliers, outliers, "outliers");
    }

    // Expected numbers from numpy 2.4.6 / matplotlib 3.11.2:
    //   s = matplotlib.cbook.boxplot_stats(np.array(values), whis=1.5)[0]
    //   s["q1"], s["med"], s["q3"], s["whislo"], s["whishi"], s["mean"], list(s["fliers"])
    // (and np.percentile(values, [25, 50, 75]) agrees on the quartiles).

    #[test]
    fn box_stats_odd_count() {
        check(
            &[3.0, 1.0, 5.0, 2.0, 4.0],
            [2.0, 3.0, 4.0, 1.0, 5.0, 3.0],
            &[],
        );
    }

    #[test]
    fn box_stats_even_count_interpolates() {
        check(&[4.0, 1.0, 3.0, 2.0], [1.75, 2.5, 3.25, 1.0, 4.0, 2.5], &[]);
    }

    #[test]
    fn box_stats_outliers_low_then_high_in_data_order() {
        let v = [
            0.81, 0.80, 0.82, 0.79, 0.81, 0.80, 0.45, 0.83, 0.80, 0.95, 0.30,
        ];
        check(
            &v,
            [0.795, 0.8, 0.815, 0.79, 0.83, 0.7418181818181818],
            &[0.45, 0.30, 0.95],
        );
    }

    #[test]
    fn box_stats_whisker_clamped_to_box() {
        // The highest point within q3 + 1.5 IQR is below q3, so the whisker stops at q3.
        check(
            &[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 5.0, 6.0],
            [1.0, 1.0, 2.0, 1.0, 2.0, 2.125],
            &[5.0, 6.0],
        );
    }

    #[test]
    fn box_stats_single_value() {
        check(&[0.5], [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], &[]);
    }

    #[test]
    fn box_stats_ignores_non_finite_and_handles_empty() {
        check(
            &[f64::NAN, 4.0, 1.0, f64::INFINITY, 3.0, 2.0],
            [1.75, 2.5, 3.25, 1.0, 4.0, 2.5],
            &[],
        );
        let s = box_stats(&[]);
        assert!(s.median.is_nan() && s.q1.is_nan() && s.mean.is_nan() && s.outliers.is_empty());
        assert!(box_stats(&[f64::NAN]).median.is_nan());
    }

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

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).expect("the figure was written");
        assert!(
            bytes.len() > 1000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }

    fn blobs() -> (Vec<f64>, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..90 {
            let class = i % 3;
            let t = i as f64 * 0.7;
            x.extend([class as f64 * 5.0 + t.sin(), class as f64 * -3.0 + t.cos()]);
            y.push(class);
        }
        (x, y)
    }

    fn names() -> Vec<String> {
        (0..3).map(|c| format!("class {c}")).collect()
    }

    #[test]
    fn scatter_writes_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blobs.png");
        let (x, y) = blobs();
        let panels = [
            ScatterPanel {
                title: "Problem 1".into(),
                x: &x,
                n_features: 2,
                y: &y,
                class_names: names(),
            },
            ScatterPanel {
                title: "Problem 2".into(),
                x: &x,
                n_features: 2,
                y: &y,
                class_names: vec![],
            },
        ];
        scatter(&path, &panels).unwrap();
        assert_png(&path);
        // One feature: y = 0, and a NaN point is skipped.
        let one: Vec<f64> = vec![0.0, 1.0, f64::NAN, 3.0];
        let classes = [0, 1, 1, 2];
        let panel = ScatterPanel {
            title: "1-d".into(),
            x: &one,
            n_features: 1,
            y: &classes,
            class_names: names(),
        };
        let path1 = dir.path().join("one.png");
        scatter(&path1, &[panel]).unwrap();
        assert_png(&path1);
    }

    #[test]
    fn scatter_rejects_bad_input_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.png");
        let empty = ScatterPanel {
            title: "empty".into(),
            x: &[],
            n_features: 2,
            y: &[],
            class_names: names(),
        };
        assert!(matches!(
            scatter(&path, &[empty]),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(scatter(&path, &[]), Err(Error::Invalid { .. })));
        let ragged = ScatterPanel {
            title: "ragged".into(),
            x: &[1.0, 2.0, 3.0],
            n_features: 2,
            y: &[0, 1],
            class_names: names(),
        };
        assert!(matches!(
            scatter(&path, &[ragged]),
            Err(Error::Invalid { .. })
        ));
        let nan = ScatterPanel {
            title: "nan".into(),
            x: &[f64::NAN, 1.0],
            n_features: 2,
            y: &[0],
            class_names: names(),
        };
        assert!(matches!(scatter(&path, &[nan]), Err(Error::Invalid { .. })));
        let (x, y) = blobs();
        let ok = ScatterPanel {
            title: "ok".into(),
            x: &x,
            n_features: 2,
            y: &y,
            class_names: names(),
        };
        assert!(matches!(
            scatter(&dir.path().join("blobs.jpg"), &[ok]),
            Err(Error::Invalid { .. })
        ));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing is left behind"
        );
    }

    #[test]
    fn learning_curves_write_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let train: Vec<f64> = (0..50).map(|e| 1.0 / (1.0 + e as f64 * 0.2)).collect();
        let mut test: Vec<f64> = train.iter().map(|v| v * 1.1).collect();
        test[10] = f64::NAN;
        let acc: Vec<f64> = train.iter().map(|v| 1.0 - v * 0.5).collect();
        let loss = [
            Curve {
                label: "train",
                values: &train,
            },
            Curve {
                label: "test",
                values: &test,
            },
        ];
        let accuracy = [
            Curve {
                label: "train",
                values: &acc,
            },
            Curve {
                label: "test",
                values: &acc,
            },
        ];
        learning_curves(&path, "Problem 1 MLP", &loss, &accuracy).unwrap();
        assert_png(&path);
        // A single epoch still draws.
        let one = [0.5];
        let single = [Curve {
            label: "train",
            values: &one,
        }];
        learning_curves(&path, "one epoch", &single, &single).unwrap();
        assert_png(&path);
    }

    #[test]
    fn learning_curves_reject_empty_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let v = [0.5, 0.4];
        let ok = [Curve {
            label: "train",
            values: &v,
        }];
        let empty = [Curve {
            label: "test",
            values: &[],
        }];
        assert!(matches!(
            learning_curves(&path, "t", &[], &ok),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            learning_curves(&path, "t", &ok, &empty),
            Err(Error::Invalid { .. })
        ));
        let nan = [f64::NAN];
        let all_nan = [Curve {
            label: "train",
            values: &nan,
        }];
        assert!(matches!(
            learning_curves(&path, "t", &all_nan, &ok),
            Err(Error::Invalid { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn box_plot_writes_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.png");
        let groups = vec![
            (
                "standalone".to_string(),
                vec![
                    0.81, 0.80, 0.82, 0.79, 0.81, 0.80, 0.45, 0.83, 0.80, 0.95, 0.30,
                ],
            ),
            (
                "transfer (fixed=0)".to_string(),
                vec![0.80, 0.81, 0.805, f64::NAN],
            ),
            ("single".to_string(), vec![0.7]),
        ];
        box_plot(&path, "Standalone vs transfer", &groups).unwrap();
        assert_png(&path);
    }

    #[test]
    fn box_plot_rejects_empty_input() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.png");
        assert!(matches!(
            box_plot(&path, "t", &[]),
            Err(Error::Invalid { .. })
        ));
        let groups = vec![("a".to_string(), vec![0.5]), ("b".to_string(), vec![])];
        assert!(matches!(
            box_plot(&path, "t", &groups),
            Err(Error::Invalid { .. })
        ));
        let groups = vec![("a".to_string(), vec![f64::NAN])];
        assert!(matches!(
            box_plot(&path, "t", &groups),
            Err(Error::Invalid { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn odd_text_and_extreme_values_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd.png");
        let groups = vec![
            (String::new(), vec![1e-300, 2e-300]),
            ("ünïcödé 名前 ✓".to_string(), vec![0.0]),
        ];
        box_plot(&path, "", &groups).unwrap();
        assert_png(&path);
        let v = [1.0, 1.0 + 1e-15, 1.0];
        let flat = [Curve {
            label: "",
            values: &v,
        }];
        learning_curves(&path, "", &flat, &flat).unwrap();
        assert_png(&path);
        let huge = [f64::MAX, -f64::MAX];
        let huge = [Curve {
            label: "train",
            values: &huge,
        }];
        let r = learning_curves(&path, "t", &huge, &flat);
        assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    }

    #[test]
    fn plot_errors_name_the_target() {
        let dir = tempfile::tempdir().unwrap();
        // The parent directory does not exist: the error names the target path, no panic.
        let path = dir.path().join("missing").join("box.png");
        let groups = vec![("a".to_string(), vec![0.5, 0.6])];
        let err = box_plot(&path, "t", &groups).unwrap_err();
        assert!(err.to_string().contains("box.png"), "{err}");
    }
}
