"""Fixtures for the element-wise and normalisation layers (fixtures/keras_elem/), made by real Keras.

Every Keras 3 case: model.keras and model.h5 (the initial model, compiled with Adam(0.01) and
categorical_crossentropy), inputs.csv (rows of each sample's values, channels last, row-major),
predictions.csv (model.predict), train.csv (inputs + integer label) and, where the case trains,
fit.json: after load_model(model.keras).fit(shuffle=False, epochs=3, batch_size=8): the loss per
epoch, the predictions on inputs.csv and every layer's weights {layer: [values of each weight, in
Keras's order]}.

  elementwise   Input(3,4,2) -> Rescaling(per-channel scale, offset) -> Dense(4) -> ReLU(max_value,
                negative_slope, threshold) -> LayerNormalization(axis=3) -> Identity -> Dense(4, gelu)
                -> Softmax(axis=-1) -> Flatten -> Dense(3, softmax). Trains.
  activations   Input(6) -> Dense(5, X) for X in elu, selu, softplus, softsign, tanh, exponential,
                swish, gelu, relu6, hard_silu; Activation(silu), Dense(3) -> Softmax(). Trains.
  normalization Input(4) -> Normalization(adapted) -> Dense(5, relu) -> Normalization(mean, variance
                given, invert=True) -> Dense(3, softmax). Trains.
  norm_image    Input(3,4,2) -> Normalization(axis=-1, adapted) -> Dropout(0.5, noise_shape=(None,1,1,1))
                -> Flatten -> Normalization(mean=0.5, variance=4.0) -> Dense(3, softmax). Inference.
  embedding     Input(5) -> Embedding(10, 4) -> Flatten -> Dense(3, softmax); integer inputs. Trains
                with SGD(0.1, momentum=0.9).
  layer_scale   Input(3,4) -> Dense(4) -> ConvNeXt's LayerScale(0.5, 4) -> Flatten -> Dense(3, softmax).
                Trains.
  bn_image      Input(4,5,3) -> BatchNormalization(axis=3, momentum=0.9) -> Dense(2, tanh) ->
                BatchNormalization(axis=-1) -> Flatten -> Dense(3, softmax). Trains (moving statistics).
  k2_layers     tf.keras 2 .h5: Input(4) -> Rescaling(0.5, 0.1) -> Normalization(adapted) -> Dense(5, elu)
                -> ReLU(max_value=2) -> Dense(5, selu) -> Dense(5, softplus) -> Dense(5, softsign) ->
                Dense(5, gelu) -> Dense(5, swish) -> Dense(3) -> Softmax(). Inference.
  k2_image      tf.keras 2 .h5: Input(4,5,3) -> BatchNormalization(axis=3) -> LayerNormalization(axis=3)
                -> Flatten -> Embedding-free Dense(3, softmax). Inference.
  k2_embedding  tf.keras 2 .h5: Input(5) -> Embedding(10, 4) -> Flatten -> Dense(3, softmax). Inference.

Run: python-check/run-venv python-check/make_fixtures_elem.py
"""

import shutil

import numpy as np

from common import FIXTURES, keras2, keras3, write_csv, write_json

ROWS = 24
EPOCHS = 3


def case_dir(case):
    d = FIXTURES / "keras_elem" / case
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_elem.py:{what} (keras {k.__version__})\n")


def weights_by_layer(model):
    return {l.name: [np.asarray(w).ravel().tolist() for w in l.get_weights()] for l in model.layers}


def save_case(k, d, model, x, y, train=True, formats=("keras", "h5"), sgd=False):
    """Saves the model and its data; trains a reloaded copy when `train` (with Adam(0.01), or
    SGD(0.1, momentum=0.9) when `sgd`)."""
    opt = (lambda: k.optimizers.SGD(0.1, momentum=0.9)) if sgd else (lambda: k.optimizers.Adam(0.01))
    model.compile(loss="categorical_crossentropy", optimizer=opt(), metrics=["accuracy"])
    for f in formats:
        model.save(d / f"model.{f}")
    n = int(np.prod(x.shape[1:]))
    flat = x.reshape(len(x), n)
    write_csv(d / "inputs.csv", [f"x{i}" for i in range(n)], flat)
    write_csv(d / "predictions.csv", [f"p{i}" for i in range(3)], model.predict(x, verbose=0))
    write_csv(d / "train.csv", [f"x{i}" for i in range(n)] + ["label"],
              [list(r) + [int(c)] for r, c in zip(flat, y)])
    if not train:
        return
    m = k.models.load_model(d / "model.keras")
    m.compile(loss="categorical_crossentropy", optimizer=opt(), metrics=["accuracy"])
    h = m.fit(x, np.eye(3)[y], epochs=EPOCHS, batch_size=8, shuffle=False, verbose=0)
    write_json(d / "fit.json", {
        "epochs": EPOCHS, "batch_size": 8, "optimizer": m.optimizer.__class__.__name__,
        "loss": [float(v) for v in h.history["loss"]],
        "predictions": m.predict(x, verbose=0).tolist(),
        "weights": weights_by_layer(m),
    })


def data(seed, shape, scale=1.0):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(ROWS, *shape)) * scale).round(3).astype(np.float32)
    y = rng.integers(0, 3, size=ROWS)
    return x, y


def start(k, seed):
    k.backend.clear_session()
    k.utils.set_random_seed(seed)


def elementwise():
    k = keras3()
    start(k, 1001)
    L = k.layers
    d = case_dir("elementwise")
    model = k.Sequential([
        k.Input((3, 4, 2)),
        L.Rescaling(scale=[0.5, 2.0], offset=[0.1, -0.2], name="rescale"),
        L.Dense(4, name="d1"),
        L.ReLU(max_value=3.0, negative_slope=0.1, threshold=0.2, name="relu"),
        L.LayerNormalization(axis=3, name="ln"),
        L.Identity(name="ident"),
        L.Dense(4, activation="gelu", name="d2"),
        L.Softmax(axis=-1, name="sm_inner"),
        L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    x, y = data(1001, (3, 4, 2))
    save_case(k, d, model, x, y)
    source(d, "elementwise", k)


def activations():
    k = keras3()
    start(k, 1002)
    L = k.layers
    d = case_dir("activations")
    init = dict(bias_initializer=k.initializers.RandomNormal(mean=0.3, stddev=0.3, seed=2))
    acts = ["elu", "selu", "softplus", "softsign", "tanh", "exponential", "swish", "gelu", "relu6",
            "hard_silu"]
    layers = [k.Input((6,))]
    for a in acts:
        layers.append(L.Dense(5, activation=a, name=f"d_{a}",
                              kernel_initializer=k.initializers.RandomUniform(-0.8, 0.8, seed=3), **init))
    layers += [L.Activation("silu", name="act_silu"), L.Dense(3, name="logits"), L.Softmax(name="sm")]
    model = k.Sequential(layers)
    x, y = data(1002, (6,))
    save_case(k, d, model, x, y)
    source(d, "activations", k)


def normalization():
    k = keras3()
    start(k, 1003)
    L = k.layers
    d = case_dir("normalization")
    x, y = data(1003, (4,), scale=3.0)
    x = x + np.array([1.0, -2.0, 0.5, 4.0], dtype=np.float32)
    norm = L.Normalization(name="norm")
    norm.adapt(x)
    model = k.Sequential([
        k.Input((4,)), norm, L.Dense(5, activation="relu", name="d1"),
        L.Normalization(mean=[0.5, 1.0, 0.0, 2.0, 0.25], variance=[1.0, 4.0, 0.25, 9.0, 0.0], invert=True,
                        name="denorm"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    save_case(k, d, model, x, y)
    source(d, "normalization", k)


def norm_image():
    k = keras3()
    start(k, 1004)
    L = k.layers
    d = case_dir("norm_image")
    x, y = data(1004, (3, 4, 2), scale=2.0)
    norm = L.Normalization(axis=-1, name="norm")
    norm.adapt(x)
    model = k.Sequential([
        k.Input((3, 4, 2)), norm, L.Dropout(0.5, noise_shape=(None, 1, 1, 1), name="drop"),
        L.Flatten(name="flat"), L.Normalization(mean=0.5, variance=4.0, name="scalar"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    save_case(k, d, model, x, y, train=False)
    source(d, "norm_image", k)


def embedding_case(k, case, seed, **save):
    """Input(5) -> Embedding(10, 4) -> Flatten -> Dense(3, softmax) on integer inputs."""
    start(k, seed)
    L = k.layers
    d = case_dir(case)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, size=(ROWS, 5)).astype(np.float32)
    y = rng.integers(0, 3, size=ROWS)
    model = k.Sequential([
        k.Input((5,)), L.Embedding(10, 4, name="emb"), L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    save_case(k, d, model, x, y, **save)
    source(d, case, k)


def embedding():
    # SGD: Keras's Adam squares an Embedding's sparse gradient row by row before adding up the
    # rows a batch picks twice, which this tool does not reproduce (it refuses Adam there).
    embedding_case(keras3(), "embedding", 1005, sgd=True)


def layer_scale():
    k = keras3()
    start(k, 1006)
    L = k.layers
    from keras.src.applications.convnext import LayerScale

    d = case_dir("layer_scale")
    model = k.Sequential([
        k.Input((3, 4)), L.Dense(4, name="d1"), LayerScale(0.5, 4, name="scale"), L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    x, y = data(1006, (3, 4))
    save_case(k, d, model, x, y)
    source(d, "layer_scale", k)


def bn_image():
    k = keras3()
    start(k, 1007)
    L = k.layers
    d = case_dir("bn_image")
    model = k.Sequential([
        k.Input((4, 5, 3)), L.BatchNormalization(axis=3, momentum=0.9, name="bn1"), L.Dense(2, activation="tanh", name="d1"),
        L.BatchNormalization(axis=-1, name="bn2"), L.Flatten(name="flat"),
        L.Dense(3, activation="softmax", name="out"),
    ])
    x, y = data(1007, (4, 5, 3), scale=2.0)
    x = x + np.array([1.0, -1.0, 3.0], dtype=np.float32)
    save_case(k, d, model, x, y)
    source(d, "bn_image", k)


def k2_layers():
    k = keras2()
    start(k, 1008)
    L = k.layers
    d = case_dir("k2_layers")
    x, y = data(1008, (4,), scale=3.0)
    norm = L.Normalization(name="norm")
    norm.adapt(x)
    layers = [k.Input((4,)), L.Rescaling(0.5, 0.1, name="rescale"), norm,
              L.Dense(5, activation="elu", name="d_elu"), L.ReLU(max_value=2.0, name="relu")]
    for a in ["selu", "softplus", "softsign", "gelu", "swish"]:
        layers.append(L.Dense(5, activation=a, name=f"d_{a}"))
    layers += [L.Dense(3, name="logits"), L.Softmax(name="sm")]
    model = k.Sequential(layers)
    save_case(k, d, model, x, y, train=False, formats=("h5",))
    source(d, "k2_layers", k)


def k2_image():
    k = keras2()
    start(k, 1009)
    L = k.layers
    d = case_dir("k2_image")
    x, y = data(1009, (4, 5, 3), scale=2.0)
    model = k.Sequential([
        k.Input((4, 5, 3)), L.BatchNormalization(axis=3, name="bn"), L.LayerNormalization(axis=3, name="ln"),
        L.Flatten(name="flat"), L.Dense(3, activation="softmax", name="out"),
    ])
    # Moving statistics and gammas away from their initial values.
    rng = np.random.default_rng(1009)
    bn = model.get_layer("bn")
    bn.set_weights([rng.uniform(0.5, 1.5, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(0.5, 2, 3)])
    ln = model.get_layer("ln")
    ln.set_weights([rng.uniform(0.5, 1.5, 3), rng.normal(size=3)])
    save_case(k, d, model, x, y, train=False, formats=("h5",))
    source(d, "k2_image", k)


def k2_embedding():
    embedding_case(keras2(), "k2_embedding", 1010, train=False, formats=("h5",))


if __name__ == "__main__":
    import sys

    todo = sys.argv[1:] or ["elementwise", "activations", "normalization", "norm_image", "embedding",
                            "layer_scale", "bn_image", "k2_layers", "k2_image", "k2_embedding"]
    for name in todo:
        globals()[name]()
        print("made", name)
