#!/usr/bin/env python3
"""Fixtures for models nested two levels deep and Keras 3's operations on two tensors
(fixtures/keras_convnext/), made by Keras 3 (tensorflow backend), run by hand, never by the tests:

    python-check/run-venv python-check/make_fixtures_convnext.py [mini stem_frozen tensor_ops]

ConvNeXtTiny itself holds 28 M parameters (110 MB a file: fixtures/keras_apps/convnext_tiny keeps its
config and summary only, and python-check/checks_apps.py predicts it at check time). These cases are
Keras's own ConvNeXt builder (keras.src.applications.convnext.ConvNeXt, the function ConvNeXtTiny
calls) at a small size, depths [1, 1, 1, 1] and projection dims [8, 8, 8, 8] on 32x32x3 images: the
same structure (the Normalization pre-stem, the Sequential stem and downsampling blocks inside the
Functional application, the 7x7 Conv2D with groups == channels, LayerNormalization and Dense on
4-D tensors, gelu, LayerScale, Activation("linear"), `inputs + x` recorded as keras.src.ops.numpy
Add on two tensors), under the transfer-learning guide's head, every constant weight perturbed
(make_fixtures_apps.perturb: LayerScale's 1e-6 becomes values of 0.1, so the blocks count):

  mini           base(training=False) frozen -> GlobalAveragePooling2D "pool" -> Dense(3, softmax)
                 "head": model.keras, model.h5, x.npy (4 images, 0-255), predictions.npy,
                 summary.json (Keras's rows of the model, of its base and of each Sequential in the
                 base, the totals), weight_paths.json (Keras's variable paths in model.weights.h5
                 and the base's weight_names in model.h5), and fit.json: the model re-compiled with
                 the base trainable but its stem frozen (`base.trainable = True; stem.trainable =
                 False`), SGD(0.05), categorical_crossentropy, 2 epochs, batch 4, shuffle=False on
                 train.npz (8 images): the loss per epoch and the predictions on x.npy after.
  stem_frozen    the same model with the base trainable and its stem frozen, as files (model.keras,
                 model.h5, predictions.npy): the .h5 lists the base's weights trainable first, the
                 frozen stem's last.
  tensor_ops     Input(4) -> Dense(3) "a", Dense(3) "b" -> a - b, (a - b) * b, + a (keras.src.ops.numpy
                 Subtract, Multiply, Add on two tensors), then * (1 / 6), + 3.0 (on a number) ->
                 Dense(2, softmax): model.keras, model.h5 (Keras's legacy form of both kinds, which
                 Keras cannot load back), x.npy, predictions.npy.
  divide         the same with a / b: config.json only (refused: Divide on two tensors).
"""

import json
import shutil

import numpy as np

from common import FIXTURES, keras3, write_json
from make_fixtures_apps import calibrate, images, perturb, rows

ROOT = FIXTURES / "keras_convnext"
SIDE = 32
SEED = 2300


def case_dir(name):
    d = ROOT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_convnext.py:{what} (keras {k.__version__})\n")


def build(k, stem_frozen=False):
    from keras.src.applications.convnext import ConvNeXt
    k.backend.clear_session()
    k.utils.set_random_seed(SEED)
    L = k.layers
    base = ConvNeXt(depths=[1, 1, 1, 1], projection_dims=[8, 8, 8, 8], input_shape=(SIDE, SIDE, 3),
                    include_top=False, weights=None, name="convnext_mini")
    perturb(base, SEED)
    calibrate(k, base, images(SEED, 16, SIDE))
    if stem_frozen:
        base.trainable = True
        base.get_layer("convnext_mini_stem").trainable = False
    else:
        base.trainable = False
    inputs = k.Input((SIDE, SIDE, 3), name="image")
    x = base(inputs, training=False)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    head = L.Dense(3, activation="softmax", name="head")
    outputs = head(x)
    model = k.Model(inputs, outputs, name="convnext_mini_classifier")
    feats = k.Model(inputs, x).predict(images(SEED, 16, SIDE), verbose=0)
    kernel, bias = head.get_weights()
    kernel = kernel / max(float(np.std(feats @ kernel)), 1e-3)
    head.set_weights([kernel, np.random.default_rng(SEED).normal(0, 0.1, bias.shape).astype(bias.dtype)])
    return model, base


def summary(model, base):
    total = int(model.count_params())
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    inner = {l.name: rows(l) for l in base.layers if hasattr(l, "layers")}
    return {"total": total, "trainable": trainable, "base_name": base.name, "outer": rows(model),
            "base": rows(base), "inner": inner}


def weight_paths(d):
    import h5py
    import zipfile
    out = {}
    with zipfile.ZipFile(d / "model.keras") as z, z.open("model.weights.h5") as f:
        import io
        with h5py.File(io.BytesIO(f.read()), "r") as h:
            paths = []
            h.visititems(lambda n, o: paths.append(n) if isinstance(o, h5py.Dataset) else None)
            out["keras"] = sorted(paths)
    with h5py.File(d / "model.h5", "r") as h:
        g = h["model_weights"]
        out["h5_layer_names"] = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["layer_names"]]
        out["h5_base_weight_names"] = [n.decode() if isinstance(n, bytes) else n
                                       for n in g["convnext_mini"].attrs["weight_names"]]
    return out


def custom_objects():
    from keras.src.applications.convnext import LayerScale
    return {"LayerScale": LayerScale}


def save_both(k, model, d, x):
    """model.keras and model.h5 with Keras's predictions; Keras 3.15 cannot load its own .h5 of a
    model holding operations on two tensors (its legacy loader calls the op's Add with both tensors
    as positional arguments: "too many positional arguments"), which H5_REFUSED_BY_KERAS records:
    the .h5 is kept, as a file users hold, for keras-transfer to read."""
    model.save(d / "model.keras")
    model.save(d / "model.h5")
    p = model.predict(x, verbose=0)
    back = k.models.load_model(d / "model.keras")
    assert np.array_equal(back.predict(x, verbose=0), p), "model.keras"
    try:
        # ConvNeXt's LayerScale is no keras.layers class: the legacy loader needs it named.
        back = k.models.load_model(d / "model.h5", custom_objects=custom_objects())
        assert np.array_equal(back.predict(x, verbose=0), p), "model.h5"
    except (ValueError, TypeError) as e:
        (d / "H5_REFUSED_BY_KERAS").write_text(f"Keras {k.__version__} load_model of its own .h5: "
                                               f"{type(e).__name__}: {e}\n")
    np.save(d / "predictions.npy", p)
    return p


def make_mini():
    k = keras3()
    model, base = build(k)
    d = case_dir("mini")
    x = images(SEED, 16, SIDE)[:4]
    np.save(d / "x.npy", x)
    p = save_both(k, model, d, x)
    write_json(d / "summary.json", summary(model, base))
    write_json(d / "weight_paths.json", weight_paths(d))
    # The fine-tune: the base thawed but for its stem, re-compiled, 2 epochs.
    train_x = images(SEED + 1, 8, SIDE)
    train_y = np.random.default_rng(SEED + 1).integers(0, 3, 8)
    np.savez(d / "train.npz", x=train_x.reshape(8, -1), y=train_y)
    base.trainable = True
    base.get_layer("convnext_mini_stem").trainable = False
    model.compile(optimizer=k.optimizers.SGD(0.05), loss="categorical_crossentropy")
    h = model.fit(train_x, k.utils.to_categorical(train_y, 3), epochs=2, batch_size=4, shuffle=False,
                  verbose=0)
    write_json(d / "fit.json", {
        "optimizer": "SGD(0.05)", "loss_fn": "categorical_crossentropy", "epochs": 2, "batch_size": 4,
        "trainable_weights": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "loss": [float(v) for v in h.history["loss"]],
        "predictions_after": model.predict(x, verbose=0).tolist(),
    })
    source(d, "ConvNeXt([1,1,1,1], [8,8,8,8], 32x32x3) frozen + GlobalAveragePooling2D, Dense(3, softmax)", k)
    print("mini", np.round(p, 3).tolist())


def make_stem_frozen():
    k = keras3()
    model, base = build(k, stem_frozen=True)
    d = case_dir("stem_frozen")
    x = images(SEED, 16, SIDE)[:4]
    np.save(d / "x.npy", x)
    p = save_both(k, model, d, x)
    write_json(d / "weight_paths.json", weight_paths(d))
    source(d, "ConvNeXt([1,1,1,1], [8,8,8,8], 32x32x3), its stem frozen, + GlobalAveragePooling2D, "
              "Dense(3, softmax)", k)
    print("stem_frozen", np.round(p, 3).tolist())


def tensor_ops(k, divide=False):
    k.backend.clear_session()
    k.utils.set_random_seed(SEED + 2)
    L = k.layers
    inputs = k.Input((4,), name="x")
    a = L.Dense(3, activation="tanh", name="a")(inputs)
    b = L.Dense(3, activation="sigmoid", name="b")(inputs)
    if divide:
        c = a / b
    else:
        c = ((a - b) * b + a) * (1.0 / 6.0) + 3.0  # and two operations on a number
    outputs = L.Dense(2, activation="softmax", name="head")(c)
    return k.Model(inputs, outputs, name="tensor_ops")


def make_tensor_ops():
    k = keras3()
    model = tensor_ops(k)
    d = case_dir("tensor_ops")
    x = np.random.default_rng(SEED + 2).normal(0, 1, (6, 4)).astype(np.float32)
    np.save(d / "x.npy", x)
    p = save_both(k, model, d, x)
    source(d, "Input(4) -> Dense a, Dense b -> ((a - b) * b + a) * (1 / 6) + 3 -> Dense(2, softmax)", k)
    print("tensor_ops", np.round(p, 3).tolist())
    d = case_dir("divide")
    from make_fixtures_apps import config_json
    (d / "config.json").write_text(config_json(tensor_ops(k, divide=True)))
    source(d, "Input(4) -> Dense a, Dense b -> a / b -> Dense(2, softmax) (config only)", k)


if __name__ == "__main__":
    import sys
    makers = {"mini": make_mini, "stem_frozen": make_stem_frozen, "tensor_ops": make_tensor_ops}
    for name in sys.argv[1:] or list(makers):
        makers[name]()
