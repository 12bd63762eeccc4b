//! Keras HDF5 files: Keras-made files read and predict as Keras did (fixtures/keras_h5), our files
//! round-trip, and every kind of bad file gets a clear error (fixtures/keras_h5_bad and made here).

use crate::common::*;
use keras_transfer::Error;
use keras_transfer::checkpoint::{convert, load_model};
use keras_transfer::keras::{Format, load_h5};
use keras_transfer::model::{Activation, LayerSpec, Model, ModelSpec};
use std::path::Path;

/// Keras's float32 kernels and ours sum in different orders; predictions agree to this.
const TOL_PREDICT: f32 = 1e-6;

#[test]
fn keras_made_files_predict_as_keras_did() {
    for case in cases("keras_h5") {
        let m = load_h5(&case.join("model.h5")).unwrap_or_else(|e| panic!("{e}"));
        let meta = read_json(&case.join("meta.json"));
        assert_eq!(
            m.spec.input_dim as u64,
            meta["input_dim"].as_u64().unwrap(),
            "{}",
            case.display()
        );
        for (l, want) in m.spec.layers.iter().zip(meta["layers"].as_array().unwrap()) {
            let LayerSpec::Dense(l) = l else {
                panic!("a Dense layer expected")
            };
            assert_eq!(l.units as u64, want["units"].as_u64().unwrap());
            assert_eq!(
                l.activation.keras_name(),
                want["activation"].as_str().unwrap()
            );
            assert_eq!(l.use_bias, want["use_bias"].as_bool().unwrap());
        }
        let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
        let (_, preds) = read_csv_f64(&case.join("predictions.csv"));
        let x: Vec<f64> = inputs.concat();
        let got = m.to_model().unwrap().predict(&x).unwrap();
        let want: Vec<f32> = preds.concat().iter().map(|&v| v as f32).collect();
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= TOL_PREDICT,
            "{}: predictions differ from Keras by {d}",
            case.display()
        );
        let keras3 = meta["producer"].as_str().unwrap().starts_with("keras 3");
        assert_eq!(
            m.format == Format::Keras3,
            keras3,
            "{}: dialect",
            case.display()
        );
    }
}

fn odd_model(seed: u32) -> Model {
    let mut spec = ModelSpec::classifier(
        4,
        &[6, 4, 3],
        &[Activation::Tanh, Activation::Sigmoid, Activation::Relu],
        2,
    )
    .unwrap();
    let LayerSpec::Dense(l) = &mut spec.layers[1] else {
        panic!("a Dense layer expected")
    };
    l.use_bias = false;
    Model::new(spec, seed).unwrap()
}

#[test]
fn our_files_round_trip_in_both_formats() {
    let dir = tempdir();
    for format in [Format::Keras3, Format::Universal] {
        for mlp in [Model::new(ModelSpec::tutorial(), 3).unwrap(), odd_model(4)] {
            let path = dir.path().join("m.h5");
            save_h5_model(&path, &mlp, format);
            let back = load_h5(&path).unwrap();
            assert_eq!(&back.spec, mlp.spec());
            assert_eq!(back.weights, mlp.weights().unwrap());
            assert_eq!(back.format, format);
            assert_eq!(back.learning_rate, Some(f64::from(0.01f32)));
        }
    }
}

#[test]
fn h5_safetensors_h5_gives_the_same_model() {
    let dir = tempdir();
    let src = fixture("keras_h5/k3_odd/model.h5");
    let st = dir.path().join("m.safetensors");
    let back = dir.path().join("back.h5");
    convert(&src, &st, None).unwrap();
    convert(&st, &back, None).unwrap();
    let a = load_h5(&src).unwrap();
    let b = load_h5(&back).unwrap();
    assert_eq!(a.spec, b.spec);
    assert_eq!(a.weights, b.weights);
    assert_eq!(load_model(&st).unwrap().weights, a.weights);
}

fn load_err(path: &Path) -> Error {
    load_model(path)
        .err()
        .unwrap_or_else(|| panic!("{} loaded", path.display()))
}

#[test]
fn keras_files_we_do_not_support_are_named() {
    for (case, needle) in [
        ("conv_layer/model.h5", "Conv1DTranspose"),
        ("noise_layer/model.h5", "GaussianNoise"),
        ("keras_zip/model.h5", ".keras zip archive named as HDF5"),
    ] {
        let e = load_err(&fixture(&format!("keras_h5_bad/{case}")));
        assert!(matches!(e, Error::Unsupported { .. }), "{case}: {e}");
        assert!(e.to_string().contains(needle), "{case}: {e}");
        assert!(e.to_string().contains("model."), "names the file: {e}");
    }
}

#[test]
fn missing_empty_text_and_directory_are_clear_errors() {
    let dir = tempdir();
    let p = dir.path();
    assert!(matches!(load_err(&p.join("nope.h5")), Error::Io { .. }));
    std::fs::write(p.join("empty.h5"), b"").unwrap();
    assert!(load_err(&p.join("empty.h5")).to_string().contains("empty"));
    std::fs::write(p.join("text.h5"), b"hello, I am not HDF5\n").unwrap();
    assert!(
        load_err(&p.join("text.h5"))
            .to_string()
            .contains("not an HDF5 file")
    );
    std::fs::create_dir(p.join("dir.h5")).unwrap();
    assert!(
        load_err(&p.join("dir.h5"))
            .to_string()
            .contains("directory")
    );
}

#[test]
fn truncated_files_are_errors_not_crashes() {
    let dir = tempdir();
    let bytes = std::fs::read(fixture("keras_h5/k3_tutorial/model.h5")).unwrap();
    let path = dir.path().join("t.h5");
    for len in (0..bytes.len())
        .step_by(bytes.len() / 40 + 1)
        .chain([bytes.len() - 1])
    {
        std::fs::write(&path, &bytes[..len]).unwrap();
        match load_model(&path) {
            Err(e) => assert!(e.to_string().contains("t.h5"), "len {len}: {e}"),
            Ok(_) => panic!("a file truncated to {len} of {} bytes loaded", bytes.len()),
        }
    }
}

#[test]
fn hdf5_without_a_model_is_not_a_keras_model() {
    let dir = tempdir();
    let path = dir.path().join("plain.h5");
    {
        let f = hdf5::File::create(&path).unwrap();
        f.create_group("data").unwrap();
    }
    let e = load_err(&path);
    assert!(matches!(e, Error::NotKerasModel { .. }), "{e}");
    assert!(e.to_string().contains("model_config"), "{e}");
}

/// Rewrites the root `model_config` of a copy of `src`.
fn with_config(src: &Path, dst: &Path, edit: impl Fn(&str) -> String) {
    std::fs::copy(src, dst).unwrap();
    let f = h5_open_rw(dst);
    let m = load_h5(src).unwrap();
    let cfg = keras_transfer::keras::config::model_config(&m.spec, m.format).to_string();
    f.delete_attr("model_config").unwrap();
    let v: hdf5::types::VarLenUnicode = edit(&cfg).parse().unwrap();
    f.new_attr::<hdf5::types::VarLenUnicode>()
        .create("model_config")
        .unwrap()
        .write_scalar(&v)
        .unwrap();
}

#[test]
fn weights_contradicting_the_config_are_shape_mismatches() {
    let dir = tempdir();
    let src = dir.path().join("ok.h5");
    save_h5_model(
        &src,
        &Model::new(ModelSpec::tutorial(), 1).unwrap(),
        Format::Keras3,
    );
    let bad = dir.path().join("bad.h5");
    with_config(&src, &bad, |c| c.replacen("\"units\":5", "\"units\":7", 1));
    let e = load_err(&bad);
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    assert!(
        e.to_string().contains("[2, 7]") && e.to_string().contains("[2, 5]"),
        "{e}"
    );
}

#[test]
fn broken_configs_are_clear_errors() {
    let dir = tempdir();
    let src = dir.path().join("ok.h5");
    save_h5_model(
        &src,
        &Model::new(ModelSpec::tutorial(), 1).unwrap(),
        Format::Universal,
    );
    let bad = dir.path().join("bad.h5");
    for (edit, needle) in [
        (
            Box::new(|_: &str| "{not json".to_string()) as Box<dyn Fn(&str) -> String>,
            "not JSON",
        ),
        (Box::new(|_: &str| String::new()), "not JSON"),
        (
            Box::new(|c: &str| c.replace("\"Dense\"", "\"LSTM\"")),
            "LSTM",
        ),
        (
            Box::new(|c: &str| c.replacen("\"units\":5", "\"units\":-5", 1)),
            "units",
        ),
        (
            Box::new(|c: &str| c.replacen("\"units\":5", "\"units\":99999999999", 1)),
            "units",
        ),
        (
            Box::new(|c: &str| c.replace("\"relu\"", "\"sparsemax\"")),
            "sparsemax",
        ),
    ] {
        with_config(&src, &bad, edit);
        let e = load_err(&bad);
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
}

#[test]
fn a_model_without_an_optimizer_stays_without_one_through_convert() {
    use keras_transfer::{KerasModel, save_model};
    let dir = tempdir();
    let m = Model::new(ModelSpec::tutorial(), 2).unwrap();
    let st = dir.path().join("bare.safetensors");
    save_model(
        &st,
        &KerasModel::new(m.spec().clone(), m.weights().unwrap(), None),
    )
    .unwrap();
    let h5 = dir.path().join("bare.h5");
    convert(&st, &h5, None).unwrap();
    let back = load_h5(&h5).unwrap();
    assert_eq!(back.learning_rate, None, "no learning rate was invented");
    assert_eq!(back.weights, m.weights().unwrap());
    let f = hdf5::File::open(&h5).unwrap();
    assert!(
        !f.attr_names()
            .unwrap()
            .iter()
            .any(|n| n == "training_config"),
        "an uncompiled model gets no training_config"
    );
    // And a file that has one keeps its learning rate exactly.
    let compiled = dir.path().join("c.safetensors");
    convert(&fixture("keras_h5/k3_tutorial/model.h5"), &compiled, None).unwrap();
    let lr = load_model(&compiled).unwrap().learning_rate;
    assert_eq!(
        lr,
        load_h5(&fixture("keras_h5/k3_tutorial/model.h5"))
            .unwrap()
            .learning_rate
    );
    assert!(lr.is_some());
}
