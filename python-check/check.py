#!/usr/bin/env python3
"""Cross-checks the keras-transfer binary against real Keras 3, tf.keras 2 and scikit-learn.

    python-check/run                      # sets up the venv, then runs this
    python check.py --bin target/release/keras-transfer [-v] [--keep] [--only PREFIX ...]

Prints one PASS/FAIL line per check and ends with `check: N passed, M failed`;
exits non-zero when any check fails.

  a  Rust trains (problem 1) -> Keras loads the .h5, predicts like Rust, and can fit it further
  b  Keras trains the tutorial MLP and saves .h5 -> Rust predicts like Keras
  c  both directions for a 4-6-4-3-2 tanh/sigmoid/relu/softmax MLP on CSV data
  d  `keras-transfer blobs` equals sklearn's make_blobs bit for bit
  e  transfer learning across the two: Keras fine-tunes the study's Rust-made model.h5 with frozen
     layers (Keras 3 and tf.keras 2), and Rust's `finetune` of a Keras-made file equals Keras's
  k  Keras 3's own files both ways: Rust-written .keras / .weights.h5 loaded by Keras 3 (load_model,
     load_weights), predicting like Rust and fitted further; Keras-written .keras / .weights.h5 predicted
     by Rust; what tf.keras 2 makes of a Rust .keras, and Rust of a tf.keras 2 .keras; a Keras 3
     .keras converted by Rust for tf.keras 2, compile settings kept; the optimizer's variables in
     .keras archives both ways: a Rust-fitted .keras (each keras_compile optimizer) restored by Keras 3's
     load_model (and load_weights) bit for bit and one more Keras epoch equal to Rust's; a Keras-fitted
     .keras continued by Rust as Keras continues it
  n  a Rust model trained on named columns and classes stores the names (keras_transfer_* root
     attributes) and still loads unchanged in Keras 3 and tf.keras 2, predicting like Rust; a Rust
     regression model (--loss mse, numeric target) predicts in Keras 3 and tf.keras 2 what Rust
     predicts and fits further
  l  the layers around Dense (Dropout, BatchNormalization, LayerNormalization, Activation, LeakyReLU,
     Flatten), a Functional chain and more activations: Keras-made .h5 -> Rust predicts like Keras;
     Rust's own files (converted, and fine-tuned by Rust) -> Keras loads them, predicts like Rust and
     fits them further (Keras 3, and tf.keras 2 for the universal dialect)
  g  float64 models kept float64: Rust writes the Keras-made float64 MLP of fixtures/keras_float64/sgd in
     every format (keras3 and universal .h5, .keras, .weights.h5); Keras 3 (and tf.keras 2 for the
     universal .h5), under set_floatx("float64"), loads it with float64 weights, predicts within 1e-12
     of what Rust predicts, and fits it further; Rust's one-epoch SGD and Adam fine-tunes of the
     Keras-made float64 models are saved as float64 (weights and optimizer state), equal Keras's own
     float64 epoch within 1e-10, and load and fit further in Keras 3; as .keras, Keras restores their
     float64 optimizer variables bit for bit
  f  compile settings both ways: Rust fine-tunes each fixtures/keras_compile case's Keras-compiled
     model.h5 for 20 epochs with the file's optimizer and loss and saves it with its optimizer state;
     Keras 3 loads it (optimizer, loss and state restored) and fits one more epoch, which ends where
     Rust's own next epoch from that file ends (1e-5)
  z  Keras Applications (checks_apps.py): per application, Keras 3's .keras/.h5 -> Rust predicts like Keras;
     Rust's .keras/.h5 -> Keras 3 predicts as before (1e-4); Rust predicts an image folder as Keras
     predicts image_dataset_from_directory of it (1e-4)
"""

import argparse
import json
import contextlib
import csv
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

import checks_apps
import checks_pool
import checks_conv

import checks_nested
import checks_elem  # noqa: E402
from common import (
    COMPILE, ODD_LAYERS, REPO, TUTORIAL_LAYERS, blobs_problem, build_mlp, fnum, keras2, keras3, max_abs_diff,
    odd_problem, one_hot, p_header, random_inputs, read_csv, read_float_csv, write_csv, write_xy_csv,
    x_header,
)

TOL = 1e-6            # max abs difference allowed between Keras and Rust predictions
N_INPUTS = 20         # random rows predicted by both sides
RUST_EPOCHS = 10      # epochs of the Rust fits (check a)
KERAS_EPOCHS = 5      # epochs of the Keras fits (checks b, c)
FURTHER_EPOCHS = 2    # epochs Keras fits a Rust-made model for
FINETUNE_EPOCHS = 5   # epochs Keras fine-tunes the study's model.h5 for (check e1)
FINETUNE_TOL = 1e-5   # max abs weight difference between Rust's and Keras's fine-tuning (check e3)
# fixtures/keras_compile cases of check f (the fit-option cases are fit settings, not compile ones).
COMPILE_CASES = ("sgd_momentum", "sgd_nesterov", "adam", "adam_amsgrad", "adamw", "rmsprop",
                 "rmsprop_centered_momentum", "adagrad", "adadelta", "adamax", "nadam", "lion", "sgd_clipnorm",
                 "adam_clipvalue", "sgd_global_clipnorm", "sgd_weight_decay", "sgd_exponential_decay",
                 "adam_cosine_decay", "sgd_piecewise", "sgd_inverse_time", "categorical_from_logits",
                 "categorical_label_smoothing", "sparse_categorical", "binary_crossentropy", "mse_regression",
                 "mae_regression", "huber_regression", "l2_kernel", "l1_bias", "l1l2_activity")
# Warnings Keras gives for its own files too (not about the file's contents).
BENIGN_WARNINGS = ("compiled metrics have yet to be built",)


class CheckFailed(Exception):
    pass


# The activations keras-transfer supports beyond the tutorial's relu/tanh/sigmoid/softmax/linear.
EXTRA_ACTIVATIONS = ("elu", "selu", "softplus", "softsign", "swish", "gelu")


def ensure(cond, msg):
    if not cond:
        raise CheckFailed(msg)


# The layer mixes of group l: (name, builder(k) -> model on 4 inputs with 2 outputs, writable in the
# universal (Keras 2) dialect).
def _sequential(k, *layers):
    return k.Sequential([k.Input((4,)), *layers])


def _functional(k):
    L = k.layers
    inputs = k.Input((4,), name="features")
    h = L.Dense(6, activation="relu")(inputs)
    h = L.BatchNormalization(momentum=0.9)(h)
    h = L.Dropout(0.2)(h)
    return k.Model(inputs, L.Dense(2, activation="softmax")(h), name="chain")


LAYER_MIXES = (
    ("dropout_batchnorm", lambda k: _sequential(
        k, k.layers.Dense(6, activation="relu"), k.layers.BatchNormalization(momentum=0.9, epsilon=1e-3),
        k.layers.Dropout(0.3), k.layers.Dense(2, activation="softmax")), True),
    ("layernorm_activation", lambda k: _sequential(
        k, k.layers.Flatten(), k.layers.Dense(5), k.layers.LayerNormalization(), k.layers.Activation("tanh"),
        k.layers.Dense(4), k.layers.LeakyReLU(negative_slope=0.2), k.layers.Dense(2),
        k.layers.Activation("softmax")), True),
    ("functional_chain", _functional, True),
    ("activations_more", lambda k: _sequential(
        k, k.layers.Dense(4, activation="relu6"), k.layers.Dense(4, activation="mish"),
        k.layers.Dense(4, activation="hard_sigmoid"), k.layers.Dense(4, activation="hard_silu"),
        k.layers.Dense(4, activation="leaky_relu"), k.layers.Dense(2, activation="softmax")), False),
)


# =========================================================================== shared helpers

class Rust:
    """Runs the keras-transfer binary."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.workdir = workdir
        self.calls = 0

    def run(self, *args):
        cmd = [str(self.binary)] + [str(a) for a in args]
        p = subprocess.run(cmd, cwd=self.workdir, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise CheckFailed(f"`keras-transfer {' '.join(cmd[1:])}` exited {p.returncode}: "
                              f"{(p.stderr or p.stdout).strip()[-800:]}")
        return p.stdout

    def train(self, out, data_args, fmt, hidden=None, activation=None, epochs=RUST_EPOCHS):
        """Trains and saves; returns the (train, test) accuracies it printed."""
        args = ["train", *data_args, "--epochs", epochs, "--out", out, "--format", fmt, "--seed", 1]
        if hidden:
            args += ["--hidden", ",".join(str(h) for h in hidden)]
        if activation:
            args += ["--activation", ",".join(activation)]
        stdout = self.run(*args)
        m = re.search(r"Train:\s*([0-9.]+),\s*Test:\s*([0-9.]+)", stdout)
        ensure(m, f"train printed no `Train: .., Test: ..` line: {stdout.strip()[-300:]!r}")
        return float(m.group(1)), float(m.group(2))

    def predict(self, model, X, names=None):
        """The model's predictions for the rows of X (columns named `names`, default x0, x1, ...), via
        `keras-transfer predict`, which writes `predicted,p_<class>,...`."""
        self.calls += 1
        tag = f"{Path(model).stem}-{self.calls}"
        inp, out = self.workdir / f"{tag}.in.csv", self.workdir / f"{tag}.out.csv"
        write_csv(inp, names or x_header(X.shape[1]), X)
        self.run("predict", "--model", model, "--input", inp, "--output", out)
        header, rows = read_csv(out)
        ensure(header[0] == "predicted" and all(h.startswith("p_") for h in header[1:]),
               f"predict wrote header {header}")
        P = np.array([[float(v) for v in row[1:]] for row in rows], dtype=np.float64)
        classes = [h[2:] for h in header[1:]]
        ensure([classes[i] for i in P.argmax(axis=1)] == [row[0] for row in rows],
               "predict's `predicted` column is not the class of the largest probability")
        return P


@contextlib.contextmanager
def captured_warnings(sink):
    """Collects Python warnings and absl/tensorflow log warnings (Keras uses both) into sink."""

    class Handler(logging.Handler):
        def emit(self, record):
            sink.append(record.getMessage())

    handler = Handler(logging.WARNING)
    loggers = [logging.getLogger(n) for n in ("absl", "tensorflow")]
    for lg in loggers:
        lg.addHandler(handler)
        lg.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        sink.extend(str(w.message) for w in caught)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def compare(what, got, want, tol=TOL):
    diff = max_abs_diff(got, want)
    ensure(diff <= tol, f"{what}: max abs difference {diff:.3g} > {tol:g}")
    return diff


def keras_accuracy(model, X, Y):
    return float(np.mean(np.argmax(model.predict(X, verbose=0), axis=1) == np.argmax(Y, axis=1)))


def check_rust_model_in_keras(k, path, data, printed, note):
    """Keras k loads the Rust-made file, predicts like Rust, agrees with its accuracies, fits it."""
    rust, (trX, trY, teX, teY) = data["rust"], data["arrays"]
    warns = []
    with captured_warnings(warns):
        model = k.models.load_model(str(path))
    X = random_inputs(17, N_INPUTS, trX.shape[1])
    diff = compare("Keras vs Rust predictions", model.predict(X, verbose=0), rust.predict(path, X, data.get("names")))
    for (name, x, y), acc in zip(((" train", trX, trY), (" test", teX, teY)), printed):
        got = keras_accuracy(model, x, y)
        ensure(abs(got - acc) <= 1.0 / len(x) + 5e-4, f"Keras{name} accuracy {got:.3f}, Rust printed {acc:.3f}")
    model.compile(**COMPILE)
    with captured_warnings(warns):
        hist = model.fit(trX, trY, epochs=FURTHER_EPOCHS, verbose=0)
    loss = hist.history["loss"]
    ensure(all(np.isfinite(loss)), f"Keras fit gave loss {loss}")
    warns = [w for w in warns if not any(b in w for b in BENIGN_WARNINGS)]
    extra = f"; {len(warns)} warning(s) on load/fit: {warns[0][:90]!r}" if warns else ""
    return f"{note}: max|dp| {diff:.2g}, accuracies agree, fit {FURTHER_EPOCHS} epochs ok{extra}"


def check_keras_model_in_rust(k, layers, input_dim, arrays, rust, workdir, name, keras2_style):
    """Keras k trains a model and saves .h5; Rust predicts like Keras."""
    trX, trY = arrays[0], arrays[1]
    k.utils.set_random_seed(5)
    model = build_mlp(k, input_dim, layers, keras2_style=keras2_style)
    model.compile(**COMPILE)
    model.fit(trX, trY, epochs=KERAS_EPOCHS, verbose=0)
    path = workdir / f"{name}.h5"
    with captured_warnings([]):
        model.save(str(path))
    X = random_inputs(23, N_INPUTS, input_dim)
    diff = compare("Rust vs Keras predictions", rust.predict(path, X), model.predict(X, verbose=0))
    return f"max|dp| {diff:.2g}"


def fit_frozen(k, path, frozen, X, Y, epochs, warns, **fit_kwargs):
    """The tutorial's eval_transfer_model step: load, freeze the first `frozen` layers, compile, fit.
    Returns the model and its per-layer weights before and after the fit. Seeded (fit's shuffle)."""
    k.utils.set_random_seed(100 + frozen)
    with captured_warnings(warns):
        model = k.models.load_model(str(path))
    before = [[np.array(w) for w in layer.get_weights()] for layer in model.layers]
    for i in range(frozen):
        model.layers[i].trainable = False
    model.compile(**COMPILE)
    with captured_warnings(warns):
        hist = model.fit(X, Y, epochs=epochs, verbose=0, **fit_kwargs)
    ensure(all(np.isfinite(hist.history["loss"])), f"Keras fit gave loss {hist.history['loss']}")
    after = [[np.array(w) for w in layer.get_weights()] for layer in model.layers]
    return model, before, after


def restore_h5_optimizer(m, path, iterations):
    """Recompiles `m` (loaded from the .h5 `path`) with its optimizer's saved state. Keras 3.15's
    load_model of a .h5 leaves an optimizer that cannot fit (its own files too: "Unknown variable ...
    can only be called for the variables it was originally built with"), so the state is put in by
    hand, in file order, into a fresh optimizer of the loaded config; it must have taken `iterations`
    steps."""
    import h5py
    opt = type(m.optimizer).from_config(m.optimizer.get_config())
    opt.build(m.trainable_variables)
    with h5py.File(path, "r") as f:
        g = f["optimizer_weights"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["weight_names"]]
        values = [g[n][()] for n in names]
    ensure(len(values) == len(opt.variables),
           f"{len(values)} saved optimizer variables, Keras's optimizer has {len(opt.variables)}")
    for v, val in zip(opt.variables, values):
        ensure(tuple(v.shape) == np.shape(val), f"optimizer variable {v.path}: {v.shape} vs {np.shape(val)}")
        v.assign(val)
    ensure(int(opt.iterations.numpy()) == iterations, f"iterations {int(opt.iterations.numpy())}")
    m.compile(optimizer=opt, loss=m.loss)


def check_frozen(before, after, frozen):
    """The first `frozen` layers kept their weights bit for bit; every other layer moved."""
    ensure(len(before) == 3, f"{len(before)} layers, expected the tutorial's 3 Dense layers")
    for i, (b, a) in enumerate(zip(before, after)):
        same = all(np.array_equal(x, y) for x, y in zip(b, a))
        if i < frozen:
            ensure(same, f"frozen layer {i} changed (max abs {max(max_abs_diff(x, y) for x, y in zip(b, a)):.3g})")
        else:
            ensure(not same, f"trainable layer {i} did not change")


def compile_case_arrays(src, meta):
    """(X, targets as the case fed them to fit) of a fixtures/keras_compile case."""
    header, rows = read_csv(src / "train.csv")
    X = np.array([[float(v) for v in r[:-1]] for r in rows], dtype=np.float32)
    y = np.array([float(r[-1]) for r in rows])
    k_out = meta["model"]["layers"][-1]["units"]
    Y = {"categorical": lambda: one_hot(y, k_out).astype(np.float32),
         "sparse": lambda: y.astype(np.int64),
         "binary": lambda: y.reshape(-1, 1).astype(np.float32),
         "regression": lambda: y.reshape(-1, 1).astype(np.float32)}[meta["train"]["target"]]()
    return X, Y


def archive_optimizer_values(path):
    """optimizer/vars/<i> of a .keras archive's model.weights.h5 (or of a .weights.h5), in order."""
    import h5py
    import io
    import zipfile
    if str(path).endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            data = io.BytesIO(z.read("model.weights.h5"))
    else:
        data = open(path, "rb")
    with h5py.File(data, "r") as f:
        g = f["optimizer/vars"]
        return [np.asarray(g[str(i)][()]) for i in range(len(g))]


def h5_optimizer_values(path):
    """optimizer_weights of a legacy .h5, in weight_names order."""
    import h5py
    with h5py.File(path, "r") as f:
        g = f["optimizer_weights"]
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs["weight_names"]]
        return [np.asarray(g[n][()]) for n in names]


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype.kind == b.dtype.kind and a.tobytes() == b.astype(a.dtype).tobytes()


def warning_note(warns):
    warns = [w for w in warns if not any(b in w for b in BENIGN_WARNINGS)]
    return f"; {len(warns)} warning(s) on load/fit: {warns[0][:90]!r}" if warns else ""


# =========================================================================== the checks

class Checks:
    def __init__(self, rust, workdir, blobs_seed):
        self.rust = rust
        self.workdir = workdir
        self.blobs_seed = blobs_seed
        self._rust_models = {}
        self._odd = None

    # ---- data

    def tutorial(self):
        return dict(rust=self.rust, arrays=blobs_problem(1), args=["--problem", 1], hidden=None, act=None)

    def odd(self):
        if self._odd is None:
            trX, trY, teX, teY = odd_problem()
            a, b = self.workdir / "odd_train.csv", self.workdir / "odd_test.csv"
            write_xy_csv(a, trX, trY)
            write_xy_csv(b, teX, teY)
            self._odd = dict(rust=self.rust, arrays=(trX, one_hot(trY, 2), teX, one_hot(teY, 2)),
                             args=["--train", a, "--test", b], hidden=[6, 4, 3], act=["tanh", "sigmoid", "relu"])
        return self._odd

    def activations(self):
        """The odd data with six hidden layers, one per activation beyond the tutorial's."""
        return dict(self.odd(), hidden=[4] * len(EXTRA_ACTIVATIONS), act=list(EXTRA_ACTIVATIONS))

    def rust_model(self, data_name, fmt):
        """A Rust-trained model file (trained once per data set and format)."""
        key = (data_name, fmt)
        if key not in self._rust_models:
            data = {"tutorial": self.tutorial, "odd": self.odd, "activations": self.activations}[data_name]()
            path = self.workdir / f"rust_{data_name}_{fmt}.h5"
            epochs = RUST_EPOCHS if data_name == "tutorial" else KERAS_EPOCHS
            printed = self.rust.train(path, data["args"], fmt, data["hidden"], data["act"], epochs=epochs)
            self._rust_models[key] = (path, printed, data)
        return self._rust_models[key]

    def rust_to_keras(self, data_name, fmt, k):
        path, printed, data = self.rust_model(data_name, fmt)
        return check_rust_model_in_keras(k, path, data, printed, f"Rust printed Train {printed[0]}, Test {printed[1]}")

    def keras_to_rust(self, data_name, k, keras2_style):
        if data_name == "tutorial":
            layers, dim, arrays = TUTORIAL_LAYERS, 2, blobs_problem(1)
        elif data_name == "activations":
            layers = [dict(units=4, activation=a) for a in EXTRA_ACTIVATIONS] + [dict(units=2, activation="softmax")]
            dim, arrays = 4, self.odd()["arrays"]
        else:
            layers, dim, arrays = ODD_LAYERS, 4, self.odd()["arrays"]
        name = f"{'k2' if keras2_style else 'k3'}_{data_name}"
        return check_keras_model_in_rust(k, layers, dim, arrays, self.rust, self.workdir, name, keras2_style)

    # ---- d: blobs

    def blobs_params(self):
        r = random.Random(self.blobs_seed)
        seeds = [0, 2**32 - 1] + [r.randrange(2**32) for _ in range(3)]
        return [dict(n_samples=r.randint(1, 3000), centers=r.randint(1, 6), n_features=r.randint(1, 5),
                     cluster_std=r.uniform(0.1, 5.0), random_state=s) for s in seeds]

    def blobs(self, p):
        from sklearn.datasets import make_blobs

        out = self.workdir / f"blobs_{p['random_state']}.csv"
        self.rust.run("blobs", "--seed", p["random_state"], "--samples", p["n_samples"], "--centers", p["centers"],
                      "--features", p["n_features"], "--std", repr(p["cluster_std"]), "--csv", out)
        X, y = make_blobs(**p)
        header, rows = read_csv(out)
        ensure(header == x_header(X.shape[1]) + ["y"], f"header {header}")
        ensure(len(rows) == len(X), f"{len(rows)} rows, sklearn has {len(X)}")
        got = np.array([[float(v) for v in row[:-1]] for row in rows], dtype=np.float64).reshape(X.shape)
        labels = np.array([int(row[-1]) for row in rows], dtype=np.int64)
        bad = np.argwhere(got.view(np.uint64) != X.view(np.uint64))
        if len(bad):
            at = tuple(bad[0])
            raise CheckFailed(f"{len(bad)} values differ, first at row/col {list(at)}: {got[at]!r} vs sklearn {X[at]!r}")
        ensure(np.array_equal(labels, y), f"{int(np.sum(labels != y))} labels differ")
        return f"{len(X)} rows x {X.shape[1]} features identical"

    # ---- e: transfer learning

    def study_transfer(self, k):
        """e1: the study's Rust-made model.h5, fine-tuned by Keras with 0, 1, 2 frozen layers."""
        out = self.workdir / "study"
        stdout = self.rust.run("tutorial", "--out-dir", out, "--repeats", 2, "--epochs", FINETUNE_EPOCHS)
        path = out / "model.h5"
        ensure(path.is_file(), f"tutorial wrote no {path.name}; it printed {stdout.strip()[-300:]!r}")
        trX, trY, teX, teY = blobs_problem(2)
        accs, warns = [], []
        for frozen in range(3):
            model, before, after = fit_frozen(k, path, frozen, trX, trY, FINETUNE_EPOCHS, warns)
            check_frozen(before, after, frozen)
            _, acc = model.evaluate(teX, teY, verbose=0)
            ensure(0.0 <= acc <= 1.0, f"fixed={frozen}: test accuracy {acc}")
            accs.append(f"fixed={frozen} {acc:.3f}")
        return (f"frozen layers unchanged, others moved; Problem 2 test accuracy after {FINETUNE_EPOCHS} epochs: "
                f"{', '.join(accs)}{warning_note(warns)}")

    def rust_file_transfer(self, k):
        """e2: a Rust `train --format universal` file, fine-tuned by tf.keras 2 with layer 0 frozen."""
        path = self.workdir / "rust_p1_universal_e2.h5"
        printed = self.rust.train(path, ["--problem", 1], "universal", epochs=FINETUNE_EPOCHS)
        trX, trY, teX, teY = blobs_problem(2)
        warns = []
        model, before, after = fit_frozen(k, path, 1, trX, trY, FURTHER_EPOCHS, warns)
        check_frozen(before, after, 1)
        _, acc = model.evaluate(teX, teY, verbose=0)
        ensure(0.0 <= acc <= 1.0, f"test accuracy {acc}")
        return (f"Rust printed Train {printed[0]}, Test {printed[1]}; layer 0 unchanged after {FURTHER_EPOCHS} "
                f"epochs, Problem 2 test accuracy {acc:.3f}{warning_note(warns)}")

    def finetune_vs_keras(self, k, epochs=3, frozen=1):
        """e3: Rust `finetune` of a Keras-made file equals Keras's own fine-tuning (shuffle off)."""
        k.utils.set_random_seed(9)
        model = build_mlp(k, 2, TUTORIAL_LAYERS)
        model.compile(**COMPILE)
        model.fit(*blobs_problem(1)[:2], epochs=KERAS_EPOCHS, verbose=0)
        src, out = self.workdir / "k3_p1_e3.h5", self.workdir / "ft_e3.h5"
        with captured_warnings([]):
            model.save(str(src))
        stdout = self.rust.run("finetune", "--from", src, "--problem", 2, "--freeze", frozen, "--no-shuffle",
                               "--epochs", epochs, "--out", out)
        m = re.search(r"Train:\s*([0-9.]+),\s*Test:\s*([0-9.]+)", stdout)
        ensure(m, f"finetune printed no `Train: .., Test: ..` line: {stdout.strip()[-300:]!r}")
        trX, trY, teX, teY = blobs_problem(2)
        warns = []
        model, before, after = fit_frozen(k, src, frozen, trX, trY, epochs, warns, batch_size=32, shuffle=False)
        check_frozen(before, after, frozen)
        with captured_warnings(warns):
            rust_model = k.models.load_model(str(out))
        got, want = rust_model.get_weights(), model.get_weights()
        ensure(len(got) == len(want), f"Rust's file has {len(got)} weight arrays, Keras's model {len(want)}")
        diff = max(max_abs_diff(g, w) for g, w in zip(got, want))
        ensure(diff <= FINETUNE_TOL, f"Rust vs Keras fine-tuned weights: max abs difference {diff:.3g} > {FINETUNE_TOL:g}")
        for (name, x, y), printed in zip((("train", trX, trY), ("test", teX, teY)), (m.group(1), m.group(2))):
            _, acc = model.evaluate(x, y, verbose=0)
            ensure(abs(acc - float(printed)) <= 1.0 / len(x) + 5e-4, f"Keras {name} accuracy {acc:.3f}, Rust printed {printed}")
        return (f"freeze {frozen}, {epochs} epochs: max|dw| {diff:.2g}; Rust printed Train {m.group(1)}, "
                f"Test {m.group(2)}, Keras agrees{warning_note(warns)}")

    # ---- k: .keras archives and .weights.h5 files

    def rust_keras_file(self):
        """A Rust-trained .keras (odd data, compiled with SGD) and the same model's .weights.h5."""
        if "keras_file" not in self._rust_models:
            data = self.odd()
            path = self.workdir / "rust_odd.keras"
            printed = self.rust.train(path, data["args"], "keras3", data["hidden"], data["act"], epochs=KERAS_EPOCHS)
            weights = self.workdir / "rust_odd.weights.h5"
            self.rust.run("convert", path, weights)
            self._rust_models["keras_file"] = (path, weights, printed, data)
        return self._rust_models["keras_file"]

    def rust_keras_to_keras(self, k):
        """k1: Keras 3 load_model of a Rust .keras: predicts like Rust, keeps the SGD compile, fits."""
        path, _, printed, data = self.rust_keras_file()
        note = check_rust_model_in_keras(k, path, data, printed, f"Rust printed Train {printed[0]}, Test {printed[1]}")
        with captured_warnings([]):
            model = k.models.load_model(str(path))
        opt = model.optimizer
        ensure(opt is not None and opt.__class__.__name__ == "SGD", f"optimizer {opt!r}, expected SGD")
        lr = float(opt.learning_rate.numpy())
        ensure(abs(lr - 0.01) < 1e-9, f"learning rate {lr}, expected 0.01")
        return f"{note}; compiled SGD(learning_rate={lr:.3g})"

    def rust_weights_to_keras(self, k):
        """k2: Keras 3 model.load_weights of a Rust .weights.h5 into a fresh model of the architecture."""
        path, weights, _, data = self.rust_keras_file()
        warns = []
        with captured_warnings(warns):
            model = k.models.clone_model(k.models.load_model(str(path)))  # fresh random weights
            model.load_weights(str(weights))
        X = random_inputs(29, N_INPUTS, 4)
        diff = compare("Keras (load_weights) vs Rust predictions", model.predict(X, verbose=0),
                       self.rust.predict(path, X))
        model.compile(**COMPILE)
        trX, trY = data["arrays"][:2]
        with captured_warnings(warns):
            loss = model.fit(trX, trY, epochs=FURTHER_EPOCHS, verbose=0).history["loss"]
        ensure(all(np.isfinite(loss)), f"Keras fit gave loss {loss}")
        return f"max|dp| {diff:.2g}, fit {FURTHER_EPOCHS} epochs ok{warning_note(warns)}"

    def keras_files_to_rust(self, k):
        """k3: a Keras 3 .keras predicted by Rust; its .weights.h5 (of a further-fitted model) put by
        Rust into the architecture of its .h5 (`convert --weights`) and predicted."""
        trX, trY = self.odd()["arrays"][:2]
        k.utils.set_random_seed(6)
        model = build_mlp(k, 4, ODD_LAYERS)
        model.compile(**COMPILE)
        model.fit(trX, trY, epochs=KERAS_EPOCHS, verbose=0)
        keras_path, h5 = self.workdir / "k3_odd.keras", self.workdir / "k3_odd.h5"
        with captured_warnings([]):
            model.save(str(keras_path))
            model.save(str(h5))
        X = random_inputs(31, N_INPUTS, 4)
        d1 = compare("Rust .keras vs Keras predictions", self.rust.predict(keras_path, X), model.predict(X, verbose=0))
        model.fit(trX, trY, epochs=FURTHER_EPOCHS, verbose=0)
        weights, joined = self.workdir / "k3_odd_more.weights.h5", self.workdir / "k3_odd_joined.keras"
        model.save_weights(str(weights))
        self.rust.run("convert", h5, joined, "--weights", weights)
        d2 = compare("Rust (.h5 + .weights.h5) vs Keras predictions", self.rust.predict(joined, X),
                     model.predict(X, verbose=0))
        return f".keras max|dp| {d1:.2g}; .h5 + later .weights.h5 max|dp| {d2:.2g}"

    def rust_keras_to_tf_keras(self, k2):
        """k4: what tf.keras 2 makes of a Rust .keras (Keras 3's format): it must refuse it, as it
        refuses Keras 3's own .keras files, rather than load something else."""
        path = self.rust_keras_file()[0]
        outcome = {}
        for who, p in (("Rust", path), ("Keras 3", self.workdir / "k3_odd.keras")):
            if not p.exists():
                self.keras_files_to_rust(keras3())
            try:
                with captured_warnings([]):
                    k2.models.load_model(str(p))
                outcome[who] = "loaded"
            except Exception as e:  # noqa: BLE001 - any refusal is the expected outcome
                outcome[who] = f"{type(e).__name__}: {str(e).splitlines()[0][:90]}"
        ensure(outcome["Rust"].startswith("loaded") == outcome["Keras 3"].startswith("loaded"),
               f"tf.keras 2 treats Rust's and Keras 3's .keras differently: {outcome}")
        return f"tf.keras 2 on Rust's .keras: {outcome['Rust']}; on Keras 3's: {outcome['Keras 3']}"

    def tf_keras_keras_to_rust(self, k2):
        """k5: a tf.keras 2 .keras (Dense only) predicted by Rust."""
        trX, trY = self.odd()["arrays"][:2]
        k2.utils.set_random_seed(7)
        model = build_mlp(k2, 4, ODD_LAYERS, keras2_style=True)
        model.compile(**COMPILE)
        model.fit(trX, trY, epochs=KERAS_EPOCHS, verbose=0)
        path = self.workdir / "k2_odd.keras"
        with captured_warnings([]):
            model.save(str(path))
        X = random_inputs(37, N_INPUTS, 4)
        diff = compare("Rust vs tf.keras 2 predictions", self.rust.predict(path, X), model.predict(X, verbose=0))
        return f"max|dp| {diff:.2g}"

    def graph_via_rust(self, k, case, out_name, fmt, ins):
        """w: a Keras-made Functional graph (fixtures/keras_graph/CASE) converted by Rust to OUT_NAME
        (in FMT for an .h5), loaded by Keras k and predicting as the original did; and Rust's own
        `predict` on the same rows (each input taking its columns in order of model.inputs)."""
        d = REPO / "fixtures" / "keras_graph" / case
        X = np.loadtxt(d / "inputs.csv", delimiter=",", skiprows=1)
        want = np.loadtxt(d / "predictions.csv", delimiter=",", skiprows=1)
        src = d / ("model.keras" if (d / "model.keras").exists() else "model.h5")
        out = self.workdir / f"graph_{case}_{out_name}"
        args = ["convert", src, out] + (["--format", fmt] if fmt else [])
        self.rust.run(*args)
        warns = []
        with captured_warnings(warns):
            m = k.models.load_model(str(out))
        parts, at = [], 0
        for w in ins:
            parts.append(X[:, at:at + w])
            at += w
        diff = compare(f"{out_name} in Keras vs the Keras-made model", m.predict(parts if len(parts) > 1 else parts[0], verbose=0), want, tol=1e-6)
        rust = compare("rust predict vs Keras", self.rust.predict(src, X), want, tol=1e-6)
        return f"max|dp| {diff:.2g} (Keras on Rust's file), {rust:.2g} (Rust predict){warning_note(warns)}"

    def keras_archive_via_rust_to_tf_keras(self, k3, k2):
        """k6: a Keras 3 .keras (compiled SGD(0.05)) converted by Rust to a universal .h5, which tf.keras 2
        loads compiled with the same optimizer and which predicts like the Keras 3 model."""
        trX, trY = self.odd()["arrays"][:2]
        k3.utils.set_random_seed(8)
        model = build_mlp(k3, 4, ODD_LAYERS)
        model.compile(loss="categorical_crossentropy", optimizer=k3.optimizers.SGD(learning_rate=0.05),
                      metrics=["accuracy"])
        model.fit(trX, trY, epochs=KERAS_EPOCHS, verbose=0)
        src, out = self.workdir / "k3_odd_sgd05.keras", self.workdir / "k3_odd_sgd05_universal.h5"
        with captured_warnings([]):
            model.save(str(src))
        self.rust.run("convert", src, out, "--format", "universal")
        warns = []
        with captured_warnings(warns):
            m2 = k2.models.load_model(str(out))
        X = random_inputs(41, N_INPUTS, 4)
        diff = compare("tf.keras 2 (via Rust) vs Keras 3 predictions", m2.predict(X, verbose=0), model.predict(X, verbose=0))
        opt = m2.optimizer
        lr = float(k2.backend.get_value(opt.learning_rate))
        ensure(opt.__class__.__name__ == "SGD" and abs(lr - 0.05) < 1e-7, f"optimizer {opt!r} learning rate {lr}")
        with captured_warnings(warns):
            loss = m2.fit(trX, trY, epochs=FURTHER_EPOCHS, verbose=0).history["loss"]
        ensure(all(np.isfinite(loss)), f"tf.keras 2 fit gave loss {loss}")
        return f"max|dp| {diff:.2g}; compiled SGD(learning_rate={lr:.3g}); fit {FURTHER_EPOCHS} epochs ok{warning_note(warns)}"

    def rust_archives_of_keras_layers(self, k):
        """k7: every fixtures/keras_layers model.h5 that Rust reads, written by Rust as .keras and
        .weights.h5: Keras 3 loads both (load_model; load_weights into a fresh copy), predicts what Keras
        predicted for the original (predictions.csv) and fits the archive further. Refused cases are
        listed, not checked (the layers Rust reads grow elsewhere)."""
        import glob
        done, refused = [], []
        for case in sorted(glob.glob(str(REPO / "fixtures/keras_layers/*/"))):
            case = Path(case)
            if not (case / "predictions.csv").exists():
                continue
            X = np.array(read_float_csv(case / "inputs.csv")[1], dtype=np.float32)
            P = read_float_csv(case / "predictions.csv")[1]
            arch, weights = self.workdir / f"{case.name}.keras", self.workdir / f"{case.name}.weights.h5"
            try:
                self.rust.run("convert", case / "model.h5", arch)
            except CheckFailed:
                refused.append(case.name)
                continue
            self.rust.run("convert", case / "model.h5", weights)
            warns = []
            with captured_warnings(warns):
                model = k.models.load_model(str(arch))
                fresh = k.models.clone_model(model)
                fresh.load_weights(str(weights))
            d1 = compare(f"{case.name}: Keras on Rust's .keras vs Keras's predictions", model.predict(X, verbose=0), P)
            d2 = compare(f"{case.name}: Keras on Rust's .weights.h5", fresh.predict(X, verbose=0), P)
            model.compile(**COMPILE)
            Y = one_hot(np.argmax(P, axis=1), P.shape[1])
            with captured_warnings(warns):
                loss = model.fit(X, Y, epochs=FURTHER_EPOCHS, verbose=0).history["loss"]
            ensure(all(np.isfinite(loss)), f"{case.name}: Keras fit gave loss {loss}")
            done.append(f"{case.name} {max(d1, d2):.2g}")
        return f"{len(done)} cases, max|dp|: {', '.join(done)}; refused by Rust: {', '.join(refused) or 'none'}"
    # ---- n: data names stored in the model

    def names_in_keras(self, fmt, k):
        """Rust trains on named, reordered columns with string classes; the .h5 holds the names as
        root attributes, Keras k loads it unchanged and predicts like Rust."""
        import h5py

        trX, trY, teX, teY = odd_problem()
        names, classes = ["width", "height", "depth", "weight"], ["no", "yes"]
        header = names[:2] + ["answer"] + names[2:]
        files = []
        for tag, X, y in (("train", trX, trY), ("test", teX, teY)):
            path = self.workdir / f"named_{tag}.csv"
            rows = [[fnum(v) for v in x[:2]] + [classes[int(t)]] + [fnum(v) for v in x[2:]] for x, t in zip(X, y)]
            with open(path, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(header)
                w.writerows(rows)
            files.append(path)
        path = self.workdir / f"rust_named_{fmt}.h5"
        printed = self.rust.train(path, ["--train", files[0], "--test", files[1], "--label", "answer"], fmt,
                                  [6, 4, 3], ["tanh", "sigmoid", "relu"], epochs=KERAS_EPOCHS)
        with h5py.File(path, "r") as f:
            text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
            stored = ([text(v) for v in f.attrs["keras_transfer_feature_names"]],
                      text(f.attrs["keras_transfer_label_name"]),
                      [text(v) for v in f.attrs["keras_transfer_class_names"]])
        ensure(stored == (names, "answer", classes), f"stored names {stored}")
        data = dict(rust=self.rust, arrays=(trX, one_hot(trY, 2), teX, one_hot(teY, 2)), names=names)
        return check_rust_model_in_keras(k, path, data, printed, f"names {stored[0]} / {stored[2]} stored")

    def regression_in_keras(self, fmt, k):
        """n4/n5: Rust trains a regression model (--loss mse) on a numeric target; Keras k loads the
        file, predicts what Rust predicts (1e-6) and fits it further."""
        rng = np.random.RandomState(5)
        X = rng.uniform(-2, 2, size=(200, 3))
        y = 2 * X[:, 0] - X[:, 1] + 0.5 * X[:, 2] ** 2 + 0.1 * rng.normal(size=200)
        src = self.workdir / "regression.csv"
        write_csv(src, ["a", "b", "c", "target"], np.column_stack([X, y]))
        path = self.workdir / f"rust_regression_{fmt}.h5"
        self.rust.run("train", "--train", src, "--loss", "mse", "--hidden", "8,4", "--epochs", 10,
                      "--out", path, "--format", fmt, "--seed", 3)
        out = self.workdir / f"regression_{fmt}_pred.csv"
        self.rust.run("predict", "--model", path, "--input", src, "--output", out)
        header, P = read_float_csv(out)
        ensure(header == ["predicted_target"], f"predict wrote header {header}")
        warns = []
        with captured_warnings(warns):
            compiled = None
            try:
                compiled = k.models.load_model(str(path))
            except Exception as e:  # noqa: BLE001 - reported, then loaded without compiling
                compiled = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
            model = k.models.load_model(str(path), compile=False)
        diff = compare("Keras vs Rust regression predictions", model.predict(X.astype(np.float32), verbose=0), P)
        model.compile(loss="mse", optimizer="sgd")
        with captured_warnings(warns):
            loss = model.fit(X, y, epochs=FURTHER_EPOCHS, verbose=0).history["loss"]
        ensure(all(np.isfinite(loss)), f"Keras fit gave loss {loss}")
        how = "compiled as saved" if not isinstance(compiled, str) else f"load_model compiled: {compiled}"
        return f"max|dp| {diff:.2g}, fit {FURTHER_EPOCHS} epochs ok; {how}"

    # ---- the list

    # ---- group l: the layers around Dense

    def keras_layer_file(self, name):
        """A Keras 3 model of the named mix, fitted a little and saved as .h5 (made once)."""
        path = self.workdir / f"keras_{name}.h5"
        if not path.exists():
            k = keras3()
            k.utils.set_random_seed(11)
            build = next(b for n, b, _ in LAYER_MIXES if n == name)
            model = build(k)
            model.compile(**COMPILE)
            trX, trY = self.odd()["arrays"][:2]
            model.fit(trX, trY, epochs=3, batch_size=16, verbose=0)
            with captured_warnings([]):
                model.save(str(path))
        return path

    def layers_keras_to_rust(self, name):
        k = keras3()
        path = self.keras_layer_file(name)
        with captured_warnings([]):
            model = k.models.load_model(str(path))
        X = random_inputs(29, N_INPUTS, 4)
        diff = compare("Rust vs Keras predictions", self.rust.predict(path, X), model.predict(X, verbose=0))
        return f"max|dp| {diff:.2g}"

    def layers_rust_to_keras(self, name, fmt, k, finetune=False):
        """Rust writes the model (converted, or fine-tuned by Rust); Keras loads it, predicts like Rust
        and fits it further."""
        src = self.keras_layer_file(name)
        out = self.workdir / f"rust_{name}_{fmt}{'_ft' if finetune else ''}.h5"
        if finetune:
            # Keras counts a Functional model's InputLayer as its first layer; so does --freeze.
            # --freeze counts Keras's model.layers: a Functional model's InputLayer, a leading Flatten.
            freeze = 2 if name in ("functional_chain", "layernorm_activation") else 1
            self.rust.run("finetune", "--from", src, *self.odd()["args"], "--freeze", freeze, "--epochs", 3,
                          "--out", out, "--format", fmt, "--seed", 4)
        else:
            self.rust.run("convert", src, out, "--format", fmt)
        warns = []
        with captured_warnings(warns):
            model = k.models.load_model(str(out))
        X = random_inputs(31, N_INPUTS, 4)
        diff = compare("Keras vs Rust predictions", model.predict(X, verbose=0), self.rust.predict(out, X))
        if finetune:
            first = next(l for l in model.layers if l.weights)
            ensure(not first.trainable, f"the frozen first layer {first.name} is saved as non-trainable")
        model.compile(**COMPILE)
        trX, trY = self.odd()["arrays"][:2]
        with captured_warnings(warns):
            loss = model.fit(trX, trY, epochs=FURTHER_EPOCHS, verbose=0).history["loss"]
        ensure(all(np.isfinite(loss)), f"Keras fit gave loss {loss}")
        return f"max|dp| {diff:.2g}, fit {FURTHER_EPOCHS} epochs ok"

    def layer_checks(self, k3, k2):
        checks = []
        for i, (name, _, universal) in enumerate(LAYER_MIXES, start=1):
            checks += [
                (f"l{i}a keras 3 {name} .h5 -> rust predict", lambda n=name: self.layers_keras_to_rust(n)),
                (f"l{i}b rust {name} keras3 .h5 -> keras 3", lambda n=name: self.layers_rust_to_keras(n, "keras3", k3)),
                (f"l{i}c rust-finetuned {name} keras3 .h5 -> keras 3",
                 lambda n=name: self.layers_rust_to_keras(n, "keras3", k3, finetune=True)),
            ]
            if universal:
                checks.append((f"l{i}d rust {name} universal .h5 -> tf_keras 2",
                               lambda n=name: self.layers_rust_to_keras(n, "universal", k2)))
        return checks
    def compile_case(self, case, k):
        """Check f: Rust's 20 epochs as the file is compiled, then one more epoch in Keras and in Rust."""
        src = REPO / "fixtures" / "keras_compile" / case
        meta = json.loads((src / "case.json").read_text())
        out = self.workdir / f"f-{case}.h5"
        self.rust.run("finetune", "--from", src / "model.h5", "--train", src / "train.csv", "--no-shuffle",
                      "--epochs", 20, "--out", out)
        X, Y = compile_case_arrays(src, meta)
        target = meta["train"]["target"]
        m = k.models.load_model(out)
        ensure(type(m.optimizer).__name__ == meta["compile"]["optimizer_class"],
               f"Keras loaded optimizer {type(m.optimizer).__name__}")
        ensure(m.optimizer.get_config() == {**meta["compile"]["optimizer_config"], "name": m.optimizer.name},
               f"optimizer config {m.optimizer.get_config()} != {meta['compile']['optimizer_config']}")
        restore_h5_optimizer(m, out, 80)
        m.fit(X, Y, epochs=1, batch_size=32, shuffle=False, verbose=0)
        again = self.workdir / f"f-{case}-more.h5"
        self.rust.run("finetune", "--from", out, "--train", src / "train.csv", "--no-shuffle", "--epochs", 1,
                      "--out", again)
        r = k.models.load_model(again, compile=False)
        diff = max(max_abs_diff(a, b) for a, b in zip(r.get_weights(), m.get_weights()))
        ensure(diff <= FINETUNE_TOL, f"one more epoch: max abs weight difference {diff:.3g} > {FINETUNE_TOL}")
        return f"{meta['compile']['optimizer_class']}, {target}: one more epoch differs by {diff:.2g}"

    def float64_in_keras(self, k, out, fmt=None):
        """Check g: Rust converts the Keras-made float64 model to `out`; Keras, in float64, loads it
        (float64 weights), predicts what Rust predicts within 1e-12 and fits it one more epoch."""
        src = REPO / "fixtures" / "keras_float64" / "sgd"
        path = self.workdir / out
        extra = ["--format", fmt] if fmt else []
        self.rust.run("convert", src / "model.keras", path, *extra)
        rust_model = path
        if out.endswith(".weights.h5"):
            rust_model = self.workdir / "g-arch.h5"
            self.rust.run("convert", src / "model.keras", rust_model)
        preds = self.workdir / f"g-{out}.csv"
        self.rust.run("predict", "--model", rust_model, "--input", src / "inputs.csv", "--output", preds)
        header, rows = read_csv(preds)
        rust = np.array([[float(v) for v in r[1:]] for r in rows], dtype=np.float64)
        _, inputs = read_float_csv(src / "inputs.csv")
        _, train = read_float_csv(src / "train.csv")
        X, y = train[:, :4], train[:, 4].astype(np.int64)
        old = k.backend.floatx()
        k.backend.set_floatx("float64")
        try:
            if out.endswith(".weights.h5"):
                L = k.layers
                # dtype on every layer: the global dtype policy, once set, does not follow set_floatx
                f64 = dict(dtype="float64")
                m = k.Sequential([k.Input((4,), dtype="float64"), L.Dense(6, activation="relu", **f64),
                                  L.BatchNormalization(momentum=0.9, **f64),
                                  L.Dense(3, activation="softmax", **f64)])
                m.load_weights(path)
                m.compile(optimizer=k.optimizers.SGD(learning_rate=0.05), loss="categorical_crossentropy")
            else:
                m = k.models.load_model(path)
                if out.endswith(".h5") and k is keras3():
                    import h5py
                    with h5py.File(path, "r") as f:
                        has_state = "optimizer_weights" in f
                    if has_state:  # a Keras 3 .h5 of a compiled model: its (fresh) optimizer state
                        restore_h5_optimizer(m, path, 0)
            dtypes = sorted({str(np.asarray(v).dtype) for v in m.weights})
            ensure(dtypes == ["float64"], f"Keras loaded weights of dtypes {dtypes}")
            got = np.asarray(m.predict(inputs, verbose=0))
            ensure(got.dtype == np.float64, f"Keras predicted {got.dtype}")
            diff = max_abs_diff(got, rust)
            ensure(diff <= 1e-12, f"predictions differ from Rust's by {diff:.3g} > 1e-12")
            before = [np.array(w) for w in m.get_weights()]
            h = m.fit(X, one_hot(y, 3), epochs=1, batch_size=32, shuffle=False, verbose=0)
            moved = max(max_abs_diff(a, b) for a, b in zip(before, m.get_weights()))
            loss = h.history["loss"][0]
            ensure(np.isfinite(loss) and moved > 0, f"fit: loss {loss}, weights moved {moved}")
        finally:
            k.backend.set_floatx(old)
        return f"float64 weights, predictions within {diff:.2g} of Rust's; one more epoch: loss {loss:.4f}"

    def float64_finetuned_in_keras(self, k, case):
        """Check g: Rust fine-tunes a Keras-made float64 model one epoch (as compiled: SGD or Adam) and
        saves it as .h5; its weights and optimizer state are float64 datasets, the weights are Keras's own
        float64 epoch (case.json "final") within 1e-10, and Keras 3 loads the file and fits it further."""
        import h5py
        src = REPO / "fixtures" / "keras_float64" / case
        meta = json.loads((src / "case.json").read_text())
        out = self.workdir / f"g-{case}-tuned.h5"
        self.rust.run("finetune", "--from", src / "model.keras", "--train", src / "train.csv", "--label", "label",
                      "--no-shuffle", "--epochs", 1, "--out", out)
        with h5py.File(out, "r") as f:
            kinds = set()
            f.visititems(lambda n, o: kinds.add(str(o.dtype)) if isinstance(o, h5py.Dataset) and o.dtype.kind == "f"
                         else None)
        ensure(kinds == {"float64"}, f"float datasets of dtypes {kinds}")
        _, train = read_float_csv(src / "train.csv")
        X, y = train[:, :4], train[:, 4].astype(np.int64)
        old = k.backend.floatx()
        k.backend.set_floatx("float64")
        try:
            m = k.models.load_model(out)
            diff = max(max_abs_diff(m.get_layer(name).get_weights()[i], np.array(w, dtype=np.float64))
                       for name, ws in meta["final"].items()
                       for i, w in enumerate(ws[v] for v in ws))
            ensure(diff <= 1e-10, f"Rust's epoch is {diff:.3g} off Keras's float64 epoch")
            restore_h5_optimizer(m, out, 4)
            h = m.fit(X, one_hot(y, 3), epochs=1, batch_size=32, shuffle=False, verbose=0)
            loss = h.history["loss"][0]
            ensure(np.isfinite(loss), f"fit: loss {loss}")
            # The same fine-tune as a .keras: Keras restores its optimizer's float64 variables, equal to
            # the .h5's optimizer_weights bit for bit.
            arch = self.workdir / f"g-{case}-tuned.keras"
            self.rust.run("convert", out, arch)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                a = k.models.load_model(str(arch))
            skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
            ensure(not skipped, f"Keras skipped the optimizer's variables: {skipped}")
            slots = [v for v in a.optimizer.variables if v.path.split("/")[-1] not in ("iteration", "learning_rate")]
            kinds = {str(np.asarray(v.numpy()).dtype) for v in slots}
            ensure(not slots or kinds == {"float64"}, f"optimizer slots of dtypes {kinds}")
            want = h5_optimizer_values(out)
            got = [np.asarray(v.numpy()) for v in a.optimizer.variables]
            bad = [v.path for v, x, y in zip(a.optimizer.variables, got, want) if not same_bits(x, y)]
            ensure(len(got) == len(want) and not bad, f"optimizer variables differ from the .h5's: {bad[:4]}")
        finally:
            k.backend.set_floatx(old)
        return f"{meta['compile']['optimizer']}: Rust's epoch {diff:.2g} off Keras's; Keras fits on, loss {loss:.4f}"

    # ---- k8-k9: the optimizer's variables in .keras archives

    def rust_archive_optimizer_in_keras(self, case, k):
        """k8: Rust fits a Keras-compiled model.keras 20 epochs and saves a .keras; Keras 3's load_model
        restores its optimizer (no skipped variables), optimizer.variables equal Rust's state (its own
        .h5 conversion's optimizer_weights) bit for bit, and one more Keras epoch equals Rust's next
        epoch from the archive (1e-6). Its .weights.h5 restores the same state through load_weights."""
        src = REPO / "fixtures" / "keras_compile" / case
        meta = json.loads((src / "case.json").read_text())
        out, as_h5 = self.workdir / f"k8-{case}.keras", self.workdir / f"k8-{case}.h5"
        weights = self.workdir / f"k8-{case}.weights.h5"
        self.rust.run("finetune", "--from", src / "model.keras", "--train", src / "train.csv", "--no-shuffle",
                      "--epochs", 20, "--out", out)
        self.rust.run("convert", out, as_h5)
        self.rust.run("convert", out, weights)
        rust_state = h5_optimizer_values(as_h5)
        warns = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = k.models.load_model(str(out))
        skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
        ensure(not skipped, f"Keras skipped the optimizer's variables: {skipped}")
        got = [np.asarray(v.numpy()) for v in m.optimizer.variables]
        ensure(len(got) == len(rust_state), f"Keras has {len(got)} optimizer variables, Rust saved {len(rust_state)}")
        bad = [v.path for v, a, b in zip(m.optimizer.variables, got, rust_state) if not same_bits(a, b)]
        ensure(not bad, f"optimizer variables differ from Rust's: {bad[:4]}")
        ensure(int(m.optimizer.iterations.numpy()) == 80, f"iterations {int(m.optimizer.iterations.numpy())}")
        # the same state through model.load_weights into the untrained, compiled archive
        w = k.models.load_model(str(src / "model.keras"))
        with captured_warnings(warns):
            w.load_weights(str(weights))
        bad = [v.path for v, b in zip(w.optimizer.variables, rust_state) if not same_bits(v.numpy(), b)]
        ensure(len(w.optimizer.variables) == len(rust_state) and not bad,
               f"load_weights of Rust's .weights.h5: optimizer variables differ: {bad[:4]}")
        X, Y = compile_case_arrays(src, meta)
        m.fit(X, Y, epochs=1, batch_size=32, shuffle=False, verbose=0)
        again = self.workdir / f"k8-{case}-more.keras"
        self.rust.run("finetune", "--from", out, "--train", src / "train.csv", "--no-shuffle", "--epochs", 1,
                      "--out", again)
        r = k.models.load_model(str(again), compile=False)
        diff = max(max_abs_diff(a, b) for a, b in zip(r.get_weights(), m.get_weights()))
        ensure(diff <= TOL, f"one more epoch: max abs weight difference {diff:.3g} > {TOL}")
        return (f"{meta['compile']['optimizer_class']}: {len(got)} optimizer variables restored bit for bit "
                f"(and via load_weights); one more epoch differs by {diff:.2g}{warning_note(warns)}")

    def keras_archive_optimizer_in_rust(self, k, name, layers, make_optimizer, frozen):
        """k9: Keras 3 fits a model 2 epochs and saves a .keras; Rust's finetune of it for one more epoch
        (--freeze giving the file's own frozen layers) equals Keras's load_model + fit (1e-6)."""
        k.utils.set_random_seed(41)
        model = k.Sequential([k.Input((4,)), *layers(k)])
        model.compile(optimizer=make_optimizer(k), loss="categorical_crossentropy", metrics=["accuracy"])
        trX, trY = self.odd()["arrays"][:2]
        fit_args = dict(batch_size=16, shuffle=False, verbose=0)
        model.fit(trX, trY, epochs=2, **fit_args)
        path = self.workdir / f"k9-{name}.keras"
        model.save(str(path))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = k.models.load_model(str(path))
        skipped = [str(w.message) for w in caught if "Skipping variable loading" in str(w.message)]
        ensure(not skipped, f"Keras skipped its own optimizer variables: {skipped}")
        m.fit(trX, trY, epochs=1, **fit_args)
        out = self.workdir / f"k9-{name}-rust.keras"
        data = self.odd()
        self.rust.run("finetune", "--from", path, *data["args"], "--no-shuffle", "--epochs", 1, "--batch-size", 16,
                      "--freeze", frozen, "--out", out)
        r = k.models.load_model(str(out))
        diff = max(max_abs_diff(a, b) for a, b in zip(r.get_weights(), m.get_weights()))
        ensure(diff <= TOL, f"one more epoch: max abs weight difference {diff:.3g} > {TOL}")
        sdiff = max(max_abs_diff(np.asarray(a.numpy(), dtype=np.float64), np.asarray(b.numpy(), dtype=np.float64))
                    for a, b in zip(r.optimizer.variables, m.optimizer.variables))
        ensure(len(r.optimizer.variables) == len(m.optimizer.variables) and sdiff <= TOL,
               f"optimizer variables after the epoch differ by {sdiff:.3g}")
        return f"weights differ by {diff:.2g}, optimizer variables by {sdiff:.2g}"

    def all(self):
        k3, k2 = keras3(), keras2()
        checks = [
            ("a1 rust keras3 .h5 -> keras 3", lambda: self.rust_to_keras("tutorial", "keras3", k3)),
            ("a2 rust universal .h5 -> keras 3", lambda: self.rust_to_keras("tutorial", "universal", k3)),
            ("a3 rust universal .h5 -> tf_keras 2", lambda: self.rust_to_keras("tutorial", "universal", k2)),
            ("b1 keras 3 tutorial .h5 -> rust predict", lambda: self.keras_to_rust("tutorial", k3, False)),
            ("b2 tf_keras 2 tutorial .h5 -> rust predict", lambda: self.keras_to_rust("tutorial", k2, True)),
            ("c1 rust odd keras3 .h5 -> keras 3", lambda: self.rust_to_keras("odd", "keras3", k3)),
            ("c2 rust odd universal .h5 -> keras 3", lambda: self.rust_to_keras("odd", "universal", k3)),
            ("c3 rust odd universal .h5 -> tf_keras 2", lambda: self.rust_to_keras("odd", "universal", k2)),
            ("c4 keras 3 odd .h5 -> rust predict", lambda: self.keras_to_rust("odd", k3, False)),
            ("c5 tf_keras 2 odd .h5 -> rust predict", lambda: self.keras_to_rust("odd", k2, True)),
            ("c6 rust activations keras3 .h5 -> keras 3", lambda: self.rust_to_keras("activations", "keras3", k3)),
            ("c7 rust activations universal .h5 -> tf_keras 2", lambda: self.rust_to_keras("activations", "universal", k2)),
            ("c8 keras 3 activations .h5 -> rust predict", lambda: self.keras_to_rust("activations", k3, False)),
            ("c9 tf_keras 2 activations .h5 -> rust predict", lambda: self.keras_to_rust("activations", k2, True)),
        ]
        for i, p in enumerate(self.blobs_params(), 1):
            desc = (f"seed={p['random_state']} n={p['n_samples']} centers={p['centers']} "
                    f"features={p['n_features']} std={p['cluster_std']:.3f}")
            checks.append((f"d{i} blobs {desc}", lambda p=p: self.blobs(p)))
        checks += [
            ("e1 rust study model.h5 -> keras 3 transfer (fixed=0,1,2)", lambda: self.study_transfer(k3)),
            ("e2 rust universal .h5 -> tf_keras 2 transfer (fixed=1)", lambda: self.rust_file_transfer(k2)),
            ("e3 rust finetune of a keras 3 .h5 == keras 3 fine-tuning", lambda: self.finetune_vs_keras(k3)),
            ("k1 rust .keras -> keras 3 load_model", lambda: self.rust_keras_to_keras(k3)),
            ("k2 rust .weights.h5 -> keras 3 load_weights", lambda: self.rust_weights_to_keras(k3)),
            ("k3 keras 3 .keras and .weights.h5 -> rust predict", lambda: self.keras_files_to_rust(k3)),
            ("k4 rust .keras -> tf_keras 2 (refused as keras 3's own)", lambda: self.rust_keras_to_tf_keras(k2)),
            ("k5 tf_keras 2 .keras -> rust predict", lambda: self.tf_keras_keras_to_rust(k2)),
            ("k6 keras 3 .keras -> rust convert universal .h5 -> tf_keras 2", lambda: self.keras_archive_via_rust_to_tf_keras(k3, k2)),
            ("k7 keras_layers fixtures -> rust .keras / .weights.h5 -> keras 3", lambda: self.rust_archives_of_keras_layers(k3)),
            ("w1 keras 3 graph (2 inputs, every merge) -> rust .keras -> keras 3", lambda: self.graph_via_rust(k3, "merges", "out.keras", None, [3, 2])),
            ("w2 keras 3 graph -> rust keras3 .h5 -> keras 3", lambda: self.graph_via_rust(k3, "merges", "k3.h5", "keras3", [3, 2])),
            ("w3 keras 3 graph -> rust universal .h5 -> keras 3", lambda: self.graph_via_rust(k3, "merges", "u.h5", "universal", [3, 2])),
            ("w4 tf_keras 2 graph -> rust universal .h5 -> tf_keras 2", lambda: self.graph_via_rust(k2, "k2_merge", "u.h5", "universal", [3])),
            *[(f"k8 {c}: rust-fitted .keras -> keras 3 optimizer restored, one more epoch == rust's",
               lambda c=c: self.rust_archive_optimizer_in_keras(c, k3)) for c in COMPILE_CASES],
            # BatchNormalization first: a Dense bias just before it has no gradient but rounding noise,
            # which Adam scales up to steps of the learning rate (Keras and Rust then differ by 5e-4).
            ("k9a keras 3 Adam + BatchNormalization .keras -> rust one more epoch == keras's",
             lambda: self.keras_archive_optimizer_in_rust(
                 k3, "adam_bn", lambda k: [k.layers.BatchNormalization(), k.layers.Dense(6, activation="relu"),
                                           k.layers.Dense(2, activation="softmax")],
                 lambda k: k.optimizers.Adam(learning_rate=0.01), 0)),
            ("k9b keras 3 SGD momentum, frozen first layer .keras -> rust one more epoch == keras's",
             lambda: self.keras_archive_optimizer_in_rust(
                 k3, "sgd_frozen", lambda k: [k.layers.Dense(6, activation="relu", trainable=False),
                                              k.layers.Dense(2, activation="softmax")],
                 lambda k: k.optimizers.SGD(learning_rate=0.05, momentum=0.9), 1)),
            *[(f"f {c}: rust-fitted .h5 -> keras 3 one more epoch == rust's",
               lambda c=c: self.compile_case(c, k3)) for c in COMPILE_CASES],
            ("g1 rust float64 keras3 .h5 -> keras 3", lambda: self.float64_in_keras(k3, "g-k3.h5", "keras3")),
            ("g2 rust float64 universal .h5 -> keras 3",
             lambda: self.float64_in_keras(k3, "g-universal.h5", "universal")),
            ("g3 rust float64 universal .h5 -> tf_keras 2",
             lambda: self.float64_in_keras(k2, "g-universal2.h5", "universal")),
            ("g4 rust float64 .keras -> keras 3", lambda: self.float64_in_keras(k3, "g.keras")),
            ("g5 rust float64 .weights.h5 -> keras 3 load_weights",
             lambda: self.float64_in_keras(k3, "g.weights.h5")),
            ("g6 rust float64 sgd fine-tune .h5 -> keras 3", lambda: self.float64_finetuned_in_keras(k3, "sgd")),
            ("g7 rust float64 adam fine-tune .h5 -> keras 3", lambda: self.float64_finetuned_in_keras(k3, "adam")),
            ("n1 rust keras3 .h5 with data names -> keras 3", lambda: self.names_in_keras("keras3", k3)),
            ("n2 rust universal .h5 with data names -> keras 3", lambda: self.names_in_keras("universal", k3)),
            ("n3 rust universal .h5 with data names -> tf_keras 2", lambda: self.names_in_keras("universal", k2)),
            ("n4 rust regression keras3 .h5 -> keras 3", lambda: self.regression_in_keras("keras3", k3)),
            ("n5 rust regression universal .h5 -> tf_keras 2", lambda: self.regression_in_keras("universal", k2)),
        ]
        checks += self.layer_checks(k3, k2)
        checks += checks_apps.checks(self, k3, k2)
        checks += checks_pool.checks(self, k3, k2)
        checks += checks_conv.checks(self, k3, k2)
        checks += checks_nested.checks(self, k3, k2)
        checks += checks_elem.checks(self, k3, k2)
        return checks


# =========================================================================== runner

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=Path(os.environ.get("KT_BIN", REPO / "target/release/keras-transfer")))
    ap.add_argument("--only", nargs="*", default=[], help="run only the checks whose id starts with one of these")
    ap.add_argument("--blobs-seed", type=int, default=20240601, help="seed of the random make_blobs parameter sets")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failures")
    args = ap.parse_args()

    binary = args.bin.resolve()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        print(f"FAIL binary: {binary} is missing or not executable (build it: cargo build --release, or set KT_BIN)")
        print("check: 0 passed, 1 failed")
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="kt-check-"))
    passed = failed = 0
    start = time.time()
    try:
        checks = Checks(Rust(binary, workdir), workdir, args.blobs_seed).all()
        for name, fn in checks:
            if args.only and not any(name.startswith(o) for o in args.only):
                continue
            t0 = time.time()
            try:
                detail = fn()
                passed += 1
                print(f"PASS {name} ({time.time() - t0:.1f} s): {detail}", flush=True)
            except Exception as e:  # noqa: BLE001 - any exception fails just this check
                failed += 1
                msg = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
                print(f"FAIL {name} ({time.time() - t0:.1f} s): {msg.strip()[:1500]}", flush=True)
                if args.verbose and not isinstance(e, CheckFailed):
                    traceback.print_exc()
    finally:
        if args.keep:
            print(f"(kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"({time.time() - start:.0f} s)")
    print(f"check: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
