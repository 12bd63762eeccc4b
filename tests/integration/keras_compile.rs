//! Fine-tuning as Keras compiled the model (fixtures/keras_compile, made by real Keras 3): each
//! case's untrained `model.h5` is loaded with its `training_config` (optimizer, loss, metric,
//! regularisers) and fitted 20 epochs with shuffle off, exactly as `finetune --from model.h5 --train
//! train.csv --no-shuffle --epochs 20` does; the weights and the whole history must match Keras's.

use crate::common::*;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::data::targets::read_regression;
use keras_transfer::{FitConfig, History, Target, fit, load_model};
use serde_json::Value;
use std::path::Path;

/// Cases this tool does not reproduce from the file alone (fit options, not compile settings).
const FIT_OPTION_CASES: &[&str] = &["class_weight", "validation_split"];

/// The case's per-layer weights (`{"dense": {"kernel", "bias"}, ...}`) in layer order.
fn layer_weights(v: &Value, layers: &[&str]) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for l in layers {
        for w in ["kernel", "bias"] {
            if let Some(x) = v[*l].get(w) {
                out.push(flatten(x));
            }
        }
    }
    out
}

fn flatten(v: &Value) -> Vec<f32> {
    match v {
        Value::Array(a) => a.iter().flat_map(flatten).collect(),
        x => vec![x.as_f64().unwrap() as f32],
    }
}

/// Fits the case's `model.h5` as the file compiled it; returns the history and the final weights.
fn fit_case(dir: &Path) -> (History, Vec<Vec<f32>>) {
    let base = load_model(&dir.join("model.h5")).unwrap();
    let compile = base
        .compile()
        .expect("compiled")
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let csv = dir.join("train.csv");
    let data = match compile.loss.target() {
        Target::Numeric => read_regression(&csv, None).unwrap(),
        _ => read_train_test(&csv, None, None).unwrap().0,
    };
    let model = base.to_model().unwrap();
    let cfg = FitConfig {
        epochs: 20,
        batch_size: 32,
        shuffle: false,
        ..FitConfig::default()
    }
    .with_compile(compile);
    let h = fit(&model, &data, None, &cfg, &[0]).unwrap().remove(0);
    let w = model.weights().unwrap().into_iter().flatten().collect();
    (h, w)
}

#[test]
fn every_compiled_case_matches_keras_after_20_epochs() {
    let mut failures = Vec::new();
    for dir in cases("keras_compile") {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if FIT_OPTION_CASES.contains(&name.as_str()) {
            continue;
        }
        let case = read_json(&dir.join("case.json"));
        let tol = case["tolerance"].as_f64().unwrap() as f32;
        let layers: Vec<&str> = case["model"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        let (h, w) = fit_case(&dir);
        let want = layer_weights(&case["final"], &layers);
        let dw = w
            .iter()
            .zip(&want)
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0f32, f32::max);
        let mut dh = 0f32;
        let hist = case["history"].as_object().unwrap();
        for (key, values) in hist {
            let ours: &[f32] = match key.as_str() {
                "loss" => &h.loss,
                k if k == h.metric_key() => &h.accuracy,
                other => panic!("{name}: history key '{other}' not recorded by keras-transfer"),
            };
            dh = dh.max(max_abs_diff(ours, &f32s(values)));
        }
        assert_eq!(hist.len(), h.columns().len(), "{name}: history keys");
        if dw > tol || dh > tol || !dw.is_finite() || !dh.is_finite() {
            failures.push(format!("{name}: weights {dw:e}, history {dh:e}"));
        }
        eprintln!("{name}: weights {dw:e}, history {dh:e}");
    }
    assert!(failures.is_empty(), "beyond tolerance: {failures:#?}");
}
