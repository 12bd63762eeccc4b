#!/usr/bin/env python3
"""Regenerates fixtures/labels/ (run by hand, never by the tests).

    python-check/run-venv python-check/make_fixtures_labels.py

Keras-made models that store no class names (plain Keras 3 .h5 files), and what Keras gives on data whose
labels are not written as the outputs' indices:

  strings  Input(3) -> Dense(8, relu) -> Dense(5, softmax), categorical_crossentropy + accuracy, fitted 30
           epochs on classes named ant, bee, cat, dog, eel (output k is CLASSES[k]); eval.csv holds string
           labels of three of the five classes only (no ant, no cat). expected.json: Keras's evaluate with
           the labels mapped through CLASSES (the order classes.txt gives, one per line).
  floats   the same model; eval.csv's labels are the integers 1 and 2 written as "1.0" / "2.0" (no class 0);
           expected.json: Keras's evaluate on to_categorical([1, 2, ...], 5).
  binary   Input(3) -> Dense(4, relu) -> Dense(1, sigmoid), binary_crossentropy + accuracy, fitted;
           inputs.csv and expected.json: Keras's predict (the probability of class 1) per row.
"""

import numpy as np

from common import keras3, write_json

OUT = "fixtures/labels"
CLASSES = ["ant", "bee", "cat", "dog", "eel"]


def data(seed, n, k):
    rs = np.random.RandomState(seed)
    centers = rs.uniform(-3, 3, (k, 3))
    y = rs.randint(0, k, n)
    x = centers[y] + rs.normal(0, 0.7, (n, 3))
    return x.astype(np.float32), y


def write_rows(path, header, x, labels):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row, lab in zip(x, labels):
            f.write(",".join(repr(float(v)) for v in row) + ("," + lab if lab is not None else "") + "\n")


def fitted(k, units, loss, x, targets, seed):
    keras = keras3()
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8 if units > 1 else 4, activation="relu"),
                          keras.layers.Dense(units, activation="softmax" if units > 1 else "sigmoid")])
    m.compile(optimizer=keras.optimizers.Adam(0.02), loss=loss, metrics=["accuracy"])
    m.fit(x, targets, epochs=30, batch_size=32, verbose=0)
    return m


def main():
    import os

    keras = keras3()
    x, y = data(1, 300, 5)
    m = fitted(keras, 5, "categorical_crossentropy", x, keras.utils.to_categorical(y, 5), 1)
    for case in ["strings", "floats"]:
        os.makedirs(f"{OUT}/{case}", exist_ok=True)
        m.save(f"{OUT}/{case}/model.h5")
    # strings: only bee, dog, eel.
    xe, ye = data(1, 400, 5)
    keep = np.isin(ye, [1, 3, 4])
    xe, ye = xe[keep][:40], ye[keep][:40]
    write_rows(f"{OUT}/strings/eval.csv", ["f0", "f1", "f2", "species"], xe, [CLASSES[i] for i in ye])
    with open(f"{OUT}/strings/classes.txt", "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    loss, acc = m.evaluate(xe, keras.utils.to_categorical(ye, 5), verbose=0)
    write_json(f"{OUT}/strings/expected.json", {"loss": float(loss), "accuracy": float(acc), "classes": CLASSES})
    # floats: 1.0 and 2.0 only, both classes predicted imperfectly on noisier rows.
    rs = np.random.RandomState(5)
    yf = rs.randint(1, 3, 32)
    xf = (x[:5].mean(0) + rs.normal(0, 2.0, (32, 3))).astype(np.float32)
    write_rows(f"{OUT}/floats/eval.csv", ["f0", "f1", "f2", "y"], xf, [f"{float(v)}" for v in yf])
    loss, acc = m.evaluate(xf, keras.utils.to_categorical(yf, 5), verbose=0)
    write_json(f"{OUT}/floats/expected.json", {"loss": float(loss), "accuracy": float(acc)})
    # binary
    xb, yb = data(3, 200, 2)
    mb = fitted(keras, 1, "binary_crossentropy", xb, yb.astype(np.float32), 3)
    os.makedirs(f"{OUT}/binary", exist_ok=True)
    mb.save(f"{OUT}/binary/model.h5")
    rs = np.random.RandomState(7)
    xi = (xb[:20] + rs.normal(0, 1.5, (20, 3))).astype(np.float32)
    write_rows(f"{OUT}/binary/inputs.csv", ["f0", "f1", "f2"], xi, [None] * len(xi))
    p = mb.predict(xi, verbose=0)[:, 0]
    write_json(f"{OUT}/binary/expected.json", {"p": [float(v) for v in p],
                                               "predicted": [int(v > 0.5) for v in p]})


if __name__ == "__main__":
    main()
