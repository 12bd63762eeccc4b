//! The layers around Dense, against files real Keras made (fixtures/keras_layers, made by
//! python-check/make_fixtures_more.py): every supported layer and Functional chain predicts as Keras
//! did; what is not supported is refused by name; BatchNormalization trains as Keras trains it; our
//! files with these layers round-trip.

use crate::common::*;
use keras_transfer::keras::config::parse_model_config;
use keras_transfer::keras::{Format, load_h5};
use keras_transfer::{Dataset, FitConfig, LayerWeights, Model, ModelSpec, fit};
use serde_json::Value;
use std::path::Path;

/// Predictions agree with Keras's to this (float32 kernels summing in different orders).
const TOL_PREDICT: f32 = 1e-6;

/// Cases that must be refused, and a piece of the message.
const REFUSED: &[(&str, &str)] = &[("gelu_approximate", "custom or parametrised function")];

fn predict_file(model: &Path, case: &Path) -> Vec<f64> {
    let m = load_h5(model).unwrap_or_else(|e| panic!("{e}"));
    let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
    m.to_model().unwrap().predict(&inputs.concat()).unwrap()
}

#[test]
fn keras_made_models_with_these_layers_predict_as_keras_did() {
    let mut checked = 0;
    for case in cases("keras_layers") {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let model = case.join("model.h5");
        if !model.exists() {
            continue;
        }
        if let Some((_, needle)) = REFUSED.iter().find(|(c, _)| *c == name) {
            let e = load_h5(&model)
                .err()
                .unwrap_or_else(|| panic!("{name} loaded"));
            assert!(e.to_string().contains(needle), "{name}: {e}");
            assert_eq!(e.exit_code(), 3, "{name}: {e}");
            continue;
        }
        let (_, preds) = read_csv_f64(&case.join("predictions.csv"));
        let want: Vec<f32> = preds.concat().iter().map(|&v| v as f32).collect();
        let got = predict_file(&model, &case);
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= TOL_PREDICT,
            "{name}: predictions differ from Keras by {d}"
        );
        // The layers are the ones Keras listed, in order, with Keras's weight counts.
        let meta = read_json(&case.join("case.json"));
        let m = load_h5(&model).unwrap();
        let want_layers: Vec<(String, usize)> = meta["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let n = l["weights"].as_array().map(Vec::len).unwrap_or(0);
                (l["class_name"].as_str().unwrap().to_string(), n)
            })
            .filter(|(c, _)| c != "InputLayer")
            .collect();
        let got_layers: Vec<(String, usize)> = m
            .spec
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    l.class_name().to_string(),
                    l.weights(m.spec.fan_in(i)).len(),
                )
            })
            .collect();
        assert_eq!(got_layers, want_layers, "{name}: layers");
        checked += 1;
    }
    assert!(
        checked >= 7,
        "only {checked} Keras-made models were checked"
    );
}

/// A model's weights from a fixture's `{layer: {weight: values}}` object, in our weight order.
fn named_weights(spec: &ModelSpec, v: &Value) -> Vec<LayerWeights> {
    spec.layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            l.weights(spec.fan_in(i))
                .iter()
                .map(|w| {
                    let vals = &v[l.name()][w.name];
                    assert!(!vals.is_null(), "{}/{} missing", l.name(), w.name);
                    flat(vals)
                })
                .collect()
        })
        .collect()
}

fn flat(v: &Value) -> Vec<f64> {
    flat_f64s(v)
}

/// The batchnorm_train fixture: its folder, its case.json and the architecture Keras saved.
fn batchnorm_train_case() -> (std::path::PathBuf, Value, ModelSpec) {
    let case = fixture("keras_layers/batchnorm_train");
    let meta = read_json(&case.join("case.json"));
    let config = meta["files"]["model.keras"]["config_json"]
        .as_str()
        .unwrap();
    let spec = parse_model_config(config).unwrap().spec;
    (case, meta, spec)
}

#[test]
fn batch_normalization_trains_as_keras_trains_it() {
    let (case, meta, spec) = batchnorm_train_case();
    let model = Model::from_weights(spec.clone(), named_weights(&spec, &meta["initial"])).unwrap();
    let (_, rows) = read_csv_f64(&case.join("train.csv"));
    let x: Vec<f64> = rows.iter().flat_map(|r| r[..4].to_vec()).collect();
    let labels: Vec<usize> = rows.iter().map(|r| r[4] as usize).collect();
    let data = Dataset::new(x, 4, labels, 3, None).unwrap();
    let cfg = FitConfig {
        epochs: 1,
        shuffle: false,
        ..FitConfig::default()
    };
    let h = fit(&model, &data, None, &cfg, &[0]).unwrap().remove(0);
    let tol = meta["tolerance"].as_f64().unwrap() as f32;
    let want = named_weights(&spec, &meta["final"]);
    let got = model.weights().unwrap();
    for (i, l) in spec.layers.iter().enumerate() {
        for (j, w) in l.weights(spec.fan_in(i)).iter().enumerate() {
            let d = max_abs_diff(&got[i][j], &want[i][j]);
            assert!(
                d <= tol,
                "{}/{} differs from Keras by {d}",
                l.name(),
                w.name
            );
        }
    }
    // The moving statistics did move (the check above would pass trivially otherwise).
    let initial = named_weights(&spec, &meta["initial"]);
    assert_ne!(got[1][2], initial[1][2], "moving_mean moved");
    for key in ["loss", "accuracy"] {
        let mine = if key == "loss" {
            h.loss[0]
        } else {
            h.accuracy[0]
        };
        let want = f32s(&meta["history"][key])[0];
        assert!((mine - want).abs() <= tol, "{key}: {mine} vs Keras {want}");
    }
}

#[test]
fn a_frozen_batch_normalization_layer_keeps_its_statistics() {
    // Keras runs a non-trainable BatchNormalization in inference mode even inside fit.
    let (_, meta, mut spec) = batchnorm_train_case();
    spec.freeze_only(&[1]).unwrap();
    let initial = named_weights(&spec, &meta["initial"]);
    let model = Model::from_weights(spec.clone(), initial.clone()).unwrap();
    let (train, _) = tutorial_problem(1);
    let x: Vec<f64> = train
        .x
        .chunks(2)
        .flat_map(|r| [r[0], r[1], r[0], r[1]])
        .collect();
    let data = Dataset::new(x, 4, train.labels.clone(), 3, None).unwrap();
    fit(
        &model,
        &data,
        None,
        &FitConfig {
            epochs: 2,
            ..FitConfig::default()
        },
        &[1],
    )
    .unwrap();
    let got = model.weights().unwrap();
    assert_eq!(
        got[1], initial[1],
        "gamma, beta and the moving statistics are unchanged"
    );
    assert_ne!(got[0], initial[0], "the layers around it trained");
}

#[test]
fn our_files_with_these_layers_round_trip() {
    let dir = tempdir();
    let mut n = 0;
    for case in cases("keras_layers") {
        let model = case.join("model.h5");
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        if !model.exists() || REFUSED.iter().any(|(c, _)| *c == name) {
            continue;
        }
        let m = load_h5(&model).unwrap();
        for format in [Format::Keras3, Format::Universal] {
            let path = dir.path().join(format!("{name}.h5"));
            let model = m.to_model().unwrap();
            match keras_transfer::keras::config::writable(&m.spec, format) {
                Err(reason) => {
                    assert_eq!(format, Format::Universal, "{name}: {reason}");
                    assert!(reason.contains("Keras 3"), "{reason}");
                    continue;
                }
                Ok(()) => save_h5_model(&path, &model, format),
            }
            let back = load_h5(&path).unwrap();
            assert_eq!(back.spec, m.spec, "{name} {format:?}");
            assert_eq!(back.weights, m.weights, "{name} {format:?}");
            n += 1;
        }
    }
    assert!(n >= 10, "only {n} round trips");
}

#[test]
fn dropout_is_inverted_and_seeded_in_training_and_absent_in_inference() {
    use keras_transfer::model::{DropoutSpec, Forward, LayerSpec, Mode};
    use keras_transfer::rng::NumpyRandomState;
    let spec = ModelSpec {
        dtype: Default::default(),
        graph: None,
        input_shape: None,
        nested: Vec::new(),
        input_dim: 1,
        layers: vec![
            LayerSpec::Dropout(DropoutSpec {
                name: "dropout".into(),
                rate: 0.25,
                noise_shape: None,
                trainable: true,
            }),
            LayerSpec::Dense(keras_transfer::DenseSpec::new(
                "dense",
                1,
                keras_transfer::Activation::Linear,
                keras_transfer::Initializer::Ones,
            )),
        ],
        kind: Default::default(),
    };
    let m = Model::new(spec, 0).unwrap();
    let x = candle_core::Tensor::ones((1, 4000, 1), candle_core::DType::F32, m.device()).unwrap();
    let out = |mode, seed| {
        let mut rngs = vec![NumpyRandomState::new(seed)];
        let mut f = Forward {
            mode,
            rngs: Some(&mut rngs),
        };
        m.logits(&x, &mut f)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert!(out(Mode::Inference, 1).iter().all(|&v| v == 1.0));
    let t = out(Mode::Training, 1);
    assert!(t.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-6));
    let kept = t.iter().filter(|&&v| v > 0.0).count() as f64 / t.len() as f64;
    assert!((kept - 0.75).abs() < 0.03, "kept {kept}");
    assert_eq!(t, out(Mode::Training, 1), "same seed, same mask");
    assert_ne!(t, out(Mode::Training, 2), "another seed, another mask");
}

#[test]
fn transfer_adaptations_work_on_models_with_these_layers() {
    use keras_transfer::{Transfer, adapt};
    // Dense(linear) -> Activation(relu) -> Dense -> Activation(softmax): the new head is the last
    // Dense layer; the softmax Activation after it stays.
    let m = load_h5(&fixture("keras_layers/activation_layers/model.h5")).unwrap();
    let head = adapt(
        &m,
        &Transfer {
            freeze: 1,
            new_head: true,
            ..Transfer::default()
        },
        m.spec.input_dim,
        5,
        3,
    )
    .unwrap();
    let spec = head.spec();
    assert_eq!(spec.output_dim(), 5);
    assert_eq!(spec.layers.len(), m.spec.layers.len());
    assert_eq!(spec.layers.last().unwrap().class_name(), "Activation");
    assert_eq!(
        spec.output_activation(),
        keras_transfer::Activation::Softmax
    );
    assert_eq!(
        head.weights().unwrap()[0],
        m.weights[0],
        "the frozen layer is kept"
    );
    // Dense -> BatchNormalization -> Dense: a new hidden layer of another width after the first
    // layer changes the width the BatchNormalization layer sees, so it starts afresh too.
    let m = load_h5(&fixture("keras_layers/batchnorm/model.h5")).unwrap();
    let added = adapt(
        &m,
        &Transfer {
            freeze: 1,
            add_hidden: Some(4),
            ..Transfer::default()
        },
        m.spec.input_dim,
        m.spec.output_dim(),
        3,
    )
    .unwrap();
    let w = added.weights().unwrap();
    assert_eq!(w[0], m.weights[0]);
    assert_eq!(added.spec().layers[2].class_name(), "BatchNormalization");
    assert_eq!(w[2][0], vec![1.0; 4], "fresh gamma (ones) of the new width");
    assert_eq!(w[2][2], vec![0.0; 4], "fresh moving mean");
    assert_eq!(added.spec().fan_in(3), 4);
}

#[test]
fn stacked_members_with_dropout_and_batch_normalization_equal_lone_fits() {
    use keras_transfer::model::{DropoutSpec, LayerSpec};
    let (case, _, mut spec) = batchnorm_train_case();
    spec.layers.insert(
        2,
        LayerSpec::Dropout(DropoutSpec {
            name: "dropout".into(),
            rate: 0.3,
            noise_shape: None,
            trainable: true,
        }),
    );
    let (_, rows) = read_csv_f64(&case.join("train.csv"));
    let x: Vec<f64> = rows.iter().flat_map(|r| r[..4].to_vec()).collect();
    let labels: Vec<usize> = rows.iter().map(|r| r[4] as usize).collect();
    let data = Dataset::new(x, 4, labels, 3, None).unwrap();
    let cfg = FitConfig {
        epochs: 3,
        ..FitConfig::default()
    };
    let seeds = [4u32, 9];
    let stacked = Model::new_members(spec.clone(), &seeds).unwrap();
    let hs = fit(&stacked, &data, Some(&data), &cfg, &seeds).unwrap();
    for (m, &s) in seeds.iter().enumerate() {
        let lone = Model::new(spec.clone(), s).unwrap();
        let h = fit(&lone, &data, Some(&data), &cfg, &[s]).unwrap();
        assert_eq!(
            stacked.member_weights(m).unwrap(),
            lone.weights().unwrap(),
            "member {m}"
        );
        assert_eq!(hs[m], h[0], "history of member {m}");
    }
}
