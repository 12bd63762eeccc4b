"""Fixtures for the convolution layers (fixtures/keras_conv/), made by real Keras:

  cnn2d      Keras 3: Input (6, 7, 3) -> Conv2D(4, 3, strides 2, same, relu) (the asymmetric case:
             6 rows pad 0 before and 1 after) -> DepthwiseConv2D(3, depth_multiplier 2, same, tanh)
             -> Conv2D(6, 3, same, dilation 2, groups 2, relu) -> SeparableConv2D(4, 2, depth
             multiplier 2, elu) -> Conv2D(3, (1, 2), no bias, linear) -> Flatten -> Dense(3, softmax);
             model.keras + model.h5, train.csv (the 16 images' H*W*C values row-major, then the
             label), predictions.csv; then load_model + fit(shuffle=False, batch 8) for 4 epochs with
             SGD(momentum) and Adam: fit_sgd.json, fit_adam.json (optimizer config, loss per epoch,
             weights per layer after).
  cnn1d      Keras 3: Input (12, 2) -> Conv1D(3, 3, causal, dilation 2, relu) -> Conv1D(4, 3,
             strides 2, same, tanh) -> DepthwiseConv1D(2, depth_multiplier 2) -> SeparableConv1D(3, 3,
             same, dilation 2, relu) -> Flatten -> Dense(2, softmax); the same files as cnn2d.
  k2_cnn     tf.keras 2 .h5: Input (6, 7, 3) -> Conv2D(4, 3, strides 2, same, relu) ->
             DepthwiseConv2D(2, depth_multiplier 2) -> SeparableConv2D(3, 2, same) -> Flatten ->
             Dense(2, softmax); train.csv, predictions.csv.
  refused/*  channels_first (a Conv2D), kernel_regularizer (a Conv2D), Conv3D: model.keras and
             expect.txt (what the refusal names).

Run: python-check/run-venv python-check/make_fixtures_conv.py
"""

import shutil

import numpy as np

from common import FIXTURES, keras2, keras3, write_csv, write_json

ROWS = 16
EPOCHS = 4
BATCH = 8


def case_dir(case):
    d = FIXTURES / "keras_conv" / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_conv.py:{what} (keras {k.__version__})\n")


def data(seed, shape, classes):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS,) + shape).round(2)
    y = rng.integers(0, classes, size=ROWS)
    return x, y


def write_data(d, x, y):
    flat = x.reshape(len(x), -1)
    write_csv(d / "train.csv", [f"x{i}" for i in range(flat.shape[1])] + ["label"],
              [list(r) + [int(c)] for r, c in zip(flat, y)])


def weights_json(m):
    return [[w.tolist() for w in l.get_weights()] for l in m.layers]


def fits(k, d, x, y, classes):
    onehot = np.eye(classes)[y]
    for name, opt in [("sgd", k.optimizers.SGD(0.05, momentum=0.9)), ("adam", k.optimizers.Adam(0.01))]:
        m = k.models.load_model(d / "model.keras")
        m.compile(loss="categorical_crossentropy", optimizer=opt, metrics=["accuracy"])
        h = m.fit(x, onehot, epochs=EPOCHS, batch_size=BATCH, shuffle=False, verbose=0)
        write_json(d / f"fit_{name}.json", {
            "optimizer": m.optimizer.get_config() | {"learning_rate": float(m.optimizer.learning_rate.numpy())},
            "epochs": EPOCHS,
            "batch_size": BATCH,
            "loss": [float(v) for v in h.history["loss"]],
            "weights": weights_json(m),
        })


def keras3_case(case, seed, shape, classes, layers):
    k = keras3()
    k.backend.clear_session()
    k.utils.set_random_seed(seed)
    d = case_dir(case)
    model = k.Sequential([k.Input(shape)] + layers(k.layers) + [
        k.layers.Flatten(), k.layers.Dense(classes, activation="softmax")], name=case)
    model.compile(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])
    x, y = data(seed, shape, classes)
    model.save(d / "model.keras")
    model.save(d / "model.h5")
    write_data(d, x, y)
    write_csv(d / "predictions.csv", [f"p{i}" for i in range(classes)], model.predict(x, verbose=0))
    fits(k, d, x, y, classes)
    source(d, case, k)


def cnn2d():
    keras3_case("cnn2d", 1101, (6, 7, 3), 3, lambda L: [
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="c1"),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="tanh", name="dw"),
        L.Conv2D(6, 3, padding="same", dilation_rate=2, groups=2, activation="relu", name="grouped"),
        L.SeparableConv2D(4, 2, depth_multiplier=2, activation="elu", name="sep"),
        L.Conv2D(3, (1, 2), use_bias=False, name="nobias"),
    ])


def cnn1d():
    keras3_case("cnn1d", 1102, (12, 2), 2, lambda L: [
        L.Conv1D(3, 3, padding="causal", dilation_rate=2, activation="relu", name="causal"),
        L.Conv1D(4, 3, strides=2, padding="same", activation="tanh", name="strided"),
        L.DepthwiseConv1D(2, depth_multiplier=2, name="dw1"),
        L.SeparableConv1D(3, 3, padding="same", dilation_rate=2, activation="relu", name="sep1"),
    ])


def k2_cnn():
    k = keras2()
    k.backend.clear_session()
    k.utils.set_random_seed(1103)
    L = k.layers
    d = case_dir("k2_cnn")
    model = k.Sequential([
        k.Input((6, 7, 3)),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        L.DepthwiseConv2D(2, depth_multiplier=2),
        L.SeparableConv2D(3, 2, padding="same"),
        L.Flatten(),
        L.Dense(2, activation="softmax"),
    ])
    model.save(d / "model.h5")
    x, y = data(1103, (6, 7, 3), 2)
    write_data(d, x, y)
    write_csv(d / "predictions.csv", ["p0", "p1"], model.predict(x, verbose=0))
    source(d, "k2_cnn", k)


def refused():
    k = keras3()
    L = k.layers
    cases = [
        ("channels_first", lambda: L.Conv2D(2, 3, data_format="channels_first"), (3, 6, 7), "channels_first"),
        ("kernel_regularizer", lambda: L.Conv2D(2, 3, kernel_regularizer="l2"), (6, 7, 3), "kernel_regularizer"),
        ("conv3d", lambda: L.Conv3D(2, 2), (3, 4, 5, 1), "Conv3D"),
    ]
    for case, layer, shape, needle in cases:
        k.backend.clear_session()
        d = case_dir(f"refused/{case}")
        m = k.Sequential([k.Input(shape), layer(), L.Flatten(), L.Dense(2, activation="softmax")])
        m.save(d / "model.keras")
        (d / "expect.txt").write_text(needle + "\n")
        source(d, "refused", k)


if __name__ == "__main__":
    cnn2d()
    cnn1d()
    k2_cnn()
    refused()
    for p in sorted((FIXTURES / "keras_conv").rglob("*")):
        if p.is_file():
            print(p.relative_to(FIXTURES), p.stat().st_size)
