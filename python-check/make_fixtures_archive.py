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
- Optimizer state (optimizer_case; train.csv: 64 rows x0..x3,label): compiled, fitted 2 epochs
  (batch 16, shuffle=False), saved; case.json "optimizer_variables" is optimizer.variables as saved
  (optimizer/vars/<i> of model.weights.h5) and "after_one_more_epoch" what load_model('model.keras')
  + fit(epochs=1, same arguments) reaches, with the optimizer variables then:
  - adam_batchnorm: Dense(6, relu) -> BatchNormalization -> Dense(3, softmax), Adam(0.01): no
    optimizer slots for the moving statistics (non-trainable);
  - sgd_momentum_frozen: Dense(6, relu, trainable=False) -> Dense(5, tanh) -> Dense(3, softmax),
    SGD(0.05, momentum=0.9): Keras builds slots for the trainable variables only;
  - adam_frozen_after_fit: Dense(6, relu) -> Dense(3, softmax), Adam(0.01), the first layer frozen
    after the fit without a re-compile: the file holds the slots of all four variables, and Keras's
    load_model skips them (with a warning) and continues with a fresh Adam.

Archives are made reproducible exactly as make_fixtures_more.py does (pinned_save_time).
"""

import json
import warnings

import numpy as np

from common import keras3, one_hot, p_header, random_inputs, write_csv, x_header
from common import versions
from make_fixtures_more import (KERAS3_VERSIONS, case_dir, class_data, fresh_sessions, keras_archive,
                                max_diff, named_weights, optimizer_variables, pinned_save_time,
                                write_case_json)

SCRIPT = "python-check/make_fixtures_archive.py"
INPUT_ROWS = 20
OPT_ROWS, OPT_BATCH, OPT_EPOCHS = 64, 16, 2


def write_source(d, function, dists):
    (d / "SOURCE").write_text(f"{SCRIPT}:{function} ({versions(*dists)})\n")


def save_case(case, k, model, seed, description, compiled, extra=None, function="keras_archive_fixtures"):
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
        **(extra(d) if extra else {}),
    }
    write_case_json(d, data)
    write_source(d, f"{function}/{case}", KERAS3_VERSIONS)
    print(f"keras_archive/{case}: {reload}")


def optimizer_case(k, case, seed, layers, make_optimizer, description, freeze_after_fit=None):
    """A model fitted OPT_EPOCHS epochs and saved with its optimizer's variables; then Keras's own
    continuation of the saved file: load_model + one more epoch."""
    fresh_sessions(k)
    k.utils.set_random_seed(seed)
    model = k.Sequential([k.Input((4,)), *layers(k)])
    model.compile(optimizer=make_optimizer(k), loss="categorical_crossentropy", metrics=["accuracy"])
    X, y = class_data(seed, OPT_ROWS, 3)
    T = one_hot(y, 3).astype(np.float32)
    fit_args = dict(batch_size=OPT_BATCH, shuffle=False, verbose=0)
    model.fit(X, T, epochs=OPT_EPOCHS, **fit_args)
    if freeze_after_fit is not None:
        # no re-compile: the optimizer keeps the variables it was built with
        model.layers[freeze_after_fit].trainable = False
    saved_vars = optimizer_variables(model.optimizer)

    def extra(d):
        write_csv(d / "train.csv", x_header(4) + ["label"], [list(x) + [int(v)] for x, v in zip(X, y)])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m2 = k.models.load_model(str(d / "model.keras"))
        skipped = [str(w.message) for w in caught if "Skipping variable loading for optimizer" in str(w.message)]
        restored = optimizer_variables(m2.optimizer)
        if not skipped:
            assert [v["values"] for v in restored] == [v["values"] for v in saved_vars], case
        h = m2.fit(X, T, epochs=1, **fit_args)
        return {
            "train": {"file": "train.csv", "rows": OPT_ROWS, "fed_as": "one-hot float32 labels (N x 3)"},
            "compile": {"optimizer_class": model.optimizer.__class__.__name__,
                        "optimizer_config": model.optimizer.get_config(),
                        "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
            "fit": {"epochs": OPT_EPOCHS, "batch_size": OPT_BATCH, "shuffle": False},
            "trainable_layers": [layer.name for layer in model.layers if layer.trainable],
            "optimizer_variables": saved_vars,
            "load_model": {"restores_optimizer": not skipped, "warnings": skipped,
                           "optimizer_variables_after_load": len(restored)},
            "after_one_more_epoch": {
                "how": "m = load_model('model.keras'); m.fit(X, T, epochs=1, batch_size=%d, shuffle=False)"
                       % OPT_BATCH,
                "weights": named_weights(m2),
                "history": {key: [float(v) for v in vals] for key, vals in h.history.items()},
                "optimizer_variables": optimizer_variables(m2.optimizer),
            },
        }

    save_case(case, k, model, seed, description, True, extra, "optimizer_case")


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

    L, O = k.layers, k.optimizers
    optimizer_case(k, "adam_batchnorm", 503,
                   lambda k: [L.Dense(6, activation="relu"), L.BatchNormalization(), L.Dense(3, activation="softmax")],
                   lambda k: O.Adam(learning_rate=0.01),
                   "Input(4) -> Dense(6, relu) -> BatchNormalization -> Dense(3, softmax); Adam(0.01), 2 epochs")
    optimizer_case(k, "sgd_momentum_frozen", 504,
                   lambda k: [L.Dense(6, activation="relu", trainable=False), L.Dense(5, activation="tanh"),
                              L.Dense(3, activation="softmax")],
                   lambda k: O.SGD(learning_rate=0.05, momentum=0.9),
                   "Input(4) -> Dense(6, relu, trainable=False) -> Dense(5, tanh) -> Dense(3, softmax); "
                   "SGD(0.05, momentum=0.9), 2 epochs")
    optimizer_case(k, "adam_frozen_after_fit", 505,
                   lambda k: [L.Dense(6, activation="relu"), L.Dense(3, activation="softmax")],
                   lambda k: O.Adam(learning_rate=0.01),
                   "Input(4) -> Dense(6, relu) -> Dense(3, softmax); Adam(0.01), 2 epochs, then the first "
                   "layer frozen without a re-compile", freeze_after_fit=0)


if __name__ == "__main__":
    keras_archive_fixtures()
