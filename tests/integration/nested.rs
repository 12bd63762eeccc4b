//! Nested models (a Sequential or Functional model used as a layer of another, `base(x,
//! training=False)`) against files real Keras made (fixtures/keras_nested, made by
//! python-check/make_fixtures_nested.py): they predict as Keras did, summarise as Keras's
//! `summary()` does (one row per nested model), fine-tune as Keras's `load_model` + `fit` does, are
//! written back in the nested structure and read again the same; what is not supported is refused
//! naming the nested model.

use crate::common::*;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::keras::config::{model_config, parse_model_config};
use keras_transfer::{Format, KerasModel, load_model, save_model};
use serde_json::{Value, json};
use std::path::Path;

/// Predictions agree with Keras's to this: float32 through a few small layers, where only the
/// order of a handful of additions may differ from TensorFlow's.
const TOL_PREDICT: f32 = 1e-6;
/// Fine-tuning tracks Keras's losses, predictions and weights to this after 10 epochs (float32
/// rounding differences grow a little with each step).
const TOL_FIT: f32 = 1e-5;
/// Predictions after those 10 epochs: the weights' float32 differences (within `TOL_FIT`) are
/// amplified by a BatchNormalization's division by its moving deviation; outer_seq's SGD with
/// momentum, whose losses agree with Keras's to 1e-6 every epoch, ends 1.5e-5 apart.
const TOL_FIT_PREDICT: f32 = 2e-5;

/// Every Keras 3 case (each also has a fit).
const CASES: [&str; 6] = [
    "seq",
    "seq_frozen",
    "func",
    "func_frozen",
    "nd",
    "outer_seq",
];

fn predict(m: &KerasModel, case: &Path) -> Vec<f64> {
    let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
    m.to_model().unwrap().predict(&inputs.concat()).unwrap()
}

fn keras_predictions(case: &Path) -> Vec<f64> {
    read_csv_f64(&case.join("predictions.csv")).1.concat()
}

fn files() -> Vec<String> {
    let mut out: Vec<String> = CASES
        .iter()
        .flat_map(|c| [format!("{c}/model.keras"), format!("{c}/model.h5")])
        .collect();
    out.push("k2_seq/model.h5".into());
    out
}

#[test]
fn nested_models_predict_as_keras_did() {
    for file in files() {
        let path = fixture(&format!("keras_nested/{file}"));
        let case = path.parent().unwrap();
        let m = load_model(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let names: Vec<&str> = m.spec.nested.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["base"], "{file}");
        let d = max_abs_diff(&predict(&m, case), &keras_predictions(case));
        assert!(
            d <= TOL_PREDICT,
            "{file}: predictions differ from Keras by {d}"
        );
    }
}

#[test]
fn a_nested_model_is_one_row_of_the_summary_as_in_keras() {
    for case in CASES {
        let dir = fixture(&format!("keras_nested/{case}"));
        let want = read_json(&dir.join("summary.json"));
        for file in ["model.keras", "model.h5"] {
            let m = load_model(&dir.join(file)).unwrap();
            let rows = m.spec.summary();
            let got: Vec<(String, usize, usize)> = rows
                .iter()
                .map(|r| (r.layer.clone(), r.params, r.trainable_params))
                .collect();
            let expect: Vec<(String, usize, usize)> = want["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        format!(
                            "{} ({})",
                            r["name"].as_str().unwrap(),
                            r["class"].as_str().unwrap()
                        ),
                        r["params"].as_u64().unwrap() as usize,
                        r["trainable"].as_u64().unwrap() as usize,
                    )
                })
                .collect();
            assert_eq!(got, expect, "{case}/{file}");
            let (total, trainable) = m.spec.param_totals();
            assert_eq!(
                total as u64,
                want["total"].as_u64().unwrap(),
                "{case}/{file}"
            );
            assert_eq!(
                trainable as u64,
                want["trainable"].as_u64().unwrap(),
                "{case}/{file}"
            );
        }
    }
}

#[test]
fn a_frozen_nested_model_freezes_every_layer_in_it() {
    for case in ["seq_frozen", "func_frozen"] {
        for file in ["model.keras", "model.h5"] {
            let m = load_model(&fixture(&format!("keras_nested/{case}/{file}"))).unwrap();
            let base = &m.spec.nested[0];
            assert!(!base.trainable, "{case}/{file}");
            assert!(
                m.spec.layers[base.start..base.end]
                    .iter()
                    .all(|l| !l.trainable()),
                "{case}/{file}"
            );
            assert!(
                m.spec.layers.last().unwrap().trainable(),
                "{case}/{file}: the head trains"
            );
        }
    }
    // Keras records the call's training=False, kept to be written back.
    let m = load_model(&fixture("keras_nested/seq/model.keras")).unwrap();
    assert!(m.spec.nested[0].inference);
}

#[test]
fn nested_models_we_write_load_back_the_same() {
    let dir = tempdir();
    for src in files() {
        let path = fixture(&format!("keras_nested/{src}"));
        let case = path.parent().unwrap();
        let m = load_model(&path).unwrap();
        for (ext, format) in [
            ("keras", Format::Keras3),
            ("h5", Format::Keras3),
            ("h5", Format::Universal),
        ] {
            let mut out = m.clone();
            out.format = format;
            let what = format!("{src} -> {ext} {format:?}");
            let p = dir.path().join(format!("back_{format:?}.{ext}"));
            save_model(&p, &out).unwrap_or_else(|e| panic!("{what}: {e}"));
            let back = load_model(&p).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(back.spec, m.spec, "{what}");
            assert_eq!(back.weights, m.weights, "{what}");
            let d = max_abs_diff(&predict(&back, case), &keras_predictions(case));
            assert!(d <= TOL_PREDICT, "{what}: {d}");
        }
    }
}

#[test]
fn a_written_nested_model_keeps_keras_structure() {
    let m = load_model(&fixture("keras_nested/seq/model.keras")).unwrap();
    let cfg = model_config(&m.spec, Format::Keras3);
    let layers = cfg["config"]["layers"].as_array().unwrap();
    let classes: Vec<&str> = layers
        .iter()
        .map(|l| l["class_name"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["InputLayer", "Sequential", "Dense"]);
    let base = &layers[1];
    assert_eq!(base["name"], "base");
    assert_eq!(
        base["inbound_nodes"][0]["kwargs"],
        json!({"training": false})
    );
    let inner: Vec<&str> = base["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["class_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        inner,
        ["InputLayer", "Dense", "BatchNormalization", "Dropout"]
    );
    assert_eq!(
        layers[2]["inbound_nodes"][0]["args"][0]["config"]["keras_history"],
        json!(["base", 0, 0])
    );
    // tf.keras 2 numbers the call of a nested model on the outer tensor node 1.
    let k2 = model_config(&m.spec, Format::Universal);
    assert_eq!(
        k2["config"]["layers"][2]["inbound_nodes"],
        json!([[["base", 1, 0, {}]]])
    );
}

#[test]
fn fine_tuning_a_nested_model_tracks_keras() {
    for case in CASES {
        let dir = fixture(&format!("keras_nested/{case}"));
        let base = load_model(&dir.join("fit_model.keras")).unwrap();
        let data = read_train_test(&dir.join("train.csv"), None, None)
            .unwrap()
            .0;
        let frozen: Vec<usize> = (0..base.spec.layers.len())
            .filter(|&i| !base.spec.layers[i].trainable())
            .collect();
        for opt in ["adam", "sgd"] {
            let what = format!("{case} {opt}");
            let want = read_json(&dir.join(format!("fit_{opt}.json")));
            let (model, loss) = fit_as_keras(&base, &data, opt, &want);
            let before = &base.weights;
            let d = max_abs_diff(&loss, &f32s(&want["loss"]));
            assert!(
                d <= TOL_FIT,
                "{what}: losses differ from Keras by {d}: {loss:?}"
            );
            let after = model.weights().unwrap();
            let d = weights_diff(&after, &json_weights(&want["weights"]));
            assert!(d <= TOL_FIT, "{what}: weights differ from Keras by {d}");
            let (_, inputs) = read_csv_f64(&dir.join("inputs.csv"));
            let got = model.predict(&inputs.concat()).unwrap();
            let d = max_abs_diff(&got, &flat_f64s(&want["predictions"]));
            assert!(
                d <= TOL_FIT_PREDICT,
                "{what}: predictions after fit differ from Keras by {d}"
            );
            for &i in &frozen {
                assert_eq!(after[i], before[i], "{what}: frozen layer {i} moved");
            }
        }
    }
}

/// The seq fixture's config, edited.
fn edited(edit: impl Fn(&mut Value)) -> String {
    let m = load_model(&fixture("keras_nested/seq/model.keras")).unwrap();
    let mut cfg = model_config(&m.spec, Format::Keras3);
    edit(&mut cfg);
    cfg.to_string()
}

#[test]
fn nested_models_we_cannot_run_are_refused_naming_them() {
    let refused = |what: &str, text: String, needles: &[&str]| {
        let e = parse_model_config(&text).expect_err(what);
        let msg = format!("{e:?}");
        for n in needles {
            assert!(msg.contains(n), "{what}: {msg}");
        }
    };
    // Models nested deeper than nested::MAX_DEPTH levels (read up to it).
    let nest = |levels: usize| {
        edited(|c| {
            let base = c["config"]["layers"][1].clone();
            let mut inner = base.clone();
            for k in (1..levels).rev() {
                inner["name"] = json!(format!("level{}", k + 1));
                inner["config"]["name"] = json!(format!("level{}", k + 1));
                let mut wrapper = base.clone();
                let mut input = base["config"]["layers"][0].clone();
                input["config"]["name"] = json!(format!("in{k}"));
                wrapper["config"]["layers"] = json!([input, inner]);
                inner = wrapper;
            }
            c["config"]["layers"][1] = inner;
        })
    };
    let deepest = keras_transfer::model::nested::MAX_DEPTH;
    let m = parse_model_config(&nest(deepest)).unwrap().spec;
    assert_eq!(m.nested.len(), deepest);
    assert_eq!(m.nested[0].name, "base");
    refused(
        "too deep",
        nest(deepest + 1),
        &["level", &format!("more than {deepest} levels")],
    );
    // A layer named as a layer of the outer model.
    refused(
        "name clash",
        edited(|c| {
            c["config"]["layers"][1]["config"]["layers"][1]["config"]["name"] = json!("head")
        }),
        &["'head'", "nested model 'base'", "unique"],
    );
    // A call with another keyword.
    refused(
        "kwargs",
        edited(|c| c["config"]["layers"][1]["inbound_nodes"][0]["kwargs"] = json!({"mask": [1]})),
        &["base", "mask"],
    );
    // A setting of the nested model's config nobody reads.
    refused(
        "unknown key",
        edited(|c| c["config"]["layers"][1]["config"]["trainable_only_on_tuesdays"] = json!(true)),
        &["base", "trainable_only_on_tuesdays"],
    );
}

#[test]
fn the_cli_unfreezes_a_nested_model_by_its_name() {
    let dir = tempdir();
    let model = fixture("keras_nested/seq_frozen/fit_model.keras");
    let data = fixture("keras_nested/seq_frozen/train.csv");
    let out = dir.path().join("tuned.keras");
    let o = run(
        dir.path(),
        &[
            "finetune",
            "--from",
            model.to_str().unwrap(),
            "--train",
            data.to_str().unwrap(),
            "--unfreeze",
            "base",
            "--epochs",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    ok(&o);
    let m = load_model(&out).unwrap();
    let base = &m.spec.nested[0];
    assert!(base.trainable);
    assert!(
        m.spec.layers[base.start..base.end]
            .iter()
            .all(|l| l.trainable())
    );
    // inspect shows the nested model as one row.
    let o = run(dir.path(), &["inspect", out.to_str().unwrap()]);
    let text = ok(&o);
    assert!(text.contains("base (Sequential)"), "{text}");
    assert!(
        !text.contains("batch_normalization (BatchNormalization)"),
        "{text}"
    );
}
