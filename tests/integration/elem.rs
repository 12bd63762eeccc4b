//! The element-wise and normalisation layers (Rescaling, Normalization, ReLU, Softmax, Identity,
//! Embedding, ConvNeXt's LayerScale, BatchNormalization and LayerNormalization on the channel axis
//! of images, Dropout with a noise_shape, Keras's activations) against files real Keras made
//! (fixtures/keras_elem, made by python-check/make_fixtures_elem.py): they predict as Keras did,
//! train as Keras trains them, are written back in both formats and read again identical, and what
//! this tool cannot run is refused naming the layer and setting.

use crate::common::*;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::keras::config::{model_config, parse_model_config};
use keras_transfer::train::fit_from;
use keras_transfer::{FitConfig, Format, KerasModel, load_model, save_model};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Predictions agree with Keras's to this: float32 sums (the Dense kernels, the normalisations'
/// means) taken in another order than TensorFlow's differ in the last bits, and a softmax over a
/// few such values stays within 1e-6 of Keras's; 1e-5 leaves room for the images' 60-value sums.
const TOL_PREDICT: f32 = 1e-5;
/// The activations case (one Dense of 5 per activation, no long sums) is held to 1e-6.
const TOL_ACTIVATIONS: f32 = 1e-6;
/// Weights, losses and predictions after 3 epochs of Adam track Keras's to this.
const TOL_FIT: f32 = 1e-5;

fn case(name: &str) -> PathBuf {
    fixture(&format!("keras_elem/{name}"))
}

fn predict(m: &KerasModel, case: &Path) -> Vec<f64> {
    let (_, inputs) = read_csv_f64(&case.join("inputs.csv"));
    m.to_model()
        .unwrap()
        .predict(&inputs.concat())
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
}

fn keras_predictions(case: &Path) -> Vec<f64> {
    read_csv_f64(&case.join("predictions.csv")).1.concat()
}

fn tolerance(name: &str) -> f32 {
    if name.contains("activations") || name == "k2_layers" {
        TOL_ACTIVATIONS
    } else {
        TOL_PREDICT
    }
}

/// Every case's model files (model.keras, model.h5 when present).
fn model_files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in cases("keras_elem") {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        for f in ["model.keras", "model.h5"] {
            if dir.join(f).exists() {
                out.push((format!("{name}/{f}"), dir.join(f)));
            }
        }
    }
    out
}

#[test]
fn keras_made_models_with_these_layers_predict_as_keras_did() {
    let files = model_files();
    assert!(files.len() >= 17, "only {} fixtures", files.len());
    for (name, path) in files {
        let m = load_model(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dir = path.parent().unwrap();
        let d = max_abs_diff(&predict(&m, dir), &keras_predictions(dir));
        let tol = tolerance(dir.file_name().unwrap().to_str().unwrap());
        assert!(d <= tol, "{name}: predictions differ from Keras by {d}");
    }
}

#[test]
fn the_layers_are_read_with_keras_settings_and_weights() {
    let m = load_model(&case("elementwise").join("model.keras")).unwrap();
    let classes: Vec<&str> = m.spec.layers.iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        [
            "Rescaling",
            "Dense",
            "ReLU",
            "LayerNormalization",
            "Identity",
            "Dense",
            "Softmax",
            "Flatten",
            "Dense"
        ]
    );
    let cfg = model_config(&m.spec, Format::Keras3);
    let layer = |name: &str| -> Value {
        cfg["config"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["config"]["name"] == name)
            .unwrap()["config"]
            .clone()
    };
    assert_eq!(layer("rescale")["scale"], json!([0.5, 2.0]));
    assert_eq!(layer("relu")["threshold"], json!(0.2));
    assert_eq!(layer("ln")["axis"], json!([3]), "the axis written as read");
    // tf.keras 2 writes BatchNormalization's axis as [3]; Keras 3 takes only an integer there (and
    // tf.keras 2 reads one too).
    let k2 = load_model(&case("k2_image").join("model.h5")).unwrap();
    let bn =
        |format| model_config(&k2.spec, format)["config"]["layers"][1]["config"]["axis"].clone();
    assert_eq!(bn(Format::Universal), json!(3));
    assert_eq!(bn(Format::Keras3), json!(3));
    // Normalization: adapted (mean, variance, int64 count) and given in the config.
    let m = load_model(&case("normalization").join("model.h5")).unwrap();
    let norm = &m.spec.layers[0];
    let names: Vec<&str> = norm.weights(4).iter().map(|w| w.name).collect();
    assert_eq!(names, ["mean", "variance", "count"]);
    assert_eq!(
        m.weights[0][2],
        [0.0],
        "count (Keras 3's adapt leaves it at 0)"
    );
    let k2 = load_model(&case("k2_layers").join("model.h5")).unwrap();
    assert_eq!(k2.weights[1][2], [24.0], "count, an int64 in the file");
    assert!(m.spec.layers[2].weights(5).is_empty(), "mean given");
    // LayerScale by the name ConvNeXt registers it under.
    let m = load_model(&case("layer_scale").join("model.keras")).unwrap();
    assert_eq!(m.spec.layers[1].class_name(), "LayerScale");
    assert_eq!(m.weights[1][0], [0.5; 4]);
}

/// Writes `m` as `.keras`, Keras 3 `.h5` and (unless `k3_only`) universal `.h5`, reads each back,
/// and checks it is the same model predicting the same.
fn round_trip(name: &str, m: &KerasModel, dir: &Path, out: &Path) {
    let want = predict(m, dir);
    for (ext, format) in [
        ("keras", Format::Keras3),
        ("h5", Format::Keras3),
        ("h5", Format::Universal),
    ] {
        let mut w = m.clone();
        w.format = format;
        let p = out.join(format!("{}_{format:?}.{ext}", name.replace('/', "_")));
        if let Err(e) = save_model(&p, &w) {
            // Only tf.keras 2 lacking the layer may stop a universal file, naming it.
            assert_eq!(format, Format::Universal, "{name} -> {ext}: {e}");
            assert!(e.to_string().contains("Keras 2"), "{name}: {e}");
            continue;
        }
        let back = load_model(&p).unwrap_or_else(|e| panic!("{name} -> {ext} {format:?}: {e}"));
        assert_eq!(
            model_config(&back.spec, format),
            model_config(&m.spec, format),
            "{name} -> {ext} {format:?}"
        );
        assert_eq!(back.spec, m.spec, "{name} -> {ext} {format:?}");
        assert_eq!(back.weights, m.weights, "{name} -> {ext} {format:?}");
        assert_eq!(predict(&back, dir), want, "{name} -> {ext} {format:?}");
    }
}

#[test]
fn models_with_these_layers_are_written_back_and_read_again_identical() {
    let out = tempdir();
    for (name, path) in model_files() {
        let m = load_model(&path).unwrap();
        round_trip(&name, &m, path.parent().unwrap(), out.path());
    }
    // tf.keras 2 has no LayerScale: a universal file of it is refused, naming the layer.
    let mut m = load_model(&case("layer_scale").join("model.keras")).unwrap();
    m.format = Format::Universal;
    let e = save_model(&out.path().join("ls.h5"), &m).expect_err("refused");
    assert!(
        e.to_string().contains("'scale'") && e.to_string().contains("LayerScale"),
        "{e}"
    );
}

#[test]
fn models_with_these_layers_train_as_keras_trains_them() {
    let mut trained = 0;
    for dir in cases("keras_elem") {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let Ok(want) = std::fs::read_to_string(dir.join("fit.json")) else {
            continue;
        };
        let want: Value = serde_json::from_str(&want).unwrap();
        let base = load_model(&dir.join("model.keras")).unwrap();
        let data = read_train_test(&dir.join("train.csv"), None, None)
            .unwrap()
            .0;
        let compile = base.compile().unwrap().unwrap();
        let cfg = FitConfig {
            epochs: want["epochs"].as_u64().unwrap() as usize,
            batch_size: want["batch_size"].as_u64().unwrap() as usize,
            shuffle: false,
            ..FitConfig::default()
        }
        .with_compile(compile);
        let model = base.to_model().unwrap();
        let (h, _) = fit_from(&model, &data, None, &cfg, &[0], None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = max_abs_diff(&h[0].loss, &f32s(&want["loss"]));
        assert!(d <= TOL_FIT, "{name}: losses differ from Keras by {d}");
        let after = model.weights().unwrap();
        for (i, l) in base.spec.layers.iter().enumerate() {
            let keras = want["weights"][l.name()].as_array().unwrap();
            assert_eq!(keras.len(), after[i].len(), "{name}/{}", l.name());
            for (j, w) in keras.iter().enumerate() {
                let d = max_abs_diff(&after[i][j], &flat_f64s(w));
                assert!(
                    d <= TOL_FIT,
                    "{name}: {}/{} differs from Keras by {d}",
                    l.name(),
                    l.weights(base.spec.fan_in(i))[j].name
                );
            }
            // The trainable weights moved (the checks above would pass on a model that stood still).
            for (j, w) in l.weights(base.spec.fan_in(i)).iter().enumerate() {
                if w.trainable && w.name != "count" {
                    assert_ne!(
                        after[i][j],
                        base.weights[i][j],
                        "{name}: {} moved",
                        l.name()
                    );
                }
            }
        }
        let (_, inputs) = read_csv_f64(&dir.join("inputs.csv"));
        let got = model.predict(&inputs.concat()).unwrap();
        let d = max_abs_diff(&got, &flat_f64s(&want["predictions"]));
        assert!(d <= TOL_FIT, "{name}: predictions after fit differ by {d}");
        trained += 1;
    }
    assert!(trained >= 6, "only {trained} cases trained");
}

/// The elementwise model's config with `edit` applied to layer `layer`'s config.
fn edited(case_name: &str, layer: &str, edit: impl Fn(&mut Value)) -> String {
    let m = load_model(&case(case_name).join("model.keras")).unwrap();
    let mut cfg = model_config(&m.spec, Format::Keras3);
    for l in cfg["config"]["layers"].as_array_mut().unwrap() {
        if l["config"]["name"] == layer {
            edit(&mut l["config"]);
        }
    }
    cfg.to_string()
}

#[test]
fn settings_this_tool_cannot_compute_are_refused_by_name() {
    let refused = |text: String, needles: &[&str]| {
        let e = parse_model_config(&text).expect_err("refused");
        let msg = format!("{e:?}");
        for n in needles {
            assert!(msg.contains(n), "{msg} lacks {n}");
        }
    };
    // A normalisation over an axis other than the channels'.
    refused(
        edited("bn_image", "bn1", |c| c["axis"] = json!(2)),
        &["bn1", "axis 2"],
    );
    refused(
        edited("bn_image", "bn1", |c| c["axis"] = json!([1, 2])),
        &["BatchNormalization", "axis [1,2]"],
    );
    refused(
        edited("elementwise", "ln", |c| c["axis"] = json!([1])),
        &["ln", "axis [1]"],
    );
    refused(
        edited("normalization", "norm", |c| c["axis"] = Value::Null),
        &["Normalization", "axis null"],
    );
    refused(
        edited("embedding", "emb", |c| c["mask_zero"] = json!(true)),
        &["Embedding", "mask_zero"],
    );
    refused(
        edited("elementwise", "sm_inner", |c| c["axis"] = json!([1, 2])),
        &["Softmax", "sm_inner"],
    );
    refused(
        edited("elementwise", "rescale", |c| {
            c["scale"] = json!([1.0, 2.0, 3.0])
        }),
        &["rescale", "'scale' has 3 values"],
    );
    refused(
        edited("layer_scale", "scale", |c| c["projection_dim"] = json!(5)),
        &["scale", "projection_dim 5"],
    );
    refused(
        edited("norm_image", "drop", |c| {
            c["noise_shape"] = json!([null, 2, 1, 1])
        }),
        &["drop", "noise_shape"],
    );
}

#[test]
fn an_embedding_index_outside_the_table_is_refused_naming_the_row() {
    let m = load_model(&case("embedding").join("model.keras")).unwrap();
    let model = m.to_model().unwrap();
    let mut x = vec![1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 9.9, 2.0, 3.0, 4.0];
    // Keras casts towards zero: 9.9 is index 9, inside the table.
    assert!(model.predict(&x).is_ok());
    x[7] = 10.0;
    let e = model.predict(&x).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("'emb'") && msg.contains("row 1") && msg.contains("0..10"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 3);
    x[7] = f64::NAN;
    assert!(model.predict(&x).is_err());
}

#[test]
fn dropout_with_a_noise_shape_drops_whole_samples_in_training() {
    use keras_transfer::model::{DropoutSpec, FlattenSpec, Forward, LayerSpec, Mode, Shape};
    use keras_transfer::rng::NumpyRandomState;
    use keras_transfer::{Activation, DenseSpec, Initializer, Model, ModelSpec};
    let spec = ModelSpec {
        dtype: Default::default(),
        graph: None,
        nested: Vec::new(),
        input_shape: Some(Shape(vec![3, 4, 2])),
        input_dim: 24,
        layers: vec![
            LayerSpec::Dropout(DropoutSpec {
                name: "drop".into(),
                rate: 0.5,
                noise_shape: Some(vec![None, Some(1), Some(1), Some(1)]),
                trainable: true,
            }),
            LayerSpec::Flatten(FlattenSpec {
                name: "flat".into(),
                trainable: true,
            }),
            LayerSpec::Dense(DenseSpec::new(
                "sum",
                1,
                Activation::Linear,
                Initializer::Ones,
            )),
        ],
        kind: Default::default(),
    };
    let m = Model::new(spec, 0).unwrap();
    let x = candle_core::Tensor::ones((1, 400, 24), candle_core::DType::F32, m.device()).unwrap();
    let out = |mode| {
        let mut rngs = vec![NumpyRandomState::new(7)];
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
    assert!(out(Mode::Inference).iter().all(|&v| v == 24.0));
    // Each sample kept whole (24 values, each scaled by 2) or dropped whole: never in between.
    let t = out(Mode::Training);
    assert!(t.iter().all(|&v| v == 0.0 || v == 48.0), "{t:?}");
    let kept = t.iter().filter(|&&v| v > 0.0).count() as f64 / t.len() as f64;
    assert!((kept - 0.5).abs() < 0.1, "kept {kept}");
}

#[test]
fn training_an_embedding_with_adam_is_refused_naming_the_layer() {
    use keras_transfer::keras::config::parse_optimizer;
    let dir = case("embedding");
    let base = load_model(&dir.join("model.keras")).unwrap();
    let data = read_train_test(&dir.join("train.csv"), None, None)
        .unwrap()
        .0;
    let mut compile = base.compile().unwrap().unwrap();
    compile.optimizer = parse_optimizer(&json!({"class_name": "Adam", "config": {}})).unwrap();
    let cfg = FitConfig {
        epochs: 1,
        ..FitConfig::default()
    }
    .with_compile(compile);
    let model = base.to_model().unwrap();
    let e = fit_from(&model, &data, None, &cfg, &[0], None).expect_err("refused");
    assert!(
        e.to_string().contains("Embedding 'emb'") && e.to_string().contains("SGD"),
        "{e}"
    );
    // A frozen table trains the rest with any optimizer.
    let mut frozen = base.clone();
    frozen.spec.layers[0].set_trainable(false);
    let model = frozen.to_model().unwrap();
    assert!(fit_from(&model, &data, None, &cfg, &[0], None).is_ok());
}
