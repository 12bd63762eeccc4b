#!/usr/bin/env python3
"""Fixtures for Keras Applications as users have them (fixtures/keras_apps/), made by Keras 3
(tensorflow backend), run by hand, never by the tests:

    python-check/run-venv python-check/make_fixtures_apps.py [APP ...]

Every application is built as the transfer-learning guide builds it (weights=None, include_top=False,
the smallest input it accepts):

    base = keras.applications.X(input_shape=(S, S, 3), include_top=False, weights=None, **options)
    base.trainable = False
    inputs = keras.Input((S, S, 3), name="image")
    x = Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)   # only where the application does
    x = base(x, training=False)                                   # not rescale 0-255 pixels itself
    x = GlobalAveragePooling2D(name="pool")(x); x = Dropout(0.2, name="dropout")(x)
    outputs = Dense(K, activation="softmax", name="head")(x)          # K = 3 or 5, logits of spread ~1

with every constant weight of the base (BatchNormalization's gamma and beta, zero biases, Normalization's
mean and variance) replaced by seeded random values, and BatchNormalization's moving statistics set to
those of 64 seeded images (`perturb`, `calibrate`), as a trained base has them: a reader that ignored
any of them would show, and the images' differences reach the output. Per application, fixtures/keras_apps/<app>/:

  config.json     the model's config as the .keras archive holds it (every application)
  summary.json    Keras's per-layer rows of the model (`outer`) and of its base (`base`): name, class,
                  output shape as model.summary() prints it, parameters, trainable parameters; the
                  totals; the input and output shapes (every application)
  model.keras, model.h5, x.npy (4 images, 0-255 integer-valued float32, seeded), predictions.npy
                  (Keras's predict, float32): only the applications whose files fit (WEIGHTS below:
                  MobileNetV2 alpha 0.35 and MobileNetV3Small alpha 0.75, under 3 MB a file). No model.h5
                  where Keras cannot load its own .h5 (H5_REFUSED_BY_KERAS says why: MobileNetV3). The others
                  hold 4-28 M parameters (16-110 MB a file): python-check/checks_apps.py builds them at
                  check time instead.

fixtures/keras_apps/folder/<class>/*.png: 3 classes x 2 RGB PNGs (36x40, from sklearn's digits, tinted),
  folder.json (Keras's class names, file order and labels), folder_pixels.npy
  (image_dataset_from_directory(folder, image_size=(32, 32), shuffle=False) as one float32 array) and
  folder_predictions.npy (mobilenet_v2/model.keras's predict on them).

fixtures/keras_apps/train_mobilenet_v2/: the MobileNetV2 (alpha 0.35, 32x32) base frozen under a new head
  without the Dropout (Keras draws dropout masks from TensorFlow's RNG, which nothing else reproduces):
  model.keras (before the fit), train.npz (x: 24 images as rows (24, 3072) of 0-255 float32, y: int labels;
  Keras fits them reshaped to (24, 32, 32, 3)),
  fit.json (SGD(0.05, momentum=0.9), categorical_crossentropy, batch_size 8, 5 epochs, shuffle=False: the loss and
  the head's kernel and bias after each epoch; the base did not move).
"""

import json
import shutil
import sys

import numpy as np

from common import FIXTURES, keras3, write_json

ROOT = FIXTURES / "keras_apps"

# (folder, keras.applications constructor, options, input side, classes). The options are Keras's own
# width options, for files that fit the repository; the others are the applications' defaults.
APPS = [
    ("mobilenet_v2", "MobileNetV2", {"alpha": 0.35}, 32, 3),
    ("mobilenet_v3_small", "MobileNetV3Small", {"alpha": 0.75}, 32, 5),
    ("mobilenet_v3_large", "MobileNetV3Large", {}, 32, 3),
    ("efficientnet_b0", "EfficientNetB0", {}, 32, 5),
    ("efficientnet_v2_b0", "EfficientNetV2B0", {}, 32, 3),
    ("resnet50", "ResNet50", {}, 32, 5),
    ("resnet50_v2", "ResNet50V2", {}, 32, 3),
    ("densenet121", "DenseNet121", {}, 32, 5),
    ("vgg16", "VGG16", {}, 32, 3),
    ("xception", "Xception", {}, 71, 5),
    ("inception_v3", "InceptionV3", {}, 75, 3),
    ("convnext_tiny", "ConvNeXtTiny", {}, 32, 5),
]
# The applications whose model files are committed (each file under 3 MB).
WEIGHTS = ("mobilenet_v2", "mobilenet_v3_small")
# The applications that rescale 0-255 pixels themselves (include_preprocessing=True); the guide puts
# Rescaling(1 / 127.5, offset=-1) before the others.
OWN_PREPROCESSING = ("MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetV2B0",
                     "ConvNeXtTiny")
N_IMAGES = 4
# Images that set the moving statistics; the fixtures' inputs are the first N_IMAGES of them, so
# that they meet the statistics a trained base would have for them.
CALIBRATION = 64
TRAIN = dict(n=24, epochs=5, batch_size=8, learning_rate=0.001)
TRAIN_SGD = dict(learning_rate=0.05, momentum=0.9)


def app(name):
    return next(a for a in APPS if a[0] == name)


def seed_of(name):
    return 2100 + [a[0] for a in APPS].index(name)


def perturb(model, seed):
    """Replaces every constant weight (zeros or ones: biases, BatchNormalization's gamma, beta, moving
    mean and variance, Normalization's mean and variance) by seeded random values of the same kind."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        v = np.asarray(w.numpy())
        if v.size == 0 or not np.all(v == v.flat[0]):
            continue
        path = w.path
        if "variance" in path:
            new = rng.uniform(0.5, 1.5, v.shape)
        elif "gamma" in path or (v.flat[0] == 1.0):
            new = rng.uniform(0.8, 1.2, v.shape)
        else:  # beta, moving_mean, mean, bias
            new = rng.normal(0.0, 0.1, v.shape)
        w.assign(new.astype(v.dtype))
    # Keras's Normalization computes from copies of its mean and variance made by finalize_state()
    # (what loading a file calls); without it the in-memory model would keep the old statistics
    # and predict other numbers than the same model loaded from its file.
    for layer in model._flatten_layers():
        if isinstance(layer, __import__("keras").layers.Normalization) and layer.built:
            layer.finalize_state()


def calibrate(k, base, x):
    """Sets every BatchNormalization's moving mean and variance to the statistics of its input on the
    images x (momentum 0 for one training-mode call, then the layer's own momentum back), as a trained
    network has them: without it, random weights shrink the images' differences to nothing within a
    few blocks (MobileNetV2: 1e-9 at its output) and every image would predict the same."""
    bns = [l for l in base.layers if isinstance(l, k.layers.BatchNormalization)]
    saved = [l.momentum for l in bns]
    for l in bns:
        l.momentum = 0.0
    base(x, training=True)
    for l, m in zip(bns, saved):
        l.momentum = m


def build(k, name, seed=None):
    """The guide's model on application `name` (seeded), its base frozen and perturbed, compiled."""
    folder, ctor, options, side, classes = app(name)
    seed = seed_of(name) if seed is None else seed
    k.backend.clear_session()
    k.utils.set_random_seed(seed)
    L = k.layers
    base = getattr(k.applications, ctor)(input_shape=(side, side, 3), include_top=False, weights=None,
                                         **options)
    perturb(base, seed)
    pixels = images(seed, CALIBRATION, side)
    calibrate(k, base, pixels if ctor in OWN_PREPROCESSING else pixels / 127.5 - 1)
    base.trainable = False
    inputs = k.Input((side, side, 3), name="image")
    x = inputs
    if ctor not in OWN_PREPROCESSING:
        x = L.Rescaling(1 / 127.5, offset=-1, name="rescale")(x)
    x = base(x, training=False)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    x = L.Dropout(0.2, name="dropout")(x)
    head = L.Dense(classes, activation="softmax", name="head")
    outputs = head(x)
    model = k.Model(inputs, outputs, name=f"{folder}_classifier")
    # The head scaled to logits of spread 1 on the calibration images: probabilities away from 0 and
    # 1, where differences show.
    feats = k.Model(inputs, x).predict(pixels, verbose=0)
    kernel, bias = head.get_weights()
    kernel = kernel / max(float(np.std(feats @ kernel)), 1e-3)
    head.set_weights([kernel, np.random.default_rng(seed).normal(0, 0.1, bias.shape).astype(bias.dtype)])
    model.compile(optimizer=k.optimizers.Adam(TRAIN["learning_rate"]), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def images(seed, n, side):
    """n seeded RGB images, integer-valued 0-255 float32, as decoded pictures are."""
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side, 3)).astype(np.float32)


def shape_text(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def rows(model):
    """model.summary()'s rows: one per entry of model.layers."""
    out = []
    for layer in model.layers:
        out.append({
            "name": layer.name,
            "class": layer.__class__.__name__,
            "output_shape": shape_text(layer.output.shape),
            "params": int(layer.count_params()),
            "trainable_params": int(sum(np.prod(w.shape) for w in layer.trainable_weights)),
        })
    return out


def summary(model):
    base = next(l for l in model.layers if hasattr(l, "layers"))
    total = int(model.count_params())
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {
        "input_shape": shape_text(model.input.shape),
        "output_shape": shape_text(model.output.shape),
        "total": total,
        "trainable": trainable,
        "non_trainable": total - trainable,
        "outer": rows(model),
        "base_name": base.name,
        "base": rows(base),
    }


def case_dir(name):
    d = ROOT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def source(d, what, k):
    (d / "SOURCE").write_text(f"python-check/make_fixtures_apps.py:{what} (keras {k.__version__})\n")


def config_json(model):
    """The config.json a .keras archive holds for this model (saving_lib's own serialisation)."""
    from keras.src.saving import serialization_lib
    return json.dumps(serialization_lib.serialize_keras_object(model))


def make_app(name):
    k = keras3()
    folder, ctor, options, side, classes = app(name)
    model = build(k, name)
    d = case_dir(folder)
    (d / "config.json").write_text(config_json(model))
    write_json(d / "summary.json", summary(model))
    if name in WEIGHTS:
        model.save(d / "model.keras")
        x = images(seed_of(name), CALIBRATION, side)[:N_IMAGES]
        np.save(d / "x.npy", x)
        p = model.predict(x, verbose=0)
        np.save(d / "predictions.npy", p)
        back = k.models.load_model(d / "model.keras")
        assert np.array_equal(back.predict(x, verbose=0), p), "model.keras"
        # Keras 3.15 cannot load its own .h5 of a model whose config holds ops called on a constant
        # (MobileNetV3's hard_sigmoid: keras.src.ops.numpy Add(x, 3.0)): such an .h5 is no user's file.
        model.save(d / "model.h5")
        try:
            back = k.models.load_model(d / "model.h5")
            assert np.array_equal(back.predict(x, verbose=0), p), "model.h5"
        except ValueError as e:
            (d / "model.h5").unlink()
            (d / "H5_REFUSED_BY_KERAS").write_text(f"Keras {k.__version__} load_model of its own .h5: {e}\n")
        print(f"  {name}: predictions {np.round(p, 3).tolist()}")
    opts = ", ".join(f"{a}={b}" for a, b in options.items())
    source(d, f"{ctor}({side}x{side}x3{', ' + opts if opts else ''}) + GlobalAveragePooling2D, "
              f"Dropout(0.2), Dense({classes}, softmax)", k)


def digit_images(per_class, classes):
    """per_class RGB pictures (36x40, uint8) for each of `classes` digits, from sklearn's digits."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    rng = np.random.default_rng(2200)
    out = {}
    for c in classes:
        idx = np.flatnonzero(digits.target == c)[:per_class]
        pics = []
        for i in idx:
            g = np.kron(digits.images[i] * (255.0 / 16.0), np.ones((5, 5)))[:36, :40]
            tint = rng.uniform(0.4, 1.0, size=3)
            noise = rng.integers(0, 30, size=(36, 40, 3))
            pics.append(np.clip(g[:, :, None] * tint + noise, 0, 255).astype(np.uint8))
        out[c] = pics
    return out


def make_folder():
    import tensorflow as tf
    k = keras3()
    names = {0: "zero", 1: "one", 2: "two"}
    d = ROOT / "folder"
    if d.exists():
        shutil.rmtree(d)
    for c, pics in digit_images(2, [0, 1, 2]).items():
        (d / names[c]).mkdir(parents=True)
        for j, pic in enumerate(pics):
            (d / names[c] / f"{names[c]}_{j}.png").write_bytes(tf.io.encode_png(pic).numpy())
    ds = k.utils.image_dataset_from_directory(d, image_size=(32, 32), shuffle=False, batch_size=32,
                                              label_mode="int", verbose=False)
    pixels, labels = [], []
    for xb, yb in ds:
        pixels.append(xb.numpy())
        labels.append(yb.numpy())
    pixels = np.concatenate(pixels)
    labels = np.concatenate(labels)
    model = k.models.load_model(ROOT / "mobilenet_v2" / "model.keras")
    p = model.predict(pixels, verbose=0)
    np.save(ROOT / "folder_pixels.npy", pixels)
    np.save(ROOT / "folder_predictions.npy", p)
    write_json(ROOT / "folder.json", {
        "model": "mobilenet_v2/model.keras",
        "call": "image_dataset_from_directory(folder, image_size=(32, 32), shuffle=False, batch_size=32, "
                "label_mode='int')",
        "class_names": ds.class_names,
        "files": [str(__import__("pathlib").Path(f).relative_to(d)) for f in ds.file_paths],
        "labels": labels.tolist(),
    })
    source(d, "folder", k)


def make_train():
    k = keras3()
    name = "mobilenet_v2"
    folder, ctor, options, side, classes = app(name)
    seed = seed_of(name) + 50
    k.backend.clear_session()
    k.utils.set_random_seed(seed)
    L = k.layers
    base = getattr(k.applications, ctor)(input_shape=(side, side, 3), include_top=False, weights=None,
                                         **options)
    perturb(base, seed)
    calibrate(k, base, images(seed, CALIBRATION, side) / 127.5 - 1)
    base.trainable = False
    inputs = k.Input((side, side, 3), name="image")
    x = L.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    x = base(x, training=False)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    outputs = L.Dense(classes, activation="softmax", name="head")(x)
    model = k.Model(inputs, outputs, name="mobilenet_v2_train")
    # SGD with momentum, not Adam: the frozen random base gives features that barely differ between
    # images, so many of the head's gradients are rounding noise, which Adam scales up to steps of
    # the learning rate (with Adam the losses agree to 2e-6 but the head to only 3e-4).
    model.compile(optimizer=k.optimizers.SGD(TRAIN_SGD["learning_rate"], momentum=TRAIN_SGD["momentum"]),
                  loss="categorical_crossentropy",
                  metrics=["accuracy"])
    d = case_dir("train_mobilenet_v2")
    model.save(d / "model.keras")
    x = images(seed, CALIBRATION, side)[:TRAIN["n"]]
    y = np.random.default_rng(seed).integers(0, classes, size=TRAIN["n"])
    # x as rows of 32 * 32 * 3 channels-last values (the same numbers, reshaped): keras-transfer's
    # .npz reader takes a 2-D x for training.
    np.savez(d / "train.npz", x=x.reshape(len(x), -1), y=y)
    base_before = [np.array(w) for w in base.get_weights()]
    head = model.get_layer("head")
    epochs = []
    cb = k.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: epochs.append(
        {"kernel": head.get_weights()[0].tolist(), "bias": head.get_weights()[1].tolist()}))
    h = model.fit(x, np.eye(classes)[y], epochs=TRAIN["epochs"], batch_size=TRAIN["batch_size"],
                  shuffle=False, verbose=0, callbacks=[cb])
    assert all(np.array_equal(a, b) for a, b in zip(base_before, base.get_weights())), "the base moved"
    write_json(d / "fit.json", {
        "optimizer": {"class_name": "SGD", **TRAIN_SGD},
        "loss_function": "categorical_crossentropy",
        "epochs": TRAIN["epochs"], "batch_size": TRAIN["batch_size"], "shuffle": False,
        "loss": [float(v) for v in h.history["loss"]],
        "head_after_epoch": epochs,
        "predictions": model.predict(x, verbose=0).tolist(),
    })
    source(d, "train: MobileNetV2(alpha=0.35, 32x32x3) frozen + GlobalAveragePooling2D + Dense(3, softmax)", k)
    print(f"  train: loss {[round(v, 4) for v in h.history['loss']]}")


def main(argv):
    wanted = argv or [a[0] for a in APPS] + ["folder", "train"]
    for name in wanted:
        print(name, flush=True)
        if name == "folder":
            make_folder()
        elif name == "train":
            make_train()
        else:
            make_app(name)


if __name__ == "__main__":
    main(sys.argv[1:])
