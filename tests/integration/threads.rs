//! A single fit of a wide model uses every core of the pool it runs in, and gives the same bits on
//! 1, 2 and 4 threads (and outside any pool, on the fused ops' own pool): the wide Dense kernels
//! split their work into chunks fixed by the shapes, never by the thread count. Stacked wide members
//! (compare) equal their lone fits bit for bit.

use keras_transfer::data::{BlobsParams, make_blobs};
use keras_transfer::model::{Activation, Model, ModelSpec, parallel_regions};
use keras_transfer::train::{FitConfig, History, evaluate, fit};

/// The bits of every weight, the history and a final evaluation after a 2-epoch fit of a
/// 20-160-160-3 MLP at batch 256 (products of 256 x 160 x 160, 6.5M multiply-adds: wide and large
/// enough to be cut into chunks and run in parallel, which starts at 4M).
fn fit_bits() -> (Vec<u32>, History, Vec<u32>) {
    let p = BlobsParams {
        n_samples: 1400,
        n_features: 20,
        ..BlobsParams::tutorial(5)
    };
    let (train, val) = make_blobs(&p).unwrap().data.split_at(1100).unwrap();
    let spec = ModelSpec::classifier(20, &[160, 160], &[Activation::Relu], 3).unwrap();
    let model = Model::new(spec, 3).unwrap();
    let cfg = FitConfig {
        epochs: 2,
        batch_size: 256,
        ..FitConfig::default()
    };
    let h = fit(&model, &train, Some(&val), &cfg, &[3])
        .unwrap()
        .remove(0);
    let s = evaluate(&model, &val, 300, cfg.loss).unwrap()[0];
    let w = weight_bits(&model);
    (w, h, vec![s.loss.to_bits(), s.accuracy.to_bits()])
}

/// The float32 bits of every weight of a model.
fn weight_bits(model: &Model) -> Vec<u32> {
    let w = model.weights().unwrap().into_iter().flatten().flatten();
    w.map(|v| (v as f32).to_bits()).collect()
}

/// `f` run in a rayon pool of `threads` threads.
fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

/// The regions `fit_bits` splits at the least: the 160x160 layer's two regions (its forward product,
/// 256 x 160 x 160 = 6.5M multiply-adds, and its backward region, the kernel and input gradients
/// together) at each of the 4 full batches of 256 of the 1100 rows, in each of the 2 epochs. (The
/// short last batch, the narrower layers and validation may or may not split; the bound leaves them
/// out.)
const SPLIT_REGIONS_AT_LEAST: u64 = 2 * 4 * 2;

#[test]
fn a_wide_fit_gives_the_same_bits_on_1_2_and_4_threads() {
    let on = |threads: usize| on_threads(threads, fit_bits);
    let one = on(1);
    assert!(one.1.loss.iter().all(|l| l.is_finite()), "{:?}", one.1);
    for threads in [2, 4] {
        let before = parallel_regions();
        let other = on(threads);
        let split = parallel_regions() - before;
        assert!(
            split >= SPLIT_REGIONS_AT_LEAST,
            "on {threads} threads only {split} regions were split across workers \
             (at least {SPLIT_REGIONS_AT_LEAST} expected): the parallel path did not run, \
             so equal bits prove nothing"
        );
        assert!(other.0 == one.0, "weights differ on {threads} threads");
        assert_eq!(other.1, one.1, "history differs on {threads} threads");
        assert_eq!(other.2, one.2, "evaluation differs on {threads} threads");
    }
    assert!(
        fit_bits() == one,
        "outside a pool (the ops' own pool) the bits differ"
    );
}

/// Stacked members of a wide model (as `compare` trains them) give each lone fit's bits: the wide
/// kernels chunk every member exactly as they chunk a lone model.
#[test]
fn wide_stacked_members_equal_lone_fits() {
    let p = BlobsParams {
        n_samples: 700,
        n_features: 20,
        ..BlobsParams::tutorial(6)
    };
    let (train, val) = make_blobs(&p).unwrap().data.split_at(600).unwrap();
    let spec = ModelSpec::classifier(20, &[64, 32], &[Activation::Tanh], 3).unwrap();
    let cfg = FitConfig {
        epochs: 2,
        batch_size: 200,
        ..FitConfig::default()
    };
    let seeds = [3, 4];
    let stacked = Model::new_members(spec.clone(), &seeds).unwrap();
    let hs = fit(&stacked, &train, Some(&val), &cfg, &seeds).unwrap();
    for (m, &seed) in seeds.iter().enumerate() {
        let lone = Model::new(spec.clone(), seed).unwrap();
        let h = fit(&lone, &train, Some(&val), &cfg, &[seed])
            .unwrap()
            .remove(0);
        assert_eq!(hs[m], h, "member {m}'s history");
        assert!(
            stacked.member_weights(m).unwrap() == lone.weights().unwrap(),
            "member {m}'s weights differ from its lone fit"
        );
    }
}

/// The bits of every weight and the history after one epoch of fine-tuning the Keras-made
/// MobileNetV2 fixture (32x32) with every layer trainable: the direct depthwise kernel and its
/// gradient, BatchNormalization's single ops (affine, variance) and Relu6, all run in parallel over
/// images or rows in blocks fixed by the shapes.
fn conv_fit_bits() -> (Vec<u32>, History) {
    let case = crate::common::fixture("keras_apps/train_mobilenet_v2");
    let mut m = keras_transfer::load_model(&case.join("model.keras")).unwrap();
    for l in m.spec.layers.iter_mut() {
        l.set_trainable(true);
    }
    let data = keras_transfer::data::csv::read_train_test(&case.join("train.npz"), None, None)
        .unwrap()
        .0;
    let cfg = FitConfig {
        epochs: 1,
        batch_size: 12,
        shuffle: false,
        ..FitConfig::default()
    }
    .with_compile(m.compile().unwrap().unwrap());
    let model = m.to_model().unwrap();
    let h = fit(&model, &data, None, &cfg, &[0]).unwrap().remove(0);
    let w = weight_bits(&model);
    (w, h)
}

#[test]
fn fine_tuning_through_convolutions_gives_the_same_bits_on_1_2_and_4_threads() {
    let on = |threads: usize| on_threads(threads, conv_fit_bits);
    let one = on(1);
    assert!(one.1.loss.iter().all(|l| l.is_finite()), "{:?}", one.1);
    for threads in [2, 4] {
        let other = on(threads);
        assert!(other.0 == one.0, "weights differ on {threads} threads");
        assert_eq!(other.1, one.1, "history differs on {threads} threads");
    }
}
