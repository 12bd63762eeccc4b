//! The learning-curve figure: [`Curve`] and [`learning_curves`].

use super::style::{
    Axis, TITLE_PX, check_png_path, draw_legend_in_freest_corner, finite_extent, font, padded,
    render, styled_chart, tab10,
};
use crate::error::{Error, Result};
use crate::train::History;
use plotters::prelude::*;
use std::path::Path;

/// One line of a learning-curve panel.
pub struct Curve<'a> {
    pub label: &'a str,
    pub values: &'a [f64],
}

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
            draw_legend_in_freest_corner(&mut chart, area, &labels, &fracs, 32)?;
        }
        Ok(())
    })
}

/// Draws a learning-curve figure (loss on top, accuracy below; train and test lines).
pub fn plot_history(path: &Path, title: &str, h: &History) -> Result<()> {
    let f = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
    let (loss, val_loss, acc, val_acc) = (
        f(&h.loss),
        f(&h.val_loss),
        f(&h.accuracy),
        f(&h.val_accuracy),
    );
    let mut losses = vec![Curve {
        label: "train",
        values: &loss,
    }];
    let mut accs = vec![Curve {
        label: "train",
        values: &acc,
    }];
    if !val_loss.is_empty() {
        losses.push(Curve {
            label: "test",
            values: &val_loss,
        });
        accs.push(Curve {
            label: "test",
            values: &val_acc,
        });
    }
    learning_curves(path, title, &losses, &accs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::assert_png;

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
}
