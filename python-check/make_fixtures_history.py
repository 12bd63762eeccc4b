#!/usr/bin/env python3
"""Regenerates fixtures/metrics/history/ (run by hand, never by the tests).

    python-check/run-venv python-check/make_fixtures_history.py

What Keras 3's `fit` records in `history.history` for a model compiled with several metrics and
given validation data: Input(3) -> Dense(8, relu) -> Dense(3, softmax), compile(Adam(0.02),
categorical_crossentropy, metrics=["accuracy", "mse", MeanAbsoluteError()]). model0.h5 before any fit;
train.csv and val.csv (f0..f2, the class 0/1/2 in "label"); history.json: fit(epochs=3,
batch_size=16, shuffle=False, validation_data=val) as `history.history` (every key, per epoch).
"""

import os

import numpy as np

from common import keras3, write_json
from make_fixtures_metrics import data, write_rows

OUT = "fixtures/metrics/history"


def main():
    keras = keras3()
    keras.utils.set_random_seed(7)
    x, y = data(7, 96, 3)
    xv, yv = data(8, 40, 3)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.02), loss="categorical_crossentropy",
              metrics=["accuracy", "mse", keras.metrics.MeanAbsoluteError()])
    os.makedirs(OUT, exist_ok=True)
    m.save(f"{OUT}/model0.h5")
    write_rows(f"{OUT}/train.csv", ["f0", "f1", "f2", "label"], x, [[v] for v in y])
    write_rows(f"{OUT}/val.csv", ["f0", "f1", "f2", "label"], xv, [[v] for v in yv])
    h = m.fit(x, keras.utils.to_categorical(y, 3), epochs=3, batch_size=16, shuffle=False,
              validation_data=(xv, keras.utils.to_categorical(yv, 3)), verbose=0)
    write_json(f"{OUT}/history.json", {k: [float(v) for v in vs] for k, vs in h.history.items()})


if __name__ == "__main__":
    main()
