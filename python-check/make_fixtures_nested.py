"""Fixtures for nested models (fixtures/keras_nested/), made by real Keras: a Sequential or Functional
model used as a layer of an outer model, `base(inputs, training=False)`, as Keras's guide "Transfer
learning & fine-tuning" builds it.

  seq            Keras 3: Input(4) -> base = Sequential[Dense(6, relu), BatchNormalization, Dropout(0.5)]
                 called with training=False -> Dense(3, softmax) "head"; model.keras + model.h5,
                 inputs.csv, predictions.csv, summary.json (Keras's summary rows and totals).
  seq_frozen     the same with base.trainable = False.
  func           Keras 3: Input(5) -> base = Functional[Dense(4, relu), Dense(4, tanh) -> Add ->
                 BatchNormalization] with training=False -> Dense(2, softmax).
  func_frozen    the same with base.trainable = False.
  nd             Keras 3: Input((3, 4, 2)) -> base = Sequential[Dense(5, relu) on every (row, column),
                 BatchNormalization, Flatten] with training=False -> Dense(3, softmax).
  outer_seq      Keras 3: Sequential[Input(4), base = Sequential[Dense(5, relu), BatchNormalization],
                 Dense(2, softmax)] (a nested model in a Sequential).
  k2_seq         tf.keras 2 .h5: the seq architecture (tf.keras names nested weights 'dense/kernel:0').

Every case but k2_seq also holds train.csv and fit_adam.json / fit_sgd.json: load_model, compile
(Adam(0.01), SGD(0.05, momentum=0.9)), fit 10 epochs, batch 8, shuffle=False: the loss per epoch,
the predictions after, and every weight after (`weights`: per flattened layer, its weights in
`LayerSpec::weights` order). The fitted models use Dropout(0.0) where the predicted one has a
rate: Keras 3.15 runs a nested model in training mode in fit even when called with training=False
(measured, docs/architecture-graph.md), and no tool reproduces TensorFlow's dropout masks.

Run: python-check/run-venv python-check/make_fixtures_nested.py
"""

import json
import shutil

import numpy as np

from common import FIXTURES, keras2, keras3, write_csv, write_json

ROWS = 24


def case_dir(case):
    d = FIXTURES / "keras_nested" / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_nested.py:{what} (keras {k.__version__})\n")


def seq_base(k, rate):
    L = k.layers
    return k.Sequential([k.Input((4,)), L.Dense(6, activation="relu"),
                         L.BatchNormalization(momentum=0.9), L.Dropout(rate)], name="base")


def build_seq(k, rate):
    base = seq_base(k, rate)
    x = k.Input((4,), name="x")
    out = k.layers.Dense(3, activation="softmax", name="head")(base(x, training=False))
    return k.Model(x, out, name="outer"), base, 4, 3


def build_func(k, rate):
    L = k.layers
    i = k.Input((5,), name="bx")
    a = L.Dense(4, activation="relu", name="ba")(i)
    b = L.Dense(4, activation="tanh", name="bb")(i)
    s = L.BatchNormalization(momentum=0.9, name="bn")(L.Add(name="badd")([a, b]))
    base = k.Model(i, s, name="base")
    x = k.Input((5,), name="x")
    h = L.Dropout(rate, name="drop")(base(x, training=False))
    out = L.Dense(2, activation="softmax", name="head")(h)
    return k.Model(x, out, name="outer"), base, 5, 2


def build_nd(k, rate):
    L = k.layers
    base = k.Sequential([k.Input((3, 4, 2)), L.Dense(5, activation="relu"),
                         L.BatchNormalization(momentum=0.9), L.Dropout(rate), L.Flatten()], name="base")
    x = k.Input((3, 4, 2), name="x")
    out = L.Dense(3, activation="softmax", name="head")(base(x, training=False))
    return k.Model(x, out, name="outer"), base, 24, 3


def build_outer_seq(k, rate):
    L = k.layers
    base = k.Sequential([k.Input((4,)), L.Dense(5, activation="relu"),
                         L.BatchNormalization(momentum=0.9)], name="base")
    model = k.Sequential([k.Input((4,)), base, L.Dense(2, activation="softmax", name="head")], name="outer")
    return model, base, 4, 2


def flat_layers(model):
    """The layers as keras-transfer flattens them: a nested model's layers in its place."""
    out = []
    for layer in model.layers:
        if isinstance(layer, type(model).__mro__[-3]) and hasattr(layer, "layers"):
            out.extend(flat_layers(layer))
        elif type(layer).__name__ != "InputLayer":
            out.append(layer)
    return out


def layer_weights(model):
    return [[np.asarray(w).tolist() for w in l.get_weights()] for l in flat_layers(model)]


def summary_of(model):
    rows = [{"name": l.name, "class": type(l).__name__, "params": int(l.count_params()),
             "trainable": int(sum(np.prod(w.shape) for w in l.trainable_weights))}
            for l in model.layers if type(l).__name__ != "InputLayer"]
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"rows": rows, "total": int(model.count_params()), "trainable": trainable}


def make(case, build, frozen=False, seed=0):
    k = keras3()
    k.backend.clear_session()
    k.utils.set_random_seed(1000 + seed)
    rng = np.random.default_rng(1000 + seed)
    d = case_dir(case)
    rate = 0.5
    model, base, width, classes = build(k, rate)
    shape = model.inputs[0].shape[1:]
    # Moving statistics away from their initial values, so that the inference path is tested.
    x = rng.normal(size=(ROWS, width)).round(3)
    y = rng.integers(0, classes, size=ROWS)
    onehot = np.eye(classes)[y]
    xs = x.reshape((ROWS, *shape))
    model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.SGD(0.05))
    model.fit(xs, onehot, epochs=2, batch_size=8, shuffle=False, verbose=0)
    if frozen:
        base.trainable = False
    model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.Adam(0.01), metrics=["accuracy"])
    model.save(d / "model.keras")
    model.save(d / "model.h5")
    write_csv(d / "inputs.csv", [f"x{i}" for i in range(width)], x)
    write_csv(d / "predictions.csv", [f"p{i}" for i in range(classes)], model.predict(xs, verbose=0))
    write_json(d / "summary.json", summary_of(model))
    source(d, case, k)

    # The fitted twin: the same weights, Dropout(0.0) (see the module's doc).
    fit_model, fit_base, _, _ = build(k, 0.0)
    fit_model.set_weights(model.get_weights())
    if frozen:
        fit_base.trainable = False
    fit_model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.Adam(0.01), metrics=["accuracy"])
    fit_model.save(d / "fit_model.keras")
    write_csv(d / "train.csv", [f"x{i}" for i in range(width)] + ["label"],
              [list(r) + [int(c)] for r, c in zip(x, y)])
    for name, opt in [("adam", k.optimizers.Adam(0.01)), ("sgd", k.optimizers.SGD(0.05, momentum=0.9))]:
        m = k.models.load_model(d / "fit_model.keras")
        m.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
        h = m.fit(xs, onehot, epochs=10, batch_size=8, shuffle=False, verbose=0)
        write_json(d / f"fit_{name}.json", {
            "optimizer": m.optimizer.get_config() | {"learning_rate": float(m.optimizer.learning_rate.numpy())},
            "loss": [float(v) for v in h.history["loss"]],
            "predictions": m.predict(xs, verbose=0).tolist(),
            "weights": layer_weights(m),
        })


def k2_seq():
    k = keras2()
    k.backend.clear_session()
    k.utils.set_random_seed(1100)
    rng = np.random.default_rng(1100)
    d = case_dir("k2_seq")
    model, _, width, classes = build_seq(k, 0.5)
    x = rng.normal(size=(ROWS, width)).round(3)
    y = rng.integers(0, classes, size=ROWS)
    model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.SGD(0.05))
    model.fit(x, np.eye(classes)[y], epochs=2, batch_size=8, shuffle=False, verbose=0)
    model.save(d / "model.h5")
    write_csv(d / "inputs.csv", [f"x{i}" for i in range(width)], x)
    write_csv(d / "predictions.csv", [f"p{i}" for i in range(classes)], model.predict(x, verbose=0))
    source(d, "k2_seq", k)


if __name__ == "__main__":
    make("seq", build_seq, seed=1)
    make("seq_frozen", build_seq, frozen=True, seed=2)
    make("func", build_func, seed=3)
    make("func_frozen", build_func, frozen=True, seed=4)
    make("nd", build_nd, seed=5)
    make("outer_seq", build_outer_seq, seed=6)
    k2_seq()
    for p in sorted((FIXTURES / "keras_nested").rglob("*")):
        if p.is_file():
            print(p.relative_to(FIXTURES), p.stat().st_size)
