"""Fixtures for Functional graphs (fixtures/keras_graph/), made by real Keras:

  merges      Keras 3: two inputs a (3,), b (2,); Add, Subtract, Multiply, Average, Maximum, Minimum,
              Concatenate (axis=1 and -1), a frozen Dense, BatchNormalization; model.keras + model.h5,
              inputs.csv (a's columns then b's), predictions.csv; then load_model + fit(shuffle=False)
              for 10 epochs with Adam and with SGD(momentum=0.9): train.csv, fit_adam.json, fit_sgd.json
              (loss per epoch, predictions after).
  k2_merge    tf.keras 2 .h5: Input(3) -> Dense(4, relu), Dense(4, tanh) -> Add -> Concatenate with the
              input -> Dense(2, softmax).
  shared      (refused) a Dense layer called twice.
  two_outputs (refused) a model with two outputs.
  nested      (refused for now) a Sequential base with BatchNormalization called with training=False.

Run: python-check/run-venv python-check/make_fixtures_graph.py
"""

import json
import shutil

import numpy as np

from common import FIXTURES, keras2, keras3, write_csv, write_json

ROWS = 24


def case_dir(case):
    d = FIXTURES / "keras_graph" / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_graph.py:{what} (keras {k.__version__})\n")


def build_merges(k):
    L = k.layers
    a = k.Input((3,), name="a")
    b = k.Input((2,), name="b")
    xa = L.Dense(4, activation="relu", name="da")(a)
    xb = L.Dense(4, activation="tanh", name="db")(b)
    add = L.Add(name="add")([xa, xb])
    sub = L.Subtract(name="sub")([xa, xb])
    mul = L.Multiply(name="mul")([xa, xb])
    avg = L.Average(name="avg")([xa, xb, add])
    mx = L.Maximum(name="max")([xa, xb])
    mn = L.Minimum(name="min")([sub, mul])
    cat = L.Concatenate(axis=1, name="cat")([add, avg, mx, mn])
    cat2 = L.Concatenate(name="cat2")([cat, a])
    h = L.Dense(5, activation="relu", name="dh")(cat2)
    h = L.BatchNormalization(name="bn")(h)
    out = L.Dense(3, activation="softmax", name="out")(h)
    return k.Model([a, b], out, name="merges")


def merges():
    k = keras3()
    k.backend.clear_session()
    k.utils.set_random_seed(901)
    d = case_dir("merges")
    model = build_merges(k)
    model.get_layer("db").trainable = False  # the file's trainable flag
    rng = np.random.default_rng(901)
    x = rng.normal(size=(ROWS, 5)).round(3)
    y = rng.integers(0, 3, size=ROWS)
    model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.Adam(0.01), metrics=["accuracy"])
    model.save(d / "model.keras")
    model.save(d / "model.h5")
    p = model.predict([x[:, :3], x[:, 3:]], verbose=0)
    write_csv(d / "inputs.csv", [f"x{i}" for i in range(5)], x)
    write_csv(d / "predictions.csv", [f"p{i}" for i in range(3)], p)
    write_csv(d / "train.csv", [f"x{i}" for i in range(5)] + ["label"],
              [list(r) + [int(c)] for r, c in zip(x, y)])
    onehot = np.eye(3)[y]
    for name, opt in [("adam", k.optimizers.Adam(0.01)), ("sgd", k.optimizers.SGD(0.05, momentum=0.9))]:
        m = k.models.load_model(d / "model.keras")
        m.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
        h = m.fit([x[:, :3], x[:, 3:]], onehot, epochs=10, batch_size=8, shuffle=False, verbose=0)
        write_json(d / f"fit_{name}.json", {
            "optimizer": m.optimizer.get_config() | {"learning_rate": float(m.optimizer.learning_rate.numpy())},
            "loss": [float(v) for v in h.history["loss"]],
            "predictions": m.predict([x[:, :3], x[:, 3:]], verbose=0).tolist(),
        })
    source(d, "merges", k)


def k2_merge():
    k = keras2()
    k.backend.clear_session()
    k.utils.set_random_seed(902)
    L = k.layers
    d = case_dir("k2_merge")
    x_in = k.Input((3,), name="x")
    s = L.Add()([L.Dense(4, activation="relu")(x_in), L.Dense(4, activation="tanh")(x_in)])
    out = L.Dense(2, activation="softmax")(L.Concatenate()([s, x_in]))
    model = k.Model(x_in, out)
    model.save(d / "model.h5")
    x = np.random.default_rng(902).normal(size=(ROWS, 3)).round(3)
    write_csv(d / "inputs.csv", [f"x{i}" for i in range(3)], x)
    write_csv(d / "predictions.csv", ["p0", "p1"], model.predict(x, verbose=0))
    source(d, "k2_merge", k)


def refused():
    k = keras3()
    L = k.layers
    k.backend.clear_session()
    k.utils.set_random_seed(903)
    x = k.Input((3,), name="x")
    shared = L.Dense(3, name="shared")
    y = shared(shared(x))
    d = case_dir("shared")
    k.Model(x, y).save(d / "model.keras")
    (d / "expect.txt").write_text("layer 'shared'\n")
    source(d, "refused", k)

    k.backend.clear_session()
    x = k.Input((3,), name="x")
    d = case_dir("two_outputs")
    k.Model(x, [L.Dense(2, name="o1")(x), L.Dense(2, name="o2")(x)]).save(d / "model.keras")
    (d / "expect.txt").write_text("2 outputs\n")
    source(d, "refused", k)

    k.backend.clear_session()
    base = k.Sequential([k.Input((4,)), L.Dense(6, activation="relu"), L.BatchNormalization()], name="base")
    x = k.Input((4,), name="x")
    out = L.Dense(3, activation="softmax", name="head")(base(x, training=False))
    d = case_dir("nested")
    k.Model(x, out).save(d / "model.keras")
    (d / "expect.txt").write_text("Sequential\n")
    source(d, "refused", k)


if __name__ == "__main__":
    merges()
    k2_merge()
    refused()
    for p in sorted((FIXTURES / "keras_graph").rglob("*")):
        if p.is_file():
            print(p.relative_to(FIXTURES), p.stat().st_size)
