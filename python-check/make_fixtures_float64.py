#!/usr/bin/env python3
"""Regenerates fixtures/keras_float64/ (run by hand, never by the tests).

    python-check/run-venv python-check/make_fixtures_float64.py

A float64 MLP, Input((4,)) -> Dense(6, relu) -> BatchNormalization(momentum=0.9) -> Dense(3, softmax),
with fixed full-precision float64 weights (not float32 values: a float32 round trip anywhere would
show at about 1e-8), run as Keras runs a float64 model end to end: keras.config.set_floatx("float64"),
so that fit's data, loss, metrics and learning rate are float64 too (under the default floatx float32
Keras would cast the inputs and the loss to float32; docs/keras-training.md#float64).

Cases:
  sgd   built under set_floatx("float64"); compiled SGD(0.05) + categorical_crossentropy
  adam  every layer given dtype="float64" (floatx float32 at build time; fitted under floatx float64);
        compiled Adam(0.01)
  k2    tf.keras 2 under tf_keras.backend.set_floatx("float64"), the sgd case's weights, saved as model.h5
For sgd and adam: model.keras, model.h5 and model.weights.h5 saved untrained; inputs.csv (20 rows of
full-precision doubles) and predictions.csv (model.predict); train.csv (100 rows); one epoch of
fit(batch_size=32, shuffle=False) recorded as case.json "final" (the weights after it) and "history".
"""

import sys

import numpy as np

from common import keras2, keras3, one_hot, p_header, write_csv, x_header
from make_fixtures_more import (KERAS2_VERSIONS, KERAS3_VERSIONS, case_dir, fresh_sessions, h5_file_tree, jsonable,
                                max_diff, named_weights, pinned_save_time, versions, weights_diff, write_case_json,
                                write_source)

SCRIPT_FN = "python-check/make_fixtures_float64.py"
ROWS, INPUT_ROWS = 100, 20


def initial_weights(seed):
    rs = np.random.RandomState(seed)
    return [rs.uniform(-0.8, 0.8, (4, 6)), rs.uniform(-0.1, 0.1, 6),  # dense
            1.0 + rs.uniform(-0.2, 0.2, 6), rs.uniform(-0.1, 0.1, 6),  # gamma, beta
            rs.uniform(-0.5, 0.5, 6), 1.0 + rs.uniform(0.0, 0.5, 6),  # moving mean, variance
            rs.uniform(-0.8, 0.8, (6, 3)), rs.uniform(-0.1, 0.1, 3)]  # dense_1


def data(seed):
    rs = np.random.RandomState(seed)
    centers = rs.uniform(-2, 2, (3, 4))
    y = rs.randint(0, 3, ROWS)
    X = centers[y] + rs.normal(0, 1.0, (ROWS, 4))  # full-precision doubles
    inputs = rs.uniform(-3, 3, (INPUT_ROWS, 4))
    return X, y, inputs


def build(k, per_layer):
    L = k.layers
    kw = {"dtype": "float64"} if per_layer else {}
    return k.Sequential([k.Input((4,), dtype="float64"), L.Dense(6, activation="relu", **kw),
                         L.BatchNormalization(momentum=0.9, **kw), L.Dense(3, activation="softmax", **kw)])


def keras3_case(case, seed, per_layer, optimizer, description):
    k = keras3()
    fresh_sessions(k)
    k.utils.set_random_seed(seed)
    d = case_dir("keras_float64", case)
    if not per_layer:
        k.config.set_floatx("float64")
    model = build(k, per_layer)
    k.config.set_floatx("float64")
    try:
        initial = initial_weights(seed)
        model.set_weights(initial)
        model.compile(optimizer=optimizer(k), loss="categorical_crossentropy", metrics=["accuracy"])
        dtypes = sorted({str(np.asarray(v).dtype) for v in model.weights})
        assert dtypes == ["float64"], dtypes
        with pinned_save_time():
            model.save(str(d / "model.keras"))
            model.save_weights(str(d / "model.weights.h5"))
            model.save(str(d / "model.h5"))
        X, y, inputs = data(seed)
        write_csv(d / "train.csv", x_header(4) + ["label"], [list(x) + [int(t)] for x, t in zip(X, y)])
        write_csv(d / "inputs.csv", x_header(4), inputs)
        preds = np.asarray(model.predict(inputs, verbose=0))
        assert preds.dtype == np.float64, preds.dtype
        write_csv(d / "predictions.csv", p_header(3), preds)
        reload = {}
        for name in ("model.keras", "model.h5"):
            m2 = k.models.load_model(str(d / name))
            reload[name] = max_diff(m2.predict(inputs, verbose=0), preds)
        m2 = build(k, per_layer)
        m2.load_weights(str(d / "model.weights.h5"))
        reload["model.weights.h5"] = max_diff(m2.predict(inputs, verbose=0), preds)
        assert max(reload.values()) <= 1e-15, reload
        start = named_weights(model)
        h = model.fit(X, one_hot(y, 3).astype(np.float64), epochs=1, batch_size=32, shuffle=False, verbose=0)
        final = named_weights(model)
        after = np.asarray(model.predict(inputs, verbose=0))
        # the same epoch in float32 lands elsewhere: what the float64 fixture can tell apart
        k.config.set_floatx("float32")
        fresh_sessions(k)
        k.config.set_floatx("float32")
        m32 = k.Sequential([k.Input((4,)), k.layers.Dense(6, activation="relu"),
                            k.layers.BatchNormalization(momentum=0.9), k.layers.Dense(3, activation="softmax")])
        m32.set_weights([w.astype(np.float32) for w in initial])
        m32.compile(optimizer=optimizer(k), loss="categorical_crossentropy", metrics=["accuracy"])
        m32.fit(X.astype(np.float32), one_hot(y, 3), epochs=1, batch_size=32, shuffle=False, verbose=0)
        f32_gap = weights_diff(final, named_weights(m32))
    finally:
        k.config.set_floatx("float32")
    data_ = {
        "case": case,
        "description": description,
        "producer": f"keras {k.__version__}",
        "versions": {n: versions(n).split(" ", 1)[1] for n in KERAS3_VERSIONS},
        "floatx": "float64 (keras.config.set_floatx) while compiling, predicting and fitting",
        "weight_dtypes": dtypes,
        "compile": {"optimizer": model.optimizer.__class__.__name__,
                    "optimizer_config": jsonable(model.optimizer.get_config()),
                    "loss": "categorical_crossentropy", "metrics": ["accuracy"]},
        "train": {"file": "train.csv", "rows": ROWS, "labels": "integer 0..2, fed one-hot float64"},
        "fit": {"epochs": 1, "batch_size": 32, "shuffle": False},
        "initial": start,
        "final": final,
        "history": {key: [float(v) for v in vals] for key, vals in h.history.items()},
        "predictions_after_fit": values_list(after),
        "float32_fit_max_abs_diff": f32_gap,
        "reload_max_abs_diff": reload,
        "files": {"model.h5": {"tree": h5_file_tree(d / "model.h5")},
                  "model.weights.h5": {"tree": h5_file_tree(d / "model.weights.h5")}},
    }
    write_case_json(d, data_)
    write_source_f(d, case, KERAS3_VERSIONS)
    print(f"keras_float64/{case}: loss {data_['history']['loss']}, float32 fit differs by {f32_gap:.3g}")


def values_list(a):
    return np.asarray(a, dtype=np.float64).tolist()


def write_source_f(d, case, dists):
    (d / "SOURCE").write_text(f"{SCRIPT_FN}:keras_float64_fixtures/{case} ({versions(*dists)})\n")


def keras2_case(seed=601):
    k2 = keras2()
    k2.backend.clear_session()
    k2.backend.set_floatx("float64")
    try:
        d = case_dir("keras_float64", "k2")
        L = k2.layers
        model = k2.Sequential([L.Dense(6, activation="relu", input_shape=(4,)), L.BatchNormalization(momentum=0.9),
                               L.Dense(3, activation="softmax")])
        model.set_weights(initial_weights(seed))
        model.compile(optimizer=k2.optimizers.SGD(learning_rate=0.05), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        model.save(str(d / "model.h5"))
        _, _, inputs = data(seed)
        write_csv(d / "inputs.csv", x_header(4), inputs)
        preds = np.asarray(model.predict(inputs, verbose=0))
        assert preds.dtype == np.float64, preds.dtype
        write_csv(d / "predictions.csv", p_header(3), preds)
        reload = max_diff(k2.models.load_model(str(d / "model.h5")).predict(inputs, verbose=0), preds)
        assert reload <= 1e-15, reload
        write_case_json(d, {"case": "k2", "producer": f"tf_keras {k2.__version__}",
                            "description": "tf.keras 2 under set_floatx('float64'): Dense(6, relu, input_shape=(4,)), "
                                           "BatchNormalization(momentum=0.9), Dense(3, softmax), the fixed weights "
                                           "initial_weights(601), compiled SGD(0.05); model.save('model.h5')",
                            "weight_dtypes": sorted({str(np.asarray(v).dtype) for v in model.weights}),
                            "reload_max_abs_diff": reload, "files": {"model.h5": {"tree": h5_file_tree(d / "model.h5")}}})
        write_source_f(d, "k2", KERAS2_VERSIONS)
        print("keras_float64/k2 written")
    finally:
        k2.backend.set_floatx("float32")


def keras_float64_fixtures():
    case_dir("keras_float64")
    keras3_case("sgd", 601, False, lambda k: k.optimizers.SGD(learning_rate=0.05),
                "Sequential under keras.config.set_floatx('float64'): Input((4,), float64), Dense(6, relu), "
                "BatchNormalization(momentum=0.9), Dense(3, softmax), weights initial_weights(601); compiled "
                "SGD(0.05) + categorical_crossentropy; one epoch fit(batch_size=32, shuffle=False) on train.csv")
    keras3_case("adam", 602, True, lambda k: k.optimizers.Adam(learning_rate=0.01),
                "The same model with dtype='float64' given to every layer, weights initial_weights(602); compiled "
                "Adam(0.01); one epoch fitted under floatx float64")
    keras2_case()


if __name__ == "__main__":
    keras_float64_fixtures()
