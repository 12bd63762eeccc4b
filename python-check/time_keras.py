"""Times Keras 3's fit() on the user-scale workload of `cargo bench --bench scale`, on TensorFlow and
(when installed) on JAX, so the README can set them beside keras-transfer.

The data: sklearn's make_blobs(220000, n_features=20, centers=3, cluster_std=2.0, random_state=1),
the first 200,000 rows for training and the rest for validation -- the very rows the bench writes
(keras-transfer's make_blobs is sklearn's, draw for draw). With --data DIR it reads DIR/train.csv and
DIR/val.csv instead (`cargo bench --bench scale -- --data DIR` keeps them).

The model: Dense(64, relu), Dense(64, relu), Dense(3, softmax) on 20 inputs, SGD(0.01),
categorical cross-entropy, 5 epochs, validation after every epoch, at batch 32 and 256. Only fit()
is timed (not importing Keras, reading the data or building the model). Each backend runs in a
process of its own (KERAS_BACKEND must be set before Keras is imported); the best of --runs.

    python-check/run-venv python-check/time_keras.py [--runs N] [--data DIR] [--backends tensorflow,jax]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

N_TRAIN, N_VAL, FEATURES, CLASSES, EPOCHS = 200_000, 20_000, 20, 3, 5
BATCHES = (32, 256)


def load(data_dir):
    import numpy as np

    if data_dir:
        def read(name):
            a = np.loadtxt(os.path.join(data_dir, name), delimiter=",", skiprows=1)
            return a[:, :-1].astype("float32"), a[:, -1].astype(int)

        (x, y), (xv, yv) = read("train.csv"), read("val.csv")
    else:
        from sklearn.datasets import make_blobs

        xa, ya = make_blobs(
            n_samples=N_TRAIN + N_VAL, n_features=FEATURES, centers=CLASSES,
            cluster_std=2.0, random_state=1,
        )
        xa = xa.astype("float32")
        x, y, xv, yv = xa[:N_TRAIN], ya[:N_TRAIN], xa[N_TRAIN:], ya[N_TRAIN:]
    eye = np.eye(CLASSES, dtype="float32")
    return x, eye[y], xv, eye[yv]


def child(backend, batch, runs, data_dir):
    """Runs in a process whose KERAS_BACKEND is `backend`; prints a JSON line."""
    x, y, xv, yv = load(data_dir)
    import keras

    best = float("inf")
    acc = None
    for _ in range(runs):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((FEATURES,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(CLASSES, activation="softmax"),
        ])
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss="categorical_crossentropy", metrics=["accuracy"])
        t = time.perf_counter()
        h = model.fit(x, y, epochs=EPOCHS, batch_size=batch, validation_data=(xv, yv), verbose=0)
        best = min(best, time.perf_counter() - t)
        acc = h.history["val_accuracy"][-1]
    print(json.dumps({"backend": backend, "batch": batch, "fit_s": best, "val_accuracy": acc,
                      "keras": keras.__version__}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--data", default=None, help="folder with train.csv and val.csv")
    ap.add_argument("--backends", default="tensorflow,jax")
    ap.add_argument("--child", nargs=2, metavar=("BACKEND", "BATCH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.runs, a.data)
        return
    rows = []
    for backend in a.backends.split(","):
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: not installed, skipped", file=sys.stderr)
            continue
        for batch in BATCHES:
            cmd = [sys.executable, __file__, "--child", backend, str(batch), "--runs", str(a.runs)]
            if a.data:
                cmd += ["--data", a.data]
            # TensorFlow's own default (oneDNN on), not run-venv's CPU-independent rounding.
            env = dict(os.environ, KERAS_BACKEND=backend, TF_ENABLE_ONEDNN_OPTS="1")
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{backend} batch {batch} failed:\n{out.stderr}")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    cores = os.cpu_count()
    print(f"Keras 3 fit() alone, {N_TRAIN} x {FEATURES} rows, {EPOCHS} epochs, per-epoch validation "
          f"on {N_VAL} rows, best of {a.runs}, {cores} cores\n")
    print("| backend | batch | fit (s) | val accuracy |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} (keras {r['keras']}) | {r['batch']} | {r['fit_s']:.2f} | "
              f"{r['val_accuracy']:.4f} |")


if __name__ == "__main__":
    main()
