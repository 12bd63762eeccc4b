#!/usr/bin/env python3
"""Regenerates fixtures/keras_archive/ (run by hand, never by the tests): Dense-only Keras 3 models saved
as .keras, .h5 and .weights.h5, the ground truth for reading Keras 3's own files.

    python-check/run-venv python-check/make_fixtures_archive.py

Cases (fixtures/keras_archive/<case>/: model.keras, model.h5, model.weights.h5, inputs.csv,
predictions.csv, case.json, SOURCE):
- dense_sgd: Input(4) -> Dense(6, relu) -> Dense(5, tanh) -> Dense(3, softmax), compiled with
  SGD(0.05), fitted 3 epochs (so the archive holds optimizer variables with iteration > 0).
- dense_named_uncompiled: Dense(7, relu, name="hidden") -> Dense(3, softmax, name="head"), never
  compiled: the weights file still names its groups by class (layers/dense, layers/dense_1), and
  config.json has no compile_config.

Archives are made reproducible exactly as make_fixtures_more.py does (pinned_save_time).
"""

import json

import numpy as np

from common import keras3, one_hot, p_header, random_inputs, write_csv, x_header
from make_fixtures_more import (KERAS3_VERSIONS, case_dir, class_data, fresh_sessions, keras_archive,
                                max_diff, pinned_save_time, write_case_json, write_source)

INPUT_ROWS = 20


def save_case(case, k, model, seed, description, compiled):
    d = case_dir("keras_archive", case)
    with pinned_save_time():
        model.save(str(d / "model.keras"))
        model.save_weights(str(d / "model.weights.h5"))
        model.save(str(d / "model.h5"))
    inputs = random_inputs(seed, INPUT_ROWS, 4)
    preds = np.asarray(model.predict(inputs, verbose=0))
    write_csv(d / "inputs.csv", x_header(4), inputs)
    write_csv(d / "predictions.csv", p_header(preds.shape[1]), preds)
    reload = {}
    for name in ("model.keras", "model.h5"):
        m2 = k.models.load_model(str(d / name))
        reload[name] = max_diff(m2.predict(inputs, verbose=0), preds)
    m2 = k.models.model_from_json(model.to_json())
    m2.load_weights(str(d / "model.weights.h5"))
    reload["model.weights.h5"] = max_diff(m2.predict(inputs, verbose=0), preds)
    assert all(v <= 1e-6 for v in reload.values()), reload
    data = {
        "case": case,
        "description": description,
        "versions": {n: v for n, v in (s.split(" ") for s in
                                      [__import__("common").versions(x) for x in KERAS3_VERSIONS])},
        "layer_names": [layer.name for layer in model.layers],
        "layer_classes": [layer.__class__.__name__ for layer in model.layers],
        "learning_rate": float(model.optimizer.learning_rate.numpy()) if compiled else None,
        "optimizer_iterations": int(model.optimizer.iterations.numpy()) if compiled else None,
        "weights": [[np.asarray(w).tolist() for w in layer.get_weights()] for layer in model.layers],
        "inputs": "inputs.csv: random_inputs(%d, %d, 4)" % (seed, INPUT_ROWS),
        "predictions": "predictions.csv: model.predict(inputs)",
        "reload_max_abs_diff": reload,
        "files": {"model.keras": keras_archive(d / "model.keras")},
    }
    write_case_json(d, data)
    write_source(d, f"keras_archive_fixtures/{case}", KERAS3_VERSIONS)
    print(f"keras_archive/{case}: {reload}")


def keras_archive_fixtures():
    k = keras3()
    case_dir("keras_archive")

    fresh_sessions(k)
    k.utils.set_random_seed(501)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(6, activation="relu"),
                          k.layers.Dense(5, activation="tanh"), k.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=k.optimizers.SGD(learning_rate=0.05), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    X, y = class_data(501, 64, 3)
    model.fit(X, one_hot(y, 3), epochs=3, batch_size=16, shuffle=False, verbose=0)
    save_case("dense_sgd", k, model, 501,
              "Input(4) -> Dense(6, relu) -> Dense(5, tanh) -> Dense(3, softmax); SGD(0.05), 3 epochs", True)

    fresh_sessions(k)
    k.utils.set_random_seed(502)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(7, activation="relu", name="hidden"),
                          k.layers.Dense(3, activation="softmax", name="head")])
    save_case("dense_named_uncompiled", k, model, 502,
              "Input(4) -> Dense(7, relu, name='hidden') -> Dense(3, softmax, name='head'); never compiled", False)


if __name__ == "__main__":
    keras_archive_fixtures()
