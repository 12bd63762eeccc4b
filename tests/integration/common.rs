//! Shared helpers: fixture paths, fixture readers, running the binary.

use keras_transfer::model::LayerWeights;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `fixtures/<rel>` in the repository.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}

/// The case folders of a fixture group, sorted.
pub fn cases(group: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture(group))
        .unwrap_or_else(|e| panic!("fixtures/{group}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in fixtures/{group}");
    v
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A CSV of numbers as (header, rows).
pub fn read_csv_f64(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let mut rdr =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| {
            r.unwrap()
                .iter()
                .map(|f| f.parse::<f64>().unwrap())
                .collect()
        })
        .collect();
    (header, rows)
}

/// Per-layer `[kernel (in x out nested), bias]` JSON, as the fixtures store weights, in Keras's order.
pub fn json_weights(v: &Value) -> Vec<LayerWeights> {
    v.as_array()
        .expect("weights list")
        .iter()
        .map(|layer| {
            layer
                .as_array()
                .expect("[kernel, bias]")
                .iter()
                .map(flat_f64s)
                .collect()
        })
        .collect()
}

/// A nested list of numbers, flattened row-major (exact doubles, as the fixtures write them).
pub fn flat_f64s(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(flat_f64s).collect(),
        x => vec![x.as_f64().expect("a number")],
    }
}

pub fn f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// Largest absolute difference between two equally long float lists (f32 or f64), computed in f64.
pub fn max_abs_diff<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f32 {
    max_abs_diff_f64(a, b) as f32
}

/// `max_abs_diff` as f64, for float64 tolerances.
pub fn max_abs_diff_f64<A: Copy + Into<f64>, B: Copy + Into<f64>>(a: &[A], b: &[B]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x.into() - y.into()).abs())
        .fold(0.0, f64::max)
}

/// Largest difference between two sets of layer weights.
pub fn weights_diff(a: &[LayerWeights], b: &[LayerWeights]) -> f32 {
    assert_eq!(a.len(), b.len(), "layer count differs");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "weight count of a layer differs");
            x.iter().zip(y).map(|(p, q)| max_abs_diff(p, q))
        })
        .fold(0.0, f32::max)
}

/// Runs the binary with arguments in `dir`.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("the binary runs")
}

/// Asserts that the run failed with `code`, a single-line error on stderr containing each of `needles`,
/// and no panic.
pub fn assert_fails(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.starts_with("error: "), "error form: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks '{n}': {err}");
    }
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Opens an HDF5 file for editing (strong close, no file locking: tests edit files they just wrote).
pub fn h5_open_rw(path: &Path) -> hdf5::File {
    hdf5::File::with_options()
        .with_fapl(|p| {
            p.fclose_degree(hdf5::file::FileCloseDegree::Strong)
                .file_locking(false)
        })
        .open_rw(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the binary with a time limit; panics if it is still running after `secs` seconds.
pub fn run_limited(dir: &Path, args: &[&str], secs: u64) -> Output {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed().as_secs() >= secs {
            let _ = child.kill();
            panic!("{args:?} still running after {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Runs the binary in `dir` with its address space capped at `max_mib` MiB (`ulimit -v`, which its
/// model-reader child inherits): an allocation past the cap fails, and the run ends in a signal
/// rather than an exit code. (Peak RSS cannot be measured from here: a child's `ru_maxrss` starts
/// at this test process's own size.)
pub fn run_capped(dir: &Path, args: &[&str], max_mib: u64) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {}; exec \"$0\" \"$@\"", max_mib << 10))
        .arg(env!("CARGO_BIN_EXE_keras-transfer"))
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        // glibc reserves 64 MiB of address space per thread arena: not memory the run takes.
        .env("MALLOC_ARENA_MAX", "2")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the binary starts")
}

/// The tutorial's blobs problem `seed`, split 500/500.
pub fn tutorial_problem(
    seed: u32,
) -> (keras_transfer::data::Dataset, keras_transfer::data::Dataset) {
    use keras_transfer::data::{BlobsParams, make_blobs};
    make_blobs(&BlobsParams::tutorial(seed))
        .unwrap()
        .data
        .split_at(500)
        .unwrap()
}

/// make_blobs parameters as the fixtures write them (sklearn's keyword names).
pub fn blobs_params(p: &Value) -> keras_transfer::data::BlobsParams {
    let cb = p["center_box"].as_array().unwrap();
    keras_transfer::data::BlobsParams {
        n_samples: p["n_samples"].as_u64().unwrap() as usize,
        centers: p["centers"].as_u64().unwrap() as usize,
        n_features: p["n_features"].as_u64().unwrap() as usize,
        cluster_std: p["cluster_std"].as_f64().unwrap(),
        center_box: (cb[0].as_f64().unwrap(), cb[1].as_f64().unwrap()),
        shuffle: p["shuffle"].as_bool().unwrap(),
        random_state: p["random_state"].as_u64().unwrap() as u32,
    }
}

/// Saves a model as Keras HDF5 in `format`, compiled with the tutorial's SGD 0.01.
pub fn save_h5_model(path: &Path, m: &keras_transfer::Model, format: keras_transfer::Format) {
    let mut km = keras_transfer::KerasModel::new(
        m.spec().clone(),
        m.weights().unwrap(),
        Some(&keras_transfer::OptimizerSpec::default()),
    );
    km.format = format;
    keras_transfer::keras::save_h5(path, &km).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Makes a FIFO at `path` (a target that must never be replaced by a regular file).
pub fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Asserts that the run succeeded; its standard output.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every `.rs` file under `dir`, recursively, appended to `out`.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `weight_names` of an `optimizer_weights` group, as Keras writes them (any string type).
pub fn hdf5_names(g: &hdf5::Group) -> Vec<hdf5::types::VarLenUnicode> {
    let a = g.attr("weight_names").unwrap();
    let parse = |s: &str| s.parse().unwrap();
    if let Ok(v) = a.read_raw::<hdf5::types::VarLenUnicode>() {
        v
    } else if let Ok(v) = a.read_raw::<hdf5::types::VarLenAscii>() {
        v.iter().map(|s| parse(s.as_str())).collect()
    } else {
        let v = a.read_raw::<hdf5::types::FixedAscii<256>>().unwrap();
        v.iter().map(|s| parse(s.as_str())).collect()
    }
}

/// The largest difference between two lists of value lists (weights per variable).
pub fn vecs_max_diff(a: &[Vec<f64>], b: &[Vec<f64>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| max_abs_diff(x, y))
        .fold(0f32, f32::max)
}

/// A case.json's weights (`{layer: {weight: values}}`) in the model's layer and weight order.
pub fn keras_named(case_weights: &Value, m: &keras_transfer::KerasModel) -> Vec<Vec<f64>> {
    let spec = &m.spec;
    let mut out = Vec::new();
    for (i, l) in spec.layers.iter().enumerate() {
        for w in l.weights(spec.fan_in(i)) {
            out.push(flat_f64s(&case_weights[l.name()][w.name]));
        }
    }
    out
}

/// `m` fitted `epochs` more epochs of `batch` rows (shuffle off) on `data` from `start` (`None`:
/// a fresh optimizer), as Keras's `load_model` + `fit(shuffle=False)` does; its weights after,
/// flattened per variable.
pub fn fit_more(
    m: &keras_transfer::KerasModel,
    data: &keras_transfer::Dataset,
    epochs: usize,
    batch: usize,
    start: Option<&keras_transfer::OptimizerState>,
) -> Vec<Vec<f64>> {
    let model = m.to_model().unwrap();
    let cfg = keras_transfer::FitConfig {
        epochs,
        batch_size: batch,
        shuffle: false,
        ..keras_transfer::FitConfig::default()
    }
    .with_compile(m.compile().unwrap().unwrap());
    keras_transfer::train::fit_from(&model, data, None, &cfg, &[0], start).unwrap();
    model.weights().unwrap().into_iter().flatten().collect()
}

/// Fits `base` as a fixture's `fit_<opt>.json` (`want`) says Keras did: its optimizer (`adam` or
/// `sgd`), 10 epochs of batches of 8, no shuffling, on `data`. The fitted model and its losses.
pub fn fit_as_keras(
    base: &keras_transfer::KerasModel,
    data: &keras_transfer::data::Dataset,
    opt: &str,
    want: &Value,
) -> (keras_transfer::Model, Vec<f32>) {
    let class = if opt == "adam" { "Adam" } else { "SGD" };
    let optimizer = keras_transfer::keras::config::parse_optimizer(
        &serde_json::json!({"class_name": class, "config": want["optimizer"]}),
    )
    .unwrap_or_else(|e| panic!("{opt}: {e}"));
    let mut compile = base.compile().unwrap().unwrap();
    compile.optimizer = optimizer;
    let cfg = keras_transfer::FitConfig {
        epochs: 10,
        batch_size: 8,
        shuffle: false,
        ..keras_transfer::FitConfig::default()
    }
    .with_compile(compile);
    let model = base.to_model().unwrap();
    let (h, _) = keras_transfer::train::fit_from(&model, data, None, &cfg, &[0], None).unwrap();
    let loss = h[0].loss.clone();
    (model, loss)
}

/// `keras-transfer finetune --from MODEL --train DATA --epochs E --batch-size B --no-shuffle --out
/// OUT` (Keras's `load_model` + `fit(shuffle=False)`), asserting success.
pub fn finetune_in_order(
    dir: &Path,
    model: &Path,
    data: &Path,
    epochs: usize,
    batch: usize,
    out: &Path,
) {
    ok(&run(
        dir,
        &[
            "finetune",
            "--from",
            model.to_str().unwrap(),
            "--train",
            data.to_str().unwrap(),
            "--epochs",
            &epochs.to_string(),
            "--batch-size",
            &batch.to_string(),
            "--no-shuffle",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
}
