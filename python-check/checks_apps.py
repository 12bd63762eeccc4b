import subprocess
"""Check group z of check.py: Keras Applications as users have them, both ways.

  z1 per application (make_fixtures_apps.APPS, the guide's model on each, built and saved by Keras 3 at
     check time: the big ones are not committed): keras-transfer reads Keras's .keras and Keras's .h5
     (also where Keras itself cannot load its .h5 back: MobileNetV3, ConvNeXt) and predicts Keras's
     probabilities for 4 images (1e-4)
  z2 per application: keras-transfer writes the model back (`convert` to .keras and to a Keras 3 .h5);
     Keras 3 loads each and predicts what it predicted before (1e-4); where Keras cannot load its own
     .h5 of the model (MobileNetV3, ConvNeXt: operations on tensors), it loads ours, which predicts
     what the .keras did
  z4 per application: `keras-transfer predict --input FOLDER` on a folder of PNGs (the committed
     fixtures/keras_apps/folder's images, flat) predicts what Keras predicts on
     image_dataset_from_directory(FOLDER, labels=None, image_size=(side, side), shuffle=False) (1e-4)
  z3 a model nested two levels deep without operations (a Sequential inside the Functional base):
     Keras 3's .keras -> keras-transfer's universal .h5 -> tf.keras 2 predicts the same (1e-6), and
     tf.keras 2's own .h5 of it -> keras-transfer predicts as tf.keras 2 (1e-6)

An application listed in REFUSED (none today) is expected to be refused in one line naming it.
"""

import numpy as np
from pathlib import Path

from make_fixtures_apps import APPS, CALIBRATION, N_IMAGES, app, build, images, seed_of

# Predictions agree to this (deep float32 convolution stacks summed in another order; see
# tests/integration/apps.rs).
TOL = 1e-4


class CheckFailed(Exception):
    pass


def ensure(cond, msg):
    if not cond:
        raise CheckFailed(msg)


# Applications keras-transfer refuses today, and what the refusal names.
REFUSED = {}


def checks(ctx, k3, k2):
    """(id, fn) per application; the models are built once, on first use."""
    made = {}

    def model(name):
        if name not in made:
            folder, ctor, options, side, classes = app(name)
            m = build(k3, name)
            d = ctx.workdir / "apps" / folder
            d.mkdir(parents=True, exist_ok=True)
            m.save(d / "model.keras")
            m.save(d / "model.h5")
            x = images(seed_of(name), CALIBRATION, side)[:N_IMAGES]
            p = m.predict(x, verbose=0)
            try:
                k3.models.load_model(d / "model.h5")
                h5 = True
            except ValueError:  # MobileNetV3: Keras cannot load its own .h5 (ops on constants)
                h5 = False
            made[name] = (d, x, p, h5)
        return made[name]

    def refused(name):
        # Not yet supported: keras-transfer must refuse in one line naming what it lacks (exit 3).
        d, _, _, _ = model(name)
        r = subprocess.run([str(ctx.rust.binary), "inspect", str(d / "model.keras")], capture_output=True, text=True)
        err = r.stderr.strip()
        ensure(r.returncode == 3 and REFUSED[name] in err and "\n" not in err,
               f"expected a one-line refusal naming {REFUSED[name]!r} (exit 3), got {r.returncode}: {err}")
        return f"refused as expected: {err}"

    def keras_to_rust(name):
        if name in REFUSED:
            return refused(name)
        d, x, p, h5 = model(name)
        # Keras's .h5 is read even where Keras cannot load it back (its legacy loader calls an
        # operation on tensors as a layer: MobileNetV3, ConvNeXt): users hold such files.
        files = ["model.keras", "model.h5"]
        worst = 0.0
        for f in files:
            got = ctx.rust.predict(d / f, x.reshape(len(x), -1))
            diff = float(np.max(np.abs(got - p)))
            ensure(diff <= TOL, f"{f}: rust predicts Keras's probabilities within {diff:.3g} > {TOL:g}")
            worst = max(worst, diff)
        note = "" if h5 else " (Keras cannot load its own .h5 of this model; keras-transfer reads it)"
        return f"{', '.join(files)}: max|dp| {worst:.2g}{note}"

    def rust_to_keras(name):
        if name in REFUSED:
            return refused(name)
        d, x, p, h5 = model(name)
        worst = 0.0
        for out, fmt in (("rust.keras", []), ("rust.h5", ["--format", "keras3"])):
            ctx.rust.run("convert", d / "model.keras", d / out, *fmt)
            back = k3.models.load_model(d / out)
            # An .h5 is compared with Keras's own .h5 of the model, loaded: Keras 3.15's legacy .h5
            # loader leaves a nested Normalization with its build-time statistics (EfficientNetB0:
            # Keras's own .h5 predicts 0.41 away from its .keras), and an .h5 we write must load as
            # Keras's own does. Where Keras cannot load its own .h5 (its legacy writer drops the
            # module of operations on tensors; ours keeps it, and Keras loads it), with the .keras's.
            want = (k3.models.load_model(d / "model.h5").predict(x, verbose=0)
                    if out.endswith(".h5") and h5 else p)
            diff = float(np.max(np.abs(back.predict(x, verbose=0) - want)))
            ensure(diff <= TOL, f"{out}: Keras 3 predicts within {diff:.3g} > {TOL:g} of before")
            worst = max(worst, diff)
        both = ".keras and .h5" if h5 else ".keras and .h5 (Keras cannot load its own .h5 of this model; ours it loads)"
        return f"rust {both} load in Keras 3: max|dp| {worst:.2g}"

    def two_levels(k):
        """Input(4) -> base = Functional[inner = Sequential[Dense, BatchNormalization] -> Dense] ->
        Dense(2, softmax), in Keras 3 or tf.keras 2 (`k`), with seeded weights."""
        k.utils.set_random_seed(3)
        L = k.layers
        inner = k.Sequential([L.Dense(5, activation="relu", name="d1"), L.BatchNormalization(name="bn")],
                             name="inner")
        bi = k.Input((4,), name="bx")
        base = k.Model(bi, L.Dense(3, activation="tanh", name="d2")(inner(bi)), name="base")
        x = k.Input((4,), name="x")
        return k.Model(x, L.Dense(2, activation="softmax", name="head")(base(x, training=False)))

    def two_levels_both_dialects():
        # No operations on tensors here: the universal (tf.keras 2) dialect can say it.
        d = ctx.workdir / "apps" / "two_levels"
        d.mkdir(parents=True, exist_ok=True)
        xs = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
        worst = 0.0
        m3 = two_levels(k3)
        p3 = m3.predict(xs, verbose=0)
        m3.save(d / "k3.keras")
        ctx.rust.run("convert", d / "k3.keras", d / "uni.h5", "--format", "universal")
        diff = float(np.max(np.abs(k2.models.load_model(d / "uni.h5").predict(xs, verbose=0) - p3)))
        ensure(diff <= 1e-6, f"rust universal .h5 of a Keras 3 two-level model: tf.keras 2 predicts {diff:.3g} away")
        worst = max(worst, diff)
        m2 = two_levels(k2)
        p2 = m2.predict(xs, verbose=0)
        m2.save(d / "k2.h5")
        diff = float(np.max(np.abs(ctx.rust.predict(d / "k2.h5", xs) - p2)))
        ensure(diff <= 1e-6, f"tf.keras 2 .h5 of a two-level model: rust predicts {diff:.3g} away")
        worst = max(worst, diff)
        return f"Keras 3 .keras -> rust universal .h5 -> tf.keras 2, tf.keras 2 .h5 -> rust: max|dp| {worst:.2g}"

    def folder(name):
        if name in REFUSED:
            return refused(name)
        import csv
        import shutil
        d, _, _, _ = model(name)
        side = app(name)[3]
        flat = ctx.workdir / "apps" / "flat_folder"
        if not flat.exists():
            flat.mkdir(parents=True)
            src = Path(__file__).resolve().parent.parent / "fixtures" / "keras_apps" / "folder"
            for png in sorted(src.glob("*/*.png")):
                shutil.copy(png, flat / png.name)
        ds = k3.utils.image_dataset_from_directory(
            str(flat), labels=None, image_size=(side, side), shuffle=False, batch_size=32, verbose=False)
        want = k3.models.load_model(d / "model.keras").predict(ds, verbose=0)
        out = d / "folder_predictions.csv"
        ctx.rust.run("predict", "--model", d / "model.keras", "--input", flat, "--output", out)
        with open(out, newline="") as f:
            rows = list(csv.reader(f))
        header, rows = rows[0], rows[1:]
        ensure([r[0] for r in rows] == sorted(p.name for p in flat.iterdir()),
               f"predict's file column is not the folder's files in Keras's order: {[r[0] for r in rows]}")
        cols = [i for i, h in enumerate(header) if h.startswith("p_")]
        got = np.array([[float(r[i]) for i in cols] for r in rows])
        ensure(got.shape == want.shape, f"predict wrote {got.shape}, Keras {want.shape}")
        diff = float(np.max(np.abs(got - want)))
        ensure(diff <= TOL, f"rust predicts the folder within {diff:.3g} > {TOL:g} of Keras")
        return f"{len(rows)} images at {side}x{side}: max|dp| {diff:.2g}"

    out = [("z3 a model nested two levels deep: keras 3 -> rust universal .h5 -> tf.keras 2; tf.keras 2 .h5 -> rust",
            two_levels_both_dialects)]
    for name, ctor, *_ in APPS:
        out.append((f"z1 {name} ({ctor}): keras 3 .keras/.h5 -> rust predict == keras",
                    lambda n=name: keras_to_rust(n)))
        out.append((f"z2 {name} ({ctor}): keras 3 .keras -> rust .keras/.h5 -> keras 3 predicts the same",
                    lambda n=name: rust_to_keras(n)))
        out.append((f"z4 {name} ({ctor}): rust predict on an image folder == keras on image_dataset_from_directory",
                    lambda n=name: folder(n)))
    return out
