//! The blobs scatter figure: [`ScatterPanel`] and [`scatter`].

use super::style::{
    Axis, check_png_path, draw_legend_in_freest_corner, finite_extent, padded, render,
    styled_chart, tab10,
};
use crate::data::Dataset;
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

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
            let fracs: Vec<(f64, f64)> = by_class
                .values()
                .flatten()
                .map(|&(x, y)| (x_axis.frac(x), y_axis.frac(y)))
                .collect();
            draw_legend_in_freest_corner(&mut chart, area, &labels, &fracs, 20)?;
        }
        Ok(())
    })
}

/// Draws the scatter figure of one or more problems, one panel each.
pub fn plot_problems(path: &Path, problems: &[(String, &Dataset)]) -> Result<()> {
    let panels: Vec<ScatterPanel> = problems
        .iter()
        .map(|(title, d)| ScatterPanel {
            title: title.clone(),
            x: &d.x,
            n_features: d.n_features,
            y: &d.labels,
            class_names: d.class_names.iter().map(|c| format!("class {c}")).collect(),
        })
        .collect();
    scatter(path, &panels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::assert_png;

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
}
