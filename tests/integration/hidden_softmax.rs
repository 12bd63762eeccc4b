//! A softmax inside a model (a hidden `Dense(activation="softmax")`) passes its gradient on in
//! training, as Keras's does (fixtures/keras_softmax, made by python-check/make_fixtures_softmax.py).

use crate::common::*;
use keras_transfer::checkpoint::load_model;

#[test]
fn a_hidden_softmax_trains_as_keras_trains_it() {
    let dir = tempdir();
    let out = dir.path().join("tuned.keras");
    let model = fixture("keras_softmax/model.keras");
    let train = fixture("keras_softmax/train.csv");
    finetune_in_order(dir.path(), &model, &train, 3, 8, &out);
    let got = load_model(&out).unwrap();
    let want = read_json(&fixture("keras_softmax/case.json"));
    for (layer, w) in got.weights.iter().zip(want["final"].as_array().unwrap()) {
        for (g, k) in layer.iter().zip(w.as_array().unwrap()) {
            let d = max_abs_diff_f64(g, &flat_f64s(k));
            // 3 epochs of float32 SGD: Keras's and this tool's summation orders differ by ~1e-7.
            assert!(d < 1e-5, "{d}");
        }
    }
}
