//! Hostile model files, format side: HDF5 links and storage that reach outside the file, declared
//! sizes far beyond the architecture, oversized attributes and safetensors headers, non-finite
//! weights in every format. Each file is crafted here with the hdf5 crate (or by hand for
//! safetensors); each must be refused with a one-line error naming what is wrong, quickly and in
//! bounded memory, and nothing may be written.

use crate::common::*;
use keras_transfer::keras::Format;
use keras_transfer::model::{Model, ModelSpec};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The result of a run by `run_capped_timed`: exit code, stderr, wall time.
struct Measured {
    code: Option<i32>,
    stderr: String,
    secs: f64,
}

/// `common::run_capped`, timed.
fn run_capped_timed(dir: &Path, args: &[&str], max_mib: u64) -> Measured {
    let start = std::time::Instant::now();
    let out = run_capped(dir, args, max_mib);
    Measured {
        code: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// Runs `args` capped at `max_mib` MiB and asserts a refusal: exit 3, one line naming each of
/// `needles`, within 10 s.
fn assert_refused_within(dir: &Path, args: &[&str], needles: &[&str], max_mib: u64) -> Measured {
    let m = run_capped_timed(dir, args, max_mib);
    assert_eq!(
        m.code,
        Some(3),
        "exit code (None: killed, past {max_mib} MiB?); stderr: {}",
        m.stderr
    );
    assert_eq!(
        m.stderr.trim_end().lines().count(),
        1,
        "one line: {}",
        m.stderr
    );
    for n in needles {
        assert!(m.stderr.contains(n), "stderr lacks '{n}': {}", m.stderr);
    }
    assert!(m.secs < 10.0, "{} s: {}", m.secs, m.stderr);
    m
}

/// The tutorial model (seed 1), saved as `name` in `dir` by keras-transfer.
fn tutorial_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let m = Model::new(ModelSpec::tutorial(), 1).unwrap();
    let km = keras_transfer::KerasModel::new(
        m.spec().clone(),
        m.weights().unwrap(),
        Some(&keras_transfer::OptimizerSpec::default()),
    );
    if name.ends_with(".h5") && !name.ends_with(".weights.h5") {
        save_h5_model(&p, &m, Format::Keras3);
    } else {
        keras_transfer::save_model(&p, &km).unwrap();
    }
    p
}

/// Where the first kernel (2x5) of the tutorial model lives in each HDF5 layout.
const H5_KERNEL: &str = "model_weights/dense/sequential/dense/kernel";
const WEIGHTS_KERNEL: &str = "layers/dense/vars/0";

/// The ways a dataset can be made to read from outside its file.
#[derive(Clone, Copy, Debug)]
enum Outside {
    ExternalStorage,
    SoftLink,
    ExternalLink,
    Virtual,
}

/// Replaces the 2x5 float32 dataset at `path` of `f` by one that reads from outside the file:
/// `secret` (raw float32 bytes) or `other` (an HDF5 file with a 2x5 float32 dataset `/data`).
fn point_outside(f: &hdf5::File, path: &str, how: Outside, secret: &Path, other: &Path) {
    let (parent, leaf) = path.rsplit_once('/').unwrap();
    let g = f.group(parent).unwrap();
    g.unlink(leaf).unwrap();
    match how {
        Outside::ExternalStorage => {
            g.new_dataset::<f32>()
                .shape([2, 5])
                .external(secret.to_str().unwrap(), 0, 40)
                .create(leaf)
                .unwrap();
        }
        Outside::SoftLink => {
            f.new_dataset::<f32>()
                .shape([2, 5])
                .create("stash")
                .unwrap()
                .write_raw(&[0.5f32; 10])
                .unwrap();
            g.link_soft("/stash", leaf).unwrap();
        }
        Outside::ExternalLink => g
            .link_external(other.to_str().unwrap(), "/data", leaf)
            .unwrap(),
        Outside::Virtual => {
            g.new_dataset::<f32>()
                .shape([2, 5])
                .virtual_map(other.to_str().unwrap(), "/data", [2, 5], .., [2, 5], ..)
                .create(leaf)
                .unwrap();
        }
    }
}

/// A `.keras` archive `src` with its `model.weights.h5` replaced by `weights`.
fn with_weights_member(src: &Path, weights: &[u8], out: &Path) {
    let mut zin = zip::ZipArchive::new(std::fs::File::open(src).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    for i in 0..zin.len() {
        let mut m = zin.by_index(i).unwrap();
        let name = m.name().unwrap().to_string();
        let mut bytes = Vec::new();
        m.read_to_end(&mut bytes).unwrap();
        if name == "model.weights.h5" {
            bytes = weights.to_vec();
        }
        zout.start_file(name, zip::write::SimpleFileOptions::default())
            .unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
}

#[test]
fn nothing_outside_an_hdf5_file_is_ever_read() {
    let dir = tempdir();
    let d = dir.path();
    // The "secret": 10 float32 values a crafted file would smuggle into the weights.
    let secret = d.join("secret.txt");
    std::fs::write(&secret, [0.25f32; 10].map(f32::to_le_bytes).concat()).unwrap();
    let other = d.join("other.h5");
    {
        let f = hdf5::File::create(&other).unwrap();
        f.new_dataset::<f32>()
            .shape([2, 5])
            .create("data")
            .unwrap()
            .write_raw(&[0.75f32; 10])
            .unwrap();
    }
    let h5 = tutorial_file(d, "base.h5");
    let weights = tutorial_file(d, "base.weights.h5");
    let keras = tutorial_file(d, "base.keras");
    for how in [
        Outside::ExternalStorage,
        Outside::SoftLink,
        Outside::ExternalLink,
        Outside::Virtual,
    ] {
        let needle = match how {
            Outside::ExternalStorage => "external file",
            Outside::SoftLink => "soft link",
            Outside::ExternalLink => "external link",
            Outside::Virtual => "virtual dataset",
        };
        let tag = format!("{how:?}").to_lowercase();
        // A model .h5.
        let p = d.join(format!("{tag}.h5"));
        std::fs::copy(&h5, &p).unwrap();
        point_outside(&h5_open_rw(&p), H5_KERNEL, how, &secret, &other);
        // A .weights.h5, through convert --weights.
        let w = d.join(format!("{tag}.weights.h5"));
        std::fs::copy(&weights, &w).unwrap();
        point_outside(&h5_open_rw(&w), WEIGHTS_KERNEL, how, &secret, &other);
        // A .keras whose model.weights.h5 is that weights file.
        let k = d.join(format!("{tag}.keras"));
        with_weights_member(&keras, &std::fs::read(&w).unwrap(), &k);
        let out = d.join(format!("{tag}_out.safetensors"));
        let outs = out.to_str().unwrap();
        for args in [
            vec!["convert", p.to_str().unwrap(), outs],
            vec!["convert", k.to_str().unwrap(), outs],
            vec![
                "convert",
                h5.to_str().unwrap(),
                outs,
                "--weights",
                w.to_str().unwrap(),
            ],
        ] {
            assert_refused_within(d, &args, &[needle, "dense"], 500);
            assert!(!out.exists(), "{args:?} wrote {}", out.display());
        }
    }
    // A soft link above the dataset: the layer's group.
    let p = d.join("soft_group.h5");
    std::fs::copy(&h5, &p).unwrap();
    {
        let f = h5_open_rw(&p);
        let mw = f.group("model_weights").unwrap();
        mw.link_hard("dense", "dense_moved").unwrap();
        mw.unlink("dense").unwrap();
        mw.link_soft("/model_weights/dense_moved", "dense").unwrap();
    }
    assert_refused_within(
        d,
        &["convert", p.to_str().unwrap(), "o.safetensors"],
        &["soft link", "'dense'"],
        500,
    );
}

/// A dataset of `T` and `shape` at `path` in `f`, in place of any there (chunked, never written:
/// the file stays small whatever the shape).
fn declare<T: hdf5::H5Type>(f: &hdf5::File, path: &str, shape: &[usize]) {
    let (parent, leaf) = path.rsplit_once('/').unwrap();
    let g = f.group(parent).unwrap();
    if g.link_exists(leaf) {
        g.unlink(leaf).unwrap();
    }
    let chunk: Vec<usize> = shape.iter().map(|&d| d.min(1000)).collect();
    g.new_dataset::<T>()
        .shape(shape)
        .chunk(chunk)
        .create(leaf)
        .unwrap();
}

/// A copy of the Keras 3 tutorial `.h5` as `name` in `d`, edited by `edit`, refused by `inspect`
/// within 400 MiB naming each of `needles`.
fn refused_after(d: &Path, name: &str, edit: impl FnOnce(&hdf5::File), needles: &[&str]) {
    let p = d.join(name);
    std::fs::copy(fixture("keras_h5/k3_tutorial/model.h5"), &p).unwrap();
    edit(&h5_open_rw(&p));
    assert!(std::fs::metadata(&p).unwrap().len() < 100_000);
    assert_refused_within(d, &["inspect", p.to_str().unwrap()], needles, 400);
}

#[test]
fn declared_sizes_are_checked_before_anything_is_allocated() {
    let dir = tempdir();
    let d = dir.path();
    for (tag, shape) in [("16k", [16000usize, 16000]), ("100k", [100000, 100000])] {
        // The step count declared as a huge integer array.
        refused_after(
            d,
            &format!("iter_{tag}.h5"),
            |f| declare::<i64>(f, "optimizer_weights/sgd/iteration", &shape),
            &["optimizer_weights", "sgd/iteration"],
        );
        // A huge slot variable, listed in weight_names.
        refused_after(
            d,
            &format!("opt_{tag}.h5"),
            |f| {
                declare::<f32>(f, "optimizer_weights/sgd/momentum", &shape);
                let g = f.group("optimizer_weights").unwrap();
                let names = g
                    .attr("weight_names")
                    .unwrap()
                    .read_raw::<hdf5::types::VarLenAscii>();
                let mut names: Vec<String> = names
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect();
                names.push("sgd/momentum".into());
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                crate::hostile::set_str_list(&g, "weight_names", &refs);
            },
            &["optimizer_weights", "sgd/momentum"],
        );
    }
    // A model weight declared far larger than the architecture says.
    refused_after(
        d,
        "kernel_big.h5",
        |f| {
            declare::<f32>(
                f,
                "model_weights/dense/sequential/dense/kernel",
                &[100000, 100000],
            )
        },
        &["kernel", "100000"],
    );
}

/// A 40 MB variable-length `model_config` or `training_config` is refused by its declared length,
/// within 100 MiB of address space.
#[test]
fn oversized_config_attributes_are_refused_by_their_limit() {
    let dir = tempdir();
    let d = dir.path();
    let src = fixture("keras_h5/k3_tutorial/model.h5");
    for attr in ["model_config", "training_config"] {
        let p = d.join(format!("{attr}_big.h5"));
        std::fs::copy(&src, &p).unwrap();
        {
            let f = h5_open_rw(&p);
            let text = f
                .attr(attr)
                .unwrap()
                .read_scalar::<hdf5::types::VarLenAscii>()
                .unwrap()
                .as_str()
                .to_string();
            // Still valid JSON: 40 MB of spaces after it.
            crate::hostile::set_str_attr(&f, attr, &format!("{text}{}", " ".repeat(40 << 20)));
        }
        assert_refused_within(
            d,
            &["inspect", p.to_str().unwrap()],
            &[attr, "16 MiB", p.file_name().unwrap().to_str().unwrap()],
            // The declared length is checked before libhdf5 reads the 40 MB string (reading it
            // took about 240 MB).
            100,
        );
    }
}

#[test]
fn a_safetensors_file_is_read_header_first() {
    let dir = tempdir();
    let d = dir.path();
    let st = tutorial_file(d, "base.safetensors");
    let good = std::fs::read(&st).unwrap();
    // A 2 GB sparse file: the valid file, then a hole.
    let big = d.join("big.safetensors");
    std::fs::write(&big, &good).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(2 << 30)
        .unwrap();
    assert_refused_within(
        d,
        &["inspect", big.to_str().unwrap()],
        &["big.safetensors", "header"],
        400,
    );
    // A header that declares 2 GB.
    let mut b = (2u64 << 30).to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    let hdr = d.join("hdr.safetensors");
    std::fs::write(&hdr, &b).unwrap();
    assert_refused_within(
        d,
        &["inspect", hdr.to_str().unwrap()],
        &["hdr.safetensors", "header"],
        400,
    );
    // The good file still loads.
    let m = run_capped_timed(d, &["inspect", st.to_str().unwrap()], 500);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
}

/// Safetensors bytes of `spec_json` (the architecture metadata) and its tensors.
fn safetensors_with(
    meta: &[(&str, String)],
    tensors: &[(String, Vec<usize>, Vec<f32>)],
) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let md: serde_json::Map<String, serde_json::Value> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().into()))
        .collect();
    header.insert("__metadata__".into(), md.into());
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

/// The tutorial model as safetensors bytes (saved in `d`), its header length and its header.
fn tutorial_safetensors(d: &Path) -> (Vec<u8>, usize, serde_json::Value) {
    let good = std::fs::read(tutorial_file(d, "base.safetensors")).unwrap();
    let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&good[8..8 + n]).unwrap();
    (good, n, header)
}

#[test]
fn a_huge_layer_count_is_refused_quickly() {
    let dir = tempdir();
    let d = dir.path();
    let (_, _, header) = tutorial_safetensors(d);
    let spec: serde_json::Value = serde_json::from_str(
        header["__metadata__"]["keras_transfer.spec"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut big = spec.clone();
    let layer = spec["layers"][0].clone();
    let layers: Vec<serde_json::Value> = (0..80_000)
        .map(|i| {
            let mut l = layer.clone();
            let s = l.to_string().replace("\"dense\"", &format!("\"d{i}\""));
            l = serde_json::from_str(&s).unwrap();
            l
        })
        .collect();
    big["layers"] = layers.into();
    let p = d.join("layers.safetensors");
    std::fs::write(
        &p,
        safetensors_with(&[("keras_transfer.spec", big.to_string())], &[]),
    )
    .unwrap();
    let m = assert_refused_within(
        d,
        &["inspect", p.to_str().unwrap()],
        &["layers.safetensors", "layers"],
        500,
    );
    assert!(m.secs < 3.0, "{} s", m.secs);
}

#[test]
fn non_finite_weights_are_refused_in_every_format() {
    let dir = tempdir();
    let d = dir.path();
    let (good, n, header) = tutorial_safetensors(d);
    let off = header["dense/kernel"]["data_offsets"][0].as_u64().unwrap() as usize;
    for (tag, v) in [("nan", f32::NAN), ("inf", f32::INFINITY)] {
        let mut b = good.clone();
        b[8 + n + off..8 + n + off + 4].copy_from_slice(&v.to_le_bytes());
        let p = d.join(format!("{tag}.safetensors"));
        std::fs::write(&p, &b).unwrap();
        for args in [
            vec!["inspect", p.to_str().unwrap()],
            vec!["convert", p.to_str().unwrap(), "out.h5"],
        ] {
            assert_refused_within(
                d,
                &args,
                &[
                    p.file_name().unwrap().to_str().unwrap(),
                    "NaN or infinite",
                    "dense",
                ],
                500,
            );
            assert!(!d.join("out.h5").exists());
        }
    }
}

#[test]
fn a_writer_never_writes_names_its_reader_refuses() {
    let dir = tempdir();
    let d = dir.path();
    let m = Model::new(ModelSpec::tutorial(), 1).unwrap();
    let km = keras_transfer::KerasModel::new(
        m.spec().clone(),
        m.weights().unwrap(),
        Some(&keras_transfer::OptimizerSpec::default()),
    )
    .with_data(keras_transfer::DataSchema {
        features: vec!["x0".into(), "x1".into()],
        label: Some("y".repeat(20 << 20)),
        classes: vec!["a".into(), "b".into(), "c".into()],
        means: Vec::new(),
    });
    for name in ["m.h5", "m.keras", "m.safetensors", "m.weights.h5"] {
        let p = d.join(name);
        let e = keras_transfer::save_model(&p, &km)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(name) && e.contains("16 MiB") && e.contains("names"),
            "{e}"
        );
        assert!(!p.exists(), "{name} was written");
    }
    // A label the readers accept is written and read back by every format.
    let mut small = km.clone();
    small.data.as_mut().unwrap().label = Some("y".repeat(1 << 20));
    for name in ["s.h5", "s.keras", "s.safetensors"] {
        let p = d.join(name);
        keras_transfer::save_model(&p, &small).unwrap();
        let back = keras_transfer::load_model(&p).unwrap();
        assert_eq!(back.data, small.data, "{name}");
    }
}

#[test]
fn unknown_compile_settings_are_refused_by_name() {
    use keras_transfer::keras::config::parse_training_config;
    let f = hdf5::File::open(fixture("keras_compile/adam/model.h5")).unwrap();
    let text = f
        .attr("training_config")
        .unwrap()
        .read_scalar::<hdf5::types::VarLenAscii>()
        .unwrap()
        .as_str()
        .to_string();
    let tc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        parse_training_config(&text).is_ok(),
        "Keras's own settings load"
    );
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = tc.clone();
        f(&mut v);
        parse_training_config(&v.to_string())
            .map(|_| ())
            .unwrap_err()
    };
    let e = edit(&|v| v["optimizer_config"]["config"]["momentumm"] = 0.9.into());
    assert!(e.contains("'momentumm'") && e.contains("Adam"), "{e}");
    let e = edit(&|v| v["optimizer_config"]["config"]["is_legacy_optimizer"] = true.into());
    assert!(e.contains("is_legacy_optimizer"), "{e}");
    let e = edit(&|v| {
        v["optimizer_config"]["config"]["learning_rate"] = serde_json::json!({
            "module": "keras.optimizers.schedules", "class_name": "ExponentialDecay",
            "config": {"initial_learning_rate": 0.01, "decay_steps": 10, "decay_rate": 0.9,
                       "staircase": false, "name": "ExponentialDecay", "cycle": true}})
    });
    assert!(
        e.contains("'cycle'") && e.contains("ExponentialDecay"),
        "{e}"
    );
    let e = edit(&|v| {
        v["loss"] = serde_json::json!({"module": "keras.losses", "class_name": "CategoricalCrossentropy",
            "config": {"name": "categorical_crossentropy", "reduction": "sum_over_batch_size",
                       "from_logits": false, "label_smoothing": 0.0, "axis": -1, "smoothing": 0.1}})
    });
    assert!(
        e.contains("'smoothing'") && e.contains("CategoricalCrossentropy"),
        "{e}"
    );
    let e = edit(&|v| {
        v["metrics"] = serde_json::json!([{"module": "keras.metrics", "class_name": "MeanSquaredError",
            "config": {"name": "mean_squared_error", "dtype": "float32", "squared": false}}])
    });
    assert!(
        e.contains("'squared'") && e.contains("MeanSquaredError"),
        "{e}"
    );
}

/// Column, label, class and layer names with a newline, a carriage return or an ANSI escape (a
/// crafted file's) are printed by `inspect` escaped, never raw: no control character reaches the
/// terminal, and each name stays on its line.
#[test]
fn inspect_prints_names_with_control_characters_escaped() {
    let dir = tempdir();
    let d = dir.path();
    let mut spec = ModelSpec::tutorial();
    if let keras_transfer::model::LayerSpec::Dense(l) = &mut spec.layers[0] {
        l.name = "dense\x1b]0;pwned\x07".into();
    }
    let m = Model::new(spec, 1).unwrap();
    let km = keras_transfer::KerasModel::new(
        m.spec().clone(),
        m.weights().unwrap(),
        Some(&keras_transfer::OptimizerSpec::default()),
    )
    .with_data(keras_transfer::DataSchema {
        features: vec!["x\x1b[2J0".into(), "x1".into()],
        label: Some("la\rbel".into()),
        classes: vec!["a\nb".into(), "\x1b[31mred".into(), "c".into()],
        means: Vec::new(),
    });
    let p = d.join("m.h5");
    keras_transfer::save_model(&p, &km).unwrap();
    let out = ok(&run(d, &["inspect", "m.h5"]));
    assert!(
        !out.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached stdout: {out:?}"
    );
    for shown in [
        "'a\\nb'",
        "'\\u{1b}[31mred'",
        "'la\\rbel'",
        "'x\\u{1b}[2J0'",
        "\\u{1b}]0;pwned\\u{7}",
    ] {
        assert!(out.contains(shown), "{shown}: {out}");
    }
}
