//! Functional graphs (branches, merges, several inputs) against files real Keras made
//! (fixtures/keras_graph, made by python-check/make_fixtures_graph.py): they predict as Keras did,
//! fine-tune through their merges as Keras does, are written back in both formats, and what this
//! tool cannot run is refused naming the layer.

use crate::common::*;
use candle_core::{DType, Device};
use keras_transfer::data::csv::read_train_test;
use keras_transfer::keras::config::{model_config, parse_model_config};
use keras_transfer::model::{Forward, Mode, values_of, values_tensor};
use keras_transfer::rng::NumpyRandomState;
use keras_transfer::{Format, KerasModel, load_model, save_model};
use serde_json::{Value, json};
use std::path::Path;

/// Predictions agree with Keras's to this.
const TOL_PREDICT: f32 = 1e-6;
/// Fine-tuning tracks Keras's loss and predictions to this after 10 epochs.
const TOL_FIT: f32 = 1e-5;

fn predict(m: &KerasModel, case: &Path) -> Vec<f64> {
    let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
    m.to_model().unwrap().predict(&inputs.concat()).unwrap()
}

fn keras_predictions(case: &Path) -> Vec<f64> {
    read_csv_f64(&case.join("predictions.csv")).1.concat()
}

#[test]
fn keras_made_graphs_predict_as_keras_did() {
    for file in ["merges/model.keras", "merges/model.h5", "k2_merge/model.h5"] {
        let path = fixture(&format!("keras_graph/{file}"));
        let case = path.parent().unwrap();
        let m = load_model(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(m.spec.graph.is_some(), "{file}: read as a graph");
        let d = max_abs_diff(&predict(&m, case), &keras_predictions(case));
        assert!(
            d <= TOL_PREDICT,
            "{file}: predictions differ from Keras by {d}"
        );
    }
    // A Keras 3 .h5 of Add over two Dense branches (once refused) is read as a graph.
    let m = load_model(&fixture("keras_graph/k3_add_h5/model.h5")).unwrap();
    let g = m.spec.graph.as_ref().expect("a graph");
    let add = m
        .spec
        .layers
        .iter()
        .position(|l| l.class_name() == "Add")
        .unwrap();
    assert_eq!(g.inbound[add].len(), 2);
    // The inputs in model.inputs order, each with its width; the merges with Keras's names.
    let m = load_model(&fixture("keras_graph/merges/model.keras")).unwrap();
    let g = m.spec.graph.as_ref().unwrap();
    let inputs: Vec<(&str, usize)> = g
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.shape.size()))
        .collect();
    assert_eq!(inputs, [("a", 3), ("b", 2)]);
    assert_eq!(m.spec.input_dim, 5);
    let classes: Vec<&str> = m.spec.layers.iter().map(|l| l.class_name()).collect();
    for c in [
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
    ] {
        assert!(classes.contains(&c), "{c} in {classes:?}");
    }
    let rows = m.spec.summary();
    let cat = rows.iter().find(|r| r.layer.starts_with("cat (")).unwrap();
    assert_eq!(cat.output_shape, "(None, 16)");
}

#[test]
fn graphs_we_write_load_back_and_predict_the_same() {
    let dir = tempdir();
    for src in ["merges/model.keras", "k2_merge/model.h5"] {
        let path = fixture(&format!("keras_graph/{src}"));
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
            let d = max_abs_diff(&predict(&back, case), &keras_predictions(case));
            assert!(d <= TOL_PREDICT, "{src} -> {ext} {format:?}: {d}");
        }
    }
}

#[test]
fn the_once_refused_nested_model_now_loads() {
    let m = load_model(&fixture("keras_graph/nested/model.keras")).unwrap();
    assert_eq!(m.spec.nested[0].name, "base");
}

#[test]
fn graph_files_we_cannot_run_are_refused_by_name() {
    for case in ["shared", "two_outputs"] {
        let dir = fixture(&format!("keras_graph/{case}"));
        let needle = std::fs::read_to_string(dir.join("expect.txt")).unwrap();
        let e = load_model(&dir.join("model.keras"))
            .err()
            .unwrap_or_else(|| panic!("{case} loaded"));
        assert!(e.to_string().contains(needle.trim()), "{case}: {e}");
        assert_eq!(e.exit_code(), 3, "{case}: {e}");
        assert!(!e.to_string().contains('\n'), "{case}: one line: {e}");
    }
}

/// The merges model's config with `edit` applied to it.
fn edited_config(edit: impl Fn(&mut Value)) -> String {
    let m = load_model(&fixture("keras_graph/merges/model.keras")).unwrap();
    let mut cfg = model_config(&m.spec, Format::Keras3);
    edit(&mut cfg);
    cfg.to_string()
}

fn layer_mut<'a>(cfg: &'a mut Value, name: &str) -> &'a mut Value {
    cfg["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|l| l["name"] == name)
        .unwrap()
}

#[test]
fn graphs_whose_shapes_do_not_fit_are_refused_when_read() {
    // Dense 'db' gives 5 values where 'da' gives 4: every merge of the two is refused, naming it.
    let text = edited_config(|c| layer_mut(c, "db")["config"]["units"] = json!(5));
    let e = parse_model_config(&text).expect_err("refused");
    let msg = format!("{e:?}");
    assert!(
        msg.contains("'add'") && msg.contains("(None, 4), (None, 5)"),
        "{msg}"
    );
    // A Dense layer called on two tensors is not a merge.
    let text = edited_config(|c| {
        let t = layer_mut(c, "dh")["inbound_nodes"][0]["args"][0].clone();
        layer_mut(c, "dh")["inbound_nodes"][0]["args"] = json!([[t.clone(), t]]);
    });
    let msg = format!("{:?}", parse_model_config(&text).expect_err("refused"));
    assert!(
        msg.contains("layer 'dh' (Dense) is called on 2 tensors"),
        "{msg}"
    );
    // Concatenate along the batch axis.
    let text = edited_config(|c| layer_mut(c, "cat")["config"]["axis"] = json!(0));
    let msg = format!("{:?}", parse_model_config(&text).expect_err("refused"));
    assert!(msg.contains("Concatenate layer 'cat': axis 0"), "{msg}");
    // An unsupported layer in a graph is named.
    let text = edited_config(|c| layer_mut(c, "bn")["class_name"] = json!("GroupNormalization"));
    let msg = format!("{:?}", parse_model_config(&text).expect_err("refused"));
    assert!(msg.contains("GroupNormalization"), "{msg}");
}

#[test]
fn fine_tuning_through_merges_tracks_keras() {
    let case = fixture("keras_graph/merges");
    let base = load_model(&case.join("model.keras")).unwrap();
    // The file's trainable flag: 'db' stays as it is.
    let frozen = base.spec.layers.iter().find(|l| l.name() == "db").unwrap();
    assert!(!frozen.trainable());
    let data = read_train_test(&case.join("train.csv"), None, None)
        .unwrap()
        .0;
    for opt in ["adam", "sgd"] {
        let want = read_json(&case.join(format!("fit_{opt}.json")));
        let (model, loss) = fit_as_keras(&base, &data, opt, &want);
        let before = base.weights.clone();
        let d = max_abs_diff(&loss, &f32s(&want["loss"]));
        assert!(
            d <= TOL_FIT,
            "{opt}: losses differ from Keras by {d}: {loss:?}"
        );
        let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
        let got = model.predict(&inputs.concat()).unwrap();
        let d = max_abs_diff(&got, &flat_f64s(&want["predictions"]));
        assert!(
            d <= TOL_FIT,
            "{opt}: predictions after fit differ from Keras by {d}"
        );
        let after = model.weights().unwrap();
        let i = base
            .spec
            .layers
            .iter()
            .position(|l| l.name() == "db")
            .unwrap();
        assert_eq!(after[i], before[i], "{opt}: the frozen layer moved");
    }
}

#[test]
fn inspect_says_which_columns_feed_which_input() {
    let dir = tempdir();
    let model = fixture("keras_graph/merges/model.keras");
    let out = run(dir.path(), &["inspect", model.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Model inputs, fed from each row's features in this order: a: columns 1-3, b: columns 4-5"),
        "{text}"
    );
}

#[test]
fn a_call_recorded_with_training_false_still_trains_as_keras_3_does() {
    // Keras 3 records Dropout's default `training=False` on every call; its Functional model hands
    // its own `training=True` to the layer in `fit` all the same, so the dropout is active.
    let path = fixture("keras_layers/functional_chain/model.keras");
    let m = load_model(&path).unwrap();
    let g = m
        .spec
        .graph
        .as_ref()
        .expect("kept as a graph to write the flag back");
    let dropout = m
        .spec
        .layers
        .iter()
        .position(|l| l.class_name() == "Dropout")
        .unwrap();
    assert!(g.in_inference(dropout), "the recorded flag is kept");
    let model = m.to_model().unwrap();
    let (_, rows) = read_csv_f64(&path.parent().unwrap().join("inputs.csv"));
    let n = rows.len();
    let x = values_tensor(rows.concat(), (1, n, 4), DType::F32, &Device::Cpu).unwrap();
    // Two training passes with different random streams: the batch statistics are the same, so
    // only an active dropout makes them differ.
    let pass = |seed: u32| {
        let mut rngs = vec![NumpyRandomState::new(seed)];
        let mut f = Forward {
            mode: Mode::Training,
            rngs: Some(&mut rngs),
        };
        values_of(&model.logits(&x, &mut f).unwrap()).unwrap()
    };
    assert_ne!(pass(1), pass(2), "dropout is active while training");
    let a = values_of(&model.logits(&x, &mut Forward::inference()).unwrap()).unwrap();
    let b = values_of(&model.logits(&x, &mut Forward::inference()).unwrap()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn a_csv_feeds_the_inputs_in_order_through_the_cli() {
    // Columns 1-3 go to input 'a', 4-5 to 'b': `predict` on the Keras fixture's rows gives Keras's
    // probabilities.
    let dir = tempdir();
    let case = fixture("keras_graph/merges");
    let out = dir.path().join("out.csv");
    let o = run(
        dir.path(),
        &[
            "predict",
            "--model",
            case.join("model.keras").to_str().unwrap(),
            "--input",
            case.join("inputs.csv").to_str().unwrap(),
            "--output",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&out).unwrap();
    let got: Vec<f64> = text
        .lines()
        .skip(1)
        .flat_map(|l| {
            l.split(',')
                .skip(1)
                .map(|v| v.parse::<f64>().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let d = max_abs_diff(&got, &keras_predictions(&case));
    assert!(d <= TOL_PREDICT, "CLI predictions differ from Keras by {d}");
}

/// `inspect` lists each input as Keras's `summary()` does: one InputLayer line per input, with its
/// own shape (an image's `(None, 32, 32, 3)`, not the flat width of its rows).
#[test]
fn inspect_lists_every_input_with_its_keras_shape() {
    let d = tempdir();
    let merges = fixture("keras_graph/merges/model.keras");
    let out = ok(&run(d.path(), &["inspect", merges.to_str().unwrap()]));
    let shape_of = |name: &str| -> Vec<String> {
        out.lines()
            .filter(|l| l.starts_with(&format!("{name} (InputLayer)")))
            .map(|l| l.split_whitespace().skip(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(shape_of("a"), ["(None, 3) 0"], "{out}");
    assert_eq!(shape_of("b"), ["(None, 2) 0"], "{out}");
    let app = fixture("keras_apps/train_mobilenet_v2/model.keras");
    let out = ok(&run(d.path(), &["inspect", app.to_str().unwrap()]));
    assert!(
        out.lines()
            .any(|l| l.starts_with("image (InputLayer)") && l.contains("(None, 32, 32, 3)")),
        "{out}"
    );
}
