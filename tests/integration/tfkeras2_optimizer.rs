//! tf.keras 2's optimizer state (issue 18): every tf_keras-made `model.h5` and `model.keras` of
//! fixtures/tfkeras2_optimizer (one optimizer each, fitted 2 epochs) read into this tool's state and
//! continued 3 epochs as tf.keras's `load_model` + `fit(shuffle=False)` continued it; Nadam (whose
//! momentum-schedule product tf.keras 2 does not save) and a slot that is not the one the optimizer
//! builds refused by name; the state written back in Keras 3's layout.

use crate::common::*;
use keras_transfer::KerasModel;
use keras_transfer::OptimizerState;
use keras_transfer::checkpoint::load_model;
use keras_transfer::data::csv::read_train_test;
use serde_json::Value;
use std::path::Path;

/// Three epochs from tf.keras's state end within this of tf.keras's own (the brief's bound).
const TOL: f32 = 1e-5;

/// Cases this tool cannot continue: Nadam (refused, below).
const NOT_CONTINUED: &[&str] = &["nadam"];

/// `m` fitted the case's `epochs_after` more epochs (shuffle off) from `start`, as `load_model` +
/// `fit` does.
fn continue_fit(
    dir: &Path,
    m: &KerasModel,
    start: Option<&OptimizerState>,
    case: &Value,
) -> Vec<Vec<f64>> {
    let data = read_train_test(&dir.join("train.csv"), None, None)
        .unwrap()
        .0;
    let epochs = case["fit"]["epochs_after"].as_u64().unwrap() as usize;
    let batch = case["fit"]["batch_size"].as_u64().unwrap() as usize;
    fit_more(m, &data, epochs, batch, start)
}

/// Each optimizer's tf.keras 2 state, from its `.h5` and its `.keras`, is read (the step count and
/// one slot per tf.keras slot that takes part in the update) and three more epochs end within
/// 1e-5 of tf.keras's own three more epochs. Without the state (today's fresh optimizer) they end
/// far from it, which this test also checks, so that it can fail.
#[test]
fn tfkeras2_states_continue_as_tfkeras() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for dir in cases("tfkeras2_optimizer") {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if NOT_CONTINUED.contains(&name.as_str()) {
            continue;
        }
        let case = read_json(&dir.join("case.json"));
        for (file, key) in [("model.h5", "after"), ("model.keras", "after_keras")] {
            let m = load_model(&dir.join(file)).unwrap();
            let state = match &m.optimizer_state {
                Some(Ok(s)) => s.clone(),
                other => {
                    failures.push(format!("{name} {file}: state {other:?}"));
                    continue;
                }
            };
            assert_eq!(
                state.iterations,
                case["iterations"].as_u64().unwrap(),
                "{name} {file}"
            );
            let want = keras_named(&case[key], &m);
            let got = continue_fit(&dir, &m, Some(&state), &case);
            let d = vecs_max_diff(&got, &want);
            let fresh = continue_fit(&dir, &m, None, &case);
            let d_fresh = vecs_max_diff(&fresh, &want);
            eprintln!(
                "{name} {file}: 3 more epochs {d:e} from tf.keras (a fresh optimizer: {d_fresh:e})"
            );
            if d > TOL {
                failures.push(format!("{name} {file}: {d:e}"));
            }
            // A state that matters: starting afresh ends elsewhere (plain SGD has none to lose).
            if name != "sgd" {
                assert!(d_fresh > 10.0 * TOL, "{name} {file}: fresh {d_fresh:e}");
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(checked, 28, "14 optimizer cases, .h5 and .keras each");
}

/// The slots become this tool's (Keras 3's) state variables: Adam's `m`, `v`, `vhat` are its
/// `momentum`, `velocity`, `velocity_hat`, in Keras 3's order, with the compiled learning rate;
/// SGD without momentum keeps none (tf.keras 2's unused `m` is not state here).
#[test]
fn tfkeras2_slots_map_onto_keras3_names() {
    let dir = fixture("tfkeras2_optimizer/adam_amsgrad");
    let m = load_model(&dir.join("model.h5")).unwrap();
    let s = m.optimizer_state.clone().unwrap().unwrap();
    let names: Vec<&str> = s.variables.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "dense_kernel_momentum",
            "dense_kernel_velocity",
            "dense_bias_momentum",
            "dense_bias_velocity",
            "dense_1_kernel_momentum",
            "dense_1_kernel_velocity",
            "dense_1_bias_momentum",
            "dense_1_bias_velocity",
            "dense_kernel_velocity_hat",
            "dense_bias_velocity_hat",
            "dense_1_kernel_velocity_hat",
            "dense_1_bias_velocity_hat",
        ]
    );
    assert_eq!(s.learning_rate, Some(f64::from(0.01f32)));
    let h5 = hdf5::File::open(dir.join("model.h5")).unwrap();
    let vhat = h5
        .dataset("optimizer_weights/Adam/vhat/dense_1/bias:0")
        .unwrap()
        .read_raw::<f32>()
        .unwrap();
    let ours: Vec<f32> = s.variables[11].1.iter().map(|&v| v as f32).collect();
    assert_eq!(ours, vhat);
    let sgd = load_model(&fixture("tfkeras2_optimizer/sgd/model.h5")).unwrap();
    let s = sgd.optimizer_state.clone().unwrap().unwrap();
    assert!(s.variables.is_empty() && s.iterations == 6, "{s:?}");
}

/// Nadam's state is refused when continued (naming what is missing), and `--optimizer nadam`
/// re-compiles it to start afresh, as the message says.
#[test]
fn tfkeras2_nadam_is_refused_by_name() {
    let tmp = tempdir();
    let dir = fixture("tfkeras2_optimizer/nadam");
    for file in ["model.h5", "model.keras"] {
        let from = dir.join(file);
        let train = dir.join("train.csv");
        let args = [
            "finetune",
            "--from",
            from.to_str().unwrap(),
            "--train",
            train.to_str().unwrap(),
            "--epochs",
            "1",
        ];
        let out = run(tmp.path(), &args);
        assert_fails(
            &out,
            3,
            &[file, "Nadam", "momentum-schedule product", "--optimizer"],
        );
        let mut again = args.to_vec();
        again.extend(["--optimizer", "nadam"]);
        ok(&run(tmp.path(), &again));
    }
}

/// A slot of another name than the one the compiled optimizer builds at that place, another
/// count, or another shape is refused naming the variable, before any value is read.
#[test]
fn tfkeras2_unmapped_slots_are_refused_by_name() {
    let tmp = tempdir();
    let src = fixture("tfkeras2_optimizer/adam/model.h5");
    let edited = |name: &str, edit: &dyn Fn(&hdf5::Group, &mut Vec<hdf5::types::VarLenUnicode>)| {
        let path = tmp.path().join(name);
        std::fs::copy(&src, &path).unwrap();
        let f = h5_open_rw(&path);
        let g = f.group("optimizer_weights").unwrap();
        let mut v = hdf5_names(&g);
        edit(&g, &mut v);
        g.delete_attr("weight_names").unwrap();
        g.new_attr::<hdf5::types::VarLenUnicode>()
            .shape([v.len()])
            .create("weight_names")
            .unwrap()
            .write_raw(&v)
            .unwrap();
        drop(g);
        f.close().unwrap();
        load_model(&path).unwrap_err()
    };
    // `v` and `m` swapped in the names: not the layout Adam builds.
    let e = edited("swapped.h5", &|_, v| v.swap(1, 2));
    let err = e.to_string();
    assert!(
        err.contains("Adam/v/dense/kernel:0") && err.contains("slot 'm'"),
        "{err}"
    );
    assert_eq!(e.exit_code(), 3);
    // One slot fewer than Adam builds on this model.
    let err = edited("short.h5", &|_, v| {
        v.pop();
    })
    .to_string();
    assert!(
        err.contains("holds 8 variables") && err.contains("Adam on this model has 9"),
        "{err}"
    );
    // A slot of another shape than its weight's.
    let err = edited("shape.h5", &|g, _| {
        let name = "Adam/m/dense/kernel:0";
        g.unlink(name).unwrap();
        g.new_dataset::<f32>().shape([6, 4]).create(name).unwrap();
    })
    .to_string();
    assert!(
        err.contains("'Adam/m/dense/kernel:0' has shape [6, 4]") && err.contains("[4, 6]"),
        "{err}"
    );
}

/// `convert` of a tf.keras 2 file to a `.keras` archive keeps the state, in Keras 3's layout
/// (what keras-transfer writes and Keras 3 loads): the same state reads back.
#[test]
fn tfkeras2_state_is_written_in_keras3_layout() {
    let tmp = tempdir();
    let src = fixture("tfkeras2_optimizer/rmsprop_momentum_centered/model.h5");
    let m = load_model(&src).unwrap();
    let out = tmp.path().join("out.keras");
    keras_transfer::checkpoint::convert(&src, &out, None).unwrap();
    let back = load_model(&out).unwrap();
    assert_eq!(back.optimizer_state, m.optimizer_state);
    assert!(
        keras_transfer::checkpoint::optimizer_state_lost(&m, &out, None).is_none(),
        "the state is kept"
    );
}
