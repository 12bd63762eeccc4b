//! Convolutions (Conv1D, Conv2D, DepthwiseConv1D/2D, SeparableConv1D/2D) against files real Keras
//! made (fixtures/keras_conv, made by python-check/make_fixtures_conv.py): they predict as Keras did
//! in `.keras` and `.h5`, are written back and read again unchanged, train as Keras trains (SGD with
//! momentum, Adam), and what this tool does not do is refused naming the layer's setting.

use crate::common::*;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::keras::config::parse_optimizer;
use keras_transfer::train::fit_from;
use keras_transfer::{FitConfig, Format, KerasModel, load_model, save_model};
use serde_json::json;
use std::path::Path;

/// Predictions agree with Keras's to this: float32 sums of up to 54 products per output, added in
/// another order than TensorFlow's, through five layers; measured differences are below 1e-6.
const TOL_PREDICT: f32 = 1e-5;
/// After 4 epochs of training every weight and loss agrees with Keras's to this (float32 rounding
/// of gradient sums added in another order, compounded over 8 steps).
const TOL_FIT: f32 = 1e-5;

/// The images of a case (train.csv without its label column).
fn images(case: &Path) -> Vec<f64> {
    let (_, rows) = read_csv_f64(&case.join("train.csv"));
    rows.iter()
        .flat_map(|r| r[..r.len() - 1].to_vec())
        .collect()
}

fn predict(m: &KerasModel, case: &Path) -> Vec<f64> {
    m.to_model().unwrap().predict(&images(case)).unwrap()
}

fn keras_predictions(case: &Path) -> Vec<f64> {
    read_csv_f64(&case.join("predictions.csv")).1.concat()
}

const FILES: [&str; 5] = [
    "cnn2d/model.keras",
    "cnn2d/model.h5",
    "cnn1d/model.keras",
    "cnn1d/model.h5",
    "k2_cnn/model.h5",
];

#[test]
fn keras_made_convolutions_predict_as_keras_did() {
    for file in FILES {
        let path = fixture(&format!("keras_conv/{file}"));
        let case = path.parent().unwrap();
        let m = load_model(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let d = max_abs_diff(&predict(&m, case), &keras_predictions(case));
        assert!(
            d <= TOL_PREDICT,
            "{file}: predictions differ from Keras by {d}"
        );
    }
    let m = load_model(&fixture("keras_conv/cnn2d/model.keras")).unwrap();
    let classes: Vec<&str> = m.spec.layers.iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        [
            "Conv2D",
            "DepthwiseConv2D",
            "Conv2D",
            "SeparableConv2D",
            "Conv2D",
            "Flatten",
            "Dense"
        ]
    );
    let shapes: Vec<String> = m
        .spec
        .summary()
        .iter()
        .map(|r| r.output_shape.clone())
        .collect();
    assert_eq!(
        shapes[..5],
        [
            "(None, 3, 4, 4)",
            "(None, 3, 4, 8)",
            "(None, 3, 4, 6)",
            "(None, 2, 3, 4)",
            "(None, 2, 2, 3)"
        ]
    );
    let m = load_model(&fixture("keras_conv/cnn1d/model.keras")).unwrap();
    let classes: Vec<&str> = m.spec.layers.iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        [
            "Conv1D",
            "Conv1D",
            "DepthwiseConv1D",
            "SeparableConv1D",
            "Flatten",
            "Dense"
        ]
    );
}

#[test]
fn convolutions_we_write_load_back_and_predict_the_same() {
    let dir = tempdir();
    for src in ["cnn2d/model.keras", "cnn1d/model.h5", "k2_cnn/model.h5"] {
        let path = fixture(&format!("keras_conv/{src}"));
        let case = path.parent().unwrap();
        let m = load_model(&path).unwrap();
        for (ext, format) in [
            ("keras", Format::Keras3),
            ("h5", Format::Keras3),
            ("h5", Format::Universal),
        ] {
            let mut out = m.clone();
            out.format = format;
            let p = dir.path().join(format!("back_{format:?}.{ext}"));
            save_model(&p, &out).unwrap_or_else(|e| panic!("{src} -> {ext} {format:?}: {e}"));
            let back = load_model(&p).unwrap_or_else(|e| panic!("{src} -> {ext} {format:?}: {e}"));
            assert_eq!(back.spec, m.spec, "{src} -> {ext} {format:?}");
            assert_eq!(back.weights, m.weights, "{src} -> {ext} {format:?}");
            let d = max_abs_diff(&predict(&back, case), &keras_predictions(case));
            assert!(d <= TOL_PREDICT, "{src} -> {ext} {format:?}: {d}");
        }
    }
}

#[test]
fn small_cnns_train_as_keras_trains() {
    for case in ["cnn2d", "cnn1d"] {
        let dir = fixture(&format!("keras_conv/{case}"));
        let base = load_model(&dir.join("model.keras")).unwrap();
        let data = read_train_test(&dir.join("train.csv"), None, None)
            .unwrap()
            .0;
        for opt in ["sgd", "adam"] {
            let want = read_json(&dir.join(format!("fit_{opt}.json")));
            let class = if opt == "adam" { "Adam" } else { "SGD" };
            let optimizer =
                parse_optimizer(&json!({"class_name": class, "config": want["optimizer"]}))
                    .unwrap_or_else(|e| panic!("{case} {opt}: {e}"));
            let mut compile = base.compile().unwrap().unwrap();
            compile.optimizer = optimizer;
            let cfg = FitConfig {
                epochs: want["epochs"].as_u64().unwrap() as usize,
                batch_size: want["batch_size"].as_u64().unwrap() as usize,
                shuffle: false,
                ..FitConfig::default()
            }
            .with_compile(compile);
            let model = base.to_model().unwrap();
            let (h, _) = fit_from(&model, &data, None, &cfg, &[0], None).unwrap();
            let d = max_abs_diff(&h[0].loss, &f32s(&want["loss"]));
            assert!(
                d <= TOL_FIT,
                "{case} {opt}: losses differ from Keras by {d}: {:?}",
                h[0].loss
            );
            let d = weights_diff(&model.weights().unwrap(), &json_weights(&want["weights"]));
            assert!(
                d <= TOL_FIT,
                "{case} {opt}: weights differ from Keras's by {d}"
            );
            let moved = weights_diff(&model.weights().unwrap(), &base.weights);
            assert!(
                moved > 1e-3,
                "{case} {opt}: training moved the weights by {moved} only"
            );
        }
    }
}

#[test]
fn convolution_settings_we_do_not_run_are_refused_by_name() {
    for case in ["channels_first", "kernel_regularizer", "conv3d"] {
        let dir = fixture(&format!("keras_conv/refused/{case}"));
        let needle = std::fs::read_to_string(dir.join("expect.txt")).unwrap();
        let e = load_model(&dir.join("model.keras"))
            .err()
            .unwrap_or_else(|| panic!("{case} loaded"));
        assert!(e.to_string().contains(needle.trim()), "{case}: {e}");
        assert_eq!(e.exit_code(), 3, "{case}: {e}");
        assert!(!e.to_string().contains('\n'), "{case}: one line: {e}");
    }
}
