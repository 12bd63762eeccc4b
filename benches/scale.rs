//! `cargo bench --bench scale`: the user's scale, next to the tutorial's (`benches/compare.rs`). A
//! generated 200,000 x 20 training set (3 classes, make_blobs) with 20,000 validation rows, written as
//! CSV to a temporary folder; an MLP 20-64-64-3 trained for 5 epochs at batch 32 and at batch 256.
//!
//! Per batch size it times the whole `keras-transfer train --train X.csv --test Y.csv --hidden 64,64
//! --epochs 5 --batch-size B` process (CSV parsing, fit with per-epoch validation, final evaluation),
//! the CSV ingest alone, the fit alone (per epoch and in GFLOP/s), and a baseline measured in the same
//! run: the same model and training written with plain candle ops (matmul, broadcast_add, relu,
//! log_softmax, candle's SGD) on candle's default threads; and what one epoch's validation costs
//! against a single forward pass over the validation rows. Each workload runs in a process of its own
//! so its peak RSS (VmHWM; for the `train` process, its rusage maximum) is its own; times are the best
//! of `--runs` (default 3). `--data DIR` keeps the CSV files in DIR (for python-check/time_keras.py).

use keras_transfer::data::csv::{read_train_test, write_dataset};
use keras_transfer::rng::NumpyRandomState;
use keras_transfer::{
    Activation, BlobsParams, Dataset, FitConfig, Model, ModelSpec, fit, make_blobs,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const N_TRAIN: usize = 200_000;
const N_VAL: usize = 20_000;
const FEATURES: usize = 20;
const CLASSES: usize = 3;
const HIDDEN: [usize; 2] = [64, 64];
const EPOCHS: usize = 5;
const BATCHES: [usize; 2] = [32, 256];

/// The problem: sklearn's `make_blobs(220000, n_features=20, centers=3, cluster_std=2.0,
/// random_state=1)`, the first 200,000 rows for training.
fn blobs() -> (Dataset, Dataset) {
    let p = BlobsParams {
        n_samples: N_TRAIN + N_VAL,
        n_features: FEATURES,
        ..BlobsParams::tutorial(1)
    };
    make_blobs(&p)
        .expect("blobs")
        .data
        .split_at(N_TRAIN)
        .expect("split")
}

/// Multiply-adds of one row through the MLP.
fn macs_per_row() -> f64 {
    let mut widths = vec![FEATURES];
    widths.extend(HIDDEN);
    widths.push(CLASSES);
    widths.windows(2).map(|w| (w[0] * w[1]) as f64).sum()
}

/// Floating-point operations of a fit: per epoch a forward and backward pass over the training rows
/// (3 matrix products per layer) and a forward pass over the validation rows.
fn fit_flops() -> f64 {
    EPOCHS as f64 * 2.0 * macs_per_row() * (3.0 * N_TRAIN as f64 + N_VAL as f64)
}

fn spec() -> ModelSpec {
    ModelSpec::classifier(FEATURES, &HIDDEN, &[Activation::Relu], CLASSES).expect("spec")
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The largest peak RSS of this process's waited-for children, in KiB.
fn children_peak_rss_kib() -> u64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_maxrss as u64
    }
}

/// What one workload measured: seconds, peak RSS in KiB, seconds of the part that is the fit alone
/// (or 0), and a checksum (final validation accuracy) so nothing is optimised away.
struct Measured {
    secs: f64,
    kib: u64,
    fit_secs: f64,
    check: f64,
}

fn run_one(name: &str, dir: &Path) -> Measured {
    let (train_csv, val_csv) = (dir.join("train.csv"), dir.join("val.csv"));
    let (kind, batch) = name.split_once('_').expect("workload name");
    let batch: usize = batch.parse().unwrap_or(0);
    let t = Instant::now();
    match kind {
        "train" => {
            let out = Command::new(env!("CARGO_BIN_EXE_keras-transfer"))
                .arg("train")
                .arg("--train")
                .arg(&train_csv)
                .arg("--test")
                .arg(&val_csv)
                .args(["--hidden", "64,64", "--epochs", &EPOCHS.to_string()])
                .args(["--batch-size", &batch.to_string()])
                .output()
                .expect("keras-transfer");
            let secs = t.elapsed().as_secs_f64();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "train: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            // "Train: 0.xxx, Test: 0.yyy"
            let check = text
                .rsplit("Test: ")
                .next()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(f64::NAN);
            Measured {
                secs,
                kib: children_peak_rss_kib(),
                fit_secs: 0.0,
                check,
            }
        }
        "ingest" => {
            let (train, val) = read_train_test(&train_csv, Some(&val_csv), None).expect("csv");
            let check = (train.len() + val.map_or(0, |v| v.len())) as f64;
            Measured {
                secs: t.elapsed().as_secs_f64(),
                kib: peak_rss_kib(),
                fit_secs: 0.0,
                check,
            }
        }
        "fit" | "candle" => {
            let (train, val) = read_train_test(&train_csv, Some(&val_csv), None).expect("csv");
            let val = val.expect("validation set");
            let cfg = FitConfig {
                epochs: EPOCHS,
                batch_size: batch,
                ..FitConfig::default()
            };
            let f = Instant::now();
            let check = if kind == "fit" {
                let model = Model::new(spec(), 1).expect("model");
                let h = fit(&model, &train, Some(&val), &cfg, &[1]).expect("fit");
                f64::from(h[0].val_accuracy[EPOCHS - 1])
            } else {
                baseline::fit(&train, &val, &cfg)
            };
            Measured {
                secs: t.elapsed().as_secs_f64(),
                kib: peak_rss_kib(),
                fit_secs: f.elapsed().as_secs_f64(),
                check,
            }
        }
        "val" => {
            // What validation costs (`evaluate` over the validation rows in batches, scored as `fit`
            // scores each epoch, which also reuses its float32 copy of the rows) against one
            // inference forward pass over the same rows; both start from the Dataset; best of 5.
            let (_, val) = read_train_test(&train_csv, Some(&val_csv), None).expect("csv");
            let val = val.expect("validation set");
            let model = Model::new(spec(), 1).expect("model");
            let (mut eval, mut fwd) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..5 {
                let e = Instant::now();
                keras_transfer::train::evaluate(
                    &model,
                    &val,
                    batch,
                    keras_transfer::Loss::CATEGORICAL,
                )
                .expect("evaluate");
                eval = eval.min(e.elapsed().as_secs_f64());
                // From the same Dataset: its rows as one float32 tensor, then the forward pass.
                let f = Instant::now();
                let x = candle_core::Tensor::from_vec(
                    val.features_f32(),
                    (1, val.len(), FEATURES),
                    model.device(),
                )
                .expect("tensor");
                keras_transfer::model::on_every_core(|| model.forward(&x).expect("forward"));
                fwd = fwd.min(f.elapsed().as_secs_f64());
            }
            Measured {
                secs: eval,
                kib: peak_rss_kib(),
                fit_secs: fwd,
                check: eval / fwd,
            }
        }
        other => panic!("unknown workload {other}"),
    }
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(name) = arg(&args, "--one") {
        let dir = PathBuf::from(arg(&args, "--dir").expect("--dir"));
        if !name.starts_with("candle") {
            // SAFETY: single-threaded at this point. The baseline keeps candle's default threads.
            unsafe { keras_transfer::single_threaded_candle() };
        }
        let m = run_one(name, &dir);
        println!("{} {} {} {}", m.secs, m.kib, m.fit_secs, m.check);
        return;
    }
    let runs: usize = arg(&args, "--runs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let tmp = tempfile::tempdir().expect("temporary folder");
    let dir = arg(&args, "--data").map_or_else(|| tmp.path().to_path_buf(), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("data folder");
    let (train, val) = blobs();
    write_dataset(&dir.join("train.csv"), &train).expect("train.csv");
    write_dataset(&dir.join("val.csv"), &val).expect("val.csv");
    let csv_mib = (std::fs::metadata(dir.join("train.csv")).expect("csv").len()
        + std::fs::metadata(dir.join("val.csv")).expect("csv").len()) as f64
        / (1024.0 * 1024.0);
    drop((train, val));

    let exe = std::env::current_exe().expect("own path");
    let mut names = vec!["ingest_0".to_string()];
    for b in BATCHES {
        names.extend(["train", "fit", "candle", "val"].map(|k| format!("{k}_{b}")));
    }
    let mut best = std::collections::BTreeMap::new();
    for name in &names {
        let mut b = Measured {
            secs: f64::INFINITY,
            kib: 0,
            fit_secs: 0.0,
            check: 0.0,
        };
        for _ in 0..runs {
            let out = Command::new(&exe)
                .args(["--one", name, "--dir"])
                .arg(&dir)
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            assert!(
                out.status.success() && v.len() == 4,
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if v[0] < b.secs {
                b = Measured {
                    secs: v[0],
                    kib: v[1] as u64,
                    fit_secs: v[2],
                    check: v[3],
                };
            }
        }
        best.insert(name.clone(), b);
    }

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "keras-transfer scale bench: {cores} cores, best of {runs} runs, each in its own process"
    );
    println!(
        "data: {N_TRAIN} x {FEATURES} training rows + {N_VAL} validation rows, {CLASSES} classes ({csv_mib:.1} MiB of CSV); \
         MLP {FEATURES}-64-64-{CLASSES}, {EPOCHS} epochs\n"
    );
    let ingest = &best["ingest_0"];
    println!(
        "ingest (read_train_test of both CSV files): {:.3} s, {:.0} MB/s, peak RSS {:.1} MiB\n",
        ingest.secs,
        csv_mib * 1.048576 / ingest.secs,
        ingest.kib as f64 / 1024.0
    );
    println!(
        "| batch | train process wall (s) | peak RSS (MiB) | fit (s) | per epoch (s) | GFLOP/s | candle-ops baseline fit (s) | fit vs baseline | val acc |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for b in BATCHES {
        let (t, f, c) = (
            &best[&format!("train_{b}")],
            &best[&format!("fit_{b}")],
            &best[&format!("candle_{b}")],
        );
        println!(
            "| {b} | {:.3} | {:.1} | {:.3} | {:.3} | {:.1} | {:.3} | {:.2}x | {:.4} |",
            t.secs,
            t.kib as f64 / 1024.0,
            f.fit_secs,
            f.fit_secs / EPOCHS as f64,
            fit_flops() / f.fit_secs / 1e9,
            c.fit_secs,
            f.fit_secs / c.fit_secs,
            t.check,
        );
    }
    println!();
    for b in BATCHES {
        let v = &best[&format!("val_{b}")];
        println!(
            "per-epoch validation at batch {b} (evaluate over the {N_VAL} validation rows): {:.1} ms; \
             one forward pass over them: {:.1} ms; {:.2}x",
            v.secs * 1e3,
            v.fit_secs * 1e3,
            v.secs / v.fit_secs
        );
    }
}

/// The same training with candle's plain ops: Glorot-uniform kernels and zero biases drawn as
/// keras-transfer draws them, a seeded shuffle per epoch, softmax cross-entropy through
/// `log_softmax`, candle's SGD, and a validation forward pass per epoch. Returns the final
/// validation accuracy.
mod baseline {
    use super::*;
    use candle_core::{D, Device, Tensor, Var};
    use candle_nn::Optimizer;

    pub fn fit(train: &Dataset, val: &Dataset, cfg: &FitConfig) -> f64 {
        let dev = Device::Cpu;
        let weights = spec().draw(1);
        let vars: Vec<Var> = weights
            .iter()
            .enumerate()
            .flat_map(|(l, w)| {
                let (i, o) = (if l == 0 { FEATURES } else { 64 }, w[1].len());
                // The drawn weights are float32 values held as f64.
                let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
                [
                    Var::from_tensor(&Tensor::from_vec(f32s(&w[0]), (i, o), &dev).unwrap())
                        .unwrap(),
                    Var::from_tensor(&Tensor::from_vec(f32s(&w[1]), o, &dev).unwrap()).unwrap(),
                ]
            })
            .collect();
        let forward = |x: &Tensor| -> Tensor {
            let mut h = x.clone();
            for (l, p) in vars.chunks(2).enumerate() {
                h = h
                    .matmul(p[0].as_tensor())
                    .unwrap()
                    .broadcast_add(p[1].as_tensor())
                    .unwrap();
                if l + 1 < vars.len() / 2 {
                    h = h.relu().unwrap();
                }
            }
            h
        };
        let x = Tensor::from_vec(train.features_f32(), (train.len(), FEATURES), &dev).unwrap();
        let t = Tensor::from_vec(train.one_hot_f32(), (train.len(), CLASSES), &dev).unwrap();
        let xv = Tensor::from_vec(val.features_f32(), (val.len(), FEATURES), &dev).unwrap();
        let mut sgd = candle_nn::SGD::new(vars.clone(), 0.01).unwrap();
        let mut rng = NumpyRandomState::new(1);
        let mut acc = 0.0;
        for _ in 0..cfg.epochs {
            let order: Vec<u32> = rng
                .permutation(train.len())
                .iter()
                .map(|&i| i as u32)
                .collect();
            for rows in order.chunks(cfg.batch_size) {
                let idx = Tensor::from_slice(rows, rows.len(), &dev).unwrap();
                let (xb, tb) = (
                    x.index_select(&idx, 0).unwrap(),
                    t.index_select(&idx, 0).unwrap(),
                );
                let logp = candle_nn::ops::log_softmax(&forward(&xb), D::Minus1).unwrap();
                let loss = (tb * logp).unwrap().sum(D::Minus1).unwrap().neg().unwrap();
                sgd.backward_step(&loss.mean_all().unwrap()).unwrap();
            }
            let pred = forward(&xv)
                .argmax(D::Minus1)
                .unwrap()
                .to_vec1::<u32>()
                .unwrap();
            let hits = pred
                .iter()
                .zip(&val.labels)
                .filter(|(p, l)| **p as usize == **l)
                .count();
            acc = hits as f64 / val.len() as f64;
        }
        acc
    }
}
