#!/usr/bin/env python3
"""Regenerates fixtures/keras_softmax/ (run by hand, never by the tests): a Keras 3 model with a softmax
on a hidden layer, where the gradient must flow through the softmax.

    python-check/run-venv python-check/make_fixtures_softmax.py

Input(4) -> Dense(5, softmax) -> Dense(3, softmax), SGD(0.5), categorical_crossentropy, saved compiled
(never fitted) as model.keras; train.csv (32 rows, x0..x3, y); case.json: the weights after
load_model + fit(epochs=3, batch_size=8, shuffle=False), per layer [kernel, bias] flattened.
"""

import json
import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from common import versions

OUT = pathlib.Path(__file__).resolve().parent.parent / "fixtures/keras_softmax"


def main():
    import keras
    keras.utils.set_random_seed(11)
    rng = np.random.RandomState(5)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="softmax", name="hidden"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy")
    OUT.mkdir(parents=True, exist_ok=True)
    model.save(OUT / "model.keras")
    with open(OUT / "train.csv", "w") as f:
        f.write("x0,x1,x2,x3,y\n")
        for row, label in zip(x, y):
            f.write(",".join(repr(float(v)) for v in row) + f",{label}\n")
    fitted = keras.models.load_model(OUT / "model.keras")
    fitted.fit(x, keras.utils.to_categorical(y, 3), epochs=3, batch_size=8, shuffle=False, verbose=0)
    case = {"final": [[w.astype(np.float64).ravel().tolist() for w in layer.get_weights()]
                      for layer in fitted.layers]}
    (OUT / "case.json").write_text(json.dumps(case) + "\n")
    (OUT / "SOURCE").write_text(
        f"python-check/make_fixtures_softmax.py ({versions('keras', 'tensorflow-cpu', 'numpy')})\n")


if __name__ == "__main__":
    main()
