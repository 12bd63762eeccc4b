#!/usr/bin/env python3
"""Regenerates fixtures/metrics/ (run by hand, never by the tests).

    python-check/run-venv python-check/make_fixtures_metrics.py

What Keras 3's evaluate returns for models compiled with several metrics, and for a model saved
uncompiled and compiled at evaluate time:

  several     Input(3) -> Dense(8, relu) -> Dense(3, softmax), compile(Adam(0.02),
              categorical_crossentropy, metrics=["accuracy", "mse", MeanAbsoluteError()]), fitted 20
              epochs; model.h5 and model.keras. eval.csv: features f0..f2 and the class (0, 1, 2) in
              "label". expected.json: evaluate(batch_size=32) as a list (loss, then the metrics in
              compile order) and under Keras's names.
  binary      Input(3) -> Dense(4, relu) -> Dense(1, sigmoid), binary_crossentropy,
              metrics=["accuracy", "mae", "mse"], fitted; model.h5, eval.csv, expected.json as above.
  uncompiled  the `several` model's weights in an uncompiled model (model.h5, model.keras);
              expected.json: compile(loss="categorical_crossentropy", metrics=["accuracy", "mse",
              "mae"]) then evaluate(batch_size=32) on several/eval.csv.
  multilabel  Input(4) -> Dense(8, relu) -> Dense(3, sigmoid), compile(Adam(0.01),
              binary_crossentropy, metrics=["accuracy"]): the multi-label recipe. model0.h5 before
              any fit; train.csv (f0..f3, y0, y1, y2 in 0/1); after fit(epochs=3, batch_size=16,
              shuffle=False): trained.json (weights per layer, history) and model.h5; test.csv and
              expected.json: predict (probabilities) and evaluate of the trained model.
"""

import os

import numpy as np

from common import keras3, write_json

OUT = "fixtures/metrics"


def data(seed, n, k, d=3):
    rs = np.random.RandomState(seed)
    centers = rs.uniform(-2, 2, (k, d))
    y = rs.randint(0, k, n)
    x = centers[y] + rs.normal(0, 1.2, (n, d))
    return x.astype(np.float32), y


def write_rows(path, header, x, labels):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row, lab in zip(x, labels):
            cells = [repr(float(v)) for v in row] + ([str(v) for v in lab] if lab is not None else [])
            f.write(",".join(cells) + "\n")


def evaluated(m, x, y):
    values = m.evaluate(x, y, batch_size=32, verbose=0)
    named = m.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    return {"list": [float(v) for v in values], "named": {k: float(v) for k, v in named.items()}}


def main():
    keras = keras3()
    # several
    keras.utils.set_random_seed(1)
    x, y = data(1, 300, 3)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.02), loss="categorical_crossentropy",
              metrics=["accuracy", "mse", keras.metrics.MeanAbsoluteError()])
    m.fit(x, keras.utils.to_categorical(y, 3), epochs=20, batch_size=32, verbose=0)
    os.makedirs(f"{OUT}/several", exist_ok=True)
    # .keras first: Keras's legacy .h5 save pops the optimizer out of the model's compile config.
    m.save(f"{OUT}/several/model.keras")
    m.save(f"{OUT}/several/model.h5")
    xe, ye = data(2, 77, 3)
    write_rows(f"{OUT}/several/eval.csv", ["f0", "f1", "f2", "label"], xe, [[v] for v in ye])
    write_json(f"{OUT}/several/expected.json", evaluated(m, xe, keras.utils.to_categorical(ye, 3)))
    # uncompiled
    u = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, activation="relu"),
                          keras.layers.Dense(3, activation="softmax")])
    u.set_weights(m.get_weights())
    os.makedirs(f"{OUT}/uncompiled", exist_ok=True)
    u.save(f"{OUT}/uncompiled/model.keras")
    u.save(f"{OUT}/uncompiled/model.h5")
    u.compile(loss="categorical_crossentropy", metrics=["accuracy", "mse", "mae"])
    write_json(f"{OUT}/uncompiled/expected.json", evaluated(u, xe, keras.utils.to_categorical(ye, 3)))
    # binary
    keras.utils.set_random_seed(3)
    xb, yb = data(3, 200, 2)
    b = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
    b.compile(optimizer=keras.optimizers.Adam(0.02), loss="binary_crossentropy",
              metrics=["accuracy", "mae", "mse"])
    b.fit(xb, yb.astype(np.float32), epochs=10, batch_size=32, verbose=0)
    os.makedirs(f"{OUT}/binary", exist_ok=True)
    b.save(f"{OUT}/binary/model.h5")
    xe, ye = data(4, 50, 2)
    write_rows(f"{OUT}/binary/eval.csv", ["f0", "f1", "f2", "label"], xe, [[v] for v in ye])
    write_json(f"{OUT}/binary/expected.json", evaluated(b, xe, ye.astype(np.float32)))
    # multilabel
    keras.utils.set_random_seed(5)
    rs = np.random.RandomState(5)
    xm = rs.normal(0, 1, (120, 4)).astype(np.float32)
    w = rs.normal(0, 1, (4, 3))
    ym = ((xm @ w + rs.normal(0, 0.5, (120, 3))) > 0).astype(np.float32)
    ml = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                           keras.layers.Dense(3, activation="sigmoid")])
    ml.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    os.makedirs(f"{OUT}/multilabel", exist_ok=True)
    ml.save(f"{OUT}/multilabel/model0.h5")
    hdr = ["f0", "f1", "f2", "f3", "y0", "y1", "y2"]
    write_rows(f"{OUT}/multilabel/train.csv", hdr, xm[:90], [[int(v) for v in r] for r in ym[:90]])
    write_rows(f"{OUT}/multilabel/test.csv", hdr, xm[90:], [[int(v) for v in r] for r in ym[90:]])
    h = ml.fit(xm[:90], ym[:90], epochs=3, batch_size=16, shuffle=False, verbose=0)
    ml.save(f"{OUT}/multilabel/model.h5")
    write_json(f"{OUT}/multilabel/trained.json", {
        "weights": [[np.asarray(v).ravel().tolist() for v in l.get_weights()] for l in ml.layers],
        "history": {k: [float(v) for v in vs] for k, vs in h.history.items()},
    })
    p = ml.predict(xm[90:], verbose=0)
    write_json(f"{OUT}/multilabel/expected.json", {
        "p": [[float(v) for v in r] for r in p],
        "evaluate": evaluated(ml, xm[90:], ym[90:]),
    })


if __name__ == "__main__":
    main()
