//! Keras Applications as users have them (issue 21), against files real Keras made
//! (fixtures/keras_apps, python-check/make_fixtures_apps.py): the transfer-learning guide's model
//! (`Input -> [Rescaling] -> base(training=False) -> GlobalAveragePooling2D -> Dropout(0.2) -> Dense`)
//! on each application, its base frozen. Each application is its own test: its config is read and
//! its shapes and parameter counts are Keras's `model.summary()`; where the files are committed
//! (MobileNetV2 alpha 0.35, MobileNetV3Small alpha 0.75, under 3 MB each) it predicts as Keras did
//! and is written back in both formats. The applications too big to commit (4-28 M parameters) are
//! read from their `config.json` only; python-check/checks_apps.py predicts them at check time.
//!
//! The tests still marked `#[ignore = "..."]` wait for what the mark names.

use crate::common::*;
use keras_transfer::data::arrays::read_npy;
use keras_transfer::data::csv::read_train_test;
use keras_transfer::data::images::{FolderOptions, open_folder};
use keras_transfer::keras::config::parse_model_config;
use keras_transfer::model::ModelSpec;
use keras_transfer::train::fit_with;
use keras_transfer::{FitConfig, Format, load_model, save_model};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Predictions agree with Keras's to this: 20 to 200 float32 convolutions, normalisations and
/// merges summed in another order than TensorFlow's (im2col or direct loops against Eigen's
/// contractions) drift by up to ~1e-6 relative per layer before the softmax.
const TOL_PREDICT: f32 = 1e-4;
/// The head's weights after each epoch of training through the frozen base track Keras's to this.
const TOL_FIT: f32 = 1e-5;

/// Every application of the fixtures, in make_fixtures_apps.py's order.
const APPS: [&str; 12] = [
    "mobilenet_v2",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "resnet50",
    "resnet50_v2",
    "densenet121",
    "vgg16",
    "xception",
    "inception_v3",
    "convnext_tiny",
];

fn app_dir(app: &str) -> PathBuf {
    fixture(&format!("keras_apps/{app}"))
}

/// An `.npy` of float32 values Keras wrote: its shape and values.
fn npy(path: &Path) -> (Vec<usize>, Vec<f64>) {
    let a = read_npy(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(a.descr, "<f4", "{}", path.display());
    (a.shape, a.values)
}

/// The application's model as its `config.json` (the `.keras` archive's) describes it.
fn config_spec(app: &str) -> Result<ModelSpec, String> {
    let path = app_dir(app).join("config.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_model_config(&text)
        .map(|p| p.spec)
        .map_err(|e| format!("{e:?}"))
}

/// One of Keras's `model.summary()` rows as make_fixtures_apps.py stores it.
struct Row {
    class: String,
    output_shape: String,
    params: usize,
    trainable_params: usize,
}

fn rows(v: &Value) -> Vec<(String, Row)> {
    v.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                Row {
                    class: r["class"].as_str().unwrap().to_string(),
                    output_shape: r["output_shape"].as_str().unwrap().to_string(),
                    params: r["params"].as_u64().unwrap() as usize,
                    trainable_params: r["trainable_params"].as_u64().unwrap() as usize,
                },
            )
        })
        .collect()
}

/// The model's layers, shapes and parameter counts are Keras's summary's, whether the base is kept
/// as one nested layer (Keras's own rows: image, rescale, base, pool, dropout, head) or its layers
/// are listed in the model's (the base's rows, by name or as `base/name`): every layer the model
/// lists that Keras lists agrees with it, every layer around the base is there, and the base is
/// there as one layer or as all of its layers.
fn check_summary(app: &str, spec: &ModelSpec) {
    let keras = read_json(&app_dir(app).join("summary.json"));
    let base_name = keras["base_name"].as_str().unwrap();
    let outer = rows(&keras["outer"]);
    let base = rows(&keras["base"]);
    let want: HashMap<&str, &Row> = outer
        .iter()
        .chain(&base)
        .map(|(n, r)| (n.as_str(), r))
        .collect();
    let ours: HashMap<String, usize> = spec
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let name = l.name();
            let name = name.strip_prefix(&format!("{base_name}/")).unwrap_or(name);
            (name.to_string(), i)
        })
        .collect();
    for (name, &i) in &ours {
        let Some(row) = want.get(name.as_str()) else {
            continue;
        };
        let l = &spec.layers[i];
        let got = (
            spec.output_shape(i).to_string(),
            spec.param_count(i),
            spec.trainable_count(i),
        );
        assert_eq!(
            got,
            (row.output_shape.clone(), row.params, row.trainable_params),
            "{app}: layer '{name}' ({}, Keras's {}): (output shape, params, trainable)",
            l.class_name(),
            row.class
        );
    }
    // The nested models inside the base (ConvNeXt's Sequential stem and downsampling blocks) are
    // rows of the base's summary: each with Keras's class, output shape and counts.
    let mut inner = Vec::new();
    for m in &spec.nested {
        let Some(row) = want.get(m.name.as_str()) else {
            continue;
        };
        let got = (
            m.class.clone(),
            spec.output_shape(m.end - 1).to_string(),
            (m.start..m.end).map(|i| spec.param_count(i)).sum::<usize>(),
            (m.start..m.end)
                .map(|i| spec.trainable_count(i))
                .sum::<usize>(),
        );
        assert_eq!(
            got,
            (
                row.class.clone(),
                row.output_shape.clone(),
                row.params,
                row.trainable_params
            ),
            "{app}: nested model '{}': (class, output shape, params, trainable)",
            m.name
        );
        inner.push(m.name.as_str());
    }
    let is_input = |r: &Row| r.class == "InputLayer";
    for (name, row) in &outer {
        if name != base_name && !is_input(row) {
            assert!(
                ours.contains_key(name),
                "{app}: no layer '{name}' ({})",
                row.class
            );
        }
    }
    let whole = ours.contains_key(base_name);
    let missing: Vec<&str> = base
        .iter()
        .filter(|(n, r)| !is_input(r) && !ours.contains_key(n) && !inner.contains(&n.as_str()))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        whole || missing.is_empty(),
        "{app}: the base '{base_name}' is neither one layer nor all of its layers (missing {missing:?})"
    );
    let (total, trainable) = spec.param_totals();
    assert_eq!(
        (total, trainable),
        (
            keras["total"].as_u64().unwrap() as usize,
            keras["trainable"].as_u64().unwrap() as usize
        ),
        "{app}: (total, trainable) parameters"
    );
    let last = spec.layers.len() - 1;
    assert_eq!(
        spec.output_shape(last).to_string(),
        keras["output_shape"].as_str().unwrap(),
        "{app}: the model's output"
    );
}

/// The committed model files predict Keras's `predictions.npy` for `x.npy`, and what this tool
/// writes back (`.keras`, `.h5`) reads back to the same model and predictions.
fn check_files(app: &str) {
    let dir = app_dir(app);
    let (shape, x) = npy(&dir.join("x.npy"));
    let (pshape, want) = npy(&dir.join("predictions.npy"));
    assert_eq!(shape[0], pshape[0], "{app}: images vs predictions");
    let mut files = vec!["model.keras"];
    if dir.join("model.h5").exists() {
        files.push("model.h5");
    }
    let tmp = tempdir();
    for file in files {
        let m = load_model(&dir.join(file)).unwrap_or_else(|e| panic!("{app}/{file}: {e}"));
        check_summary(app, &m.spec);
        let got = m.to_model().unwrap().predict(&x).unwrap();
        let d = max_abs_diff(&got, &want);
        assert!(
            d <= TOL_PREDICT,
            "{app}/{file}: predictions differ from Keras by {d}"
        );
        for (ext, format) in [("keras", Format::Keras3), ("h5", Format::Keras3)] {
            let mut out = m.clone();
            out.format = format;
            let p = tmp.path().join(format!("back.{ext}"));
            save_model(&p, &out).unwrap_or_else(|e| panic!("{app}/{file} -> .{ext}: {e}"));
            let back = load_model(&p).unwrap_or_else(|e| panic!("{app}/{file} -> .{ext}: {e}"));
            assert_eq!(back.spec, m.spec, "{app}/{file} -> .{ext}");
            let again = back.to_model().unwrap().predict(&x).unwrap();
            assert_eq!(again, got, "{app}/{file} -> .{ext}: predictions");
        }
    }
}

/// An application: its config read with Keras's shapes and counts, and its files where committed.
fn application(app: &str) {
    let spec = config_spec(app).unwrap_or_else(|e| panic!("{app}: config.json: {e}"));
    check_summary(app, &spec);
    if app_dir(app).join("model.keras").exists() {
        check_files(app);
    }
}

#[test]
fn every_application_is_read_or_refused_naming_a_layer_it_holds() {
    // Until the layers land, each application is refused in one line naming one of its classes
    // (exit 3); never a panic or a model that is silently something else.
    for app in APPS {
        let text = std::fs::read_to_string(app_dir(app).join("config.json")).unwrap();
        if let Err(e) = config_spec(app) {
            assert!(!e.contains('\n'), "{app}: one line: {e}");
            let named = e
                .split(|c: char| !c.is_ascii_alphanumeric())
                .filter(|w| w.len() > 2 && w.chars().next().unwrap().is_ascii_uppercase())
                .any(|w| text.contains(&format!("\"class_name\": \"{w}\"")))
                // or a layer (a nested model) of the application by its name
                || e.split('\'').any(|w| !w.is_empty() && text.contains(&format!("\"name\": \"{w}\"")));
            assert!(named, "{app}: the refusal names no class of the model: {e}");
        }
        let file = app_dir(app).join("model.keras");
        if file.exists()
            && let Err(e) = load_model(&file)
        {
            assert_eq!(e.exit_code(), 3, "{app}: {e}");
            assert!(!e.to_string().contains('\n'), "{app}: one line: {e}");
        }
    }
}

#[test]
fn the_fixtures_are_what_the_harness_expects() {
    // Each application has its config and Keras's summary; the summary's rows add up to its totals
    // (so a row left out by make_fixtures_apps.py would show), and the committed files stay small.
    let mut bytes = 0;
    for app in APPS {
        let dir = app_dir(app);
        let keras = read_json(&dir.join("summary.json"));
        let outer = rows(&keras["outer"]);
        let sum: usize = outer.iter().map(|(_, r)| r.params).sum();
        assert_eq!(sum as u64, keras["total"].as_u64().unwrap(), "{app}");
        let base: usize = rows(&keras["base"]).iter().map(|(_, r)| r.params).sum();
        let base_row = &outer
            .iter()
            .find(|(n, _)| n == keras["base_name"].as_str().unwrap())
            .unwrap()
            .1;
        assert_eq!(base, base_row.params, "{app}: the base's rows");
        assert_eq!(base_row.trainable_params, 0, "{app}: the base is frozen");
        for e in std::fs::read_dir(&dir).unwrap() {
            let len = e.unwrap().metadata().unwrap().len();
            assert!(len < 3_000_000, "{app}: a fixture file of {len} bytes");
            bytes += len;
        }
    }
    assert!(
        bytes < 20_000_000,
        "fixtures/keras_apps applications: {bytes} bytes"
    );
}

#[test]
fn mobilenet_v2() {
    application("mobilenet_v2");
}

#[test]
fn mobilenet_v3_small() {
    application("mobilenet_v3_small");
}

#[test]
fn mobilenet_v3_large() {
    application("mobilenet_v3_large");
}

#[test]
fn efficientnet_b0() {
    application("efficientnet_b0");
}

#[test]
fn efficientnet_v2_b0() {
    application("efficientnet_v2_b0");
}

#[test]
fn resnet50() {
    application("resnet50");
}

#[test]
fn resnet50_v2() {
    application("resnet50_v2");
}

#[test]
fn densenet121() {
    application("densenet121");
}

#[test]
fn vgg16() {
    application("vgg16");
}

#[test]
fn xception() {
    application("xception");
}

#[test]
fn inception_v3() {
    application("inception_v3");
}

#[test]
fn convnext_tiny() {
    application("convnext_tiny");
}

#[test]
fn the_image_folder_reads_as_keras_read_it() {
    // image_dataset_from_directory(folder, image_size=(32, 32), shuffle=False): the classes, labels
    // and pixels the folder reader gives for the application's input.
    let keras = read_json(&fixture("keras_apps/folder.json"));
    let (shape, want) = npy(&fixture("keras_apps/folder_pixels.npy"));
    assert_eq!(shape[1..], [32, 32, 3]);
    let folder = open_folder(
        &fixture("keras_apps/folder"),
        FolderOptions {
            image_size: (32, 32),
            channels: 3,
            ..FolderOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        json!(folder.index.class_names),
        keras["class_names"],
        "classes"
    );
    let (mut x, mut labels) = (Vec::new(), Vec::new());
    for batch in folder.batches(32) {
        let batch = batch.unwrap();
        x.extend(batch.x);
        labels.extend(batch.labels);
    }
    assert_eq!(json!(labels), keras["labels"]);
    let d = max_abs_diff(&x, &want);
    assert!(d <= 1e-4, "pixels differ from Keras's by {d}");
}

#[test]
fn the_image_folder_predicts_as_keras_through_mobilenet_v2() {
    let (_, pixels) = npy(&fixture("keras_apps/folder_pixels.npy"));
    let (_, want) = npy(&fixture("keras_apps/folder_predictions.npy"));
    let m = load_model(&fixture("keras_apps/mobilenet_v2/model.keras")).unwrap();
    let got = m.to_model().unwrap().predict(&pixels).unwrap();
    let d = max_abs_diff(&got, &want);
    assert!(d <= TOL_PREDICT, "predictions differ from Keras by {d}");
}

#[test]
fn the_training_images_read_as_rows_of_pixels() {
    // train.npz holds x as Keras takes it, (24, 32, 32, 3): one row of 32 * 32 * 3 values a sample,
    // channels last, as the model's input reshapes rows.
    let case = fixture("keras_apps/train_mobilenet_v2");
    let data = read_train_test(&case.join("train.npz"), None, None)
        .unwrap()
        .0;
    assert_eq!(data.n_features, 32 * 32 * 3);
    assert_eq!(data.labels.len(), 24);
    assert_eq!(data.x.len(), 24 * 32 * 32 * 3);
    let (_, first) = npy(&fixture("keras_apps/mobilenet_v2/x.npy"));
    // Integer-valued pixels in 0..=255, as decoded images are.
    assert!(
        data.x
            .iter()
            .chain(&first)
            .all(|v| v.fract() == 0.0 && (0.0..=255.0).contains(v))
    );
}

#[test]
fn training_the_head_through_a_frozen_mobilenet_v2_tracks_keras() {
    let case = fixture("keras_apps/train_mobilenet_v2");
    let want = read_json(&case.join("fit.json"));
    let m = load_model(&case.join("model.keras")).unwrap();
    let data = read_train_test(&case.join("train.npz"), None, None)
        .unwrap()
        .0;
    // The file's own compile: SGD(0.05, momentum=0.9), categorical_crossentropy, as fit.json says.
    let compile = m.compile().unwrap().unwrap();
    assert_eq!(
        compile.optimizer.learning_rate(),
        want["optimizer"]["learning_rate"].as_f64().unwrap() as f32,
        "the file's optimizer"
    );
    let cfg = FitConfig {
        epochs: want["epochs"].as_u64().unwrap() as usize,
        batch_size: want["batch_size"].as_u64().unwrap() as usize,
        shuffle: false,
        ..FitConfig::default()
    }
    .with_compile(compile);
    let model = m.to_model().unwrap();
    let head = m
        .spec
        .layers
        .iter()
        .position(|l| l.name() == "head")
        .unwrap();
    let before = model.weights().unwrap();
    let mut after_epoch = Vec::new();
    let (h, _) = fit_with(&model, &data, None, &cfg, &[0], None, &mut |_, _| {
        after_epoch.push(model.weights().unwrap()[head].clone())
    })
    .unwrap();
    let d = max_abs_diff(&h[0].loss, &f32s(&want["loss"]));
    assert!(
        d <= TOL_FIT,
        "losses differ from Keras by {d}: {:?}",
        h[0].loss
    );
    let epochs = want["head_after_epoch"].as_array().unwrap();
    assert_eq!(after_epoch.len(), epochs.len());
    for (e, (ours, keras)) in after_epoch.iter().zip(epochs).enumerate() {
        let kernel = max_abs_diff(&ours[0], &flat_f64s(&keras["kernel"]));
        let bias = max_abs_diff(&ours[1], &flat_f64s(&keras["bias"]));
        assert!(
            kernel.max(bias) <= TOL_FIT,
            "epoch {}: the head differs from Keras's by {}",
            e + 1,
            kernel.max(bias)
        );
    }
    let after = model.weights().unwrap();
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        if i != head {
            assert_eq!(a, b, "layer {} moved", m.spec.layers[i].name());
        }
    }
}

/// The chains (a ZeroPadding read unwritten, a BatchNormalization and its ReLU applied as a
/// convolution writes) give the bits of the layers run one by one: the same models run with
/// a tracked input, where every chain declines, as training would run them. Keras-made
/// models (MobileNetV2 and V3-Small with their weights; ResNet50's architecture with weights
/// drawn by its initializers).
#[test]
fn chains_give_the_bits_of_the_layers_one_by_one() {
    let dir = fixture("keras_apps");
    for app in ["mobilenet_v2", "mobilenet_v3_small", "resnet50"] {
        let model = match app {
            "mobilenet_v2" | "mobilenet_v3_small" => {
                keras_transfer::load_model(&dir.join(app).join("model.keras"))
                    .unwrap()
                    .to_model()
                    .unwrap()
            }
            _ => {
                let text = std::fs::read_to_string(dir.join(app).join("config.json")).unwrap();
                let spec = parse_model_config(&text).unwrap().spec;
                keras_transfer::Model::new(spec, 3).unwrap()
            }
        };
        let d = model.spec().input_dim;
        let x: Vec<f64> = (0..2 * d)
            .map(|i| (i as f64 * 0.37).sin() * 120.0 + 120.0)
            .collect();
        let t = keras_transfer::model::values_tensor(
            x,
            (1, 2, d),
            model.spec().dtype.candle(),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let before = keras_transfer::model::network::chains_run();
        let chained = model.forward(&t).unwrap();
        assert!(
            keras_transfer::model::network::chains_run() > before,
            "{app}: no chain ran"
        );
        let var = candle_core::Var::from_tensor(&t).unwrap();
        let one_by_one = model.forward(var.as_tensor()).unwrap();
        let bits = |t: &candle_core::Tensor| -> Vec<u32> {
            t.flatten_all()
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(&chained), bits(&one_by_one), "{app}");
    }
}
