"""Helpers shared by make_fixtures.py and check.py.

Keras and tf_keras are imported lazily (keras3() / keras2()), so that scripts that
only need scikit-learn start quickly.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

# Keep TensorFlow quiet and on the CPU. Must happen before TensorFlow is imported;
# the shell wrappers (run-venv, run) set the same variables (PYTHONHASHSEED only works from there).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # CPU-independent rounding, and quiet

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "fixtures"

# The tutorial's compile call.
COMPILE = dict(loss="categorical_crossentropy", optimizer="sgd", metrics=["accuracy"])

# Layer specs: units, activation and optionally use_bias / kernel_initializer.
TUTORIAL_LAYERS = [
    dict(units=5, activation="relu", kernel_initializer="he_uniform"),
    dict(units=5, activation="relu", kernel_initializer="he_uniform"),
    dict(units=3, activation="softmax"),
]
ODD_LAYERS = [
    dict(units=6, activation="tanh"),
    dict(units=4, activation="sigmoid"),
    dict(units=3, activation="relu"),
    dict(units=2, activation="softmax"),
]
# The odd architecture as used for CSV data: make_blobs(200, centers=2, n_features=4, random_state=3).
ODD_BLOBS = dict(n_samples=200, centers=2, n_features=4, random_state=3)


# --------------------------------------------------------------------------- libraries

def keras3():
    """Keras 3 (backend tensorflow)."""
    import keras

    return keras


def keras2():
    """tf.keras 2 (the tf-keras package)."""
    import tf_keras

    return tf_keras


def versions(*names):
    """'keras 3.15.1, numpy 2.4.6' for the given distribution names."""
    from importlib.metadata import version

    return ", ".join(f"{n} {version(n)}" for n in names)


# --------------------------------------------------------------------------- numbers & files

def fnum(v):
    """Shortest round-trip text of a double; a float32 becomes its exact double value."""
    return repr(float(v))


def write_csv(path, header, rows):
    """Rows of numbers; floats via fnum, ints (and numpy ints) as integers."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in rows:
            w.writerow([str(int(v)) if isinstance(v, (int, np.integer)) else fnum(v) for v in row])


def read_csv(path):
    """(header, rows of strings)."""
    with open(path, newline="") as f:
        r = list(csv.reader(f))
    return r[0], r[1:]


def read_float_csv(path):
    header, rows = read_csv(path)
    return header, np.array([[float(v) for v in row] for row in rows], dtype=np.float64)


def write_json(path, obj):
    Path(path).write_text(json.dumps(obj, indent=1) + "\n")


def x_header(n):
    return [f"x{i}" for i in range(n)]


def p_header(n):
    return [f"p{i}" for i in range(n)]


def write_xy_csv(path, X, y):
    """x0..x{F-1},y with integer labels."""
    write_csv(path, x_header(X.shape[1]) + ["y"], [list(x) + [int(t)] for x, t in zip(X, y)])


def random_inputs(seed, n_rows, n_features):
    """n_rows x n_features float32 values in [-10, 10] (exactly representable in float32)."""
    return np.random.RandomState(seed).uniform(-10, 10, (n_rows, n_features)).astype(np.float32)


def max_abs_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def h5dump(path):
    """`h5dump -A` (header plus attribute values; no dataset data) as text.

    h5dump's first line names the file as it was given (`HDF5 "<name>" {`), so it runs in the
    file's folder on the bare file name: the listing never holds this machine's absolute path."""
    path = Path(path)
    return subprocess.run(["h5dump", "-A", path.name], cwd=path.parent, check=True,
                          capture_output=True, text=True).stdout


# --------------------------------------------------------------------------- data

def blobs_problem(seed):
    """The tutorial's blobs problem: (trainX, trainy, testX, testy), y one-hot (float64)."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=1000, centers=3, n_features=2, cluster_std=2, random_state=seed)
    Y = np.eye(3)[y]  # == keras.utils.to_categorical(y)
    return X[:500], Y[:500], X[500:], Y[500:]


def odd_problem():
    """make_blobs(200, centers=2, n_features=4, random_state=3), split 100/100; raw labels."""
    from sklearn.datasets import make_blobs

    X, y = make_blobs(**ODD_BLOBS)
    return X[:100], y[:100], X[100:], y[100:]


def one_hot(y, k):
    return np.eye(k)[np.asarray(y, dtype=np.int64)]


# --------------------------------------------------------------------------- models

def build_mlp(k, input_dim, layers, keras2_style=False):
    """A Sequential of Dense layers.

    Keras-3 style: Sequential([Input((d,)), Dense(...), ...]).
    Keras-2 style (the tutorial's): the first Dense gets input_dim=d.
    """
    model = k.Sequential() if keras2_style else k.Sequential([k.Input((input_dim,))])
    for i, spec in enumerate(layers):
        kwargs = dict(spec)
        if keras2_style and i == 0:
            kwargs["input_dim"] = input_dim
        model.add(k.layers.Dense(**kwargs))
    return model


def layer_summary(layers):
    return [dict(units=s["units"], activation=s["activation"], use_bias=s.get("use_bias", True)) for s in layers]


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)
