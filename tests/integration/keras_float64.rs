//! float64 models kept float64 end to end (fixtures/keras_float64, made by Keras 3.15 under
//! `set_floatx("float64")` and by tf.keras 2): read from every format, predicted within 1e-12 of
//! Keras, written back as float64 in every format (HDF5 float64 datasets, safetensors F64) and read
//! back bit for bit; dtype mismatches and dtypes this tool cannot compute in are clean errors.
//!
//! Tolerance: 1e-12 on the predictions. Keras and this tool compute the same float64 operations in
//! possibly different orders (TensorFlow's matmul, BatchNormalization's fused form), which moves a
//! result by a few units of 2^-52 (about 1e-16 each); the softmax outputs are below 1, so the sum of
//! such errors stays many orders of magnitude under 1e-12. A float32 round trip anywhere (inputs,
//! weights or arithmetic) moves the predictions by about 1e-8, which the tests check they would see.

use crate::common::*;
use keras_transfer::keras::config::parse_model_config;
use keras_transfer::{FloatDtype, KerasModel, load_model, load_model_with_weights, save_model};
use std::path::{Path, PathBuf};

const TOL_PREDICT: f64 = 1e-12;

fn case(name: &str) -> PathBuf {
    fixture("keras_float64").join(name)
}

fn inputs(case: &Path) -> Vec<f64> {
    read_csv_f64(&case.join("inputs.csv")).1.concat()
}

fn predictions(case: &Path) -> Vec<f64> {
    read_csv_f64(&case.join("predictions.csv")).1.concat()
}

fn predict(m: &KerasModel, x: &[f64]) -> Vec<f64> {
    m.to_model().unwrap().predict(x).unwrap()
}

/// The files of a case as keras-transfer reads them: each model file, and the weights file read
/// into the `.h5`'s architecture.
fn read_all(case: &Path) -> Vec<(String, KerasModel)> {
    let mut out = Vec::new();
    for f in ["model.h5", "model.keras"] {
        if case.join(f).exists() {
            let m = load_model(&case.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            out.push((f.to_string(), m));
        }
    }
    if case.join("model.weights.h5").exists() {
        let m = load_model_with_weights(&case.join("model.h5"), &case.join("model.weights.h5"))
            .unwrap_or_else(|e| panic!("model.weights.h5: {e}"));
        out.push(("model.weights.h5".to_string(), m));
    }
    out
}

#[test]
fn keras_made_float64_models_read_as_float64_and_predict_within_1e_12() {
    for name in ["sgd", "adam", "k2"] {
        let c = case(name);
        let (x, want) = (inputs(&c), predictions(&c));
        let files = read_all(&c);
        assert!(!files.is_empty(), "{name}");
        for (f, m) in files {
            assert_eq!(m.spec.dtype, FloatDtype::Float64, "{name}/{f}");
            let got = predict(&m, &x);
            let d = max_abs_diff_f64(&got, &want);
            assert!(d <= TOL_PREDICT, "{name}/{f}: {d:e} off Keras");
            // The test can see a float32 round trip of the inputs: it moves the predictions by far
            // more than the tolerance.
            let x32: Vec<f64> = x.iter().map(|&v| f64::from(v as f32)).collect();
            let d32 = max_abs_diff_f64(&predict(&m, &x32), &want);
            assert!(
                d32 > 1e3 * TOL_PREDICT,
                "{name}/{f}: float32 inputs only {d32:e} off"
            );
        }
    }
}

#[test]
fn float64_weights_keep_every_bit_of_keras_s_values() {
    let c = case("sgd");
    let meta = read_json(&c.join("case.json"));
    let m = load_model(&c.join("model.keras")).unwrap();
    for (i, l) in m.spec.layers.iter().enumerate() {
        for (w, got) in l.weights(m.spec.fan_in(i)).iter().zip(&m.weights[i]) {
            let want = flat_f64s(&meta["initial"][l.name()][w.name]);
            assert_eq!(got, &want, "{}/{}", l.name(), w.name);
            assert!(
                want.iter().any(|&v| f64::from(v as f32) != v),
                "the fixture's {}/{} are not float32 values",
                l.name(),
                w.name
            );
        }
    }
}

/// Whether every dataset in an HDF5 file (or an archive's model.weights.h5) holding weights is
/// float64; returns the count of float datasets.
fn float_datasets(path: &Path) -> (usize, usize) {
    let f = hdf5::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut counts = (0, 0);
    fn walk(g: &hdf5::Group, counts: &mut (usize, usize)) {
        for ds in g.datasets().unwrap() {
            if let Ok(hdf5::types::TypeDescriptor::Float(size)) =
                ds.dtype().and_then(|t| t.to_descriptor())
            {
                if size as usize == 8 {
                    counts.0 += 1;
                } else {
                    counts.1 += 1;
                }
            }
        }
        for sub in g.groups().unwrap() {
            walk(&sub, counts);
        }
    }
    walk(&f, &mut counts);
    counts
}

#[test]
fn float64_models_are_written_as_float64_in_every_format_and_read_back_bit_for_bit() {
    let c = case("sgd");
    let m = load_model(&c.join("model.keras")).unwrap();
    let x = inputs(&c);
    let want = predictions(&c);
    let dir = tempdir();
    let d = dir.path();
    for (out, format) in [
        ("k3.h5", keras_transfer::Format::Keras3),
        ("universal.h5", keras_transfer::Format::Universal),
        ("m.keras", keras_transfer::Format::Keras3),
        ("m.safetensors", keras_transfer::Format::Keras3),
    ] {
        let p = d.join(out);
        save_model(
            &p,
            &KerasModel {
                format,
                ..m.clone()
            },
        )
        .unwrap_or_else(|e| panic!("{out}: {e}"));
        let back = load_model(&p).unwrap_or_else(|e| panic!("{out}: {e}"));
        assert_eq!(back.spec.dtype, FloatDtype::Float64, "{out}");
        assert_eq!(back.weights, m.weights, "{out}: weights changed");
        let got = predict(&back, &x);
        assert!(max_abs_diff_f64(&got, &want) <= TOL_PREDICT, "{out}");
        if out.ends_with(".h5") {
            let (f64s, f32s) = float_datasets(&p);
            assert!(
                f64s >= 8 && f32s == 0,
                "{out}: {f64s} float64, {f32s} float32 datasets"
            );
        }
    }
    // A weights file: float64 datasets, read into the float64 architecture bit for bit.
    let w = d.join("m.weights.h5");
    save_model(&w, &m).unwrap();
    let (f64s, f32s) = float_datasets(&w);
    assert!(
        f64s >= 8 && f32s == 0,
        "weights: {f64s} float64, {f32s} float32 datasets"
    );
    let back = load_model_with_weights(&d.join("k3.h5"), &w).unwrap();
    assert_eq!(back.weights, m.weights);
    // The configs say float64 in both dialects.
    for out in ["k3.h5", "universal.h5"] {
        let back = load_model(&d.join(out)).unwrap();
        assert_eq!(back.spec.dtype, FloatDtype::Float64, "{out}");
    }
}

#[test]
fn a_weights_file_of_the_other_dtype_is_refused_naming_both() {
    let c = case("sgd");
    let m64 = load_model(&c.join("model.keras")).unwrap();
    let dir = tempdir();
    let d = dir.path();
    // The same architecture in float32: its weights rounded, its config saying float32.
    let mut m32 = m64.clone();
    m32.spec.dtype = FloatDtype::Float32;
    for v in m32.weights.iter_mut().flatten().flatten() {
        *v = f64::from(*v as f32);
    }
    save_model(&d.join("m32.h5"), &m32).unwrap();
    save_model(&d.join("m32.weights.h5"), &m32).unwrap();
    save_model(&d.join("m64.weights.h5"), &m64).unwrap();
    let e = load_model_with_weights(&c.join("model.h5"), &d.join("m32.weights.h5"))
        .err()
        .unwrap_or_else(|| panic!("float32 weights in a float64 model"));
    let msg = e.to_string();
    assert!(msg.contains("float32") && msg.contains("float64"), "{msg}");
    assert_eq!(e.exit_code(), 3, "{msg}");
    let e = load_model_with_weights(&d.join("m32.h5"), &d.join("m64.weights.h5"))
        .err()
        .unwrap_or_else(|| panic!("float64 weights in a float32 model"));
    assert!(e.to_string().contains("holds float64 values"), "{e}");
    // The same through the CLI: one line, exit 3.
    let out = run(
        d,
        &["convert", "m32.h5", "x.h5", "--weights", "m64.weights.h5"],
    );
    assert_fails(&out, 3, &["float64", "float32"]);
    assert!(!d.join("x.h5").exists());
    // A .h5 whose config says float64 but whose datasets are float32 (edited in place).
    let p = d.join("edited.h5");
    std::fs::copy(c.join("model.h5"), &p).unwrap();
    {
        let f = h5_open_rw(&p);
        let g = f.group("model_weights/dense/sequential/dense").unwrap();
        let bias: Vec<f64> = g.dataset("bias").unwrap().read_raw().unwrap();
        g.unlink("bias").unwrap();
        let b32: Vec<f32> = bias.iter().map(|&v| v as f32).collect();
        g.new_dataset::<f32>()
            .shape([b32.len()])
            .create("bias")
            .unwrap()
            .write_raw(&b32)
            .unwrap();
    }
    let e = load_model(&p)
        .err()
        .unwrap_or_else(|| panic!("a float32 bias in a float64 model"));
    assert!(
        e.to_string()
            .contains("holds float32 values, but the model's config says float64"),
        "{e}"
    );
    std::fs::write(d.join("x.csv"), "x0,x1,x2,x3\n1,2,3,4\n").unwrap();
    let out = run(d, &["predict", "--model", "edited.h5", "--input", "x.csv"]);
    assert_fails(&out, 3, &["edited.h5", "float32", "float64"]);
}

/// A Keras 3 model_config with the given dtype on the input and on each of two Dense layers.
fn config(input: &str, a: serde_json::Value, b: serde_json::Value) -> String {
    let dense = |name: &str, dtype: serde_json::Value| {
        serde_json::json!({"module": "keras.layers", "class_name": "Dense", "config": {
            "name": name, "trainable": true, "dtype": dtype, "units": 3, "activation": "relu",
            "use_bias": true}})
    };
    serde_json::json!({"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 2],
            "dtype": input, "name": "in"}},
        dense("first", a), dense("second", b)]}})
    .to_string()
}

fn policy(name: &str) -> serde_json::Value {
    serde_json::json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": name}})
}

#[test]
fn mixed_dtypes_and_dtypes_this_tool_cannot_compute_in_are_refused_naming_the_layer() {
    let ok = parse_model_config(&config("float64", policy("float64"), "float64".into())).unwrap();
    assert_eq!(ok.spec.dtype, FloatDtype::Float64);
    let ok = parse_model_config(&config("float32", policy("float32"), policy("float32"))).unwrap();
    assert_eq!(ok.spec.dtype, FloatDtype::Float32);
    for (cfg, needles) in [
        (
            config("float64", policy("float64"), policy("float32")),
            vec!["mixing dtypes", "'second' is float32", "float64"],
        ),
        (
            config("float32", policy("float64"), policy("float64")),
            vec!["mixing dtypes", "'first' is float64", "'in' is float32"],
        ),
        (
            config("float32", policy("mixed_float16"), policy("float32")),
            vec!["'first'", "dtype 'mixed_float16'"],
        ),
        (
            config("float16", policy("float16"), policy("float16")),
            vec!["InputLayer 'in'", "dtype 'float16'"],
        ),
        (
            config("float32", policy("float32"), policy("bfloat16")),
            vec!["'second'", "dtype 'bfloat16'"],
        ),
    ] {
        let e = format!(
            "{:?}",
            parse_model_config(&cfg)
                .err()
                .unwrap_or_else(|| panic!("refused"))
        );
        for n in needles {
            assert!(e.contains(n), "lacks '{n}': {e}");
        }
    }
}

#[test]
fn the_cli_fine_tunes_float64_models_as_float64_and_refuses_unchecked_optimizers() {
    let dir = tempdir();
    let d = dir.path();
    for name in ["sgd", "adam"] {
        for f in ["model.keras", "train.csv"] {
            std::fs::copy(case(name).join(f), d.join(format!("{name}-{f}"))).unwrap();
        }
    }
    let args = |name: &str| {
        [
            "finetune".to_string(),
            "--from".into(),
            format!("{name}-model.keras"),
            "--train".into(),
            format!("{name}-train.csv"),
            "--label".into(),
            "label".into(),
            "--no-shuffle".into(),
            "--epochs".into(),
            "1".into(),
            "--out".into(),
            format!("{name}-out.keras"),
        ]
    };
    let a: Vec<String> = args("sgd").to_vec();
    let out = run(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = load_model(&d.join("sgd-out.keras")).unwrap();
    assert_eq!(m.spec.dtype, FloatDtype::Float64);
    let meta = read_json(&case("sgd").join("case.json"));
    let diff = diff_named(&m, &meta["final"]);
    assert!(diff <= 1e-10, "the CLI's epoch is {diff:e} off Keras's");
    let a: Vec<String> = args("adam").to_vec();
    let out = run(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = load_model(&d.join("adam-out.keras")).unwrap();
    let meta = read_json(&case("adam").join("case.json"));
    let diff = diff_named(&m, &meta["final"]);
    assert!(
        diff <= 1e-10,
        "the CLI's Adam epoch is {diff:e} off Keras's"
    );
    // An optimizer not checked in float64 is refused, naming it, and nothing is written.
    let mut a: Vec<String> = args("sgd").to_vec();
    a.last_mut().unwrap().replace_range(.., "rms.keras");
    a.extend(["--optimizer".to_string(), "rmsprop".to_string()]);
    let out = run(d, &a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_fails(&out, 2, &["RMSprop", "float64"]);
    assert!(!d.join("rms.keras").exists());
    // inspect says the dtype.
    let out = run(d, &["inspect", "sgd-out.keras"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap().ends_with("float64 weights"),
        "{text}"
    );
    // Evaluating it computes in float64 and works.
    let out = run(
        d,
        &[
            "evaluate",
            "--model",
            "sgd-out.keras",
            "--data",
            "sgd-train.csv",
            "--label",
            "label",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fits a case's untrained `model.keras` one epoch as the file compiled it (batch 32, no
/// shuffling), as `finetune --from model.keras --no-shuffle --epochs 1` does.
fn fit_one_epoch(c: &Path) -> (keras_transfer::Model, keras_transfer::History, KerasModel) {
    let base = load_model(&c.join("model.keras")).unwrap();
    let compile = base.compile().expect("compiled").unwrap();
    let data = keras_transfer::data::csv::read_train_test(&c.join("train.csv"), None, None)
        .unwrap()
        .0;
    let model = base.to_model().unwrap();
    let cfg = keras_transfer::FitConfig {
        epochs: 1,
        batch_size: 32,
        shuffle: false,
        ..keras_transfer::FitConfig::default()
    }
    .with_compile(compile);
    let (mut h, mut s) =
        keras_transfer::train::fit_from(&model, &data, None, &cfg, &[0], None).unwrap();
    let mut km = KerasModel::compiled(
        model.spec().clone(),
        model.weights().unwrap(),
        Some(&cfg.compile()),
    );
    km.optimizer_state = Some(Ok(s.remove(0)));
    (model, h.remove(0), km)
}

/// Largest difference between a model's weights and a fixture's `{layer: {weight: values}}`.
fn diff_named(m: &KerasModel, v: &serde_json::Value) -> f64 {
    let mut d: f64 = 0.0;
    for (i, l) in m.spec.layers.iter().enumerate() {
        for (w, got) in l.weights(m.spec.fan_in(i)).iter().zip(&m.weights[i]) {
            let want = flat_f64s(&v[l.name()][w.name]);
            d = d.max(max_abs_diff_f64(got, &want));
        }
    }
    d
}

/// One epoch of SGD and of Adam on a float64 model tracks Keras's float64 epoch within 1e-10 (the
/// same float64 operations up to summation order, about 1e-16 each over 4 steps; the same epoch in
/// float32 lands 2e-7 to 5e-7 away, `float32_fit_max_abs_diff` in case.json, which the tolerance
/// tells apart by three orders of magnitude).
#[test]
fn one_float64_epoch_of_sgd_and_adam_tracks_keras_within_1e_10() {
    const TOL_FIT: f64 = 1e-10;
    for name in ["sgd", "adam"] {
        let c = case(name);
        let meta = read_json(&c.join("case.json"));
        let f32_gap = meta["float32_fit_max_abs_diff"].as_f64().unwrap();
        assert!(
            f32_gap > 1e3 * TOL_FIT,
            "{name}: the fixture cannot tell float32 apart"
        );
        let (model, h, km) = fit_one_epoch(&c);
        assert_eq!(model.spec().dtype, FloatDtype::Float64);
        let d = diff_named(&km, &meta["final"]);
        eprintln!("{name}: one epoch {d:e} off Keras (float32 would be {f32_gap:e})");
        assert!(
            d <= TOL_FIT,
            "{name}: weights {d:e} off Keras's after one epoch"
        );
        let loss = meta["history"]["loss"][0].as_f64().unwrap();
        assert!(
            (f64::from(h.loss[0]) - loss).abs() <= 1e-6,
            "{name}: loss {} vs Keras {loss}",
            h.loss[0]
        );
        // Saved with its optimizer state (float64 too), and read back bit for bit.
        let dir = tempdir();
        for out in ["fitted.h5", "fitted.keras", "fitted.safetensors"] {
            let p = dir.path().join(out);
            save_model(&p, &km).unwrap_or_else(|e| panic!("{out}: {e}"));
            let back = load_model(&p).unwrap();
            assert_eq!(back.spec.dtype, FloatDtype::Float64, "{out}");
            assert_eq!(back.weights, km.weights, "{out}");
            if !out.ends_with(".keras") {
                assert_eq!(
                    back.optimizer_state, km.optimizer_state,
                    "{out}: optimizer state"
                );
            }
        }
        let (f64s, f32s) = float_datasets(&dir.path().join("fitted.h5"));
        assert!(
            f32s == 0 && f64s > 8,
            "{name}: {f64s} float64, {f32s} float32 datasets"
        );
    }
}

/// Optimizers other than plain SGD and plain Adam (not checked against Keras in float64) are
/// refused on a float64 model, naming the optimizer.
#[test]
fn a_float64_model_with_another_optimizer_is_refused() {
    let c = case("adam");
    let base = load_model(&c.join("model.keras")).unwrap();
    let mut compile = base.compile().expect("compiled").unwrap();
    compile.optimizer = keras_transfer::OptimizerSpec::named("RMSprop").unwrap();
    let data = keras_transfer::data::csv::read_train_test(&c.join("train.csv"), None, None)
        .unwrap()
        .0;
    let model = base.to_model().unwrap();
    let cfg = keras_transfer::FitConfig::default().with_compile(compile);
    let e = keras_transfer::train::fit_from(&model, &data, None, &cfg, &[0], None)
        .err()
        .unwrap_or_else(|| panic!("Adam on a float64 model trained"));
    let msg = e.to_string();
    assert!(
        msg.contains("RMSprop") && msg.contains("on a float64 model is not supported yet"),
        "{msg}"
    );
}

/// A safetensors file whose architecture says one dtype and whose tensors hold the other is refused,
/// naming the tensor and both dtypes (the metadata edited in place: same length, same layout).
#[test]
fn a_safetensors_file_whose_tensors_contradict_its_dtype_is_refused() {
    let m = load_model(&case("sgd").join("model.keras")).unwrap();
    let bytes = keras_transfer::checkpoint::to_safetensors_bytes(&m).unwrap();
    // The architecture is a JSON string inside the header's JSON: its quotes are escaped.
    let (from, to) = (br#"\"dtype\":\"float64\""#, br#"\"dtype\":\"float32\""#);
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the architecture's dtype in the metadata");
    let mut edited = bytes.clone();
    edited[at..at + to.len()].copy_from_slice(to);
    let e = keras_transfer::checkpoint::from_safetensors_bytes(&edited)
        .err()
        .unwrap_or_else(|| panic!("F64 tensors read as a float32 model"));
    assert!(e.contains("F64") && e.contains("float32"), "{e}");
    let dir = tempdir();
    std::fs::write(dir.path().join("m.safetensors"), &edited).unwrap();
    let out = run(dir.path(), &["inspect", "m.safetensors"]);
    assert_fails(&out, 3, &["m.safetensors", "F64"]);
}

/// `train --dtype float64` builds, trains and saves a float64 model: its weights are doubles (drawn
/// and trained in float64, not float32 values), it reads back float64, and the same run in float32
/// gives other weights; a dtype this tool cannot compute in is a usage error.
#[test]
fn train_dtype_float64_trains_and_saves_a_float64_model() {
    let dir = tempdir();
    let d = dir.path();
    let base = ["train", "--problem", "1", "--epochs", "3", "--seed", "3"];
    let out = run(
        d,
        &[&base[..], &["--dtype", "float64", "--out", "m64.h5"]].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(d, &[&base[..], &["--out", "m32.h5"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (m64, m32) = (
        load_model(&d.join("m64.h5")).unwrap(),
        load_model(&d.join("m32.h5")).unwrap(),
    );
    assert_eq!(m64.spec.dtype, FloatDtype::Float64);
    assert_eq!(m32.spec.dtype, FloatDtype::Float32);
    let w64: Vec<f64> = m64.weights.concat().concat();
    let w32: Vec<f64> = m32.weights.concat().concat();
    assert!(
        w64.iter().any(|&v| f64::from(v as f32) != v),
        "float32 values in a float64 model"
    );
    assert!(w32.iter().all(|&v| f64::from(v as f32) == v));
    let d6 = max_abs_diff_f64(&w64, &w32);
    assert!(
        d6 > 0.0 && d6 < 1e-3,
        "float64 and float32 runs differ by {d6:e}"
    );
    let out = run(
        d,
        &[&base[..], &["--dtype", "bfloat16", "--out", "x.h5"]].concat(),
    );
    assert_fails(&out, 2, &["bfloat16", "float64"]);
}
