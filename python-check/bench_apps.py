"""Transfer-learning application benchmarks, keras-transfer beside Keras 3 (TensorFlow and JAX).

Run: python-check/run-venv python-check/bench_apps.py [--only mobilenet|resnet] [--runs K] [--work DIR]

Builds (once, in --work, default /tmp/keras-transfer-bench-apps; nothing is committed) with Keras 3,
weights=None and a fixed seed, MobileNetV2 and ResNet50 at 128x128 under the transfer-learning
guide's head (inputs -> base(training=False) -> GlobalAveragePooling2D -> Dense(5)), saved `.keras`
(the base saved trainable), and 256 seeded random images (0..255 float32) in x.npy with labels 0..4
in y.npy. Dropout is left out of the head: its random masks cannot be drawn as Keras draws them, so
a head with it could not be compared with Keras's.

Then times, each peer in a process of its own with its own peak RSS (getrusage of that process):
  predict   256 images, batch 32: Keras's warm call (the second), keras-transfer's whole process;
  head      10 epochs of head training, base frozen, Adam, batch 32, shuffle=False, sparse CE;
  full      1 epoch, everything trainable, same settings.
Keras on TensorFlow (python-check/.venv) and on JAX (python-check/.venv-jax, made by
python-check/setup-venv-jax; skipped with a line when absent). keras-transfer's side is
`cargo bench --bench apps` (benches/apps.rs: the one definition of its workloads), which this script
runs. After the head workload, the trained Dense head is compared with Keras-TF's (max abs diff).
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APPS = {"mobilenet": "MobileNetV2", "resnet": "ResNet50"}
N, SIZE, CLASSES, EPOCHS, BATCH = 256, 128, 5, 10, 32


def make(work, only):
    """Writes the models and data (child process, TF backend)."""
    import numpy as np
    import keras
    os.makedirs(work, exist_ok=True)
    xp, yp = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
    if not os.path.exists(xp):
        rng = np.random.default_rng(0)
        np.save(xp, rng.uniform(0, 255, size=(N, SIZE, SIZE, 3)).astype("float32"))
        np.save(yp, rng.integers(0, CLASSES, size=N).astype("int64"))
    for key in only:
        path = os.path.join(work, f"{key}.keras")
        if os.path.exists(path):
            continue
        keras.utils.set_random_seed(0)
        base = getattr(keras.applications, APPS[key])(
            weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
        inputs = keras.Input((SIZE, SIZE, 3))
        x = base(inputs, training=False)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(CLASSES, activation="softmax")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.save(path + ".tmp.keras")
        os.replace(path + ".tmp.keras", path)


def peer(work, key, workload):
    """One Keras workload in this process; prints a JSON line with seconds and peak RSS."""
    import resource
    import numpy as np
    import keras
    x, y = np.load(os.path.join(work, "x.npy")), np.load(os.path.join(work, "y.npy"))
    model = keras.models.load_model(os.path.join(work, f"{key}.keras"))
    if workload == "predict":
        model.predict(x, batch_size=BATCH, verbose=0)
        t = time.perf_counter()
        model.predict(x, batch_size=BATCH, verbose=0)
        secs = time.perf_counter() - t
    else:
        model.layers[1].trainable = workload == "full"
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        epochs = EPOCHS if workload == "head" else 1
        t = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
        secs = time.perf_counter() - t
        if workload == "head" and keras.backend.backend() == "tensorflow":
            w = [np.asarray(v) for v in model.layers[-1].get_weights()]
            np.savez(os.path.join(work, f"{key}-head-keras.npz"), kernel=w[0], bias=w[1])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print("RESULT " + json.dumps({"secs": secs, "rss": rss}), flush=True)


def head_diff(work, key):
    import numpy as np
    import keras
    ours = keras.models.load_model(os.path.join(work, f"{key}-head-ours.keras"))
    k, b = ours.layers[-1].get_weights()
    ref = np.load(os.path.join(work, f"{key}-head-keras.npz"))
    return float(max(np.abs(k - ref["kernel"]).max(), np.abs(b - ref["bias"]).max()))


def run_peer(python, backend, work, key, workload):
    # The peer to beat on a CPU is TensorFlow with oneDNN, its default; run-venv turns oneDNN off
    # for the fixtures' sake (bit-reproducible numbers), so it is turned back on here.
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="1")
    out = subprocess.run([python, __file__, "--peer", key, workload, "--work", work],
                         env=env, capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    sys.exit(f"bench_apps: Keras-{backend} {key} {workload} failed:\n{out.stderr[-2000:]}")


def run_ours(work, key, runs):
    out = subprocess.run(["cargo", "bench", "--bench", "apps", "--", "--work", work, "--only", key,
                          "--runs", str(runs), "--json", "--mem-limit-gb", "8"], cwd=ROOT, capture_output=True, text=True)
    results = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            results[r["workload"]] = r
    if out.returncode != 0 or len(results) != 3:
        sys.exit(f"bench_apps: cargo bench --bench apps failed:\n{out.stdout[-1000:]}{out.stderr[-2000:]}")
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=list(APPS))
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--work", default="/tmp/keras-transfer-bench-apps")
    ap.add_argument("--peer", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--head-diff", help=argparse.SUPPRESS)
    a = ap.parse_args()
    keys = [a.only] if a.only else list(APPS)
    if a.peer:
        return peer(a.work, *a.peer)
    if a.make:
        return make(a.work, keys)
    if a.head_diff:
        return print("RESULT " + json.dumps(head_diff(a.work, a.head_diff)))
    tf_python = sys.executable
    jax_python = os.path.join(HERE, ".venv-jax", "bin", "python")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([tf_python, __file__, "--make", "--work", a.work] + (["--only", a.only] if a.only else []),
                   env=env, check=True)
    backends = [("tensorflow", tf_python)]
    if os.path.exists(jax_python):
        backends.append(("jax", jax_python))
    else:
        print("bench_apps: no python-check/.venv-jax (make it with python-check/setup-venv-jax): Keras-JAX skipped")
    rows = []
    for key in keys:
        ours = run_ours(a.work, key, a.runs)
        for workload in ("predict", "head", "full"):
            peers = {}
            for backend, python in backends:
                best = None
                for _ in range(a.runs):
                    r = run_peer(python, backend, a.work, key, workload)
                    if best is None or r["secs"] < best["secs"]:
                        best = r
                peers[backend] = best
            rows.append((key, workload, ours[workload], peers))
        out = subprocess.run([tf_python, __file__, "--head-diff", key, "--work", a.work], env=env,
                             capture_output=True, text=True)
        diff = next((json.loads(l[7:]) for l in out.stdout.splitlines() if l.startswith("RESULT ")), None)
        print(f"{APPS[key]}: head after {EPOCHS} epochs, max |keras-transfer - Keras-TF| = "
              + (f"{diff:.3g} ({'ok' if diff < 1e-4 else 'ABOVE 1e-4'})" if diff is not None
                 else f"not compared: {out.stderr.strip().splitlines()[-1:]}"))
    mb = lambda b: f"{b / 2**20:.0f} MB"
    print()
    print("| model | workload | keras-transfer | Keras-TF | ratio | Keras-JAX | ratio |")
    print("|---|---|---|---|---|---|---|")
    for key, workload, o, peers in rows:
        if not o["ok"]:
            cells = [APPS[key], workload, f"FAILED after {o['secs']:.0f} s, {mb(o['rss'])} (8 GB address-space cap)"]
            for backend in ("tensorflow", "jax"):
                p = peers.get(backend)
                cells += [f"{p['secs']:.2f} s, {mb(p['rss'])}", "-"] if p else ["-", "-"]
            print("| " + " | ".join(cells) + " |")
            continue
        cells = [APPS[key], workload, f"{o['secs']:.2f} s, {mb(o['rss'])}"]
        for backend in ("tensorflow", "jax"):
            p = peers.get(backend)
            cells += ([f"{p['secs']:.2f} s, {mb(p['rss'])}",
                       f"{o['secs'] / p['secs']:.2f}x time, {o['rss'] / p['rss']:.2f}x memory"]
                      if p else ["-", "-"])
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
