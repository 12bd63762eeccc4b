//! The tutorial's repeated evaluation: fit each configuration many times (standalone, transfer with
//! 0, 1, 2 frozen layers, ...) and collect test accuracies; independent, seeded, parallel repeats.

use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::experiment::finetune::{Transfer, adapt_weights, standalone_spec};
use crate::keras::KerasModel;
use crate::model::Model;
use crate::train::{FitConfig, evaluate, fit};
use rayon::prelude::*;

/// The most repeats one comparison runs.
pub const MAX_REPEATS: usize = 100_000;
/// The most repeats trained as one stacked model (bounds the memory of a batch).
const MAX_MEMBERS: usize = 1024;

/// One configuration of the comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Arm {
    /// A fresh model of the same architecture, trained from random weights.
    Standalone,
    /// The loaded model, adapted and fine-tuned.
    Transfer(Transfer),
}

impl Arm {
    /// The tutorial's printed name: `Standalone` or `Transfer (fixed=N)`, with ` reinit=2,3` and
    /// ` +hidden(5)` for the extensions.
    pub fn title(&self) -> String {
        self.describe(true)
    }

    /// The tutorial's box-plot label: `standalone` or `transfer f=N`, with ` reinit` and ` +hidden`.
    pub fn label(&self) -> String {
        self.describe(false)
    }

    fn describe(&self, long: bool) -> String {
        let Arm::Transfer(t) = self else {
            return if long { "Standalone" } else { "standalone" }.to_string();
        };
        let mut s = if long {
            format!("Transfer (fixed={})", t.freeze)
        } else {
            format!("transfer f={}", t.freeze)
        };
        if !t.reinit.is_empty() {
            s.push_str(" reinit");
            if long {
                let layers: Vec<String> = t.reinit.iter().map(|l| l.to_string()).collect();
                s.push_str(&format!("={}", layers.join(",")));
            }
        }
        if let Some(u) = t.add_hidden {
            s.push_str(" +hidden");
            if long {
                s.push_str(&format!("({u})"));
            }
        }
        s
    }
}

/// How each repeat is trained, and how many run at once.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareConfig {
    pub repeats: usize,
    /// Epochs, batch size, optimizer, loss and shuffle of every fit.
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

/// Repeats `seeds.len()` of `arm` as one stacked model, repeat i built and shuffled with `seeds[i]`
/// (each member exactly as it would be trained alone), and returns their test accuracies.
pub fn run_members(
    base: &KerasModel,
    arm: &Arm,
    train: &Dataset,
    test: &Dataset,
    fit_cfg: &FitConfig,
    seeds: &[u32],
) -> Result<Vec<f64>> {
    let model = match arm {
        Arm::Standalone => Model::new_members(standalone_spec(&base.spec), seeds)?,
        Arm::Transfer(t) => {
            let mut spec = None;
            let members = seeds
                .iter()
                .map(|&s| {
                    let a = adapt_weights(base, t, train.n_features, train.n_classes, s)?;
                    spec = Some(a.spec);
                    Ok(a.weights)
                })
                .collect::<Result<Vec<_>>>()?;
            let spec = spec.ok_or_else(|| Error::invalid("repeats", "must be at least 1"))?;
            Model::stack(spec, &members)?
        }
    };
    // The histories are not used: no per-step metric to compute.
    let quiet = FitConfig {
        metrics: Vec::new(),
        ..fit_cfg.clone()
    };
    fit(&model, train, None, &quiet, seeds)?;
    Ok(evaluate(&model, test, fit_cfg.batch_size, fit_cfg.loss)?
        .into_iter()
        .map(|s| f64::from(s.accuracy))
        .collect())
}

/// One repeat alone: build the arm's model with `seed`, fit it on `train` without per-epoch
/// validation, and return its test accuracy.
pub fn run_repeat(
    base: &KerasModel,
    arm: &Arm,
    train: &Dataset,
    test: &Dataset,
    fit_cfg: &FitConfig,
    seed: u32,
) -> Result<f64> {
    Ok(run_members(base, arm, train, test, fit_cfg, &[seed])?[0])
}

/// Runs every arm `cfg.repeats` times and returns the test accuracies. The repeats of an arm are
/// trained together as stacked models (each member exactly as `run_repeat` would train it alone),
/// spread over `cfg.threads` workers; `progress` is called once per finished fit. The scores are the
/// same whatever the thread count.
pub fn compare(
    base: &KerasModel,
    arms: &[Arm],
    train: &Dataset,
    test: &Dataset,
    cfg: &CompareConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<ArmScores>> {
    if cfg.repeats == 0 || cfg.repeats > MAX_REPEATS {
        return Err(Error::invalid(
            "repeats",
            format!("must be between 1 and {MAX_REPEATS}"),
        ));
    }
    // Check every arm once, up front, so a bad flag fails before any work.
    cfg.fit.validate()?;
    for arm in arms {
        if let Arm::Transfer(t) = arm {
            adapt_weights(base, t, train.n_features, train.n_classes, 0)?;
        }
    }
    let threads = if cfg.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        cfg.threads
    };
    // Enough ensembles per arm that every worker gets the same share.
    let chunks = (threads / gcd(arms.len().max(1), threads)).clamp(1, cfg.repeats);
    let per = cfg.repeats.div_ceil(chunks).min(MAX_MEMBERS);
    let jobs: Vec<(usize, std::ops::Range<usize>)> = (0..arms.len())
        .flat_map(|a| {
            (0..cfg.repeats)
                .step_by(per)
                .map(move |s| (a, s..(s + per).min(cfg.repeats)))
        })
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::invalid("threads", e.to_string()))?;
    let parts: Vec<Vec<f64>> = pool.install(|| {
        jobs.par_iter()
            .map(|(a, reps)| {
                run_repeats(
                    base,
                    &arms[*a],
                    *a,
                    reps.clone(),
                    train,
                    test,
                    cfg,
                    progress,
                )
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let mut scores: Vec<Vec<f64>> = vec![Vec::with_capacity(cfg.repeats); arms.len()];
    for ((a, _), part) in jobs.iter().zip(parts) {
        scores[*a].extend(part);
    }
    Ok(arms
        .iter()
        .cloned()
        .zip(scores)
        .map(|(arm, scores)| ArmScores { arm, scores })
        .collect())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Repeats `reps` of arm `a` as one stacked model.
#[allow(clippy::too_many_arguments)]
fn run_repeats(
    base: &KerasModel,
    arm: &Arm,
    a: usize,
    reps: std::ops::Range<usize>,
    train: &Dataset,
    test: &Dataset,
    cfg: &CompareConfig,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<f64>> {
    let seeds: Vec<u32> = reps.map(|r| repeat_seed(cfg.seed, a, r)).collect();
    let acc = run_members(base, arm, train, test, &cfg.fit, &seeds)?;
    for _ in 0..acc.len() {
        progress();
    }
    Ok(acc)
}
