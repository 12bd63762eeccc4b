//! Keras's two-phase fine-tuning recipe (fixtures/twophase, made by
//! python-check/make_fixtures_twophase.py): `finetune --then-epochs` trains the head with the nested
//! base frozen, thaws the base from a named layer, re-compiles with a new Adam and trains on, ending
//! with Keras's weights within 1e-5 and one history holding both phases.

use crate::common::*;
use keras_transfer::load_model;

const TOL: f32 = 1e-5;

fn args<'a>(f: &'a str, t: &'a str) -> Vec<&'a str> {
    vec![
        "finetune",
        "--from",
        f,
        "--train",
        t,
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--no-shuffle",
    ]
}

#[test]
fn the_two_phase_recipe_ends_with_keras_weights_and_one_history() {
    let dir = tempdir();
    let m = fixture("twophase/model.keras");
    let t = fixture("twophase/train.csv");
    let (m, t) = (m.to_str().unwrap(), t.to_str().unwrap());
    // Phase 1 alone (the flags without --then-*) is Keras's first fit.
    let one = dir.path().join("one.keras");
    let mut a = args(m, t);
    a.extend(["--out", one.to_str().unwrap()]);
    ok(&run(dir.path(), &a));
    let want1 = read_json(&fixture("twophase/phase1.json"));
    let got = load_model(&one).unwrap().weights;
    let d = weights_diff(&got, &json_weights(&want1["weights"]));
    assert!(d <= TOL, "phase 1 weights differ from Keras by {d}");
    // Both phases in one command.
    let two = dir.path().join("two.keras");
    let hist = dir.path().join("h.csv");
    let mut a = args(m, t);
    a.extend([
        "--then-unfreeze",
        "d2",
        "--then-lr",
        "0.001",
        "--then-epochs",
        "3",
        "--history",
        hist.to_str().unwrap(),
        "--out",
        two.to_str().unwrap(),
    ]);
    ok(&run(dir.path(), &a));
    let want2 = read_json(&fixture("twophase/phase2.json"));
    let saved = load_model(&two).unwrap();
    let d = weights_diff(&saved.weights, &json_weights(&want2["weights"]));
    assert!(d <= TOL, "phase 2 weights differ from Keras by {d}");
    // d1/bn1 stay frozen, d2/bn2/head train (Keras's flags after `base.layers[2:]` thawed).
    let trainable: Vec<&str> = saved
        .spec
        .layers
        .iter()
        .filter(|l| l.trainable())
        .map(|l| l.name())
        .collect();
    assert_eq!(trainable, ["d2", "bn2", "head"]);
    // The second phase's optimizer is new: 3 epochs x 3 batches, not 18 iterations.
    let state = saved.optimizer_state.unwrap().unwrap();
    assert_eq!(state.iterations, want2["iterations"].as_u64().unwrap());
    // One history: phase 1 then phase 2, each counting epochs from 0 as Keras's two History objects.
    let (header, rows) = read_csv_f64(&hist);
    assert_eq!(header, ["phase", "epoch", "accuracy", "loss"]);
    let mut want_loss = f32s(&want1["history"]["loss"]);
    want_loss.extend(f32s(&want2["history"]["loss"]));
    let got_loss: Vec<f64> = rows.iter().map(|r| r[3]).collect();
    let d = max_abs_diff(&got_loss, &want_loss);
    assert!(d <= TOL, "history losses differ from Keras by {d}");
    let marks: Vec<(f64, f64)> = rows.iter().map(|r| (r[0], r[1])).collect();
    assert_eq!(
        marks,
        [(1., 0.), (1., 1.), (1., 2.), (2., 0.), (2., 1.), (2., 2.)]
    );
}

#[test]
fn the_second_phase_flags_are_checked() {
    let dir = tempdir();
    let m = fixture("twophase/model.keras");
    let t = fixture("twophase/train.csv");
    let (m, t) = (m.to_str().unwrap(), t.to_str().unwrap());
    let mut a = args(m, t);
    a.extend(["--then-lr", "0.001"]);
    assert_fails(&run(dir.path(), &a), 2, &["--then-epochs"]);
    let mut a = args(m, t);
    a.extend(["--then-epochs", "1", "--then-unfreeze", "nope"]);
    assert_fails(&run(dir.path(), &a), 2, &["--then-unfreeze", "nope", "d2"]);
    let mut a = args(m, t);
    a.extend(["--then-epochs", "1", "--then-lr", "-1"]);
    assert_fails(&run(dir.path(), &a), 2, &["--then-lr"]);
    let mut a = args(m, t);
    a.extend(["--then-epochs", "0"]);
    assert_fails(&run(dir.path(), &a), 2, &["--then-epochs"]);
}
