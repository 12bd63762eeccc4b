#!/usr/bin/env python3
"""Regenerates fixtures/tfkeras2_optimizer/ (run by hand, never by the tests): tf.keras 2 (tf_keras 2.21)
models fitted with one optimizer each and saved with their optimizer's state, the ground truth for
continuing tf.keras 2's optimizer state (issue 18).

    python-check/run-venv python-check/make_fixtures_tfkeras2_opt.py

Each case (fixtures/tfkeras2_optimizer/<case>/): Input(4) -> Dense(6, relu) -> Dense(3, softmax),
compiled with the case's optimizer and categorical_crossentropy, fitted EPOCHS_BEFORE epochs on
train.csv (48 rows x0..x3,label; batch 16, shuffle=False), saved as model.h5 and model.keras. Then
tf.keras's own continuation of each file: load_model + fit(epochs=EPOCHS_AFTER, same arguments);
case.json "after" holds the weights it reaches from model.h5, "after_keras" from model.keras, and
"optimizer_weights" the saved variables' names and shapes (model.h5's optimizer_weights order).
"""

import json
import warnings

import h5py
import numpy as np

from common import keras2, one_hot, versions, write_csv, x_header
from make_fixtures_more import (case_dir, class_data, fresh_sessions, named_weights, pinned_save_time,
                                write_case_json)

SCRIPT = "python-check/make_fixtures_tfkeras2_opt.py"
ROWS, BATCH, EPOCHS_BEFORE, EPOCHS_AFTER = 48, 16, 2, 3

CASES = {
    "sgd": lambda O: O.SGD(learning_rate=0.05),
    "sgd_momentum": lambda O: O.SGD(learning_rate=0.05, momentum=0.9),
    "sgd_nesterov": lambda O: O.SGD(learning_rate=0.05, momentum=0.8, nesterov=True),
    "adam": lambda O: O.Adam(learning_rate=0.01),
    "adam_amsgrad": lambda O: O.Adam(learning_rate=0.01, amsgrad=True),
    "adamw": lambda O: O.AdamW(learning_rate=0.01, weight_decay=0.01),
    "adamax": lambda O: O.Adamax(learning_rate=0.01),
    "nadam": lambda O: O.Nadam(learning_rate=0.01),
    "rmsprop": lambda O: O.RMSprop(learning_rate=0.01),
    "rmsprop_momentum_centered": lambda O: O.RMSprop(learning_rate=0.01, momentum=0.5, centered=True),
    "adagrad": lambda O: O.Adagrad(learning_rate=0.05),
    "adadelta": lambda O: O.Adadelta(learning_rate=0.5),
    "lion": lambda O: O.Lion(learning_rate=0.003),
    "adam_clipnorm": lambda O: O.Adam(learning_rate=0.01, clipnorm=0.5),
    "ftrl": lambda O: O.Ftrl(learning_rate=0.05),
}


def optimizer_weights(path):
    with h5py.File(path) as f:
        g = f["optimizer_weights"]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        return [{"name": n, "shape": list(g[n].shape), "dtype": str(g[n].dtype)} for n in names]


def make_case(k, case, seed, make_optimizer):
    fresh_sessions(k)
    k.utils.set_random_seed(seed)
    L = k.layers
    model = k.Sequential([L.InputLayer(input_shape=(4,)), L.Dense(6, activation="relu"),
                          L.Dense(3, activation="softmax")])
    model.compile(optimizer=make_optimizer(k.optimizers), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    X, y = class_data(seed, ROWS, 3)
    T = one_hot(y, 3).astype(np.float32)
    fit_args = dict(batch_size=BATCH, shuffle=False, verbose=0)
    model.fit(X, T, epochs=EPOCHS_BEFORE, **fit_args)
    d = case_dir("tfkeras2_optimizer", case)
    with pinned_save_time(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save(str(d / "model.h5"))
        model.save(str(d / "model.keras"))
    write_csv(d / "train.csv", x_header(4) + ["label"], [list(x) + [int(v)] for x, v in zip(X, y)])
    after = {}
    for name in ("model.h5", "model.keras"):
        fresh_sessions(k)
        m2 = k.models.load_model(str(d / name))
        m2.fit(X, T, epochs=EPOCHS_AFTER, **fit_args)
        after[name] = named_weights(m2)
    (d / "SOURCE").write_text(f"{SCRIPT}:make_case ({versions('tf-keras', 'tensorflow-cpu')})\n")
    write_case_json(d, {
        "optimizer_config": model.optimizer.get_config(),
        "train": {"file": "train.csv", "rows": ROWS, "fed_as": "one-hot float32 labels (N x 3)"},
        "fit": {"epochs_before": EPOCHS_BEFORE, "epochs_after": EPOCHS_AFTER, "batch_size": BATCH,
                "shuffle": False},
        "iterations": int(model.optimizer.iterations.numpy()),
        "optimizer_weights": optimizer_weights(d / "model.h5"),
        "how": "m = tf_keras.models.load_model(FILE); m.fit(X, T, epochs=%d, batch_size=%d, shuffle=False)"
               % (EPOCHS_AFTER, BATCH),
        "after": after["model.h5"],
        "after_keras": after["model.keras"],
    })


def main():
    k = keras2()
    case_dir("tfkeras2_optimizer")
    for i, (case, make) in enumerate(CASES.items()):
        make_case(k, case, 700 + i, make)
        print(case)


if __name__ == "__main__":
    main()
