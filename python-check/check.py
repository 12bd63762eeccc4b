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
  l  the layers around Dense (Dropout, BatchNormalization, LayerNormalization, Activation, LeakyReLU,
     Flatten), a Functional chain and more activations: Keras-made .h5 -> Rust predicts like Keras;
     Rust's own files (converted, and fine-tuned by Rust) -> Keras loads them, predicts like Rust and
     fits them further (Keras 3, and tf.keras 2 for the universal dialect)
"""

import argparse
import contextlib
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

from common import (
    COMPILE, ODD_LAYERS, REPO, TUTORIAL_LAYERS, blobs_problem, build_mlp, keras2, keras3, max_abs_diff,
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

    def predict(self, model, X):
        """The model's predictions for the rows of X, via `keras-transfer predict`."""
        self.calls += 1
        tag = f"{Path(model).stem}-{self.calls}"
        inp, out = self.workdir / f"{tag}.in.csv", self.workdir / f"{tag}.out.csv"
        write_csv(inp, x_header(X.shape[1]), X)
        self.run("predict", "--model", model, "--input", inp, "--output", out)
        header, P = read_float_csv(out)
        ensure(header == p_header(P.shape[1]), f"predict wrote header {header}")
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
    diff = compare("Keras vs Rust predictions", model.predict(X, verbose=0), rust.predict(path, X))
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


def check_frozen(before, after, frozen):
    """The first `frozen` layers kept their weights bit for bit; every other layer moved."""
    ensure(len(before) == 3, f"{len(before)} layers, expected the tutorial's 3 Dense layers")
    for i, (b, a) in enumerate(zip(before, after)):
        same = all(np.array_equal(x, y) for x, y in zip(b, a))
        if i < frozen:
            ensure(same, f"frozen layer {i} changed (max abs {max(max_abs_diff(x, y) for x, y in zip(b, a)):.3g})")
        else:
            ensure(not same, f"trainable layer {i} did not change")


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
            freeze = 2 if name.startswith("functional") else 1
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
        ]
        checks += self.layer_checks(k3, k2)
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
