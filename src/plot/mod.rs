//! Figures as PNG files: the blobs scatter plot, learning curves and the box-and-whisker comparison.
//!
//! Every figure is drawn with plotters' bitmap backend and the embedded DejaVu Sans font, and is
//! written through [`crate::fsutil::write_atomic`], so a failure never leaves a half-written PNG.
//! Bad input (no points, an empty series or group, a path that does not end in `.png`) is reported
//! as an [`Error`](crate::error::Error); non-finite values are skipped.
//!
//! The figures live in their own files ([`scatter()`], [`learning_curves`], [`box_plot`]); the
//! house style they share (fonts, colours, axes, legends, atomic PNG writing) is in `style`.

mod boxplot;
mod curves;
mod scatter;
mod style;

pub use boxplot::{BoxStats, box_plot, box_stats};
pub use curves::{Curve, learning_curves, plot_history};
pub use scatter::{ScatterPanel, plot_problems, scatter};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::path::Path;

    pub(super) fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).expect("the figure was written");
        assert!(
            bytes.len() > 1000,
            "{} is only {} bytes",
            path.display(),
            bytes.len()
        );
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
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
