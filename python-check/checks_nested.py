"""Check group m (nested models): Keras-made models holding a nested Sequential/Functional base
(fixtures/keras_nested, python-check/make_fixtures_nested.py), converted by keras-transfer to .keras,
Keras 3 .h5 and universal .h5, loaded by Keras (3, or tf.keras 2 for the universal .h5 of the
tf.keras 2 case), which must find the nested model (one layer named 'base', its trainable flag as
the source file had them) and predict what the Keras-made model predicted; and a model keras-transfer
fine-tuned after `--unfreeze base`, which Keras loads with the base trainable again.
"""

from pathlib import Path

import numpy as np

from common import REPO

CASES = ("seq", "seq_frozen", "func", "func_frozen", "nd", "outer_seq")
TOL = 1e-6


def _case(ctx, k, case, out_name, fmt):
    from check import compare, ensure

    d = REPO / "fixtures" / "keras_nested" / case
    X = np.loadtxt(d / "inputs.csv", delimiter=",", skiprows=1, ndmin=2)
    want = np.loadtxt(d / "predictions.csv", delimiter=",", skiprows=1, ndmin=2)
    src = d / ("model.keras" if (d / "model.keras").exists() else "model.h5")
    out = ctx.workdir / f"nested_{case}_{out_name}"
    ctx.rust.run("convert", src, out, *(["--format", fmt] if fmt else []))
    m = k.models.load_model(str(out))
    base = m.get_layer("base")
    ensure(hasattr(base, "layers"), f"Keras reads 'base' as a {type(base).__name__}, not a model")
    # Keras 3.15 loads a frozen base (its own file too) with base.trainable True but every layer in
    # it frozen: compare the layers' flags.
    frozen = case.endswith("_frozen")
    flags = [l.trainable for l in base.layers if type(l).__name__ != "InputLayer"]
    ensure(all(f != frozen for f in flags), f"the base's layers are trainable={flags}")
    shape = tuple(m.inputs[0].shape[1:])
    diff = compare(f"{out_name} in Keras vs the Keras-made model",
                   m.predict(X.reshape((len(X), *shape)), verbose=0), want, tol=TOL)
    return f"max|dp| {diff:.2g}"


def _unfreeze(ctx, k):
    from check import ensure

    d = REPO / "fixtures" / "keras_nested" / "seq_frozen"
    out = ctx.workdir / "nested_unfrozen.keras"
    ctx.rust.run("finetune", "--from", d / "fit_model.keras", "--train", d / "train.csv", "--epochs", 2,
                 "--unfreeze", "base", "--out", out)
    m = k.models.load_model(str(out))
    base = m.get_layer("base")
    ensure(base.trainable and all(l.trainable for l in base.layers), "base is not trainable again")
    n = sum(int(np.prod(w.shape)) for w in m.trainable_weights)
    return f"{n} trainable parameters in Keras"


def checks(ctx, k3, k2):
    out = []
    for i, case in enumerate(CASES, start=1):
        out += [
            (f"m{i}a keras 3 nested {case} -> rust .keras -> keras 3",
             lambda c=case: _case(ctx, k3, c, "out.keras", None)),
            (f"m{i}b keras 3 nested {case} -> rust keras3 .h5 -> keras 3",
             lambda c=case: _case(ctx, k3, c, "k3.h5", "keras3")),
            (f"m{i}c keras 3 nested {case} -> rust universal .h5 -> tf_keras 2",
             lambda c=case: _case(ctx, k2, c, "u.h5", "universal")),
        ]
    out += [
        ("m7 tf_keras 2 nested seq -> rust universal .h5 -> tf_keras 2",
         lambda: _case(ctx, k2, "k2_seq", "u.h5", "universal")),
        ("m8 rust finetune --unfreeze base .keras -> keras 3", lambda: _unfreeze(ctx, k3)),
    ]
    return out
