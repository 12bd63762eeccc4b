//! The frozen base computed once (`train::feature_cache`): bit for bit what recomputing it every
//! batch gives, and only where the base computes as in inference.

use crate::common::*;
use candle_core::{DType, Tensor};
use keras_transfer::data::csv::read_train_test;
use keras_transfer::model::LayerSpec;
use keras_transfer::train::OptimizerSpec;
use keras_transfer::train::feature_cache::{CachePolicy, cut_of, plan};
use keras_transfer::train::fit::{evaluate_with, fit_and_score, fit_with, validation_split};
use keras_transfer::{Dataset, FitConfig, KerasModel, load_model};

/// The Keras-made MobileNetV2 (frozen base), its training rows split 75/25, and its compile
/// settings for `epochs` of batch 5.
fn case(epochs: usize, shuffle: bool) -> (KerasModel, Dataset, Dataset, FitConfig) {
    let case = fixture("keras_apps/train_mobilenet_v2");
    let m = load_model(&case.join("model.keras")).unwrap();
    let data = read_train_test(&case.join("train.npz"), None, None)
        .unwrap()
        .0;
    let (train, val) = validation_split(&data, 0.25).unwrap();
    let cfg = FitConfig {
        epochs,
        batch_size: 5,
        shuffle,
        ..FitConfig::default()
    }
    .with_compile(m.compile().unwrap().unwrap());
    (m, train, val, cfg)
}

fn run(
    policy: CachePolicy,
    shuffle: bool,
    optimizer: &str,
) -> (Vec<f32>, Vec<f32>, Vec<Vec<Vec<f64>>>) {
    let (m, train, val, mut cfg) = case(3, shuffle);
    if optimizer == "adam" {
        cfg.optimizer = OptimizerSpec::named("adam").unwrap();
    }
    cfg.cache = policy;
    let model = m.to_model().unwrap();
    let (h, _) = fit_with(&model, &train, Some(&val), &cfg, &[7], None, &mut |_, _| {}).unwrap();
    (
        h[0].loss.clone(),
        h[0].val_loss.clone(),
        model.weights().unwrap(),
    )
}

/// `fit_and_score` scores the training and validation rows through the cache with the bits that
/// `evaluate` gives, running the whole model, after a fit that recomputed the base.
#[test]
fn scores_through_the_cache_are_evaluate_s_bits() {
    let (m, train, val, mut cfg) = case(2, true);
    let metric = keras_transfer::Metric::default_for(cfg.loss);
    cfg.cache = CachePolicy::Off;
    let plain = m.to_model().unwrap();
    fit_with(&plain, &train, Some(&val), &cfg, &[3], None, &mut |_, _| {}).unwrap();
    let expect = |d| evaluate_with(&plain, d, 5, cfg.loss, Some(metric)).unwrap();
    cfg.cache = CachePolicy::Auto;
    let cached = m.to_model().unwrap();
    let f = fit_and_score(
        &cached,
        &train,
        Some(&val),
        &cfg,
        &[3],
        None,
        &mut |_, _| {},
        Some(metric),
    )
    .unwrap();
    assert_eq!(cached.weights().unwrap(), plain.weights().unwrap());
    let bits = |s: &[keras_transfer::train::fit::Score]| {
        s.iter()
            .map(|s| (s.loss.to_bits(), s.accuracy.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&f.train), bits(&expect(&train)));
    assert_eq!(bits(f.val.as_deref().unwrap()), bits(&expect(&val)));
}

#[test]
fn the_cached_base_trains_bit_for_bit_as_recomputing_it() {
    let m = load_model(&fixture("keras_apps/train_mobilenet_v2/model.keras")).unwrap();
    let p = plan(&m.spec).expect("the frozen MobileNetV2 base is cached");
    assert!(!p.cached[m.spec.layers.len() - 1]);
    for (opt, shuffle) in [
        ("sgd", false),
        ("sgd", true),
        ("adam", true),
        ("adam", false),
    ] {
        let cached = run(CachePolicy::Auto, shuffle, opt);
        let recomputed = run(CachePolicy::Off, shuffle, opt);
        assert_eq!(cached, recomputed, "{opt}, shuffle {shuffle}");
    }
}

#[test]
fn a_trainable_batch_norm_or_a_dropout_ends_the_cached_part() {
    let m = load_model(&fixture("keras_apps/train_mobilenet_v2/model.keras")).unwrap();
    let mut spec = m.spec.clone();
    let full = plan(&spec).unwrap();
    let bn = spec
        .layers
        .iter()
        .position(|l| matches!(l, LayerSpec::BatchNormalization(_)))
        .unwrap();
    assert!(full.cached[bn]);
    spec.layers[bn].set_trainable(true);
    let p = plan(&spec);
    // The first BatchNormalization now trains (batch statistics): it and all after it recompute.
    let cached = p.map(|p| p.cached).unwrap_or_default();
    assert!(cached.iter().skip(bn).all(|c| !c), "{cached:?}");
}

#[test]
fn a_cache_over_its_memory_budget_goes_to_disk_with_the_same_bits() {
    // SAFETY of the env var: read once per fit; the other tests here use the default budget,
    // which a tiny budget can only send to disk (same bits), so a race changes no result.
    unsafe { std::env::set_var("KERAS_TRANSFER_CACHE_BUDGET", "1") };
    let small = run(CachePolicy::Auto, true, "sgd");
    unsafe { std::env::remove_var("KERAS_TRANSFER_CACHE_BUDGET") };
    assert_eq!(small, run(CachePolicy::Off, true, "sgd"));
}

/// Past its memory budget the cache goes to a temporary file (or when asked to): the same bits as
/// recomputing every batch, with shuffling and validation; past the disk budget too, it recomputes.
#[test]
fn a_cache_on_disk_gives_the_same_bits() {
    let off = run(CachePolicy::Off, true, "adam");
    assert_eq!(run(CachePolicy::Disk, true, "adam"), off);
    assert_eq!(
        run(CachePolicy::Disk, false, "sgd"),
        run(CachePolicy::Off, false, "sgd")
    );
}

#[test]
fn the_disk_cache_keeps_every_row_where_it_belongs() {
    use keras_transfer::train::feature_cache::FeatureCache;
    let case = fixture("keras_apps/train_mobilenet_v2");
    let m = load_model(&case.join("model.keras"))
        .unwrap()
        .to_model()
        .unwrap();
    let data = read_train_test(&case.join("train.npz"), None, None)
        .unwrap()
        .0;
    let n = data.len();
    let d = data.n_features;
    let x: Vec<f32> = data.x.iter().map(|&v| v as f32).collect();
    let span = |lo: usize, hi: usize| {
        Ok(candle_core::Tensor::from_vec(
            x[lo * d..hi * d].to_vec(),
            (1, hi - lo, d),
            m.device(),
        )?)
    };
    let p = plan(m.spec()).unwrap();
    // Spans of 5 rows: a memory budget of one byte spills after the first span.
    let build = |budgets, policy| {
        FeatureCache::build(&m, p.clone(), n, 5, budgets, policy, span)
            .unwrap()
            .unwrap()
    };
    let memory = build((usize::MAX, usize::MAX), CachePolicy::Auto);
    let spilled = build((1, usize::MAX), CachePolicy::Auto);
    let disk = build((usize::MAX, usize::MAX), CachePolicy::Disk);
    assert!(!memory.on_disk() && spilled.on_disk() && disk.on_disk());
    let rows: Vec<usize> = (0..n).rev().collect();
    let flat = |c: &FeatureCache| -> Vec<Vec<f32>> {
        c.batch(&rows)
            .unwrap()
            .into_iter()
            .flatten()
            .map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    };
    assert_eq!(flat(&memory), flat(&spilled));
    assert_eq!(flat(&memory), flat(&disk));
    assert!(
        FeatureCache::build(&m, p.clone(), n, 5, (1, 1), CachePolicy::Auto, span)
            .unwrap()
            .is_none()
    );
}

/// `--cache auto|disk|off` choose where the frozen base's rows live; the history is the same bits.
#[test]
fn the_cache_flag_changes_no_number() {
    let model = fixture("keras_apps/train_mobilenet_v2/model.keras");
    // An image folder of 6 images for the model's (32, 32, 3) input.
    let train = fixture("keras_apps/folder");
    let d = tempdir();
    let history = |cache: &str| {
        let h = format!("h_{cache}.csv");
        ok(&crate::common::run(
            d.path(),
            &[
                "finetune",
                "--from",
                model.to_str().unwrap(),
                "--train",
                train.to_str().unwrap(),
                "--epochs",
                "2",
                "--batch-size",
                "2",
                "--validation-split",
                "0.34",
                "--cache",
                cache,
                "--history",
                &h,
            ],
        ));
        std::fs::read_to_string(d.path().join(h)).unwrap()
    };
    let off = history("off");
    assert_eq!(history("disk"), off);
    assert_eq!(history("auto"), off);
}

/// The cut of a frozen MobileNetV2 (Keras-made fixture) over 12 rows is the same bits computed one
/// row at a time, in chunks of 5 run side by side, and all at once: the property that lets the
/// cache be built in chunks on every core.
#[test]
fn the_cut_does_not_depend_on_how_rows_are_grouped() {
    let model = load_model(&fixture("keras_apps/train_mobilenet_v2/model.keras"))
        .unwrap()
        .to_model()
        .unwrap();
    let plan = plan(model.spec()).unwrap();
    let d = model.spec().input_dim;
    let rows = 12;
    // Deterministic pixel values in 0..255.
    let x: Vec<f32> = (0..rows * d)
        .map(|i| ((i * 37 + 11) % 256) as f32)
        .collect();
    let x = Tensor::from_vec(x, (1, rows, d), model.device()).unwrap();
    let bits = |chunk: usize| -> Vec<Vec<u32>> {
        cut_of(&model, &plan, &x, chunk)
            .unwrap()
            .iter()
            .map(|t| {
                t.flatten_all()
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect()
            })
            .collect()
    };
    let whole = bits(rows);
    assert!(whole[0].iter().any(|&b| b != 0), "the cut is not all zeros");
    assert_eq!(bits(1), whole);
    assert_eq!(bits(5), whole);
}
