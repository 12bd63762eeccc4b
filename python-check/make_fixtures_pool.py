"""Fixtures for the pooling and shape layers (fixtures/keras_pool/), made by real Keras 3 (TensorFlow
backend, oneDNN off):

  <case>/     one Sequential model per layer setting (MaxPooling1D/2D, AveragePooling1D/2D valid and
              same, the four global poolings with and without keepdims, ZeroPadding1D/2D, Cropping1D/2D,
              Reshape, Permute, UpSampling1D/2D, Flatten on N-D input), ending in Flatten so that the
              output is the layer's own values: model.keras, model.h5, inputs.csv (each sample's values
              in row-major channels-last order), predictions.csv (model.predict), and grads.csv: the
              gradient of sum(predict(x) * u) with respect to x (tf.GradientTape), u in upstream.csv.
              Max-pooling cases draw x from {0, 1, 2} so that windows hold ties.
  ties/       MaxPooling2D(2, strides=1) and GlobalMaxPooling2D on constant inputs: where TensorFlow
              sends the gradient of tied maxima (grads.csv as above).
  train_*/    a Dense on N-D input among pooling and shape layers, then Dense(3, softmax): compiled,
              model.keras + model.h5, train.csv (values + label), then load_model + fit(shuffle=False)
              for 3 epochs with Adam and with SGD(momentum=0.9): fit_adam.json, fit_sgd.json (loss per
              epoch, every weight after, predictions after).
  k2_*/       tf.keras 2 .h5 files of the same layers (predict only).

Run: python-check/run-venv python-check/make_fixtures_pool.py
"""

import shutil

import numpy as np

from common import FIXTURES, keras2, keras3, write_csv, write_json

N = 4
ROOT = FIXTURES / "keras_pool"


def case_dir(case):
    d = ROOT / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_pool.py:{what} (keras {k.__version__})\n")


def header(n, p="x"):
    return [f"{p}{i}" for i in range(n)]


def gradient(model, x, u):
    import tensorflow as tf

    xt = tf.constant(x)
    with tf.GradientTape() as t:
        t.watch(xt)
        s = tf.reduce_sum(model(xt, training=True) * u)
    return t.gradient(s, xt).numpy().reshape(len(x), -1)


def save_case(k, name, shape, layers, rng, ties=False, h5=True):
    k.backend.clear_session()
    L = k.layers
    model = k.Sequential([k.Input(shape)] + layers + [L.Flatten(name="flat")], name=name)
    d = case_dir(name)
    if ties:
        x = rng.integers(0, 3, size=(N,) + shape).astype(np.float32)
    else:
        x = rng.normal(size=(N,) + shape).round(3).astype(np.float32)
    p = model.predict(x, verbose=0)
    u = rng.normal(size=p.shape).round(3).astype(np.float32)
    model.save(d / "model.keras")
    if h5:
        model.save(d / "model.h5")
    flat = x.reshape(N, -1)
    write_csv(d / "inputs.csv", header(flat.shape[1]), flat)
    write_csv(d / "predictions.csv", header(p.shape[1], "p"), p)
    write_csv(d / "upstream.csv", header(p.shape[1], "u"), u)
    write_csv(d / "grads.csv", header(flat.shape[1], "g"), gradient(model, x, u))
    source(d, name, k)
    return model


def predict_cases():
    k = keras3()
    L = k.layers
    rng = np.random.default_rng(701)
    cases = [
        ("max2d_valid", (7, 9, 3), [L.MaxPooling2D((2, 3), strides=(2, 2))], True),
        ("max2d_same", (7, 9, 3), [L.MaxPooling2D(3, strides=2, padding="same")], True),
        ("max2d_same_s1", (5, 6, 2), [L.MaxPooling2D((2, 3), strides=1, padding="same")], True),
        ("avg2d_valid", (7, 9, 3), [L.AveragePooling2D((3, 2), strides=(1, 2))], False),
        ("avg2d_same", (7, 9, 3), [L.AveragePooling2D((3, 2), strides=(2, 3), padding="same")], False),
        ("avg2d_same_big", (5, 4, 2), [L.AveragePooling2D(4, strides=1, padding="same")], False),
        ("max1d_valid", (9, 4), [L.MaxPooling1D(2)], True),
        ("max1d_same", (9, 4), [L.MaxPooling1D(3, strides=2, padding="same")], True),
        ("avg1d_valid", (9, 4), [L.AveragePooling1D(3, strides=2)], False),
        ("avg1d_same", (9, 4), [L.AveragePooling1D(4, strides=3, padding="same")], False),
        ("gap2d", (5, 6, 3), [L.GlobalAveragePooling2D()], False),
        ("gmp2d", (5, 6, 3), [L.GlobalMaxPooling2D()], True),
        ("gap1d_keep", (7, 3), [L.GlobalAveragePooling1D(keepdims=True)], False),
        ("gmp1d", (7, 3), [L.GlobalMaxPooling1D()], True),
        ("gap1d", (7, 3), [L.GlobalAveragePooling1D()], False),
        ("gmp2d_keep", (5, 6, 3), [L.GlobalMaxPooling2D(keepdims=True)], True),
        ("pad2d", (3, 4, 2), [L.ZeroPadding2D(((1, 2), (0, 3)))], False),
        ("pad2d_int", (3, 4, 2), [L.ZeroPadding2D(1)], False),
        ("pad2d_pair", (3, 4, 2), [L.ZeroPadding2D((2, 1))], False),
        ("pad1d", (5, 3), [L.ZeroPadding1D((2, 1))], False),
        ("pad1d_int", (5, 3), [L.ZeroPadding1D(2)], False),
        ("crop2d", (6, 7, 2), [L.Cropping2D(((1, 0), (2, 1)))], False),
        ("crop2d_int", (6, 7, 2), [L.Cropping2D(1)], False),
        ("crop2d_pair", (6, 7, 2), [L.Cropping2D((2, 1))], False),
        ("crop1d", (6, 3), [L.Cropping1D((1, 2))], False),
        ("reshape", (4, 6), [L.Reshape((3, -1, 2))], False),
        ("permute", (3, 4, 2), [L.Permute((3, 1, 2))], False),
        ("reshape_permute", (4, 6), [L.Reshape((2, 12)), L.Permute((2, 1))], False),
        ("up2d", (3, 4, 2), [L.UpSampling2D((2, 3))], False),
        ("up1d", (4, 3), [L.UpSampling1D(3)], False),
    ]
    for name, shape, layers, ties in cases:
        save_case(k, name, shape, layers, rng, ties)
    # Flatten on N-D input, then a Dense layer (the N-D input path of a model).
    k.backend.clear_session()
    k.utils.set_random_seed(702)
    model = k.Sequential([k.Input((4, 5, 3)), L.Flatten(), L.Dense(3, activation="softmax")], name="flatten")
    d = case_dir("flatten")
    x = rng.normal(size=(N, 4, 5, 3)).round(3).astype(np.float32)
    model.save(d / "model.keras")
    model.save(d / "model.h5")
    write_csv(d / "inputs.csv", header(60), x.reshape(N, -1))
    write_csv(d / "predictions.csv", header(3, "p"), model.predict(x, verbose=0))
    source(d, "flatten", k)


def ties():
    """Constant inputs: which of several equal maxima gets the gradient."""
    k = keras3()
    L = k.layers
    for name, layer in [("ties", L.MaxPooling2D(2, strides=1)), ("ties_global", L.GlobalMaxPooling2D()),
                        ("ties_same", L.MaxPooling2D(2, strides=2, padding="same"))]:
        k.backend.clear_session()
        model = k.Sequential([k.Input((3, 3, 1)), layer, L.Flatten()], name=name)
        d = case_dir(name)
        x = np.ones((1, 3, 3, 1), np.float32)
        p = model.predict(x, verbose=0)
        u = np.arange(1, p.shape[1] + 1, dtype=np.float32).reshape(1, -1)
        model.save(d / "model.keras")
        write_csv(d / "inputs.csv", header(9), x.reshape(1, -1))
        write_csv(d / "predictions.csv", header(p.shape[1], "p"), p)
        write_csv(d / "upstream.csv", header(p.shape[1], "u"), u)
        g = gradient(model, x, u)
        write_csv(d / "grads.csv", header(9, "g"), g)
        print(name, "gradient of sum(u * pool(ones)) over the 3x3 input:\n", g.reshape(3, 3))
        source(d, "ties", k)


def train_cases():
    k = keras3()
    L = k.layers
    rng = np.random.default_rng(703)
    cases = [
        ("train_2d", (6, 7, 2), lambda: [
            L.ZeroPadding2D(1, name="pad"),
            L.Dense(4, activation="tanh", name="d1"),
            L.MaxPooling2D(3, strides=2, padding="same", name="maxp"),
            L.UpSampling2D(2, name="up"),
            L.Cropping2D(((1, 0), (0, 1)), name="crop"),
            L.AveragePooling2D(2, strides=1, padding="same", name="avgp"),
            L.Permute((2, 1, 3), name="perm"),
            L.Flatten(name="flat"),
        ]),
        ("train_1d", (10, 3), lambda: [
            L.Dense(5, activation="relu", name="d1"),
            L.MaxPooling1D(2, name="maxp"),
            L.ZeroPadding1D(1, name="pad"),
            L.AveragePooling1D(3, strides=2, padding="same", name="avgp"),
            L.UpSampling1D(2, name="up"),
            L.Cropping1D((1, 0), name="crop"),
            L.Reshape((-1, 5), name="resh"),
            L.GlobalMaxPooling1D(name="gmp"),
        ]),
        ("train_global", (5, 6, 3), lambda: [
            L.Dense(4, activation="sigmoid", name="d1"),
            L.GlobalAveragePooling2D(keepdims=True, name="gap"),
            L.Reshape((4,), name="resh"),
        ]),
    ]
    for name, shape, layers in cases:
        k.backend.clear_session()
        k.utils.set_random_seed(704)
        model = k.Sequential([k.Input(shape)] + layers() + [L.Dense(3, activation="softmax", name="out")],
                             name=name)
        d = case_dir(name)
        n = 24
        x = rng.normal(size=(n,) + shape).round(3).astype(np.float32)
        y = rng.integers(0, 3, size=n)
        model.compile(loss="categorical_crossentropy", optimizer=k.optimizers.Adam(0.01), metrics=["accuracy"])
        model.save(d / "model.keras")
        model.save(d / "model.h5")
        flat = x.reshape(n, -1)
        write_csv(d / "inputs.csv", header(flat.shape[1]), flat)
        write_csv(d / "predictions.csv", header(3, "p"), model.predict(x, verbose=0))
        write_csv(d / "train.csv", header(flat.shape[1]) + ["label"],
                  [list(r) + [int(c)] for r, c in zip(flat, y)])
        onehot = np.eye(3)[y]
        for oname, opt in [("adam", k.optimizers.Adam(0.01)), ("sgd", k.optimizers.SGD(0.05, momentum=0.9))]:
            m = k.models.load_model(d / "model.keras")
            m.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
            h = m.fit(x, onehot, epochs=3, batch_size=8, shuffle=False, verbose=0)
            write_json(d / f"fit_{oname}.json", {
                "optimizer": m.optimizer.get_config() | {"learning_rate": float(m.optimizer.learning_rate.numpy())},
                "loss": [float(v) for v in h.history["loss"]],
                "weights": [w.numpy().ravel().tolist() for w in m.weights],
                "predictions": m.predict(x, verbose=0).tolist(),
            })
        source(d, name, k)


def k2_cases():
    k = keras2()
    L = k.layers
    rng = np.random.default_rng(705)
    cases = [
        ("k2_pool2d", (7, 9, 3), [L.ZeroPadding2D(((1, 0), (2, 1))), L.MaxPooling2D(3, strides=2, padding="same"),
                                  L.AveragePooling2D((2, 1), strides=1, padding="same"), L.Cropping2D((1, 0)),
                                  L.UpSampling2D((1, 2))], True),
        ("k2_pool1d", (9, 4), [L.ZeroPadding1D(1), L.MaxPooling1D(2, padding="same"),
                               L.AveragePooling1D(3, strides=1), L.Cropping1D((0, 1)), L.UpSampling1D(2),
                               L.Reshape((4, -1)), L.Permute((2, 1))], True),
        ("k2_global", (5, 6, 3), [L.GlobalAveragePooling2D(keepdims=True), L.Reshape((3, 1)),
                                  L.GlobalMaxPooling1D()], False),
    ]
    for name, shape, layers, t in cases:
        k.backend.clear_session()
        model = k.Sequential([k.Input(shape)] + layers + [L.Flatten()], name=name)
        d = case_dir(name)
        x = (rng.integers(0, 3, size=(N,) + shape) if t else rng.normal(size=(N,) + shape).round(3)).astype(np.float32)
        model.save(d / "model.h5")
        flat = x.reshape(N, -1)
        p = model.predict(x, verbose=0)
        write_csv(d / "inputs.csv", header(flat.shape[1]), flat)
        write_csv(d / "predictions.csv", header(p.shape[1], "p"), p)
        source(d, name, k)


if __name__ == "__main__":
    if ROOT.exists():
        shutil.rmtree(ROOT)
    predict_cases()
    ties()
    train_cases()
    k2_cases()
    total = 0
    for p in sorted(ROOT.rglob("*")):
        if p.is_file():
            total += p.stat().st_size
    print("keras_pool:", total, "bytes")
