"""Times Keras 3's fit() on the tutorial's workload (`cargo bench --bench compare`), on TensorFlow and
(when installed) on JAX, so the README can set them beside keras-transfer.

One fit as the tutorial's comparison makes it: make_blobs(1000, centers=3, n_features=2,
cluster_std=2, random_state=2), the first 500 rows for training; Dense(5, relu, he_uniform),
Dense(5, relu, he_uniform), Dense(3, softmax); SGD(0.01) (Keras's default "sgd"); 100 epochs at batch 32 with
the other 500 rows as validation data, as the tutorial's fit calls do. Only fit() is timed; the
comparison is 120 such fits (4 configurations x 30 repeats), so 120 x the best single fit is a lower
bound of what the comparison takes in Keras run one fit after another, as the tutorial runs it.
Each backend runs in a process of its own; the best of --runs.

    python-check/run-venv python-check/time_keras_tutorial.py [--runs N] [--backends tensorflow,jax]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time


def child(backend, runs):
    import numpy as np
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=1000, centers=3, n_features=2, cluster_std=2, random_state=2)
    eye = np.eye(3, dtype="float32")
    x = x.astype("float32")
    tx, ty, vx, vy = x[:500], eye[y[:500]], x[500:], eye[y[500:]]
    import keras

    best = float("inf")
    for _ in range(runs):
        keras.utils.set_random_seed(1)
        model = keras.Sequential([
            keras.Input((2,)),
            keras.layers.Dense(5, activation="relu", kernel_initializer="he_uniform"),
            keras.layers.Dense(5, activation="relu", kernel_initializer="he_uniform"),
            keras.layers.Dense(3, activation="softmax"),
        ])
        model.compile(optimizer="sgd",
                      loss="categorical_crossentropy", metrics=["accuracy"])
        t = time.perf_counter()
        model.fit(tx, ty, validation_data=(vx, vy), epochs=100, batch_size=32, verbose=0)
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"backend": backend, "keras": keras.__version__, "fit": best}))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--backends", default="tensorflow,jax")
    ap.add_argument("--child", metavar="BACKEND", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, a.runs)
        return
    print(f"Keras 3 fit() of the tutorial's MLP, 100 epochs, batch 32, best of {a.runs}, "
          f"{os.cpu_count()} cores; x 120 for the comparison's fits\n")
    print("| backend | one fit (s) | x 120 (s) |\n|---|---|---|")
    for backend in a.backends.split(","):
        if backend == "jax" and importlib.util.find_spec("jax") is None:
            print("| jax | not installed (pip install jax) | |")
            continue
        env = dict(os.environ, KERAS_BACKEND=backend)
        out = subprocess.run([sys.executable, __file__, "--child", backend, "--runs", str(a.runs)],
                             env=env, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {backend} (keras {r['keras']}) | {r['fit']:.2f} | {120 * r['fit']:.0f} |")


if __name__ == "__main__":
    main()
