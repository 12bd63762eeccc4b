//! Models nested two levels deep and Keras 3's operations on two tensors (issue 21's ConvNeXt),
//! against files real Keras made (fixtures/keras_convnext, python-check/make_fixtures_convnext.py):
//! Keras's own ConvNeXt builder at a small size (depths 1, dims 8) as the frozen base of the guide's
//! model, its Sequential stem and downsampling blocks nested inside it, `inputs + x` recorded as
//! `keras.src.ops.numpy.Add`; and a small graph of `Subtract`, `Multiply`, `Add` on two tensors and
//! `Multiply`, `Add` on a number (Keras's legacy `.h5` records both without their module).

use crate::common::*;
use keras_transfer::data::arrays::read_npy;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::keras::archive::layer_paths;
use keras_transfer::keras::config::{parse_model_config, parse_training_config};
use keras_transfer::keras::nested_config::sub_spec;
use keras_transfer::model::ModelSpec;
use keras_transfer::train::fit_from;
use keras_transfer::{FitConfig, Format, KerasModel, load_model, save_model};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Predictions agree with Keras's to this (float32 convolutions and normalisations summed in
/// another order than TensorFlow's).
const TOL_PREDICT: f32 = 1e-5;

fn case(name: &str) -> PathBuf {
    fixture(&format!("keras_convnext/{name}"))
}

fn npy(path: &Path) -> Vec<f64> {
    read_npy(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .values
}

/// A JSON list of strings.
fn strs(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect()
}

fn predict(m: &KerasModel, x: &[f64]) -> Vec<f64> {
    m.to_model().unwrap().predict(x).unwrap()
}

/// `m` written as `back.<ext>` in `dir` and read again: the same model, weights and predictions on x.
fn writes_back_identical(m: &KerasModel, dir: &Path, ext: &str, x: &[f64], what: &str) {
    let p = dir.join(format!("back.{ext}"));
    save_model(&p, m).unwrap_or_else(|e| panic!("{what} -> .{ext}: {e}"));
    let back = load_model(&p).unwrap_or_else(|e| panic!("{what} -> .{ext}: {e}"));
    assert_eq!(back.spec, m.spec, "{what} -> .{ext}");
    assert_eq!(back.weights, m.weights, "{what} -> .{ext}: weights");
    assert_eq!(
        predict(&back, x),
        predict(m, x),
        "{what} -> .{ext}: predictions"
    );
}

/// `case/file` read, and its predictions on `case/x.npy`, checked against Keras's.
fn loads_and_predicts_as_keras(case_name: &str, file: &str) -> (KerasModel, Vec<f64>) {
    let x = npy(&case(case_name).join("x.npy"));
    let want = npy(&case(case_name).join("predictions.npy"));
    let m = load_model(&case(case_name).join(file)).unwrap();
    let got = predict(&m, &x);
    let d = max_abs_diff(&got, &want);
    assert!(
        d <= TOL_PREDICT,
        "{case_name}/{file}: predictions differ from Keras by {d}"
    );
    (m, got)
}

/// `(name, class, output shape, params, trainable params)` of Keras's summary rows.
fn keras_rows(v: &Value) -> Vec<(String, String, String, usize, usize)> {
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["class"] != "InputLayer")
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["class"].as_str().unwrap().to_string(),
                r["output_shape"].as_str().unwrap().to_string(),
                r["params"].as_u64().unwrap() as usize,
                r["trainable_params"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// Our summary rows in Keras's form (`name (Class)` split), InputLayers aside.
fn our_rows(spec: &ModelSpec) -> Vec<(String, String, String, usize, usize)> {
    spec.summary()
        .into_iter()
        .map(|r| {
            let (name, class) = r.layer.split_once(" (").unwrap();
            (
                name.to_string(),
                class.trim_end_matches(')').to_string(),
                r.output_shape,
                r.params,
                r.trainable_params,
            )
        })
        .collect()
}

/// Keras's rows of a level, the operations on tensors left out (Keras's `model.layers` has none).
fn without_ops(
    rows: Vec<(String, String, String, usize, usize)>,
    spec: &ModelSpec,
) -> Vec<(String, String, String, usize, usize)> {
    rows.into_iter()
        .filter(|r| {
            spec.layers
                .iter()
                .find(|l| l.name() == r.0)
                .is_none_or(|l| l.layer().keras3_module() != Some("keras.src.ops.numpy"))
        })
        .collect()
}

#[test]
fn a_model_nested_two_levels_deep_reads_with_keras_s_summary_at_every_level() {
    let keras = read_json(&case("mini/summary.json"));
    for file in ["model.keras", "model.h5"] {
        let m = load_model(&case("mini").join(file)).unwrap();
        let spec = &m.spec;
        // The outer model: image, base (one row), pool, head.
        assert_eq!(
            our_rows(spec),
            keras_rows(&keras["outer"]),
            "{file}: outer rows"
        );
        let (total, trainable) = spec.param_totals();
        assert_eq!(
            (total as u64, trainable as u64),
            (
                keras["total"].as_u64().unwrap(),
                keras["trainable"].as_u64().unwrap()
            ),
            "{file}"
        );
        // The base's own rows: its layers and its four Sequential models, one row each.
        let base = spec
            .nested
            .iter()
            .find(|n| n.name == "convnext_mini")
            .unwrap();
        let base_spec = sub_spec(spec, base);
        assert_eq!(
            base_spec.nested.len(),
            4,
            "{file}: the base's nested models"
        );
        assert_eq!(
            without_ops(our_rows(&base_spec), &base_spec),
            keras_rows(&keras["base"]),
            "{file}: the base's rows"
        );
        // Each Sequential's rows.
        for inner in &base_spec.nested {
            let s = sub_spec(&base_spec, inner);
            assert_eq!(
                our_rows(&s),
                keras_rows(&keras["inner"][&inner.name]),
                "{file}: rows of {}",
                inner.name
            );
            assert!(
                !inner.trainable,
                "{file}: {} is frozen with the base",
                inner.name
            );
        }
    }
}

#[test]
fn a_model_nested_two_levels_deep_predicts_as_keras_and_writes_back() {
    let x = npy(&case("mini/x.npy"));
    let tmp = tempdir();
    for file in ["model.keras", "model.h5"] {
        let (m, _) = loads_and_predicts_as_keras("mini", file);
        for ext in ["keras", "h5"] {
            writes_back_identical(&m, tmp.path(), ext, &x, file);
        }
    }
}

#[test]
fn weights_sit_where_keras_puts_them_at_every_level() {
    // model.weights.h5: `layers/functional/layers/sequential/layers/conv2d/vars/0` for the stem's
    // conv, the operations on tensors taking no place in the numbering.
    let paths = read_json(&case("mini/weight_paths.json"));
    let keras: Vec<&str> = strs(&paths["keras"]);
    let m = load_model(&case("mini/model.keras")).unwrap();
    let spec = &m.spec;
    let mut ours = Vec::new();
    for (i, p) in layer_paths(spec).iter().enumerate() {
        for j in 0..spec.layers[i].weights(spec.fan_in(i)).len() {
            ours.push(format!("{p}/vars/{j}"));
        }
    }
    ours.sort();
    assert_eq!(ours, keras, "variable paths of model.weights.h5");
    // The legacy .h5 written lists the base's weights under Keras's names, the stem's and the
    // downsampling blocks' prefixed by their Sequential model (LayerScale's unnamed variable aside:
    // Keras numbers it `variable`, `variable_1`, ... across the session).
    let tmp = tempdir();
    let out = tmp.path().join("back.h5");
    save_model(&out, &m).unwrap();
    let f = hdf5::File::open(&out).unwrap();
    let base = f.group("model_weights/convnext_mini").unwrap();
    let names: Vec<String> = hdf5_names(&base).iter().map(|s| s.to_string()).collect();
    let want: Vec<&str> = strs(&paths["h5_base_weight_names"]);
    assert_eq!(names.len(), want.len());
    for (n, w) in names.iter().zip(&want) {
        if !w.contains("_layer_scale/variable") {
            assert_eq!(n, w, ".h5 weight_names of the base");
        }
    }
}

#[test]
fn a_frozen_model_inside_a_trainable_one_reads_from_keras_s_h5_order() {
    // The base trainable, its stem frozen: Keras's .h5 lists the base's trainable weights first and
    // the stem's last (`trainable_weights + non_trainable_weights`); read in that order, both files
    // predict as Keras did.
    let names = read_json(&case("stem_frozen/weight_paths.json"));
    let last = names["h5_base_weight_names"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    assert!(
        last.as_str().unwrap().starts_with("convnext_mini_stem/"),
        "{last}"
    );
    let tmp = tempdir();
    for file in ["model.keras", "model.h5"] {
        let (m, _) = loads_and_predicts_as_keras("stem_frozen", file);
        let stem = m
            .spec
            .nested
            .iter()
            .find(|n| n.name == "convnext_mini_stem")
            .unwrap();
        let base = m
            .spec
            .nested
            .iter()
            .find(|n| n.name == "convnext_mini")
            .unwrap();
        assert!(!stem.trainable && base.trainable, "{file}");
        let x = npy(&case("stem_frozen/x.npy"));
        writes_back_identical(&m, tmp.path(), "h5", &x, file);
    }
}

#[test]
fn fine_tuning_through_two_levels_of_nesting_tracks_keras() {
    // base.trainable = True; stem.trainable = False; compile(SGD(0.05)); fit 2 epochs: the
    // gradients flow through the operations on two tensors, LayerScale, the grouped 7x7 conv,
    // LayerNormalization and Dense on 4-D tensors, gelu, and stop at the frozen stem.
    let want = read_json(&case("mini/fit.json"));
    let mut m = load_model(&case("mini/model.keras")).unwrap();
    let base = m
        .spec
        .nested
        .iter()
        .find(|n| n.name == "convnext_mini")
        .unwrap()
        .clone();
    let stem = m
        .spec
        .nested
        .iter()
        .find(|n| n.name == "convnext_mini_stem")
        .unwrap()
        .clone();
    for i in base.start..base.end {
        m.spec.layers[i].set_trainable(!stem.holds(i));
    }
    m.spec.sync_nested_trainable();
    let (_, trainable) = m.spec.param_totals();
    assert_eq!(
        trainable as u64,
        want["trainable_weights"].as_u64().unwrap()
    );
    let compile = parse_training_config(
        r#"{"optimizer_config": {"class_name": "SGD", "config": {"learning_rate": 0.05}},
            "loss": "categorical_crossentropy", "metrics": []}"#,
    )
    .unwrap();
    let cfg = FitConfig {
        epochs: 2,
        batch_size: 4,
        shuffle: false,
        ..FitConfig::default()
    }
    .with_compile(compile);
    let data = read_train_test(&case("mini/train.npz"), None, None)
        .unwrap()
        .0;
    let model = m.to_model().unwrap();
    let stem_before: Vec<_> = model.weights().unwrap()[stem.start..stem.end].to_vec();
    let (h, _) = fit_from(&model, &data, None, &cfg, &[0], None).unwrap();
    let d = max_abs_diff(&h[0].loss, &f32s(&want["loss"]));
    assert!(
        d <= 1e-5,
        "losses differ from Keras by {d}: {:?}",
        h[0].loss
    );
    let x = npy(&case("mini/x.npy"));
    let after = model.predict(&x).unwrap();
    let d = max_abs_diff(&after, &flat_f64s(&want["predictions_after"]));
    assert!(
        d <= 1e-4,
        "predictions after the fit differ from Keras by {d}"
    );
    assert_eq!(
        model.weights().unwrap()[stem.start..stem.end],
        stem_before[..],
        "the frozen stem moved"
    );
}

#[test]
fn operations_on_two_tensors_predict_as_keras_and_are_written_as_keras_wrote_them() {
    let x = npy(&case("tensor_ops/x.npy"));
    let tmp = tempdir();
    for file in ["model.keras", "model.h5"] {
        let (m, _) = loads_and_predicts_as_keras("tensor_ops", file);
        writes_back_identical(&m, tmp.path(), "keras", &x, file);
        writes_back_identical(&m, tmp.path(), "h5", &x, file);
        // As Keras wrote it: module keras.src.ops.numpy, the two tensors as the call's args.
        let config = keras_transfer::keras::config::model_config(&m.spec, Format::Keras3);
        let ops: Vec<&Value> = config["config"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["module"] == "keras.src.ops.numpy")
            .collect();
        let classes: Vec<&str> = ops
            .iter()
            .map(|l| l["class_name"].as_str().unwrap())
            .collect();
        assert_eq!(
            classes,
            ["Subtract", "Multiply", "Add", "Multiply", "Add"],
            "{file}"
        );
        for (k, op) in ops.iter().enumerate() {
            let args = op["inbound_nodes"][0]["args"].as_array().unwrap();
            assert_eq!(args.len(), 2, "{op}");
            let tensors = args
                .iter()
                .filter(|a| a["class_name"] == "__keras_tensor__")
                .count();
            // The first three on two tensors, the last two on a tensor and a number.
            assert_eq!(tensors, if k < 3 { 2 } else { 1 }, "{op}");
        }
        // tf.keras 2 has no such operations: the universal dialect is refused, naming one.
        let e = keras_transfer::keras::config::writable(&m.spec, Format::Universal).unwrap_err();
        assert!(e.contains("keras.src.ops.numpy"), "{e}");
    }
}

#[test]
fn divide_on_two_tensors_is_refused_naming_it() {
    let text = std::fs::read_to_string(case("divide/config.json")).unwrap();
    let e = format!("{:?}", parse_model_config(&text).unwrap_err());
    assert!(e.contains("Divide") && e.contains("on two tensors"), "{e}");
    assert!(!e.contains('\n'), "{e}");
}
