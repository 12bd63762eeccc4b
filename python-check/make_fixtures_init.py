#!/usr/bin/env python3
"""Regenerates fixtures/keras_init/ (run by hand, never by the tests): a Keras 3 model whose layers
carry initializers keras-transfer does not draw from (VarianceScaling with arguments, Orthogonal,
TruncatedNormal, a seeded GlorotUniform), saved as model.keras; the tests convert it and check that
every initializer comes back exactly as Keras wrote it.

    python-check/run-venv python-check/make_fixtures_init.py
"""

import os
import pathlib

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures/keras_init"


def main():
    import keras
    from keras import initializers as I
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,), name="x")
    x = keras.layers.Dense(5, activation="relu", name="vs",
                           kernel_initializer=I.VarianceScaling(scale=2.0, mode="fan_out",
                                                                distribution="uniform"),
                           bias_initializer=I.TruncatedNormal(stddev=0.2))(inputs)
    x = keras.layers.Dense(3, activation="relu", name="orth",
                           kernel_initializer=I.Orthogonal(gain=1.5))(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="seeded",
                                 kernel_initializer=I.GlorotUniform(seed=3))(x)
    model = keras.Model(inputs, outputs)
    OUT.mkdir(parents=True, exist_ok=True)
    model.save(OUT / "model.keras")


if __name__ == "__main__":
    main()
