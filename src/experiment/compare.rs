//! The tutorial's repeated evaluation: fit each configuration many times (standalone, transfer with
//! 0, 1, 2 frozen layers, ...) and collect test accuracies; independent, seeded, parallel repeats.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::experiment::finetune::{adapt, standalone, Transfer};
use crate::keras::KerasModel;
use crate::train::{evaluate, fit, FitConfig};
use rayon::prelude::*;

/// One configuration of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Arm {
    /// A fresh model of the same architecture, trained from random weights.
    Standalone,
    /// The loaded model, adapted and fine-tuned.
    Transfer(Transfer),
}

impl Arm {
    /// The tutorial's printed name: `Standalone` or `Transfer (fixed=N)`.
    pub fn title(&self) -> String {
        match self {
            Arm::Standalone => "Standalone".to_string(),
            Arm::Transfer(t) => {
                let mut s = format!("Transfer (fixed={})", t.freeze);
                if !t.reinit.is_empty() {
                    s.push_str(&format!(" reinit={}", t.reinit.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(",")));
                }
                if let Some(u) = t.add_hidden {
                    s.push_str(&format!(" +hidden({u})"));
                }
                s
            }
        }
    }

    /// The tutorial's box-plot label: `standalone` or `transfer f=N`.
    pub fn label(&self) -> String {
        match self {
            Arm::Standalone => "standalone".to_string(),
            Arm::Transfer(t) => {
                let mut s = format!("transfer f={}", t.freeze);
                if !t.reinit.is_empty() {
                    s.push_str(" reinit");
                }
                if t.add_hidden.is_some() {
                    s.push_str(" +hidden");
                }
                s
            }
        }
    }
}

/// How each repeat is trained, and how many run at once.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    pub repeats: usize,
    /// Epochs, batch size, learning rate and shuffle of every fit (`seed` and `frozen` are set per repeat).
    pub fit: FitConfig,
    /// The base seed: repeat `r` of arm `a` uses a seed derived from it, `a` and `r`.
    pub seed: u32,
    /// Worker threads (0: one per core). The results do not depend on it.
    pub threads: usize,
}

/// The scores of one arm, one per repeat, in repeat order.
#[derive(Debug, Clone, PartialEq)]
pub struct ArmScores {
    pub arm: Arm,
    pub scores: Vec<f64>,
}

/// The seed of repeat `r` of arm `a`: SplitMix64 of the three, so that neighbouring repeats get
/// unrelated streams.
pub fn repeat_seed(seed: u32, arm: usize, repeat: usize) -> u32 {
    let mut z = (u64::from(seed) << 32) ^ ((arm as u64) << 20) ^ repeat as u64;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

/// One repeat: build the arm's model with `seed`, fit it on `train` without per-epoch validation,
/// and return its test accuracy.
pub fn run_repeat(base: &KerasModel, arm: &Arm, train: &Dataset, test: &Dataset, fit_cfg: &FitConfig, seed: u32) -> Result<f64> {
    let (mlp, frozen) = match arm {
        Arm::Standalone => (standalone(&base.spec, seed)?, 0),
        Arm::Transfer(t) => (adapt(base, t, train.n_features, train.n_classes, seed)?, t.frozen()),
    };
    let cfg = FitConfig { seed, frozen, ..fit_cfg.clone() };
    fit(&mlp, train, None, &cfg)?;
    Ok(f64::from(evaluate(&mlp, test, cfg.batch_size)?.accuracy))
}

/// Runs every arm `cfg.repeats` times, in parallel across repeats; `progress` is called once per
/// finished fit. The scores are the same whatever the thread count.
pub fn compare(
    base: &KerasModel,
    arms: &[Arm],
    train: &Dataset,
    test: &Dataset,
    cfg: &CompareConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<ArmScores>> {
    if cfg.repeats == 0 {
        return Err(Error::invalid("--repeats", "must be at least 1"));
    }
    // Check every arm once, up front, so a bad flag fails before any work.
    for arm in arms {
        if let Arm::Transfer(t) = arm {
            adapt(base, t, train.n_features, train.n_classes, 0)?;
        }
    }
    let jobs: Vec<(usize, usize)> = (0..arms.len()).flat_map(|a| (0..cfg.repeats).map(move |r| (a, r))).collect();
    let threads = if cfg.threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { cfg.threads };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::invalid("threads", e.to_string()))?;
    let scores: Vec<f64> = pool.install(|| {
        jobs.par_iter()
            .map(|&(a, r)| {
                let s = run_repeat(base, &arms[a], train, test, &cfg.fit, repeat_seed(cfg.seed, a, r));
                progress();
                s
            })
            .collect::<Result<Vec<f64>>>()
    })?;
    Ok(arms
        .iter()
        .enumerate()
        .map(|(a, arm)| ArmScores { arm: arm.clone(), scores: scores[a * cfg.repeats..(a + 1) * cfg.repeats].to_vec() })
        .collect())
}
