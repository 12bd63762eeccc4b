//! The box-and-whisker comparison figure: [`BoxStats`], [`box_stats`] (matplotlib's statistics),
//! [`box_plot`] and the layout of its group labels.

use super::style::{
    Area, Axis, DrawResult, TITLE_PX, check_png_path, draw_legend_in_freest_corner, draw_mesh,
    finite_extent, font, padded, render, tab10, y_label_area,
};
use crate::error::{Error, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

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
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(0)
            .disable_x_mesh()
            .y_labels(y_axis.labels)
            .y_label_formatter(&y_fmt)
            .y_desc("test accuracy");
        draw_mesh(&mut mesh)?;

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
        draw_legend_in_freest_corner(&mut chart, root, &labels, &fracs, 32)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::assert_png;

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
}
