#!/usr/bin/env python3
"""Fixtures of long models in Keras's legacy .h5 (run by hand, never by the tests):

    python-check/run-venv python-check/make_fixtures_h5long.py

fixtures/keras_h5_long/{k3_121,k2_121}/: a Sequential of 121 layers (Dense(2, relu),
BatchNormalization, Dropout(0.1), repeated 40 times, then Dense(2, softmax)), fitted one epoch and
saved by Keras 3 and by tf.keras 2 as model.h5, with inputs.csv and Keras's predictions.csv.
The layer names are long (about 560 characters), so that `layer_names` exceeds Keras's
HDF5_OBJECT_HEADER_LIMIT (64512 bytes) and Keras splits it into `layer_names0`, `layer_names1`;
`model_config` (well over 64 KiB) is a variable-length string. meta.json records the chunking.

    python-check/run-venv python-check/make_fixtures_h5long.py --check OUT_DIR

loads every .h5 under OUT_DIR (written by keras-transfer: `convert model.h5 OUT_DIR/<case>_<dialect>/model.h5
--format <dialect>`) in Keras 3, and those of the universal dialect also in tf.keras 2, and checks its
predictions on inputs.csv against predictions.csv beside it (within 1e-6).
"""

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from common import FIXTURES, keras2, keras3, max_abs_diff, p_header, random_inputs, versions, write_csv, x_header

SCRIPT = "python-check/make_fixtures_h5long.py"
INPUT_DIM = 4
REPEATS = 40
PAD = "x" * 540


def layer_name(kind, i):
    return f"{kind}_{PAD}_{i}"


def build(k):
    layers = [k.Input((INPUT_DIM,))] if hasattr(k, "Input") and k.__name__ == "keras" else []
    model = k.Sequential(layers)
    for i in range(REPEATS):
        kw = {"input_shape": (INPUT_DIM,)} if (i == 0 and not layers) else {}
        model.add(k.layers.Dense(2, activation="relu", name=layer_name("dense", i), **kw))
        model.add(k.layers.BatchNormalization(name=layer_name("bn", i)))
        model.add(k.layers.Dropout(0.1, name=layer_name("dropout", i)))
    model.add(k.layers.Dense(2, activation="softmax", name=layer_name("out", 0)))
    return model


def case(k, tag, dists, seed):
    d = FIXTURES / "keras_h5_long" / tag
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    k.utils.set_random_seed(seed)
    model = build(k)
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(64, INPUT_DIM)).astype(np.float32)
    Y = np.eye(2, dtype=np.float32)[rng.randint(0, 2, 64)]
    model.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, epochs=1, batch_size=16, verbose=0)
    path = d / "model.h5"
    model.save(str(path))
    inputs = random_inputs(seed, 20, INPUT_DIM)
    preds = model.predict(inputs, verbose=0)
    write_csv(d / "inputs.csv", x_header(INPUT_DIM), inputs)
    write_csv(d / "predictions.csv", p_header(2), preds.astype(np.float32))
    with h5py.File(path, "r") as f:
        attrs = sorted(a for a in f["model_weights"].attrs if a.startswith("layer_names"))
        mc = f.attrs.get_id("model_config").dtype
    meta = {"producer": f"{k.__name__} {k.__version__}", "layers": len(model.layers), "input_dim": INPUT_DIM,
            "layer_name_attributes": attrs, "model_config_dtype": str(mc)}
    (d / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    (d / "SOURCE").write_text(f"{SCRIPT} ({versions(*dists)})\n")
    print(tag, path.stat().st_size, "bytes", attrs)


def check(out_dir):
    """Loads keras-transfer's files in both Keras versions and compares predictions."""
    failures = 0
    for path in sorted(Path(out_dir).rglob("*.h5")):
        inputs = np.loadtxt(path.parent / "inputs.csv", delimiter=",", skiprows=1, dtype=np.float32)
        expected = np.loadtxt(path.parent / "predictions.csv", delimiter=",", skiprows=1)
        # A Keras 3 dialect file is for Keras 3; a universal one for both.
        for k in (keras3(),) if "keras3" in path.parent.name else (keras3(), keras2()):
            got = k.models.load_model(str(path), compile=False).predict(inputs, verbose=0)
            d = max_abs_diff(got, expected)
            ok = d <= 1e-6
            failures += not ok
            print(f"{'ok' if ok else 'FAIL'} {path.parent.name}/{path.name} in {k.__name__} {k.__version__}: max diff {d}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        case(keras3(), "k3_121", ("keras", "tensorflow-cpu", "numpy", "h5py"), seed=301)
        case(keras2(), "k2_121", ("tf-keras", "tensorflow-cpu", "numpy", "h5py"), seed=302)
