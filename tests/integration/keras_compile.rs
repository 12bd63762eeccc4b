//! Fine-tuning as Keras compiled the model (fixtures/keras_compile, made by real Keras 3): each
//! case's untrained `model.h5` is loaded with its `training_config` (optimizer, loss, metric,
//! regularisers) and fitted 20 epochs with shuffle off, exactly as `finetune --from model.h5 --train
//! train.csv --no-shuffle --epochs 20` does; the weights and the whole history must match Keras's.

use crate::common::*;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::data::targets::read_regression;
use keras_transfer::{FitConfig, History, Target, load_model};
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
    let (h, w, _) = fit_case_model(dir);
    (h, w)
}

/// `fit_case`, also returning the fitted model as a compiled `KerasModel` with its optimizer state.
fn fit_case_model(dir: &Path) -> (History, Vec<Vec<f32>>, keras_transfer::KerasModel) {
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
    let (mut h, mut s) =
        keras_transfer::train::fit_from(&model, &data, None, &cfg, &[0], None).unwrap();
    let w = model
        .weights()
        .unwrap()
        .into_iter()
        .flatten()
        .map(|v| v.into_iter().map(|x| x as f32).collect())
        .collect();
    let mut km = keras_transfer::KerasModel::compiled(
        model.spec().clone(),
        model.weights().unwrap(),
        Some(&cfg.compile()),
    );
    km.optimizer_state = Some(Ok(s.remove(0)));
    (h.remove(0), w, km)
}

/// The optimizer state after 20 epochs equals Keras's `optimizer.variables` (names, order, values);
/// saved to `.h5` with it, loaded back and fitted one more epoch, the model ends where Keras's
/// one more epoch from its own saved state ends.
#[test]
fn optimizer_state_matches_keras_and_carries_through_h5() {
    let tmp = tempdir();
    let mut failures = Vec::new();
    for dir in cases("keras_compile") {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if FIT_OPTION_CASES.contains(&name.as_str()) {
            continue;
        }
        let case = read_json(&dir.join("case.json"));
        let tol = case["tolerance"].as_f64().unwrap() as f32;
        let (_, _, km) = fit_case_model(&dir);
        let state = km.optimizer_state.clone().unwrap().unwrap();
        let keras_vars: Vec<&Value> = case["optimizer_variables"]
            .as_array()
            .unwrap()
            .iter()
            .collect();
        assert_eq!(keras_vars[0]["name"], "iteration");
        assert_eq!(
            state.iterations,
            keras_vars[0]["values"].as_u64().unwrap(),
            "{name}"
        );
        let rest: Vec<&&Value> = keras_vars[1..]
            .iter()
            .filter(|v| v["name"] != "learning_rate")
            .collect();
        assert_eq!(rest.len(), state.variables.len(), "{name}: variable count");
        let mut ds = 0f32;
        for (k, (ours, values)) in rest.iter().zip(&state.variables) {
            let kname = k["name"].as_str().unwrap();
            assert!(kname.ends_with(ours.as_str()), "{name}: {kname} vs {ours}");
            // Relative above 1: Ftrl's `linear` slots grow to ~14 after 20 epochs, where float32's
            // spacing alone is 1e-6 (the weights they give still match within `tol`).
            let keras = flatten(&k["values"]);
            let scale = keras.iter().fold(1f32, |m, &v| m.max(v.abs()));
            ds = ds.max(max_abs_diff(values, &keras) / scale);
        }
        // Through the file and one more epoch.
        let path = tmp.path().join(format!("{name}.h5"));
        keras_transfer::save_model(&path, &km).unwrap();
        let back = load_model(&path).unwrap();
        let restored = back.optimizer_state.clone().unwrap().unwrap();
        assert_eq!(restored, state, "{name}: state through .h5");
        let compile = back.compile().unwrap().unwrap();
        let csv = dir.join("train.csv");
        let data = match compile.loss.target() {
            Target::Numeric => read_regression(&csv, None).unwrap(),
            _ => read_train_test(&csv, None, None).unwrap().0,
        };
        let model = back.to_model().unwrap();
        let cfg = FitConfig {
            epochs: 1,
            batch_size: 32,
            shuffle: false,
            ..FitConfig::default()
        }
        .with_compile(compile);
        keras_transfer::train::fit_from(&model, &data, None, &cfg, &[0], Some(&restored)).unwrap();
        let layers: Vec<&str> = case["model"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        let want = layer_weights(&case["after_one_more_epoch"]["weights"], &layers);
        let w: Vec<Vec<f64>> = model.weights().unwrap().into_iter().flatten().collect();
        let dw = w
            .iter()
            .zip(&want)
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0f32, f32::max);
        eprintln!("{name}: state {ds:e}, one more epoch {dw:e}");
        if ds > tol || dw > tol || !ds.is_finite() || !dw.is_finite() {
            failures.push(format!("{name}: state {ds:e}, one more epoch {dw:e}"));
        }
    }
    assert!(failures.is_empty(), "beyond tolerance: {failures:#?}");
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

/// The command line does what the library does: `finetune --from model.h5` with no optimizer flags
/// trains with the file's Adam (through the model-reading child process), says so, matches Keras's
/// history, and saves Adam back; `--optimizer sgd` re-compiles.
#[test]
fn finetune_from_an_adam_file_continues_with_adam() {
    let case_dir = fixture("keras_compile/adam");
    let case = read_json(&case_dir.join("case.json"));
    let dir = tempdir();
    let from = case_dir.join("model.h5");
    let csv = case_dir.join("train.csv");
    let (from, csv) = (from.to_str().unwrap(), csv.to_str().unwrap());
    let common = [
        "finetune",
        "--from",
        from,
        "--train",
        csv,
        "--no-shuffle",
        "--epochs",
        "20",
    ];
    let mut args = common.to_vec();
    args.extend(["--history", "h.csv", "--out", "a.h5"]);
    let out = run(dir.path(), &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("optimizer Adam (lr 0.01), loss categorical_crossentropy"),
        "{err}"
    );
    let (header, rows) = read_csv_f64(&dir.path().join("h.csv"));
    assert_eq!(header, ["epoch", "accuracy", "loss"]);
    let loss: Vec<f32> = rows.iter().map(|r| r[2] as f32).collect();
    assert!(max_abs_diff(&loss, &f32s(&case["history"]["loss"])) < 1e-5);
    let inspect = run(dir.path(), &["inspect", "a.h5"]);
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(text.contains("Optimizer: Adam (lr 0.01)"), "{text}");
    // model.compile(optimizer='sgd'): SGD with its default rate, and a different result.
    let mut args = common.to_vec();
    args.extend(["--optimizer", "sgd", "--history", "s.csv"]);
    let out = run(dir.path(), &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("optimizer SGD (lr 0.01)"), "{err}");
    let (_, sgd) = read_csv_f64(&dir.path().join("s.csv"));
    assert!(
        (sgd[19][2] - rows[19][2]).abs() > 1e-3,
        "SGD and Adam agree?"
    );
}

/// A numeric label column with many distinct values is not silently made into classes.
#[test]
fn a_numeric_target_without_a_loss_is_refused_and_trains_with_mse() {
    let csv = fixture("keras_compile/mse_regression/train.csv");
    let csv = csv.to_str().unwrap();
    let dir = tempdir();
    let out = run(dir.path(), &["train", "--train", csv, "--epochs", "2"]);
    assert_fails(&out, 2, &["--loss", "distinct numeric values", "mse"]);
    let out = run(
        dir.path(),
        &[
            "train", "--train", csv, "--epochs", "2", "--loss", "mse", "--out", "r.h5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Train mae:"));
    let saved = load_model(&dir.path().join("r.h5")).unwrap();
    assert_eq!(saved.spec.output_dim(), 1);
    assert_eq!(
        saved.spec.output_activation(),
        keras_transfer::Activation::Linear
    );
    let c = saved.compile().unwrap().unwrap();
    assert_eq!(c.loss.keras_name(), "mean_squared_error");
}

/// What Keras wrote for every case reads back, writes out and reads again to the same settings, in
/// both dialects; settings this tool cannot apply exactly are refused by name.
#[test]
fn training_configs_round_trip_and_unsupported_settings_are_named() {
    use keras_transfer::Format;
    use keras_transfer::keras::config::{parse_training_config, training_config};
    for dir in cases("keras_compile") {
        let case = read_json(&dir.join("case.json"));
        let text = case["files"]["model.h5"]["training_config"]
            .as_str()
            .unwrap();
        let c = parse_training_config(text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for format in [Format::Keras3, Format::Universal] {
            let back = parse_training_config(&training_config(&c, format).to_string()).unwrap();
            assert_eq!(back, c, "{} {format:?}", dir.display());
        }
        assert_eq!(
            c.optimizer.keras_class(),
            case["compile"]["optimizer_class"].as_str().unwrap()
        );
    }
    let text =
        read_json(&fixture("keras_compile/adam/case.json"))["files"]["model.h5"]["training_config"]
            .as_str()
            .unwrap()
            .to_string();
    for (from, to, needle) in [
        ("\"use_ema\": false", "\"use_ema\": true", "use_ema"),
        (
            "\"class_name\": \"Adam\"",
            "\"class_name\": \"Muon\"",
            "Muon",
        ),
        (
            "\"loss\": \"categorical_crossentropy\"",
            "\"loss\": \"kl_divergence\"",
            "kl_divergence",
        ),
        (
            "\"metrics\": [\"accuracy\"]",
            "\"metrics\": [\"auc\"]",
            "auc",
        ),
        (
            "\"gradient_accumulation_steps\": null",
            "\"gradient_accumulation_steps\": 4",
            "gradient_accumulation_steps",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let e = parse_training_config(&text.replace(from, to)).unwrap_err();
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

/// Keras's `validation_split=0.2`: the last 20 rows validate, before any shuffling; weights and
/// every history key (val_ included) match Keras's.
#[test]
fn validation_split_matches_keras() {
    let dir = fixture("keras_compile/validation_split");
    let case = read_json(&dir.join("case.json"));
    let f = case["fit"]["validation_split"].as_f64().unwrap();
    let base = load_model(&dir.join("model.h5")).unwrap();
    let data = read_train_test(&dir.join("train.csv"), None, None)
        .unwrap()
        .0;
    let (train, val) = keras_transfer::train::validation_split(&data, f).unwrap();
    assert_eq!((train.len(), val.len()), (80, 20));
    let model = base.to_model().unwrap();
    let cfg = FitConfig {
        epochs: 20,
        shuffle: false,
        ..FitConfig::default()
    }
    .with_compile(base.compile().unwrap().unwrap());
    let h = keras_transfer::fit(&model, &train, Some(&val), &cfg, &[0])
        .unwrap()
        .remove(0);
    let hist = case["history"].as_object().unwrap();
    let cols = h.columns();
    assert_eq!(cols.len(), hist.len());
    for (key, ours) in cols {
        let d = max_abs_diff(ours, &f32s(&hist[&key]));
        assert!(d <= 1e-5, "{key}: {d:e}");
    }
    let want = layer_weights(&case["final"], &["dense", "dense_1"]);
    let w: Vec<Vec<f64>> = model.weights().unwrap().into_iter().flatten().collect();
    for (a, b) in w.iter().zip(&want) {
        assert!(max_abs_diff(a, b) <= 1e-5);
    }
}

/// Early stopping as Keras's callback: it stops `patience` epochs after the best one, and with
/// restore_best_weights the model holds exactly the weights a fit of best-epoch length ends with.
#[test]
fn early_stopping_stops_after_patience_and_restores_the_best_epoch() {
    let dir = fixture("keras_compile/adam");
    let base = load_model(&dir.join("model.h5")).unwrap();
    let data = read_train_test(&dir.join("train.csv"), None, None)
        .unwrap()
        .0;
    let (train, val) = keras_transfer::train::validation_split(&data, 0.3).unwrap();
    let cfg = FitConfig {
        epochs: 300,
        shuffle: false,
        early_stopping: Some(keras_transfer::train::EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 3,
            restore_best_weights: true,
        }),
        ..FitConfig::default()
    }
    .with_compile(base.compile().unwrap().unwrap());
    let model = base.to_model().unwrap();
    let h = keras_transfer::fit(&model, &train, Some(&val), &cfg, &[0])
        .unwrap()
        .remove(0);
    assert!(h.epochs() < 300, "never stopped");
    let best = (0..h.epochs())
        .min_by(|&a, &b| h.val_loss[a].total_cmp(&h.val_loss[b]))
        .unwrap();
    assert_eq!(
        h.epochs(),
        best + 1 + 3,
        "stops patience epochs after the best"
    );
    let again = base.to_model().unwrap();
    let plain = FitConfig {
        epochs: best + 1,
        early_stopping: None,
        ..cfg.clone()
    };
    keras_transfer::fit(&again, &train, Some(&val), &plain, &[0]).unwrap();
    assert_eq!(model.weights().unwrap(), again.weights().unwrap());
}

/// Keras's `class_weight`: each training row's loss and accuracy weighted by its class's weight
/// (the loss still divided by the batch size); weights and history match Keras's.
#[test]
fn class_weight_matches_keras() {
    let dir = fixture("keras_compile/class_weight");
    let case = read_json(&dir.join("case.json"));
    let base = load_model(&dir.join("model.h5")).unwrap();
    let data = read_train_test(&dir.join("train.csv"), None, None)
        .unwrap()
        .0;
    let cw = case["fit"]["class_weight"].as_object().unwrap();
    let weights: Vec<f32> = data
        .class_names
        .iter()
        .map(|c| cw[c].as_f64().unwrap() as f32)
        .collect();
    let model = base.to_model().unwrap();
    let cfg = FitConfig {
        epochs: 20,
        shuffle: false,
        class_weight: Some(weights),
        ..FitConfig::default()
    }
    .with_compile(base.compile().unwrap().unwrap());
    let h = keras_transfer::fit(&model, &data, None, &cfg, &[0])
        .unwrap()
        .remove(0);
    let hist = case["history"].as_object().unwrap();
    for (key, ours) in h.columns() {
        let d = max_abs_diff(ours, &f32s(&hist[&key]));
        assert!(d <= 1e-5, "{key}: {d:e}");
    }
    let want = layer_weights(&case["final"], &["dense", "dense_1"]);
    let w: Vec<Vec<f64>> = model.weights().unwrap().into_iter().flatten().collect();
    let d = w
        .iter()
        .zip(&want)
        .map(|(a, b)| max_abs_diff(a, b))
        .fold(0f32, f32::max);
    assert!(d <= 1e-5, "weights {d:e}");
}

/// `--verbose` prints one Keras-style line per epoch on stderr, with the history's keys and values;
/// `evaluate` of a binary model reads its 0/1 labels and reports Keras's binary accuracy.
#[test]
fn verbose_epoch_lines_and_binary_evaluate() {
    let case_dir = fixture("keras_compile/binary_crossentropy");
    let case = read_json(&case_dir.join("case.json"));
    let from = case_dir.join("model.h5");
    let csv = case_dir.join("train.csv");
    let (from, csv) = (from.to_str().unwrap(), csv.to_str().unwrap());
    let dir = tempdir();
    let out = run(
        dir.path(),
        &[
            "finetune",
            "--from",
            from,
            "--train",
            csv,
            "--no-shuffle",
            "--epochs",
            "20",
            "--verbose",
            "--out",
            "b.h5",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("Epoch ")).collect();
    assert_eq!(lines.len(), 20, "{err}");
    let want = case["history"]["loss"][19].as_f64().unwrap();
    assert!(
        lines[19].starts_with("Epoch 20/20 - accuracy: ")
            && lines[19].contains(&format!("loss: {want:.4}")),
        "{}",
        lines[19]
    );
    let ev = run(dir.path(), &["evaluate", "--model", "b.h5", "--data", csv]);
    let text = String::from_utf8_lossy(&ev.stdout);
    assert!(
        ev.status.success(),
        "{}",
        String::from_utf8_lossy(&ev.stderr)
    );
    let acc = case["history"]["accuracy"][19].as_f64().unwrap();
    assert!(text.contains(&format!("accuracy: {acc:.3}")), "{text}");
}

/// Stacked members stay independent under every optimizer option that mixes values (global and
/// per-variable clipping norms, moments, weight decay): two members fitted together end exactly
/// where each ends alone.
#[test]
fn stacked_members_train_as_if_alone() {
    for case in [
        "sgd_global_clipnorm",
        "sgd_clipnorm",
        "adamw",
        "nadam",
        "rmsprop_centered_momentum",
    ] {
        let dir = fixture(&format!("keras_compile/{case}"));
        let base = load_model(&dir.join("model.h5")).unwrap();
        let data = read_train_test(&dir.join("train.csv"), None, None)
            .unwrap()
            .0;
        let cfg = FitConfig {
            epochs: 3,
            shuffle: true,
            ..FitConfig::default()
        }
        .with_compile(base.compile().unwrap().unwrap());
        let other = base.spec.draw(5);
        let stacked =
            keras_transfer::Model::stack(base.spec.clone(), &[base.weights.clone(), other.clone()])
                .unwrap();
        keras_transfer::fit(&stacked, &data, None, &cfg, &[1, 2]).unwrap();
        for (m, (w, seed)) in [(base.weights.clone(), 1u32), (other, 2)]
            .into_iter()
            .enumerate()
        {
            let alone = keras_transfer::Model::from_weights(base.spec.clone(), w).unwrap();
            keras_transfer::fit(&alone, &data, None, &cfg, &[seed]).unwrap();
            assert_eq!(
                stacked.member_weights(m).unwrap(),
                alone.weights().unwrap(),
                "{case} member {m}"
            );
        }
    }
}
