//! Image folders streamed into `fit` and `evaluate`: a folder's rows are decoded batch by batch as
//! they are read (never all held), giving the same bits as the folder read into memory, stopping
//! on a damaged image with one line naming it, and training in bounded memory a folder whose rows
//! would not fit under an address-space cap.

use crate::common::*;
use keras_transfer::data::csv::{ReadSpec, read_train_test_tables};
use keras_transfer::model::{FloatDtype, Model, Shape};
use keras_transfer::train::OptimizerSpec;
use keras_transfer::train::feature_cache::{CachePolicy, plan};
use keras_transfer::train::fit::{Evaluation, evaluate_all, fit_from, validation_split};
use keras_transfer::{Dataset, FitConfig, History, KerasModel, load_model, save_model};
use std::path::{Path, PathBuf};

/// The folder as a labelled data set for a model of input `shape`: streamed (rows decoded when
/// read) or held in memory.
fn read(folder: &Path, shape: &[usize], stream: bool, skip: bool) -> Dataset {
    let spec = ReadSpec {
        sample_shape: Some(shape.to_vec()),
        stream_images: stream,
        skip_bad_images: skip,
        ..ReadSpec::default()
    };
    let d = read_train_test_tables(folder, None, &spec)
        .unwrap()
        .into_datasets(None, "")
        .unwrap()
        .0;
    assert_eq!(d.folder.is_some(), stream);
    assert_eq!(d.x.is_empty(), stream);
    d
}

type Run = (History, Vec<Vec<Vec<f64>>>, Evaluation);

/// `model` (as float64 when `float64`) fitted 3 epochs on the first two thirds of `data` (shuffled
/// with seed 7 when asked, validated on the last third), then evaluated on the last third.
fn train(model: &Path, data: &Dataset, policy: CachePolicy, shuffle: bool, float64: bool) -> Run {
    let m = load_model(model).unwrap();
    let (train, val) = validation_split(data, 1.0 / 3.0).unwrap();
    let cfg = FitConfig {
        epochs: 3,
        batch_size: 2,
        shuffle,
        cache: policy,
        ..FitConfig::default()
    }
    .with_compile(m.compile().unwrap().unwrap());
    let mut spec = m.spec.clone();
    let mut cfg = cfg;
    if float64 {
        // Of the optimizers, plain SGD and Adam train a float64 model.
        spec.dtype = FloatDtype::Float64;
        cfg.optimizer = OptimizerSpec::named("adam").unwrap();
    }
    let model = Model::from_weights(spec, m.weights.clone()).unwrap();
    let (mut h, _) = fit_from(&model, &train, Some(&val), &cfg, &[7], None).unwrap();
    let e = evaluate_all(&model, &val, 2, cfg.loss, &cfg.metrics)
        .unwrap()
        .remove(0);
    (h.remove(0), model.weights().unwrap(), e)
}

/// Each Keras-made folder fixture trains and evaluates from its streamed rows exactly as from its
/// rows held in memory: with the frozen base cached (its rows decoded once) and recomputed (every
/// batch decoded), shuffled and in order, with Keras's validation split.
#[test]
fn a_streamed_folder_trains_bit_for_bit_as_one_held_in_memory() {
    for (model, folder, shape) in [
        ("images/model/model.keras", "images/folder", [6, 5, 3]),
        (
            "keras_apps/train_mobilenet_v2/model.keras",
            "keras_apps/folder",
            [32, 32, 3],
        ),
    ] {
        let (model, folder) = (fixture(model), fixture(folder));
        let spec = load_model(&model).unwrap().spec;
        // The cached base is all the trained layers read: a batch decodes no image.
        assert!(!plan(&spec).unwrap().reads_input(&spec));
        let streamed = read(&folder, &shape, true, false);
        let held = read(&folder, &shape, false, false);
        assert_eq!(streamed.labels, held.labels);
        for (policy, shuffle, float64) in [
            (CachePolicy::Auto, true, false),
            (CachePolicy::Auto, false, false),
            (CachePolicy::Off, true, false),
            (CachePolicy::Off, false, false),
            (CachePolicy::Auto, true, true),
            (CachePolicy::Off, true, true),
        ] {
            let a = train(&model, &streamed, policy, shuffle, float64);
            let b = train(&model, &held, policy, shuffle, float64);
            let case = format!("{policy:?}, shuffle {shuffle}, float64 {float64}");
            assert_eq!(a, b, "{}: {case}", folder.display());
            assert!(a.0.loss[0] > 0.0, "{:?}", a.0);
        }
    }
}

/// Copies the fixture folder `images/folder` (class subfolders, a stray image, hidden files) into
/// `to`, adding `extra` damaged files.
fn folder_with(to: &Path, extra: &[(&str, &[u8])]) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.path().is_dir() {
                copy(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    copy(&fixture("images/folder"), to);
    for (rel, bytes) in extra {
        std::fs::write(to.join(rel), bytes).unwrap();
    }
}

/// A damaged image: read with `--skip-bad-images`, it is left out of the streamed rows as of the
/// rows held in memory (same bits); without it, the fit stops when it meets the file, with one
/// line naming it and exit 3.
#[test]
fn a_damaged_image_is_skipped_as_asked_or_stops_the_fit_naming_it() {
    let dir = tempdir();
    let png = std::fs::read(fixture("images/decode/rgb.png")).unwrap();
    let folder = dir.path().join("data");
    folder_with(
        &folder,
        &[("cat/zz_bad.png", &png[..40]), ("eel/e9.jpg", b"")],
    );
    std::fs::remove_file(folder.join("stray.png")).unwrap();
    let model = fixture("images/model/model.keras");
    let shape = [6, 5, 3];
    let streamed = read(&folder, &shape, true, true);
    let held = read(&folder, &shape, false, true);
    assert_eq!(streamed.len(), held.len());
    assert_eq!(
        held.len(),
        read(&fixture("images/folder"), &shape, false, false).len()
    );
    for policy in [CachePolicy::Auto, CachePolicy::Off] {
        assert_eq!(
            train(&model, &streamed, policy, true, false),
            train(&model, &held, policy, true, false)
        );
    }
    let (m, f) = (model.to_str().unwrap(), folder.to_str().unwrap());
    let args = |extra: &[&'static str]| {
        let mut a = vec!["finetune", "--from", m, "--train", f, "--epochs", "2"];
        a.extend(extra);
        a
    };
    let out = run(dir.path(), &args(&["--skip-bad-images"]));
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("zz_bad.png") && stderr.contains("e9.jpg"),
        "{stderr}"
    );
    std::fs::remove_file(folder.join("eel/e9.jpg")).unwrap();
    for cache in ["auto", "off"] {
        let out = run(dir.path(), &args(&["--cache", cache]));
        assert_fails(&out, 3, &["cat/zz_bad.png"]);
    }
}

/// A model reading `height x width x 3` images: GlobalAveragePooling2D (no weights: the frozen
/// base, cached) then the fixture model's Dense head (3 classes), saved as `m.keras` in `dir`.
fn pooling_model(dir: &Path, height: usize, width: usize) -> PathBuf {
    let head = load_model(&fixture("images/model/model.keras")).unwrap();
    let pool = load_model(&fixture("keras_pool/gap2d/model.keras")).unwrap();
    let mut spec = head.spec.clone();
    spec.layers[0] = pool.spec.layers[0].clone();
    spec.input_shape = Some(Shape(vec![height, width, 3]));
    spec.input_dim = height * width * 3;
    let model = Model::new(spec, 1).unwrap();
    let compile = head.compile().unwrap().unwrap();
    let km = KerasModel::compiled(
        model.spec().clone(),
        model.weights().unwrap(),
        Some(&compile),
    );
    let path = dir.join("m.keras");
    save_model(&path, &km).unwrap();
    path
}

/// `n` PNGs of `size x size` RGB noise-like patterns in three class subfolders of `dir/folder`.
fn png_folder(dir: &Path, n: usize, size: usize) -> PathBuf {
    let folder = dir.join("folder");
    for i in 0..n {
        let class = folder.join(["a", "b", "c"][i % 3]);
        std::fs::create_dir_all(&class).unwrap();
        let file = std::fs::File::create(class.join(format!("{i:05}.png"))).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), size as u32, size as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let px: Vec<u8> = (0..size * size * 3)
            .map(|j| ((j * 31 + i * 17 + (i % 3) * j / 7) % 251) as u8)
            .collect();
        enc.write_header().unwrap().write_image_data(&px).unwrap();
    }
    folder
}

/// Address space (MiB) a run may take: well under what the folder's rows take held in memory.
const CAP_MIB: u64 = 600;

/// A folder of 6,000 64x64 PNGs, whose rows would take 6,000 x 12,288 values x 12 bytes (the f64
/// rows and their float32 copy), 844 MiB, trains under a 600 MiB address-space cap: its rows are
/// decoded batch by batch (the frozen base's features cached, or recomputed every batch), while
/// reading the same folder into memory (what `predict` still does) does not fit under the cap.
#[test]
fn a_folder_larger_than_the_memory_cap_trains_streamed() {
    let dir = tempdir();
    let model = pooling_model(dir.path(), 64, 64);
    let folder = png_folder(dir.path(), 6000, 64);
    let (m, f) = (model.to_str().unwrap(), folder.to_str().unwrap());
    for cache in ["auto", "off"] {
        let out = run_capped(
            dir.path(),
            &[
                "finetune",
                "--from",
                m,
                "--train",
                f,
                "--epochs",
                "2",
                "--batch-size",
                "64",
                "--validation-split",
                "0.2",
                "--cache",
                cache,
                "--out",
                "t.keras",
            ],
            CAP_MIB,
        );
        ok(&out);
        assert!(dir.path().join("t.keras").exists());
        std::fs::remove_file(dir.path().join("t.keras")).unwrap();
    }
    let out = run_capped(
        dir.path(),
        &["predict", "--model", m, "--input", f, "--output", "p.csv"],
        CAP_MIB,
    );
    assert!(
        !out.status.success(),
        "the folder held in memory fits under the cap"
    );
}
