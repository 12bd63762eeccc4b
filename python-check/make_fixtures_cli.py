#!/usr/bin/env python3
"""Regenerates fixtures/cli/ (run by hand, never by the tests): what Keras 3's load_model + fit does with
files whose settings the command line must keep.

    python-check/run-venv python-check/make_fixtures_cli.py

Cases (fixtures/cli/<case>/: model files, case.json, SOURCE; case.json "final" holds the weights after
load_model("model.keras") + fit(epochs=3, batch_size=32, shuffle=False), per layer [kernel, bias]; Keras
3.15's load_model of a compiled, never fitted .h5 cannot fit, "Unknown variable", so the .h5 twins,
saved from the same model, are checked against the archive's numbers):
- prices: Input(4) -> Dense(8, relu) -> Dense(1), SGD(1e-4), mse, on train.csv (64 rows, x0..x3 and a
  price in the hundreds): the first batch's loss is about 1e5 and Keras trains ("history_loss").
- frozen: the tutorial's 2-5-5-3 MLP with its first Dense layer trainable=False, Adam(0.01), saved
  compiled (never fitted) as model.h5 and model.keras; fitted on the tutorial's problem 2 (rows 0..500):
  the frozen layer keeps its weights.
- warmup: the tutorial's MLP compiled with SGD(CosineDecay(0.0, decay_steps=100, warmup_target=0.02,
  warmup_steps=20)): the learning rate starts at 0. Saved compiled (never fitted) as model.h5 and
  model.keras, fitted on problem 2; inputs.csv and "predictions" (model.predict before the fit).
"""

import numpy as np

from common import blobs_problem, build_mlp, keras3, versions, write_csv, TUTORIAL_LAYERS, x_header
from make_fixtures_more import case_dir, fresh_sessions, pinned_save_time, write_case_json

SCRIPT = "python-check/make_fixtures_cli.py"
EPOCHS, BATCH = 3, 32


def write_source(d, function):
    d.joinpath("SOURCE").write_text(
        f"{SCRIPT}:{function} ({versions('keras', 'tensorflow-cpu', 'scikit-learn', 'numpy', 'h5py')})\n")


def layer_weights(model):
    return [[w.astype(np.float64).tolist() for w in layer.get_weights()] for layer in model.layers
            if layer.get_weights()]


def save_both(model, d):
    """model.keras (reproducible, as make_fixtures_more.py pins it) and model.h5 in d."""
    with pinned_save_time():
        model.save(d / "model.keras")
    model.save(d / "model.h5")


def tutorial_model(k, case, seed, optimizer, frozen=()):
    """A fresh fixtures/cli/CASE folder and the tutorial's MLP drawn from `seed`, its layers `frozen`
    (indices) set trainable=False, compiled with `optimizer` and the tutorial's loss, saved as both."""
    fresh_sessions(k)
    d = case_dir("cli", case)
    k.utils.set_random_seed(seed)
    model = build_mlp(k, 2, TUTORIAL_LAYERS)
    for i in frozen:
        model.layers[i].trainable = False
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    save_both(model, d)
    return d, model


def fit_loaded(k, path, X, Y):
    model = k.models.load_model(path)
    h = model.fit(X, Y, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)
    return model, h.history


def prices(k):
    fresh_sessions(k)
    d = case_dir("cli", "prices")
    rs = np.random.RandomState(11)
    X = (np.round(rs.uniform(-2, 2, (64, 4)) * 64) / 64).astype(np.float32)
    price = np.round(300 + X @ np.array([40.0, -25.0, 10.0, 5.0]) + rs.normal(0, 5, 64)).astype(np.float32)
    write_csv(d / "train.csv", x_header(4) + ["price"], [list(x) + [p] for x, p in zip(X.tolist(), price.tolist())])
    k.utils.set_random_seed(3)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(8, activation="relu"), k.layers.Dense(1)])
    model.compile(optimizer=k.optimizers.SGD(1e-4), loss=k.losses.MeanSquaredError())
    save_both(model, d)
    model, hist = fit_loaded(k, d / "model.keras", X, price)
    write_case_json(d, dict(label="price", epochs=EPOCHS, batch_size=BATCH, shuffle=False,
                            history_loss=hist["loss"], final=layer_weights(model)))
    write_source(d, "prices")


def frozen(k, X, Y):
    d, model = tutorial_model(k, "frozen", 5, k.optimizers.Adam(0.01), frozen=[0])
    initial = layer_weights(model)
    fresh_sessions(k)
    m, _ = fit_loaded(k, d / "model.keras", X, Y)
    final = layer_weights(m)
    assert initial[0] == final[0], "the frozen layer moved"
    write_case_json(d, dict(problem=2, epochs=EPOCHS, batch_size=BATCH, shuffle=False, frozen_layers=[1],
                            initial=initial, final=final))
    write_source(d, "frozen")


def warmup(k, X, Y):
    schedule = k.optimizers.schedules.CosineDecay(0.0, decay_steps=100, warmup_target=0.02, warmup_steps=20)
    d, model = tutorial_model(k, "warmup", 6, k.optimizers.SGD(schedule))
    inputs = X[:5]
    write_csv(d / "inputs.csv", x_header(2), inputs.tolist())
    predictions = model.predict(inputs, verbose=0)
    fresh_sessions(k)
    m, _ = fit_loaded(k, d / "model.keras", X, Y)
    final = layer_weights(m)
    write_case_json(d, dict(problem=2, epochs=EPOCHS, batch_size=BATCH, shuffle=False,
                            predictions=predictions.astype(np.float64).tolist(), final=final))
    write_source(d, "warmup")


def main():
    k = keras3()
    X, Y, _, _ = blobs_problem(2)
    X = X.astype(np.float32)
    prices(k)
    frozen(k, X, Y)
    warmup(k, X, Y)


if __name__ == "__main__":
    main()
