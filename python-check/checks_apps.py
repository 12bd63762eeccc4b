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

An application listed in REFUSED (none today) is expected to be refused in one line naming it.
"""

import numpy as np

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

    out = []
    for name, ctor, *_ in APPS:
        out.append((f"z1 {name} ({ctor}): keras 3 .keras/.h5 -> rust predict == keras",
                    lambda n=name: keras_to_rust(n)))
        out.append((f"z2 {name} ({ctor}): keras 3 .keras -> rust .keras/.h5 -> keras 3 predicts the same",
                    lambda n=name: rust_to_keras(n)))
    return out
