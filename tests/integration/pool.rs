//! Pooling and shape layers (MaxPooling, AveragePooling, the global poolings, ZeroPadding, Cropping,
//! Reshape, Permute, UpSampling, Flatten on N-D input) against files real Keras made
//! (fixtures/keras_pool, made by python-check/make_fixtures_pool.py): they predict as Keras did,
//! the gradient through them is TensorFlow's (ties included), they are written back in both formats,
//! models train through them as Keras trains them, and what this tool cannot do is refused by name.

use crate::common::*;
use candle_core::{DType, Device, Var};
use keras_transfer::data::csv::read_train_test;
use keras_transfer::keras::config::{model_config, parse_model_config, parse_optimizer};
use keras_transfer::model::{Forward, Mode, values_of, values_tensor};
use keras_transfer::train::fit_from;
use keras_transfer::{FitConfig, Format, KerasModel, load_model, save_model};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Predictions and gradients agree with Keras's to this: pooling, padding, cropping, reshaping and
/// repeating move float32 values exactly; averages and a Dense layer round once or twice more.
const TOL_PREDICT: f64 = 1e-6;
/// Three epochs of training track Keras's losses, weights and predictions to this.
const TOL_FIT: f32 = 1e-5;

fn rows(path: &Path) -> Vec<f64> {
    read_csv_f64(path).1.concat()
}

fn predict(m: &KerasModel, case: &Path) -> Vec<f64> {
    m.to_model()
        .unwrap()
        .predict(&rows(&case.join("inputs.csv")))
        .unwrap()
}

/// The cases that hold inputs and Keras's predictions.
fn predict_cases() -> Vec<PathBuf> {
    cases("keras_pool")
        .into_iter()
        .filter(|c| c.join("inputs.csv").exists())
        .collect()
}

fn model_files(case: &Path) -> Vec<PathBuf> {
    ["model.keras", "model.h5"]
        .iter()
        .map(|f| case.join(f))
        .filter(|p| p.exists())
        .collect()
}

fn name(p: &Path) -> String {
    p.strip_prefix(fixture("keras_pool"))
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn keras_made_pooling_and_shape_layers_predict_as_keras_did() {
    let mut classes = std::collections::BTreeSet::new();
    for case in predict_cases() {
        let want = rows(&case.join("predictions.csv"));
        for file in model_files(&case) {
            let m = load_model(&file).unwrap_or_else(|e| panic!("{}: {e}", name(&file)));
            classes.extend(m.spec.layers.iter().map(|l| l.class_name()));
            let d = max_abs_diff_f64(&predict(&m, &case), &want);
            assert!(
                d <= TOL_PREDICT,
                "{}: predictions differ from Keras by {d}",
                name(&file)
            );
        }
    }
    for c in [
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping1D",
        "Cropping2D",
        "Reshape",
        "Permute",
        "UpSampling1D",
        "UpSampling2D",
        "Flatten",
    ] {
        assert!(classes.contains(c), "no fixture of {c}: {classes:?}");
    }
    // Keras's summary shapes.
    let m = load_model(&fixture("keras_pool/avg2d_same/model.keras")).unwrap();
    let rows = m.spec.summary();
    assert_eq!(rows[0].output_shape, "(None, 4, 3, 3)", "{rows:?}");
    let m = load_model(&fixture("keras_pool/reshape/model.keras")).unwrap();
    assert_eq!(m.spec.summary()[0].output_shape, "(None, 3, 4, 2)");
}

#[test]
fn gradients_through_them_are_tensorflows() {
    // grads.csv holds TensorFlow's gradient of sum(predict(x) * u): max pooling sends each
    // window's gradient to its first maximum (the `ties*` cases: constant inputs), the global
    // maximum shares it among tied maxima, averages spread it over the real values only.
    let mut n = 0;
    for case in predict_cases() {
        if !case.join("grads.csv").exists() {
            continue;
        }
        let m = load_model(&case.join("model.keras")).unwrap();
        let model = m.to_model().unwrap();
        let x = rows(&case.join("inputs.csv"));
        let u = rows(&case.join("upstream.csv"));
        let f = m.spec.input_dim;
        let count = x.len() / f;
        let xv = Var::from_tensor(
            &values_tensor(x.clone(), (1, count, f), DType::F32, &Device::Cpu).unwrap(),
        )
        .unwrap();
        let y = model
            .logits(xv.as_tensor(), &mut Forward::inference())
            .unwrap();
        let ut = values_tensor(u, y.shape(), DType::F32, &Device::Cpu).unwrap();
        let grads = (y * ut).unwrap().sum_all().unwrap().backward().unwrap();
        let g = values_of(grads.get(xv.as_tensor()).expect("a gradient")).unwrap();
        let d = max_abs_diff_f64(&g, &rows(&case.join("grads.csv")));
        assert!(
            d <= TOL_PREDICT,
            "{}: gradient differs from TensorFlow's by {d}",
            name(&case)
        );
        n += 1;
    }
    assert!(n >= 30, "{n} gradient cases");
    // What TensorFlow does with ties, stated: four overlapping 2x2 windows of a constant 3x3 input.
    let g = rows(&fixture("keras_pool/ties/grads.csv"));
    assert_eq!(g, [1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn written_back_they_load_and_predict_the_same() {
    let dir = tempdir();
    for case in predict_cases() {
        let src = &model_files(&case)[0];
        let m = load_model(src).unwrap();
        let want = rows(&case.join("predictions.csv"));
        for (ext, format) in [
            ("keras", Format::Keras3),
            ("h5", Format::Keras3),
            ("h5", Format::Universal),
        ] {
            let mut out = m.clone();
            out.format = format;
            let p = dir.path().join(format!("back_{format:?}.{ext}"));
            let what = format!("{} -> {ext} {format:?}", name(src));
            save_model(&p, &out).unwrap_or_else(|e| panic!("{what}: {e}"));
            let back = load_model(&p).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(back.spec, m.spec, "{what}");
            let d = max_abs_diff_f64(&predict(&back, &case), &want);
            assert!(d <= TOL_PREDICT, "{what}: {d}");
        }
    }
}

#[test]
fn training_through_them_tracks_keras() {
    let mut runs = 0;
    for case in cases("keras_pool")
        .into_iter()
        .filter(|c| c.join("train.csv").exists())
    {
        let data = read_train_test(&case.join("train.csv"), None, None)
            .unwrap()
            .0;
        let x: Vec<f64> = read_csv_f64(&case.join("train.csv"))
            .1
            .iter()
            .flat_map(|r| r[..r.len() - 1].to_vec())
            .collect();
        for file in model_files(&case) {
            let base = load_model(&file).unwrap();
            for opt in ["adam", "sgd"] {
                let what = format!("{} {opt}", name(&file));
                let want = read_json(&case.join(format!("fit_{opt}.json")));
                let class = if opt == "adam" { "Adam" } else { "SGD" };
                let optimizer =
                    parse_optimizer(&json!({"class_name": class, "config": want["optimizer"]}))
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                let mut compile = base.compile().unwrap().unwrap();
                compile.optimizer = optimizer;
                let cfg = FitConfig {
                    epochs: 3,
                    batch_size: 8,
                    shuffle: false,
                    ..FitConfig::default()
                }
                .with_compile(compile);
                let model = base.to_model().unwrap();
                let (h, _) = fit_from(&model, &data, None, &cfg, &[0], None).unwrap();
                let d = max_abs_diff(&h[0].loss, &f32s(&want["loss"]));
                assert!(
                    d <= TOL_FIT,
                    "{what}: losses differ by {d}: {:?}",
                    h[0].loss
                );
                let got: Vec<f64> = model.weights().unwrap().concat().concat();
                let d = max_abs_diff(&got, &flat_f64s(&want["weights"]));
                assert!(d <= TOL_FIT, "{what}: weights differ from Keras's by {d}");
                let d = max_abs_diff(
                    &model.predict(&x).unwrap(),
                    &flat_f64s(&want["predictions"]),
                );
                assert!(d <= TOL_FIT, "{what}: predictions after fit differ by {d}");
                runs += 1;
            }
        }
    }
    // Three models (1-D, 2-D, global), each from .keras and .h5, with Adam and SGD.
    assert_eq!(runs, 12);
}

#[test]
fn training_mode_is_inference_for_them() {
    // No pooling or shape layer behaves differently in training: the same pass either way.
    let case = fixture("keras_pool/avg2d_same");
    let m = load_model(&case.join("model.keras")).unwrap();
    let model = m.to_model().unwrap();
    let x = rows(&case.join("inputs.csv"));
    let n = x.len() / m.spec.input_dim;
    let x = values_tensor(x, (1, n, m.spec.input_dim), DType::F32, &Device::Cpu).unwrap();
    let mut f = Forward {
        mode: Mode::Training,
        rngs: None,
    };
    let a = values_of(&model.logits(&x, &mut f).unwrap()).unwrap();
    let b = values_of(&model.logits(&x, &mut Forward::inference()).unwrap()).unwrap();
    assert_eq!(a, b);
}

/// The config of fixture `case`'s model with `edit` applied to its first layer's config.
fn edited(case: &str, edit: impl Fn(&mut Value)) -> String {
    let m = load_model(&fixture(&format!("keras_pool/{case}/model.keras"))).unwrap();
    let mut cfg = model_config(&m.spec, Format::Keras3);
    edit(&mut cfg["config"]["layers"][1]["config"]);
    cfg.to_string()
}

fn refusal(case: &str, edit: impl Fn(&mut Value)) -> String {
    match parse_model_config(&edited(case, edit)) {
        Ok(_) => panic!("{case}: the edited config was read"),
        Err(e) => format!("{e:?}"),
    }
}

#[test]
fn what_they_cannot_do_exactly_is_refused_by_name() {
    for case in [
        "max2d_same",
        "gap2d",
        "pad2d",
        "crop2d",
        "up2d",
        "avg1d_same",
    ] {
        let msg = refusal(case, |c| c["data_format"] = json!("channels_first"));
        assert!(
            msg.contains("data_format") && msg.contains("channels_first"),
            "{case}: {msg}"
        );
    }
    let msg = refusal("up2d", |c| c["interpolation"] = json!("bilinear"));
    assert!(
        msg.contains("UpSampling2D interpolation") && msg.contains("bilinear"),
        "{msg}"
    );
    let msg = refusal("max1d_same", |c| c["padding"] = json!("causal"));
    assert!(
        msg.contains("MaxPooling1D padding") && msg.contains("causal"),
        "{msg}"
    );
    let msg = refusal("reshape", |c| c["target_shape"] = json!([-1, -1, 2]));
    assert!(msg.contains("target_shape"), "{msg}");
    let msg = refusal("permute", |c| c["dims"] = json!([1, 1, 2]));
    assert!(msg.contains("Permute 'dims'"), "{msg}");
    let msg = refusal("max2d_valid", |c| c["pool_size"] = json!([2, 0]));
    assert!(msg.contains("pool_size"), "{msg}");
    // Shapes that do not fit name the layer: a valid window larger than the input, a reshape
    // that does not hold the values, a crop that leaves nothing.
    for (case, edit, needle) in [
        ("max2d_valid", json!({"pool_size": [8, 2]}), "does not fit"),
        ("reshape", json!({"target_shape": [5, -1]}), "does not hold"),
        ("crop1d", json!({"cropping": [3, 3]}), "leaves nothing"),
        ("permute", json!({"dims": [2, 1]}), "permute 2 axes"),
    ] {
        let msg = refusal(case, |c| {
            for (k, v) in edit.as_object().unwrap() {
                c[k] = v.clone();
            }
        });
        assert!(msg.contains(needle), "{case}: {msg}");
    }
}
