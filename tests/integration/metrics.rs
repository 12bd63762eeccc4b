//! Compiled metrics as Keras 3's `evaluate` reports them: several metrics, metric objects and their
//! settings, a model saved uncompiled and compiled from the command line, and the digits Keras's
//! progress bar prints. Fixtures: `fixtures/metrics/` (python-check/make_fixtures_metrics.py).

use crate::common::*;
use keras_transfer::keras::config::parse_training_config;

/// The numbers of an `evaluate` line `loss: L, name: V, ...` by name, in order.
fn printed(out: &str) -> Vec<(String, f64)> {
    let line = out.lines().find(|l| l.starts_with("loss: ")).unwrap();
    line.split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once(": ").unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// Asserts that `out`'s `evaluate` line names Keras's keys in Keras's order (the loss, then the
/// metrics in compile order) with Keras's values, printed with the progress bar's four decimals.
fn matches_keras(out: &str, want: &serde_json::Value, keys: &[&str]) {
    let got = printed(out);
    let list = want["list"].as_array().unwrap();
    assert_eq!(got.len(), list.len(), "{out}");
    for ((k, v), (key, w)) in got.iter().zip(keys.iter().zip(list)) {
        assert_eq!(k, key, "{out}");
        let w = w.as_f64().unwrap();
        assert_eq!(want["named"][key].as_f64(), Some(w), "{key}");
        assert_eq!(format!("{v:.4}"), format!("{w:.4}"), "{key}: {out}");
    }
}

/// Keras's `evaluate` of every metric of a model compiled with several, within 1e-6, from the
/// library, and from the command line under Keras's names.
#[test]
fn several_compiled_metrics_evaluate_as_keras() {
    use keras_transfer::data::csv::{ReadSpec, read_dataset};
    for (case, file, keys) in [
        (
            "several",
            "model.h5",
            &["loss", "accuracy", "mse", "mean_absolute_error"][..],
        ),
        (
            "several",
            "model.keras",
            &["loss", "accuracy", "mse", "mean_absolute_error"],
        ),
        ("binary", "model.h5", &["loss", "accuracy", "mae", "mse"]),
    ] {
        let dir = fixture(&format!("metrics/{case}"));
        let want = read_json(&dir.join("expected.json"));
        let m = keras_transfer::load_model(&dir.join(file)).unwrap();
        let c = m.compile().unwrap().unwrap();
        let names: Vec<&str> = c.metrics.iter().map(|x| x.key).collect();
        assert_eq!(names, keys[1..], "{case} {file}");
        let binary = c.loss.target() == keras_transfer::Target::Binary;
        let classes: Vec<String> = (0..if binary { 2 } else { 3 })
            .map(|i| i.to_string())
            .collect();
        let (data, _) = read_dataset(
            &dir.join("eval.csv"),
            &ReadSpec {
                label: Some("label"),
                classes: Some(&classes),
                ..ReadSpec::default()
            },
        )
        .unwrap();
        let e = keras_transfer::train::fit::evaluate_all(
            &m.to_model().unwrap(),
            &data,
            32,
            c.loss,
            &c.metrics,
        )
        .unwrap()
        .remove(0);
        let got: Vec<f64> = std::iter::once(e.loss)
            .chain(e.metrics.iter().map(|x| x.1))
            .map(f64::from)
            .collect();
        let list: Vec<f64> = want["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(
            max_abs_diff_f64(&got, &list) < 1e-6,
            "{case} {file}: {got:?} {list:?}"
        );
        let out = ok(&run(
            &dir,
            &["evaluate", "--model", file, "--data", "eval.csv"],
        ));
        matches_keras(&out, &want, keys);
    }
}

/// A model saved uncompiled evaluates as Keras's `compile(loss=..., metrics=[...])` + `evaluate`
/// with `--loss` and `--metrics`; on a compiled model the flags re-compile it, as
/// `model.compile(...)` would, and say so; a metric this tool does not compute is refused by name.
#[test]
fn evaluate_compiles_with_loss_and_metrics_flags() {
    let dir = fixture("metrics/uncompiled");
    let data = fixture("metrics/several/eval.csv");
    let data = data.to_str().unwrap();
    let want = read_json(&dir.join("expected.json"));
    let flags = [
        "--data",
        data,
        "--loss",
        "categorical_crossentropy",
        "--metrics",
        "accuracy,mse,mae",
    ];
    for file in ["model.h5", "model.keras"] {
        let mut args = vec!["evaluate", "--model", file];
        args.extend(flags);
        let out = run(&dir, &args);
        let text = ok(&out);
        matches_keras(&text, &want, &["loss", "accuracy", "mse", "mae"]);
    }
    // The compiled model, re-compiled by the flags: the same numbers under the flags' names, and a
    // note on stderr naming what the file was compiled with.
    let several = fixture("metrics/several");
    let mut args = vec!["evaluate", "--model", "model.h5"];
    args.extend(flags);
    let out = run(&several, &args);
    matches_keras(&ok(&out), &want, &["loss", "accuracy", "mse", "mae"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mean_absolute_error") && err.contains("--metrics"),
        "{err}"
    );
    // Flags that agree with the file add no note.
    let out = run(
        &several,
        &[
            "evaluate",
            "--model",
            "model.h5",
            "--data",
            "eval.csv",
            "--loss",
            "categorical_crossentropy",
        ],
    );
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("compiled with"), "{err}");
    for (bad, needle) in [("accuracy,auc", "'auc'"), ("mse,mse", "twice")] {
        let out = run(
            &dir,
            &[
                "evaluate",
                "--model",
                "model.h5",
                "--data",
                data,
                "--loss",
                "mse",
                "--metrics",
                bad,
            ],
        );
        assert_fails(&out, 2, &["--metrics", needle]);
    }
}

/// An unknown setting of a compiled metric, a metric named other than its own name, and a metric
/// this tool does not compute are refused by name; tf.keras 2's wrapper reports under its name.
#[test]
fn metric_settings_keras_does_not_know_are_refused_by_name() {
    let text = |metrics: &str| {
        format!(
            r#"{{"loss": "categorical_crossentropy", "metrics": {metrics}, "loss_weights": null,
                "optimizer_config": {{"class_name": "SGD", "config": {{"learning_rate": 0.01}}}}}}"#
        )
    };
    let wrapper = r#"{"class_name": "MeanMetricWrapper", "config": {"name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}"#;
    let c = parse_training_config(&text(&format!("[[{wrapper}]]"))).unwrap();
    assert_eq!(
        c.metrics.iter().map(|m| m.key).collect::<Vec<_>>(),
        ["accuracy"]
    );
    let mse = r#"{"module": "keras.metrics", "class_name": "MeanSquaredError", "config": {"name": "mean_squared_error", "dtype": "float32"}, "registered_name": null}"#;
    let c = parse_training_config(&text(&format!("[\"accuracy\", {mse}]"))).unwrap();
    assert_eq!(
        c.metrics.iter().map(|m| m.key).collect::<Vec<_>>(),
        ["accuracy", "mean_squared_error"]
    );
    for (metrics, needle) in [
        (
            wrapper.replace("\"dtype\"", "\"sample_weight_mode\": 1, \"dtype\""),
            "'sample_weight_mode'",
        ),
        (mse.replace("\"dtype\"", "\"squared\": true, \"dtype\""), "'squared'"),
        (mse.replace("mean_squared_error", "mymse"), "'mymse'"),
        (
            r#"{"class_name": "BinaryAccuracy", "config": {"name": "binary_accuracy", "threshold": 0.7}}"#.into(),
            "threshold",
        ),
        (
            r#"{"class_name": "AUC", "config": {"name": "auc", "num_thresholds": 200}}"#.into(),
            "'AUC'",
        ),
    ] {
        let e = parse_training_config(&text(&format!("[{metrics}]"))).unwrap_err();
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

/// The digits Keras 3's progress bar prints (`keras/src/utils/progbar.py`): four decimals, or four
/// significant digits in exponent form at or below 1e-3 (Python's `.4e`: `2.5000e-05`).
#[test]
fn epoch_lines_print_keras_progress_bar_digits() {
    let h = keras_transfer::History {
        loss: vec![2.5e-5],
        accuracy: vec![0.03125],
        val_loss: vec![123.456],
        val_accuracy: vec![1.0],
        metric: Some("mse"),
        ..Default::default()
    };
    // Python: f"{float(np.float32(v)):.4f}" if abs(v) > 1e-3 else f"{...:.4e}".
    assert_eq!(
        h.epoch_line(0, 3),
        "Epoch 1/3 - loss: 2.5000e-05 - mse: 0.0312 - val_loss: 123.4560 - val_mse: 1.0000"
    );
}

/// `fit` with several compiled metrics and validation data records every metric, on the training
/// data and as `val_<key>`, under Keras's keys, with Keras's values (fixtures/metrics/history,
/// python-check/make_fixtures_history.py).
#[test]
fn the_history_records_every_compiled_metric_as_keras() {
    let d = fixture("metrics/history");
    let t = tempdir();
    let h = t.path().join("h.csv");
    ok(&run(
        &d,
        &[
            "finetune",
            "--from",
            "model0.h5",
            "--train",
            "train.csv",
            "--test",
            "val.csv",
            "--label",
            "label",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--no-shuffle",
            "--history",
            h.to_str().unwrap(),
        ],
    ));
    let keras = read_json(&d.join("history.json"));
    let mut keys: Vec<&String> = keras.as_object().unwrap().keys().collect();
    keys.sort();
    let (header, rows) = read_csv_f64(&h);
    assert_eq!(header[0], "epoch");
    assert_eq!(
        header[1..].iter().collect::<Vec<_>>(),
        keys,
        "the history's columns are Keras's keys"
    );
    for (j, key) in keys.iter().enumerate() {
        let got: Vec<f64> = rows.iter().map(|r| r[j + 1]).collect();
        let want = flat_f64s(&keras[key.as_str()]);
        assert!(
            max_abs_diff_f64(&got, &want) < 1e-6,
            "{key}: {got:?} vs Keras {want:?}"
        );
    }
}
