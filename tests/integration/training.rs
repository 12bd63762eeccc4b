//! Training against real Keras 3 (fixtures/keras_train): same starting weights, shuffle off, the
//! weights after 1 and 100 epochs and the history must match; freezing is by variable selection.

use crate::common::*;
use keras_transfer::data::{BlobsParams, Dataset, make_blobs};
use keras_transfer::model::{Activation, LayerSpec, Model, ModelSpec};
use keras_transfer::train::{FitConfig, Loss, OptimizerSpec, evaluate, fit};
use serde_json::Value;

/// Tolerances: Keras's float32 kernels and ours sum in different orders.
const TOL_EPOCH_1: f32 = 1e-6;
const TOL_FINAL: f32 = 1e-5;
const TOL_HISTORY: f32 = 1e-5;

/// The case's architecture, its first `frozen` layers frozen.
fn spec_of(case: &Value) -> ModelSpec {
    let layers = case["layers"].as_array().unwrap();
    let hidden: Vec<usize> = layers[..layers.len() - 1]
        .iter()
        .map(|l| l["units"].as_u64().unwrap() as usize)
        .collect();
    let acts: Vec<Activation> = layers[..layers.len() - 1]
        .iter()
        .map(|l| l["activation"].as_str().unwrap().parse().unwrap())
        .collect();
    let classes = layers.last().unwrap()["units"].as_u64().unwrap() as usize;
    let mut spec = ModelSpec::classifier(
        case["input_dim"].as_u64().unwrap() as usize,
        &hidden,
        &acts,
        classes,
    )
    .unwrap();
    for (l, want) in spec.layers.iter_mut().zip(layers) {
        let LayerSpec::Dense(l) = l else {
            panic!("a Dense layer expected")
        };
        l.use_bias = want["use_bias"].as_bool().unwrap_or(true);
        l.activation = want["activation"].as_str().unwrap().parse().unwrap();
    }
    let frozen: Vec<usize> = (0..case["frozen"].as_u64().unwrap() as usize).collect();
    spec.freeze_only(&frozen).unwrap();
    spec
}

/// The case's data: the tutorial problem `problem`, or the make_blobs parameters in `blobs`.
fn problem(case: &Value) -> (Dataset, Dataset) {
    let rows = case["train_rows"].as_u64().unwrap() as usize;
    let params = match case.get("blobs") {
        Some(b) => blobs_params(b),
        None => BlobsParams::tutorial(case["problem"].as_u64().unwrap() as u32),
    };
    make_blobs(&params).unwrap().data.split_at(rows).unwrap()
}

fn config(case: &Value, epochs: usize) -> FitConfig {
    FitConfig {
        epochs,
        batch_size: case["batch_size"].as_u64().unwrap() as usize,
        optimizer: OptimizerSpec::sgd(case["lr"].as_f64().unwrap() as f32),
        shuffle: false,
        ..FitConfig::default()
    }
}

#[test]
fn one_epoch_matches_keras() {
    for dir in cases("keras_train") {
        let case = read_json(&dir.join("case.json"));
        let (train, test) = problem(&case);
        let mlp = Model::from_weights(spec_of(&case), json_weights(&case["initial"])).unwrap();
        let h = fit(&mlp, &train, Some(&test), &config(&case, 1), &[0])
            .unwrap()
            .remove(0);
        let d = weights_diff(
            &mlp.weights().unwrap(),
            &json_weights(&case["after_epoch_1"]),
        );
        assert!(
            d <= TOL_EPOCH_1,
            "{}: weights after 1 epoch differ from Keras by {d}",
            dir.display()
        );
        let kh = &case["history"];
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            let mine = match key {
                "loss" => h.loss[0],
                "accuracy" => h.accuracy[0],
                "val_loss" => h.val_loss[0],
                _ => h.val_accuracy[0],
            };
            let want = f32s(&kh[key])[0];
            assert!(
                (mine - want).abs() <= TOL_EPOCH_1,
                "{}: epoch-1 {key} {mine} vs Keras {want}",
                dir.display()
            );
        }
    }
}

#[test]
fn hundred_epochs_match_keras() {
    for dir in cases("keras_train") {
        let case = read_json(&dir.join("case.json"));
        let (train, test) = problem(&case);
        let mlp = Model::from_weights(spec_of(&case), json_weights(&case["initial"])).unwrap();
        let epochs = case["epochs"].as_u64().unwrap() as usize;
        let h = fit(&mlp, &train, Some(&test), &config(&case, epochs), &[0])
            .unwrap()
            .remove(0);
        let d = weights_diff(&mlp.weights().unwrap(), &json_weights(&case["final"]));
        assert!(
            d <= TOL_FINAL,
            "{}: final weights differ from Keras by {d}",
            dir.display()
        );
        let kh = &case["history"];
        for (key, mine) in [
            ("loss", &h.loss),
            ("accuracy", &h.accuracy),
            ("val_loss", &h.val_loss),
            ("val_accuracy", &h.val_accuracy),
        ] {
            let d = max_abs_diff(mine, &f32s(&kh[key]));
            assert!(
                d <= TOL_HISTORY,
                "{}: history {key} differs from Keras by {d}",
                dir.display()
            );
        }
        for (set, data) in [("train", &train), ("test", &test)] {
            let s = evaluate(&mlp, data, 32, Loss::CATEGORICAL).unwrap()[0];
            let want = f32s(&case["evaluate"][set]);
            assert!(
                (s.loss - want[0]).abs() <= TOL_HISTORY,
                "{}: evaluate {set} loss {} vs {}",
                dir.display(),
                s.loss,
                want[0]
            );
            assert!(
                (s.accuracy - want[1]).abs() <= TOL_HISTORY,
                "{}: evaluate {set} accuracy",
                dir.display()
            );
        }
    }
}

#[test]
fn frozen_layers_stay_bit_identical_and_the_rest_move() {
    let (train, test) = tutorial_problem(2);
    let cfg = FitConfig {
        epochs: 5,
        ..FitConfig::default()
    };
    // Any set of layers may be frozen, not only the first ones: every subset of the three layers.
    for mask in 0..8usize {
        let frozen: Vec<usize> = (0..3).filter(|i| mask & (1 << i) != 0).collect();
        let mut spec = ModelSpec::tutorial();
        spec.freeze_only(&frozen).unwrap();
        let mlp = Model::new(spec, 5).unwrap();
        let before = mlp.weights().unwrap();
        fit(&mlp, &train, Some(&test), &cfg, &[3]).unwrap();
        let after = mlp.weights().unwrap();
        for i in 0..3 {
            let same = before[i] == after[i];
            assert_eq!(
                same,
                frozen.contains(&i),
                "frozen {frozen:?}: layer {i} {}",
                if same { "did not move" } else { "moved" }
            );
        }
    }
}

#[test]
fn the_optimizer_gets_only_unfrozen_variables_by_name() {
    let mut spec = ModelSpec::tutorial();
    spec.freeze_only(&[0]).unwrap();
    let mlp = Model::new(spec, 1).unwrap();
    let vars = mlp.trainable_vars();
    let ids: Vec<_> = vars.iter().map(|v| v.id()).collect();
    let by_name = |n: &str| mlp.var(n).unwrap().id();
    assert_eq!(
        ids,
        vec![
            by_name("dense_1/kernel"),
            by_name("dense_1/bias"),
            by_name("dense_2/kernel"),
            by_name("dense_2/bias")
        ]
    );
}

#[test]
fn same_seed_same_run_bit_for_bit() {
    let (train, test) = tutorial_problem(1);
    let run = || {
        let mlp = Model::new(ModelSpec::tutorial(), 9).unwrap();
        let h = fit(
            &mlp,
            &train,
            Some(&test),
            &FitConfig {
                epochs: 20,
                ..FitConfig::default()
            },
            &[9],
        )
        .unwrap();
        (mlp.weights().unwrap(), h)
    };
    let (w1, h1) = run();
    let (w2, h2) = run();
    assert_eq!(w1, w2);
    assert_eq!(h1, h2);
    let mlp = Model::new(ModelSpec::tutorial(), 10).unwrap();
    assert_ne!(
        mlp.weights().unwrap(),
        Model::new(ModelSpec::tutorial(), 9)
            .unwrap()
            .weights()
            .unwrap()
    );
}

#[test]
fn initializers_draw_within_keras_limits() {
    let mlp = Model::new(
        ModelSpec::classifier(2, &[50, 40], &[Activation::Relu], 3).unwrap(),
        4,
    )
    .unwrap();
    let w = mlp.weights().unwrap();
    let he1 = (6.0f32 / 2.0).sqrt();
    let he2 = (6.0f32 / 50.0).sqrt();
    let glorot = (6.0f32 / 43.0).sqrt();
    for (layer, limit) in [(0, he1), (1, he2), (2, glorot)] {
        let k = &w[layer][0];
        let max = k.iter().fold(0f32, |m, v| m.max(v.abs() as f32));
        assert!(
            max <= limit && max > 0.8 * limit,
            "layer {layer}: max |w| {max} vs limit {limit}"
        );
        assert!(w[layer][1].iter().all(|&b| b == 0.0));
    }
}

#[test]
fn divergence_stops_with_the_epoch() {
    let (train, _) = tutorial_problem(1);
    let mlp = Model::new(ModelSpec::tutorial(), 1).unwrap();
    let err = fit(
        &mlp,
        &train,
        None,
        &FitConfig {
            epochs: 50,
            optimizer: OptimizerSpec::sgd(1e6),
            ..FitConfig::default()
        },
        &[1],
    )
    .unwrap_err();
    assert!(
        matches!(err, keras_transfer::Error::Diverged { epoch: 1, .. }),
        "{err}"
    );
}

/// `evaluate` runs the forward pass over spans of many batches, but must report what Keras's
/// batch-by-batch evaluation reports: the size-weighted mean of each batch's mean loss (plus the
/// penalties) and of its metric, accumulated in float32 batch after batch. Checked against
/// evaluating each batch on its own, over more rows than one span, with a short last batch, with a
/// kernel regulariser and with an activity regulariser (whose penalty depends on the batch's rows),
/// for a narrow (tutorial-width) and a wide (GEMM) model.
#[test]
fn evaluation_over_spans_equals_batch_by_batch_evaluation() {
    let p = BlobsParams {
        n_samples: 5000,
        ..BlobsParams::tutorial(1)
    };
    let data = make_blobs(&p).unwrap().data;
    let reg = keras_transfer::model::Regularizer { l1: 0.01, l2: 0.01 };
    for hidden in [5usize, 40] {
        for (kernel, activity) in [(None, None), (Some(reg), None), (None, Some(reg))] {
            let mut spec = ModelSpec::classifier(2, &[hidden], &[Activation::Relu], 3).unwrap();
            if let LayerSpec::Dense(d) = &mut spec.layers[0] {
                d.kernel_regularizer = kernel;
                d.activity_regularizer = activity;
            }
            let model = Model::new(spec, 3).unwrap();
            let bs = 32;
            let whole = evaluate(&model, &data, bs, Loss::CATEGORICAL).unwrap()[0];
            let (mut loss, mut acc, mut count) = (0f32, 0f32, 0f32);
            for start in (0..data.len()).step_by(bs) {
                let end = (start + bs).min(data.len());
                let rest = if start == 0 {
                    data.clone()
                } else {
                    data.split_at(start).unwrap().1
                };
                let batch = if end < data.len() {
                    rest.split_at(end - start).unwrap().0
                } else {
                    rest
                };
                let s = evaluate(&model, &batch, bs, Loss::CATEGORICAL).unwrap()[0];
                let b = (end - start) as f32;
                loss += s.loss * b;
                acc += s.accuracy * b;
                count += b;
            }
            let what = format!("hidden {hidden}, kernel {kernel:?}, activity {activity:?}");
            assert_eq!(
                whole.loss.to_bits(),
                (loss / count).to_bits(),
                "loss, {what}"
            );
            assert!(
                (whole.accuracy - acc / count).abs() < 1e-6,
                "accuracy {} against {}, {what}",
                whole.accuracy,
                acc / count
            );
        }
    }
}
