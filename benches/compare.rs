//! `cargo bench --bench compare`: times the tutorial's 120-fit comparison (standalone + transfer with
//! 0, 1, 2 frozen layers, 30 repeats, 100 epochs, no per-epoch validation) through keras-transfer's
//! fast path and its plain sequential candle path, one 100-epoch fit with per-epoch validation, and
//! a plain-loop baseline of the same training written straightforwardly in Rust (kept here, not in
//! the product). Each workload runs in a child process of its own so that its peak memory (VmHWM) is
//! its own; times are the best of `--runs` (default 3), and every ratio is against the baseline
//! measured in the same run.

use keras_transfer::experiment::compare::{repeat_seed, run_repeat};
use keras_transfer::rng::NumpyRandomState;
use keras_transfer::{
    Arm, BlobsParams, CompareConfig, Dataset, FitConfig, KerasModel, Model, ModelSpec, Transfer,
    compare, fit, load_model, make_blobs,
};
use rayon::prelude::*;
use std::process::Command;
use std::time::Instant;

const REPEATS: usize = 30;
const EPOCHS: usize = 100;
const WORKLOADS: &[(&str, &str)] = &[
    ("baseline", "plain f32 loops, 120 fits, all cores"),
    (
        "compare",
        "keras-transfer compare (batched candle), 120 fits",
    ),
    (
        "sequential",
        "candle one fit at a time, 120 fits, all cores",
    ),
    ("single_fit", "one 100-epoch fit with per-epoch validation"),
];

fn problem(seed: u32) -> (Dataset, Dataset) {
    make_blobs(&BlobsParams::tutorial(seed))
        .expect("blobs")
        .data
        .split_at(500)
        .expect("split")
}

fn base_model() -> KerasModel {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/keras_finetune/model.h5");
    load_model(&path).expect("the Keras-made fixture model")
}

fn arms() -> Vec<Arm> {
    let mut v = vec![Arm::Standalone];
    v.extend((0..3).map(|f| {
        Arm::Transfer(Transfer {
            freeze: f,
            ..Transfer::default()
        })
    }));
    v
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Runs one workload in this process and returns a checksum of its results (so nothing is
/// optimised away, and the runs can be compared).
fn run_one(name: &str) -> f64 {
    let (train, test) = problem(2);
    let base = base_model();
    let fit_cfg = FitConfig {
        epochs: EPOCHS,
        ..FitConfig::default()
    };
    match name {
        "compare" => {
            let cfg = CompareConfig {
                repeats: REPEATS,
                fit: fit_cfg,
                seed: 1,
                threads: 0,
            };
            let r = compare(&base, &arms(), &train, &test, &cfg, &|| {}).expect("compare");
            r.iter().flat_map(|a| &a.scores).sum()
        }
        "sequential" => {
            let arms = arms();
            let jobs: Vec<(usize, usize)> = (0..arms.len())
                .flat_map(|a| (0..REPEATS).map(move |r| (a, r)))
                .collect();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads())
                .build()
                .expect("pool");
            pool.install(|| {
                jobs.par_iter()
                    .map(|&(a, r)| {
                        run_repeat(
                            &base,
                            &arms[a],
                            &train,
                            &test,
                            &fit_cfg,
                            repeat_seed(1, a, r),
                        )
                        .expect("fit")
                    })
                    .sum()
            })
        }
        "single_fit" => {
            let mlp = Model::new(ModelSpec::tutorial(), 1).expect("model");
            let h = fit(&mlp, &train, Some(&test), &fit_cfg, &[1]).expect("fit");
            f64::from(h[0].val_accuracy[EPOCHS - 1])
        }
        "baseline" => baseline::compare(&base, &train, &test),
        other => panic!("unknown workload {other}"),
    }
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        // SAFETY: single-threaded at this point.
        unsafe { keras_transfer::single_threaded_candle() };
        let name = &args[i + 1];
        let t = Instant::now();
        let check = run_one(name);
        let secs = t.elapsed().as_secs_f64();
        println!("{secs} {} {check}", peak_rss_kib());
        return;
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(3);
    let exe = std::env::current_exe().expect("own path");
    let mut rows = Vec::new();
    for (name, what) in WORKLOADS {
        let mut best = (f64::INFINITY, 0u64, 0f64);
        for _ in 0..runs {
            let out = Command::new(&exe)
                .args(["--one", name])
                .output()
                .expect("child");
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            assert!(
                out.status.success() && v.len() == 3,
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            if v[0] < best.0 {
                best = (v[0], v[1] as u64, v[2]);
            }
        }
        rows.push((*name, *what, best));
    }
    let base = rows[0].2.0;
    println!(
        "keras-transfer bench: {} cores, best of {runs} runs, each in its own process\n",
        threads()
    );
    println!("| workload | what | wall (s) | vs baseline | peak RSS (MiB) |");
    println!("|---|---|---|---|---|");
    for (name, what, (secs, kib, _)) in &rows {
        println!(
            "| {name} | {what} | {secs:.3} | {:.2}x | {:.1} |",
            secs / base,
            *kib as f64 / 1024.0
        );
    }
    let fast = rows
        .iter()
        .find(|r| r.0 == "compare")
        .map(|r| r.2.2)
        .unwrap_or(0.0);
    let slow = rows
        .iter()
        .find(|r| r.0 == "sequential")
        .map(|r| r.2.2)
        .unwrap_or(0.0);
    println!(
        "\nchecksums (sum of the 120 test accuracies): compare {fast}, sequential {slow}, baseline {}",
        rows[0].2.2
    );
}

/// The same training written straightforwardly with fixed-size arrays: the measure of what this
/// machine can do. It follows keras-transfer's seeds and shuffles, so its scores are close to (not
/// bit-equal with) the product's.
#[allow(clippy::needless_range_loop)]
mod baseline {
    use super::*;

    const I: usize = 2;
    const H: usize = 5;
    const K: usize = 3;

    #[derive(Clone)]
    struct Net {
        w1: [[f32; H]; I],
        b1: [f32; H],
        w2: [[f32; H]; H],
        b2: [f32; H],
        w3: [[f32; K]; H],
        b3: [f32; K],
    }

    impl Net {
        fn from(m: &Model) -> Net {
            let w = m.weights().expect("weights");
            let mut n = Net {
                w1: [[0.0; H]; I],
                b1: [0.0; H],
                w2: [[0.0; H]; H],
                b2: [0.0; H],
                w3: [[0.0; K]; H],
                b3: [0.0; K],
            };
            for i in 0..I {
                n.w1[i].copy_from_slice(&f32s(&w[0][0][i * H..(i + 1) * H]));
            }
            for i in 0..H {
                n.w2[i].copy_from_slice(&f32s(&w[1][0][i * H..(i + 1) * H]));
                n.w3[i].copy_from_slice(&f32s(&w[2][0][i * K..(i + 1) * K]));
            }
            n.b1.copy_from_slice(&f32s(&w[0][1]));
            n.b2.copy_from_slice(&f32s(&w[1][1]));
            n.b3.copy_from_slice(&f32s(&w[2][1]));
            n
        }

        fn forward(&self, x: &[f32; I]) -> ([f32; H], [f32; H], [f32; K]) {
            let mut h1 = self.b1;
            for i in 0..I {
                for o in 0..H {
                    h1[o] += x[i] * self.w1[i][o];
                }
            }
            h1.iter_mut().for_each(|v| *v = v.max(0.0));
            let mut h2 = self.b2;
            for i in 0..H {
                for o in 0..H {
                    h2[o] += h1[i] * self.w2[i][o];
                }
            }
            h2.iter_mut().for_each(|v| *v = v.max(0.0));
            let mut z = self.b3;
            for i in 0..H {
                for o in 0..K {
                    z[o] += h2[i] * self.w3[i][o];
                }
            }
            (h1, h2, z)
        }

        fn step(&mut self, xs: &[[f32; I]], ys: &[usize], lr: f32, frozen: usize) {
            let mut g = Net {
                w1: [[0.0; H]; I],
                b1: [0.0; H],
                w2: [[0.0; H]; H],
                b2: [0.0; H],
                w3: [[0.0; K]; H],
                b3: [0.0; K],
            };
            let inv = 1.0 / xs.len() as f32;
            for (x, &y) in xs.iter().zip(ys) {
                let (h1, h2, z) = self.forward(x);
                let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = z.iter().map(|v| (v - m).exp()).collect();
                let s: f32 = e.iter().sum();
                let mut dz = [0.0; K];
                for o in 0..K {
                    dz[o] = (e[o] / s - if o == y { 1.0 } else { 0.0 }) * inv;
                }
                let mut dh2 = [0.0; H];
                for i in 0..H {
                    for o in 0..K {
                        g.w3[i][o] += h2[i] * dz[o];
                        dh2[i] += self.w3[i][o] * dz[o];
                    }
                    if h2[i] <= 0.0 {
                        dh2[i] = 0.0;
                    }
                }
                for o in 0..K {
                    g.b3[o] += dz[o];
                }
                let mut dh1 = [0.0; H];
                for i in 0..H {
                    for o in 0..H {
                        g.w2[i][o] += h1[i] * dh2[o];
                        dh1[i] += self.w2[i][o] * dh2[o];
                    }
                    if h1[i] <= 0.0 {
                        dh1[i] = 0.0;
                    }
                }
                for o in 0..H {
                    g.b2[o] += dh2[o];
                }
                for i in 0..I {
                    for o in 0..H {
                        g.w1[i][o] += x[i] * dh1[o];
                    }
                }
                for o in 0..H {
                    g.b1[o] += dh1[o];
                }
            }
            if frozen < 1 {
                for i in 0..I {
                    for o in 0..H {
                        self.w1[i][o] -= lr * g.w1[i][o];
                    }
                }
                for o in 0..H {
                    self.b1[o] -= lr * g.b1[o];
                }
            }
            if frozen < 2 {
                for i in 0..H {
                    for o in 0..H {
                        self.w2[i][o] -= lr * g.w2[i][o];
                    }
                }
                for o in 0..H {
                    self.b2[o] -= lr * g.b2[o];
                }
            }
            if frozen < 3 {
                for i in 0..H {
                    for o in 0..K {
                        self.w3[i][o] -= lr * g.w3[i][o];
                    }
                }
                for o in 0..K {
                    self.b3[o] -= lr * g.b3[o];
                }
            }
        }
    }

    fn points(d: &Dataset) -> Vec<[f32; I]> {
        (0..d.len())
            .map(|r| [d.row(r)[0] as f32, d.row(r)[1] as f32])
            .collect()
    }

    fn one_fit(start: &Model, frozen: usize, seed: u32, train: &Dataset, test: &Dataset) -> f64 {
        let mut net = Net::from(start);
        let (x, xt) = (points(train), points(test));
        let mut rng = NumpyRandomState::new(seed);
        let (mut bx, mut by) = (Vec::with_capacity(32), Vec::with_capacity(32));
        for _ in 0..EPOCHS {
            let order = rng.permutation(x.len());
            for chunk in order.chunks(32) {
                bx.clear();
                by.clear();
                for &r in chunk {
                    bx.push(x[r]);
                    by.push(train.labels[r]);
                }
                net.step(&bx, &by, 0.01, frozen);
            }
        }
        let hits = xt
            .iter()
            .zip(&test.labels)
            .filter(|(p, l)| {
                let z = net.forward(p).2;
                let mut best = 0;
                for o in 1..K {
                    if z[o] > z[best] {
                        best = o;
                    }
                }
                best == **l
            })
            .count();
        hits as f64 / xt.len() as f64
    }

    pub fn compare(base: &KerasModel, train: &Dataset, test: &Dataset) -> f64 {
        let jobs: Vec<(usize, usize)> = (0..4)
            .flat_map(|a| (0..REPEATS).map(move |r| (a, r)))
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads())
            .build()
            .expect("pool");
        pool.install(|| {
            jobs.par_iter()
                .map(|&(a, r)| {
                    let seed = repeat_seed(1, a, r);
                    let start = if a == 0 {
                        Model::new(base.spec.clone(), seed).expect("model")
                    } else {
                        base.to_model().expect("model")
                    };
                    one_fit(&start, a.saturating_sub(1), seed, train, test)
                })
                .sum()
        })
    }
}

/// A float32 model's weights (kept as f64 by `LayerWeights`, exactly) as f32.
fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
